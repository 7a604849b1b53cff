//! The worker runtime on the embedded broker, with a stand-in phase whose work
//! takes as long as the test says: one slow job must not stall the other
//! partitions, and work longer than `max.poll.interval.ms` must not get the
//! worker evicted (which would redo the work).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::ClientConfig;
use sprocket_core::event::{Artifact, MediaAnalyzed};
use sprocket_core::{Envelope, EventBody, JobId, Phase, Recipe, Source, Topics, WorkItem};
use sprocket_platform::bus::Bus;
use sprocket_platform::config::Config;
use sprocket_platform::store;
use sprocket_server::dev::Infra;
use sprocket_workers::{run_worker, Cx, Done, PhaseWork, Stepper, Stores, WorkError};

/// Analyze work that sleeps for the item's `sleep_ms` label.
struct Sleepy;

#[async_trait]
impl PhaseWork for Sleepy {
    fn phase(&self) -> Phase {
        Phase::Analyze
    }

    async fn run(&self, item: &WorkItem, cx: &Cx) -> Result<Done, WorkError> {
        let ms: u64 = item
            .labels
            .get("sleep_ms")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        tokio::time::sleep(Duration::from_millis(ms)).await;
        let key = format!("{}analysis.json", item.prefix());
        let w = store::put_bytes(&cx.stores.work, &key, br#"{"shots":[]}"#.to_vec())
            .await
            .map_err(WorkError::store(Phase::Analyze))?;
        let analysis = Artifact {
            name: "analysis.json".into(),
            key,
            bytes: w.bytes,
            sha256: w.sha256,
            content_type: "application/json".into(),
        };
        Ok(Done {
            event: EventBody::MediaAnalyzed(MediaAnalyzed {
                analysis: analysis.clone(),
                frames: 0,
                fps: 25.0,
                shots: 0,
                summary: None,
                thumbnails: vec![],
            }),
            artifacts: vec![analysis],
            media: None,
        })
    }
}

pub(crate) fn item(job: &str, sleep_ms: u64) -> Envelope {
    let w = WorkItem {
        job_id: JobId::parse(job).unwrap(),
        phase: Phase::Analyze,
        recipe: Recipe::builtin("highlight").unwrap(),
        source: Source::Upload("u".into()),
        labels: [("sleep_ms".to_owned(), sleep_ms.to_string())].into(),
        submitted_at: chrono::Utc::now(),
        artifacts: Default::default(),
        media: None,
        phases: Default::default(),
    };
    Envelope::new(
        w.job_id.clone(),
        "test",
        1,
        EventBody::WorkItem(Box::new(w)),
    )
}

pub(crate) async fn setup(extra: &[(&str, &str)]) -> (Infra, Bus, Arc<Config>) {
    let topics = Topics::default();
    let infra = Infra::start("127.0.0.1:0", "127.0.0.1:0", &topics, 3)
        .await
        .unwrap();
    let mut cfg = Config::default();
    cfg.kafka.brokers = infra.bootstrap_servers();
    cfg.registry.url = infra.registry_url();
    cfg.store.url = "memory://".into();
    cfg.archive.url = "memory://".into();
    for (k, v) in extra {
        cfg.kafka.properties.insert((*k).into(), (*v).into());
    }
    let bus = Bus::connect(&cfg, "test-runtime").await.unwrap();
    (infra, bus, Arc::new(cfg))
}

/// Produces `env` to the analyze topic's `partition`.
pub(crate) async fn produce(bus: &Bus, env: &Envelope, partition: i32) {
    let producer = bus.producer().unwrap();
    let rec = bus
        .record(&bus.topics.phase(Phase::Analyze), env)
        .await
        .unwrap();
    producer
        .send(rec.future().partition(partition), Duration::from_secs(10))
        .await
        .unwrap();
}

/// Reads committed events until `want` completions are seen; returns per job:
/// (first completion time, number of completions, number of PhaseStarted).
pub(crate) async fn completions(
    cfg: &Config,
    bus: &Bus,
    want: usize,
    timeout: Duration,
) -> HashMap<String, (Instant, usize, usize)> {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &cfg.kafka.brokers)
        .set("group.id", format!("observer-{}", uuid::Uuid::now_v7()))
        .set("isolation.level", "read_committed")
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&[&bus.topics.events()]).unwrap();
    let mut seen: HashMap<String, (Instant, usize, usize)> = HashMap::new();
    let deadline = Instant::now() + timeout;
    while seen.values().map(|s| s.1).sum::<usize>() < want {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(Ok(m)) = tokio::time::timeout(left, consumer.recv()).await else {
            panic!("only saw {seen:?} before the deadline");
        };
        let env = bus
            .codec
            .decode(m.payload().unwrap(), || unreachable!())
            .await
            .unwrap();
        let e = seen
            .entry(env.job_id.to_string())
            .or_insert((Instant::now(), 0, 0));
        match env.body {
            EventBody::MediaAnalyzed(_) => {
                if e.1 == 0 {
                    e.0 = Instant::now();
                }
                e.1 += 1;
            }
            EventBody::PhaseStarted(_) => e.2 += 1,
            _ => {}
        }
    }
    seen
}

/// Per job, from the whole events topic once nothing writes to it any more
/// (the workers stopped): (completions, PhaseStarted). The condition that
/// replaces waiting "long enough" for a duplicate that should never come.
pub(crate) fn settled(cfg: &Config, bus: &Bus) -> HashMap<String, (usize, usize)> {
    let log = sprocket_tests::kcat_consume(&cfg.kafka.brokers, &bus.topics.events(), "%k %h\n");
    let mut counts: HashMap<String, (usize, usize)> = HashMap::new();
    for line in log.lines() {
        let Some((job, headers)) = line.split_once(' ') else {
            continue;
        };
        let kind = headers
            .split(',')
            .find_map(|h| h.strip_prefix("event-type="));
        let e = counts.entry(job.to_owned()).or_default();
        match kind {
            Some("MediaAnalyzed") => e.0 += 1,
            Some("PhaseStarted") => e.1 += 1,
            _ => {}
        }
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_slow_job_does_not_stall_the_other_partitions() {
    let (_infra, bus, cfg) = setup(&[]).await;
    let stores = Stores::open(&cfg).unwrap();
    let worker =
        run_worker(Stepper::new(Arc::new(Sleepy), bus.clone(), stores, cfg.clone()).unwrap())
            .unwrap();
    let start = Instant::now();
    produce(&bus, &item("slow", 8_000), 0).await;
    produce(&bus, &item("quick-1", 0), 1).await;
    produce(&bus, &item("quick-2", 0), 2).await;
    let seen = completions(&cfg, &bus, 3, Duration::from_secs(120)).await;
    let slow_done = seen["slow"].0;
    for q in ["quick-1", "quick-2"] {
        assert!(
            seen[q].0 < slow_done,
            "{q} waited for the slow job: {seen:?}"
        );
    }
    assert!(slow_done.duration_since(start) >= Duration::from_secs(8));
    // The slow job was committed once, and its next work item went on to render.
    assert!(seen.values().all(|s| s.1 == 1), "{seen:?}");
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn work_longer_than_max_poll_interval_keeps_the_worker_in_its_group() {
    // max.poll.interval.ms cannot be below session.timeout.ms (10 s here).
    let (_infra, bus, cfg) = setup(&[("max.poll.interval.ms", "10000")]).await;
    let stores = Stores::open(&cfg).unwrap();
    let worker =
        run_worker(Stepper::new(Arc::new(Sleepy), bus.clone(), stores, cfg.clone()).unwrap())
            .unwrap();
    produce(&bus, &item("long", 14_000), 0).await;
    completions(&cfg, &bus, 1, Duration::from_secs(60)).await;
    // Evicted mid-work, the item would have been redelivered and started
    // again: counted over the whole topic once the worker has stopped.
    worker.stop().await;
    let seen = settled(&cfg, &bus);
    assert_eq!(seen["long"].0, 1, "{seen:?}");
    assert_eq!(
        seen["long"].1, 1,
        "the work was started more than once: {seen:?}"
    );
}

/// Waits until `job`'s PhaseStarted is on sprocket.events (published live).
async fn started(cfg: &Config, bus: &Bus, job: &str) {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &cfg.kafka.brokers)
        .set("group.id", format!("observer-{}", uuid::Uuid::now_v7()))
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&[&bus.topics.events()]).unwrap();
    loop {
        let m = tokio::time::timeout(Duration::from_secs(60), consumer.recv())
            .await
            .expect("work started")
            .unwrap();
        let env = bus
            .codec
            .decode(m.payload().unwrap(), || unreachable!())
            .await
            .unwrap();
        if env.job_id.as_str() == job && matches!(env.body, EventBody::PhaseStarted(_)) {
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shutdown_lets_in_flight_work_finish_within_the_grace_period() {
    let (_infra, bus, cfg) = setup(&[]).await;
    let worker = run_worker(
        Stepper::new(
            Arc::new(Sleepy),
            bus.clone(),
            Stores::open(&cfg).unwrap(),
            cfg.clone(),
        )
        .unwrap(),
    )
    .unwrap();
    produce(&bus, &item("graceful", 3_000), 0).await;
    started(&cfg, &bus, "graceful").await;
    let t = Instant::now();
    worker.shutdown(Duration::from_secs(20)).await;
    assert!(
        t.elapsed() < Duration::from_secs(20),
        "shutdown waited out the whole grace"
    );
    let seen = completions(&cfg, &bus, 1, Duration::from_secs(30)).await;
    assert_eq!(seen["graceful"].1, 1, "{seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn work_past_the_grace_period_is_abandoned_and_redone_once() {
    let (_infra, bus, cfg) = setup(&[]).await;
    let stores = Stores::open(&cfg).unwrap();
    let first = run_worker(
        Stepper::new(Arc::new(Sleepy), bus.clone(), stores.clone(), cfg.clone()).unwrap(),
    )
    .unwrap();
    produce(&bus, &item("abandoned", 4_000), 0).await;
    started(&cfg, &bus, "abandoned").await;
    let t = Instant::now();
    first.shutdown(Duration::from_millis(300)).await;
    // The 4 s of work was not waited for; leaving the consumer group can take the
    // mock broker's ~5 s LeaveGroup timeout on top of the grace.
    assert!(
        t.elapsed() < Duration::from_secs(12),
        "shutdown overran: {:?}",
        t.elapsed()
    );
    // Nothing was committed: a new worker redoes the item, and it completes once.
    let second =
        run_worker(Stepper::new(Arc::new(Sleepy), bus.clone(), stores, cfg.clone()).unwrap())
            .unwrap();
    completions(&cfg, &bus, 1, Duration::from_secs(90)).await;
    second.stop().await;
    let seen = settled(&cfg, &bus);
    assert_eq!(seen["abandoned"].0, 1, "{seen:?}");
    assert_eq!(seen["abandoned"].1, 2, "started by both workers: {seen:?}");
}

/// Analyze work that counts how many items run at once.
struct Counting {
    running: std::sync::atomic::AtomicUsize,
    most: std::sync::atomic::AtomicUsize,
}

#[async_trait]
impl PhaseWork for Counting {
    fn phase(&self) -> Phase {
        Phase::Analyze
    }

    async fn run(&self, item: &WorkItem, cx: &Cx) -> Result<Done, WorkError> {
        use std::sync::atomic::Ordering::SeqCst;
        let now = self.running.fetch_add(1, SeqCst) + 1;
        self.most.fetch_max(now, SeqCst);
        let done = Sleepy.run(item, cx).await;
        self.running.fetch_sub(1, SeqCst);
        done
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn max_in_flight_bounds_the_work_of_a_worker_across_its_partitions() {
    let (_infra, bus, cfg) = setup(&[]).await;
    let mut cfg = (*cfg).clone();
    cfg.worker.max_in_flight = 2;
    let cfg = Arc::new(cfg);
    let stores = Stores::open(&cfg).unwrap();
    let work = Arc::new(Counting {
        running: Default::default(),
        most: Default::default(),
    });
    let worker =
        run_worker(Stepper::new(work.clone(), bus.clone(), stores, cfg.clone()).unwrap()).unwrap();
    // Three partitions, two items each: without the bound, three would run at once.
    for i in 0..6 {
        produce(&bus, &item(&format!("bounded-{i}"), 1_000), i % 3).await;
    }
    let seen = completions(&cfg, &bus, 6, Duration::from_secs(120)).await;
    assert!(seen.values().all(|s| s.1 == 1), "{seen:?}");
    assert_eq!(
        work.most.load(std::sync::atomic::Ordering::SeqCst),
        2,
        "worker.max_in_flight = 2: two items at a time, never more"
    );
    worker.stop().await;
}

/// The embedded broker's workarounds are switched on by the cluster id
/// (`standin::is_embedded`): here, on; on Apache Kafka (`processes`'
/// fencing check) off.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_broker_is_told_apart_by_its_cluster_id() {
    let (_infra, bus, _) = setup(&[]).await;
    assert!(sprocket_server::standin::is_embedded(&bus));
}

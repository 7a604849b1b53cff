//! The runtime's per-item steps one by one, unloaded: what `Stepper::step` and
//! `commit.rs` call for one no-op work item, made here with the same public
//! pieces (`Bus::record`, `Bus::send`, `Codec::decode`, the work store, a
//! transactional producer from `Bus`) in the runtime's order, each timed. The
//! transaction is Sprocket's: the completion event to `sprocket.events` and the
//! next work item to the next phase's topic, their acknowledgements awaited,
//! the consumed offset, commit. Run on topics of its own, with no worker to
//! consume them.

use std::time::Duration;

use anyhow::Context;
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::producer::Producer;
use rdkafka::{Offset, TopicPartitionList};
use sprocket_core::event::{Fill, PhaseStarted};
use sprocket_core::{Envelope, EventBody, JobId, Phase, PhaseTimes, Recipe, Source, WorkItem};
use sprocket_platform::bus::Bus;
use sprocket_platform::config::Config;
use sprocket_platform::store;
use sprocket_workers::Stores;

use crate::broker::Broker;
use crate::noop::completion;
use crate::stats::{Lap, Samples};

/// The steps, in the runtime's order, with what each stands for.
pub const STEPS: [&str; 11] = [
    "decode a work item (registry id, JSON Schema check)",
    "claim the job id in the work store (ingest only: read, then write)",
    "live `PhaseStarted`: encode and publish, awaiting the ack",
    "scratch dir: create and remove",
    "encode the outcome: completion event + next work item",
    "`begin_transaction`",
    "produce the two records (enqueue)",
    "await the two records' acknowledgements",
    "`send_offsets_to_transaction`",
    "`commit_transaction`",
    "stand-in only: synchronous consumer offset commit",
];

/// Per step ([`STEPS`]), in ms.
pub type Probe = [Samples; 11];

/// Runs the steps `n` times on `broker`, under a prefix of its own.
pub async fn run(broker: &Broker, cfg: &Config, n: usize) -> anyhow::Result<Probe> {
    let bus = Bus::connect(cfg, "sprocket-bench-probe").await?;
    broker.sprocket_topics(&bus).await?;
    let stores = Stores::open(cfg)?;
    let scratch = cfg.worker.scratch_dir.clone().context("a scratch dir")?;
    let group = bus.topics.group(Phase::Ingest);
    let consumer = bus.consumer(&group)?;
    let meta = consumer.group_metadata().context("group metadata")?;
    let producer = bus.transactional_producer(&format!("{group}-probe"))?;
    let live = bus.producer()?;
    let (events, next_topic) = (bus.topics.events(), bus.topics.phase(Phase::Analyze));
    let consumed = bus.topics.phase(Phase::Ingest);
    let t = Duration::from_secs(30);
    let mut out: Probe = Default::default();
    for i in 0..n {
        let item = item(&format!("probe-{i:05}"));
        let env = |body| Envelope::new(item.job_id.clone(), "sprocket-bench-probe", 1, body);
        let done = completion(Phase::Ingest, &item);
        let next = item.forward(Phase::Analyze, PhaseTimes::default(), done.artifacts);
        let wire = bus
            .record(&consumed, &env(EventBody::WorkItem(Box::new(item.clone()))))
            .await?
            .payload;

        let mut lap = Lap::start();
        bus.codec.decode(&wire, fill).await?;
        out[0].push(lap.lap());
        let claim = format!("{}submission", item.prefix());
        let _ = store::get_bytes(&stores.work, &claim).await;
        store::put_bytes(&stores.work, &claim, b"probe".to_vec()).await?;
        out[1].push(lap.lap());
        let started = env(EventBody::PhaseStarted(PhaseStarted {
            phase: Phase::Ingest,
            worker: "probe".into(),
        }));
        bus.send(&live, &bus.record(&events, &started).await?)
            .await?;
        out[2].push(lap.lap());
        drop(tempfile::Builder::new().tempdir_in(&scratch)?);
        out[3].push(lap.lap());
        let records = [
            bus.record(&events, &env(done.event)).await?,
            bus.record(&next_topic, &env(EventBody::WorkItem(Box::new(next))))
                .await?,
        ];
        out[4].push(lap.lap());
        let mut offsets = TopicPartitionList::new();
        offsets.add_partition_offset(&consumed, 0, Offset::Offset(i as i64 + 1))?;
        let steps = tokio::task::block_in_place(|| -> anyhow::Result<[f64; 6]> {
            producer.begin_transaction()?;
            let begin = lap.lap();
            let mut deliveries = Vec::new();
            for r in &records {
                deliveries.push(producer.send_result(r.future()).map_err(|(e, _)| e)?);
            }
            let produce = lap.lap();
            for d in deliveries {
                futures::executor::block_on(d)?.map_err(|(e, _)| e)?;
            }
            let acks = lap.lap();
            producer.send_offsets_to_transaction(&offsets, &meta, t)?;
            let send_offsets = lap.lap();
            producer.commit_transaction(t)?;
            let commit = lap.lap();
            consumer.commit(&offsets, CommitMode::Sync)?;
            Ok([begin, produce, acks, send_offsets, commit, lap.lap()])
        })?;
        for (s, ms) in out[5..].iter_mut().zip(steps) {
            s.push(ms);
        }
    }
    Ok(out)
}

/// A submission's work item as ingest takes it up.
fn item(job: &str) -> WorkItem {
    WorkItem {
        job_id: JobId::parse(job).expect("a valid job id"),
        phase: Phase::Ingest,
        recipe: Recipe::builtin("minimal").expect("a built-in recipe"),
        source: Source::Path("/media/bench.mp4".into()),
        labels: Default::default(),
        submitted_at: chrono::Utc::now(),
        artifacts: Default::default(),
        media: None,
        phases: Default::default(),
    }
}

/// What a bare-JSON submission would be filled with (wire-format payloads
/// never ask).
fn fill() -> Fill {
    Fill {
        event_id: uuid::Uuid::now_v7().to_string(),
        occurred_at: chrono::Utc::now(),
        producer: "probe".into(),
    }
}

//! Proof under real faults, on a 3-node KRaft cluster (every topic replicated
//! 3 times, `min.insync.replicas` 2): waves of jobs through
//!
//! * a broker SIGKILLed mid-run, and started again;
//! * a broker frozen (SIGSTOP) for longer than the consumers' session timeout
//!   and the controller's broker session, then thawed (SIGCONT);
//! * a render worker frozen mid-render past its session timeout, so its
//!   partitions move and another worker renders and commits the job; then
//!   thawed — the zombie's outcome must be refused (its lane revoked, its
//!   producer fenced), and nothing may appear twice on `read_committed`;
//!
//! with no process restarted by hand, then the proofs of `proofs.rs` over
//! every job: none lost, no completion twice, archives as their manifests,
//! projections equal to a rebuild. The report (stderr, and JSON in
//! `SPROCKET_KAFKA_FAULTS_REPORT` when set) gives each wave against a
//! fault-free one, how long the pipeline stalled, and the recovery times.

use std::time::{Duration, Instant};

use serde_json::json;
use sprocket_tests::video;

use crate::crash::FAST_FAILOVER;
use crate::proofs;
use crate::render_workers::RenderWorkers;
use crate::stack::{Kafka, Stack, StackOptions};
use crate::topic_log::TopicLog;
use crate::waves::{self, wave, Ended};

/// The consumers' session timeout (FAST_FAILOVER's), and a freeze past it
/// and past the controller's broker session (9 s).
const SESSION: Duration = Duration::from_secs(6);
const FREEZE: Duration = Duration::from_secs(12);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_kafka_faults_harness() {
    let _one_at_a_time = crate::ONE_AT_A_TIME.lock().await;
    let t0 = Instant::now();
    let mut stack = Stack::start_with(StackOptions {
        kafka: Kafka::Real { nodes: 3 },
        config_toml: Some(FAST_FAILOVER.into()),
        ..StackOptions::default()
    })
    .await;
    replicated_as_configured(&stack);
    // Two named render workers instead of the stack's one, so a frozen one
    // can be told from the one that takes its partitions over.
    stack.kill("worker-render");
    let mut render = RenderWorkers::beside(&stack);
    render.start("render-a", &[]);
    render.start("render-b", &[]);
    let clip = stack.media_dir().join("clip.mp4");
    video::with_cuts(&clip, &[50, 50, 50], 25, true);
    let long = stack.media_dir().join("long.mp4");
    // 20 s at 640x360: a render of several seconds, long enough to freeze.
    video::with_cuts_sized(&long, &[125, 125, 125, 125], 25, true, (640, 360))
        .expect("making the long clip");
    eprintln!(
        "[kafka-faults] 3-node deployment up at {:.1?}",
        t0.elapsed()
    );

    let none = None::<fn(&mut Stack, &str) -> std::future::Ready<Option<Ended>>>;
    let mut ids = wave(&mut stack, &clip, "warmup", none).await.ids;
    let base = wave(&mut stack, &clip, "baseline", none).await;
    ids.extend(base.ids.iter().cloned());
    let baseline = base.took;
    let mut rows = vec![json!({"fault": "none (baseline)", "wave_s": baseline.as_secs_f64()})];

    // 1. A broker SIGKILLed while the wave runs, started again 5 s later.
    let mut killed_at = 0;
    let w = wave(
        &mut stack,
        &clip,
        "broker-killed",
        Some(async |s: &mut Stack, _: &str| {
            killed_at = proofs::now_ms();
            s.cluster().kill(2);
            tokio::time::sleep(Duration::from_secs(5)).await;
            s.cluster().restart(2);
            Some(Ended::now())
        }),
    )
    .await;
    rows.push(
        fault_row(
            &stack,
            "broker 2 SIGKILLed, restarted after 5 s",
            &w,
            baseline,
            killed_at,
        )
        .await,
    );
    ids.extend(w.ids);

    // 2. A broker frozen past every session timeout, then thawed.
    let mut frozen_at = 0;
    let w = wave(
        &mut stack,
        &clip,
        "broker-frozen",
        Some(async |s: &mut Stack, _: &str| {
            frozen_at = proofs::now_ms();
            s.cluster().pause(3);
            tokio::time::sleep(FREEZE).await;
            s.cluster().resume(3);
            Some(Ended::now())
        }),
    )
    .await;
    rows.push(
        fault_row(
            &stack,
            "broker 3 SIGSTOPped 12 s, then SIGCONT",
            &w,
            baseline,
            frozen_at,
        )
        .await,
    );
    ids.extend(w.ids);

    // 3. A render worker frozen mid-render past its session timeout.
    let mut zombie = None;
    let w = wave(
        &mut stack,
        &long,
        "worker-frozen",
        Some(async |s: &mut Stack, job: &str| {
            zombie = Some(freeze_a_renderer(s, &mut render, job).await);
            Some(Ended::now())
        }),
    )
    .await;
    let (host, job, took_over) = zombie.expect("the zombie wave froze a worker");
    zombie_was_refused(&stack, &mut render, &host, &job).await;
    let mut row = waves::row(
        &stack,
        "render worker SIGSTOPped mid-render past its session, then SIGCONT",
        &w,
        baseline,
    )
    .await;
    row["partition_taken_over_after_s"] = json!(took_over.as_secs_f64());
    eprintln!("[kafka-faults] {row}");
    rows.push(row);
    ids.extend(w.ids);

    let counted = proofs::prove(&mut stack, &ids, Duration::from_secs(180)).await;
    // Aborted and fenced transactions leave markers at the ends of the
    // partitions: the groups must still come to lag 0 (KEDA scales to zero).
    let drained_at = Instant::now();
    crate::lag_views::drained(&mut stack, Duration::from_secs(90)).await;
    eprintln!(
        "[kafka-faults] lag 0 on every phase and retry partition {:.1?} after the proofs",
        drained_at.elapsed()
    );
    let report = counted.report(json!({
        "cluster": "3 nodes, replication 3, min.insync.replicas 2",
        "faults": 3,
        "waves": rows,
        "total_s": t0.elapsed().as_secs_f64(),
    }));
    proofs::publish("kafka-faults", "SPROCKET_KAFKA_FAULTS_REPORT", &report);
    render.assert_running();
    stack.assert_running();
}

/// A wave's report row, with how long the pipeline went without a single
/// job transition after the fault began.
async fn fault_row(
    stack: &Stack,
    fault: &str,
    w: &waves::Wave,
    baseline: Duration,
    began_ms: i64,
) -> serde_json::Value {
    let mut row = waves::row(stack, fault, w, baseline).await;
    let mut log = TopicLog::open(&stack.kafka, "sprocket.events");
    log.catch_up().await;
    row["first_transition_after_fault_began_ms"] =
        json!(proofs::first_event_after(&log, began_ms).map(|at| at - began_ms));
    eprintln!("[kafka-faults] {row}");
    row
}

/// Every topic is replicated 3 times with `min.insync.replicas` 2, as
/// `sprocket topics create` made them on this cluster.
fn replicated_as_configured(stack: &Stack) {
    let cluster = stack.cluster();
    let topics = cluster.describe_topic("sprocket.events");
    assert!(topics.contains("ReplicationFactor: 3"), "{topics}");
    let configs = cluster.topic_configs("sprocket.render");
    assert!(configs.contains("min.insync.replicas=2"), "{configs}");
}

/// Waits until `job`'s render starts on one of the named workers, freezes
/// that worker, and keeps it frozen until the other has rendered the job and
/// committed it. Returns the frozen host, the job, and how long the takeover
/// took from the freeze.
async fn freeze_a_renderer(
    stack: &mut Stack,
    render: &mut RenderWorkers,
    job: &str,
) -> (String, String, Duration) {
    let mut events = TopicLog::open(&stack.kafka, "sprocket.events");
    let (producer, host) = RenderWorkers::render_started(&mut events, job).await;
    render.proc(&host).freeze();
    let frozen = Instant::now();
    eprintln!("[kafka-faults] {host} frozen while rendering {job}");
    events
        .read_until(
            &format!("{job} rendered by the other worker"),
            Duration::from_secs(120),
            |r| {
                r.iter().any(|e| {
                    e.job() == job && e.kind() == "MediaRendered" && e.producer() != producer
                })
            },
        )
        .await;
    let took_over = frozen.elapsed();
    assert!(
        took_over >= SESSION,
        "the job moved before the session ended: {took_over:?}"
    );
    eprintln!(
        "[kafka-faults] {job} rendered elsewhere {took_over:.1?} after the freeze; thawing {host}"
    );
    render.proc(&host).thaw();
    (host, job.to_owned(), took_over)
}

/// The thawed zombie said it could not commit (its lane revoked or its
/// producer fenced), and `read_committed` holds the job's render once.
async fn zombie_was_refused(stack: &Stack, render: &mut RenderWorkers, host: &str, job: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let said = loop {
        let log = render.proc(host).stderr_tail(400);
        let refused = log.lines().find(|l| {
            l.contains("partition revoked: the outcome is left for its new owner")
                || (l.contains("outcome not committed") && l.contains("sprocket.render"))
        });
        if let Some(line) = refused {
            break line.to_owned();
        }
        assert!(
            Instant::now() < deadline,
            "the thawed zombie {host} never said its outcome was refused:\n{log}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    eprintln!("[kafka-faults] zombie {host}: {said}");
    let mut events = TopicLog::open(&stack.kafka, "sprocket.events");
    events.catch_up().await;
    let rendered = events.of(job, "MediaRendered", "");
    assert_eq!(
        rendered.len(),
        1,
        "{job} rendered once on read_committed: {rendered:#?}"
    );
    assert_ne!(
        RenderWorkers::host_of(rendered[0].producer()),
        Some(host),
        "the zombie's render was committed"
    );
}

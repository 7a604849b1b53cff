//! Proof under faults: the deployment as separate processes, on a PostgreSQL
//! server of the test's own, through waves of jobs, each meeting one fault:
//! errors injected into the broker's answers to produce, fetch, transactional
//! offset commits and end-of-transaction requests; the broker down for
//! seconds; slow round trips; PostgreSQL stopped (the projector backs off and
//! catches up; `/readyz` and reads answer 503 meanwhile); the archive store
//! unwritable (the archive phase retries, then succeeds). No process is
//! restarted by hand. Then the proofs of `proofs.rs` over every job.
//!
//! The report (stderr, and JSON in `SPROCKET_FAULTS_REPORT` when set) gives
//! each wave's time to finish against a fault-free wave, and for the faults
//! that last a while, the time from their end to the next job transition.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::json;
use sprocket_tests::pg::PgServer;
use sprocket_tests::video;

use crate::crash::FAST_FAILOVER;
use crate::proofs;
use crate::stack::{Kafka, Stack, StackOptions};
use crate::topic_log::TopicLog;

/// Enough archive attempts (1, 2, 4, 8 s apart …) to outlast the outage.
const ARCHIVE_RETRIES: &str = r#"
[worker.phases.archive.retry]
max_attempts = 8
"#;

/// How long the timed faults last.
const OUTAGE: Duration = Duration::from_secs(6);

/// One fault.
#[derive(Debug, Clone)]
enum Fault {
    /// The next `count` requests of `api` fail with `error`.
    Errors(&'static str, &'static str, usize),
    BrokerDown,
    SlowRoundTrips(u64),
    PostgresStopped,
    ArchiveUnwritable,
}

impl Fault {
    fn name(&self) -> String {
        match self {
            Fault::Errors(api, error, n) => format!("{api} {error} ×{n}"),
            Fault::BrokerDown => format!("broker down {OUTAGE:?}"),
            Fault::SlowRoundTrips(ms) => format!("round trips +{ms} ms for {OUTAGE:?}"),
            Fault::PostgresStopped => format!("PostgreSQL stopped {OUTAGE:?}"),
            Fault::ArchiveUnwritable => format!("archive unwritable {OUTAGE:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_harness() {
    let _one_at_a_time = crate::ONE_AT_A_TIME.lock().await;
    let t0 = Instant::now();
    let pg = PgServer::start();
    let mut stack = Stack::start_with(StackOptions {
        postgres_admin: Some(pg.admin_url()),
        config_toml: Some(format!("{FAST_FAILOVER}{ARCHIVE_RETRIES}")),
        kafka: Kafka::Embedded,
    })
    .await;
    let clip = stack.media_dir().join("clip.mp4");
    video::with_cuts(&clip, &[50, 50, 50], 25, true);
    eprintln!("[faults] deployment up at {:.1?}", t0.elapsed());

    // A first wave warms every process up; the second is the baseline.
    let (mut ids, _, _) = wave(&mut stack, &pg, &clip, "warmup", None).await;
    let (baseline_ids, baseline, _) = wave(&mut stack, &pg, &clip, "baseline", None).await;
    ids.extend(baseline_ids);
    let mut rows = vec![json!({"fault": "none (baseline)", "wave_s": baseline.as_secs_f64()})];
    let faults = [
        Fault::Errors("Produce", "NOT_LEADER_FOR_PARTITION", 6),
        Fault::Errors("Fetch", "NOT_LEADER_FOR_PARTITION", 6),
        Fault::Errors("TxnOffsetCommit", "COORDINATOR_NOT_AVAILABLE", 3),
        Fault::Errors("EndTxn", "NOT_COORDINATOR", 3),
        Fault::BrokerDown,
        Fault::SlowRoundTrips(300),
        Fault::PostgresStopped,
        Fault::ArchiveUnwritable,
    ];
    let only = std::env::var("SPROCKET_FAULTS_ONLY").unwrap_or_default();
    for (i, fault) in faults.iter().enumerate() {
        if !only.is_empty() && !fault.name().contains(only.as_str()) {
            continue;
        }
        let name = format!("fault{i}");
        let (wave_ids, took, ended) = wave(&mut stack, &pg, &clip, &name, Some(fault)).await;
        let mut row = json!({
            "fault": fault.name(),
            "wave_s": took.as_secs_f64(),
            "vs_baseline": took.as_secs_f64() / baseline.as_secs_f64(),
        });
        if let Some(end) = ended {
            let mut log = TopicLog::open(&stack.kafka, "sprocket.events");
            log.catch_up().await;
            row["next_transition_after_end_ms"] =
                json!(proofs::first_event_after(&log, end.at_ms).map(|at| at - end.at_ms));
            row["wave_done_after_end_s"] = json!(end.wave_done_after.map(|d| d.as_secs_f64()));
            row["ready_after_end_ms"] = json!(end.ready_after.map(|d| d.as_millis() as u64));
        }
        eprintln!("[faults] {row}");
        rows.push(row);
        ids.extend(wave_ids);
    }

    let counted = proofs::prove(&mut stack, &ids, Duration::from_secs(120)).await;
    let report = json!({
        "jobs": counted.jobs,
        "faults": faults.len(),
        "lost": counted.lost.len(),
        "duplicates": counted.duplicates.len(),
        "phases_redone": counted.redone,
        "events": counted.events,
        "waves": rows,
        "total_s": t0.elapsed().as_secs_f64(),
    });
    eprintln!("[faults] report {report:#}");
    if let Ok(path) = std::env::var("SPROCKET_FAULTS_REPORT") {
        std::fs::write(&path, format!("{report:#}\n")).unwrap_or_else(|e| panic!("{path}: {e}"));
    }
    stack.assert_running();
}

/// When a timed fault ended, and how long things took after that.
#[derive(Debug)]
struct Ended {
    /// Milliseconds since the epoch.
    at_ms: i64,
    at: Instant,
    /// Until `/readyz` answered 200 again (PostgreSQL).
    ready_after: Option<Duration>,
    /// Until every job of the wave was seen succeeded.
    wave_done_after: Option<Duration>,
}

impl Ended {
    fn now() -> Ended {
        Ended {
            at_ms: proofs::now_ms(),
            at: Instant::now(),
            ready_after: None,
            wave_done_after: None,
        }
    }
}

/// Two jobs submitted, then `fault` (if any) applied while they run; returns
/// their ids, how long the wave took to succeed and, for a timed fault, when
/// it ended.
async fn wave(
    stack: &mut Stack,
    pg: &PgServer,
    clip: &Path,
    name: &str,
    fault: Option<&Fault>,
) -> (Vec<String>, Duration, Option<Ended>) {
    let start = Instant::now();
    let ids: Vec<String> = (0..2).map(|i| format!("{name}-{i}")).collect();
    for id in &ids {
        stack.submit(clip, id, "highlight").await;
    }
    let mut ended = None;
    if let Some(fault) = fault {
        eprintln!("[faults] {name}: {}", fault.name());
        tokio::time::sleep(Duration::from_millis(500)).await;
        ended = apply(stack, pg, fault, &ids[0]).await;
    }
    for id in &ids {
        let job = stack.wait_terminal(id, Duration::from_secs(180)).await;
        assert_eq!(job["status"], "succeeded", "{name}: {job:#}");
    }
    let took = start.elapsed();
    if let Some(end) = ended.as_mut() {
        end.wave_done_after = Some(end.at.elapsed());
    }
    if matches!(fault, Some(Fault::ArchiveUnwritable)) {
        let mut retried = false;
        for id in &ids {
            let events = stack.get_ok(&format!("/v1/jobs/{id}/events")).await;
            retried |= events["events"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|e| e["type"] == "PhaseRetryScheduled" && e["data"]["phase"] == "archive");
        }
        assert!(
            retried,
            "{name}: the archive outage caused no archive retry"
        );
    }
    (ids, took, ended)
}

/// Applies the fault; a timed one is over when this returns, and its end
/// is returned.
async fn apply(stack: &mut Stack, pg: &PgServer, fault: &Fault, job: &str) -> Option<Ended> {
    let ms = OUTAGE.as_millis() as u64;
    match fault {
        Fault::Errors(api, error, count) => {
            stack
                .inject(
                    &json!({"fault": "request_errors", "api": api, "error": error, "count": count}),
                )
                .await;
            return None;
        }
        Fault::BrokerDown => {
            stack.inject(&json!({"fault": "down", "ms": ms})).await;
            tokio::time::sleep(OUTAGE).await;
        }
        Fault::SlowRoundTrips(rtt) => {
            stack
                .inject(&json!({"fault": "rtt", "rtt_ms": rtt, "ms": ms}))
                .await;
            tokio::time::sleep(OUTAGE).await;
        }
        Fault::PostgresStopped => {
            pg.stop();
            let until = Instant::now() + OUTAGE;
            let mut checked = false;
            while Instant::now() < until {
                let (ready, body) = stack.get("/readyz").await;
                assert_eq!(ready, 503, "/readyz while PostgreSQL is down: {body}");
                let (read, body) = stack.get(&format!("/v1/jobs/{job}")).await;
                assert_eq!(read, 503, "a read while PostgreSQL is down: {body}");
                assert_eq!(body["error"]["code"], "unavailable", "{body}");
                checked = true;
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            assert!(checked);
            pg.start_again();
            let mut end = Ended::now();
            loop {
                let (ready, _) = stack.get("/readyz").await;
                if ready == 200 {
                    break;
                }
                assert!(
                    end.at.elapsed() < Duration::from_secs(30),
                    "/readyz not 200 within 30 s of PostgreSQL's return"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            end.ready_after = Some(end.at.elapsed());
            return Some(end);
        }
        Fault::ArchiveUnwritable => {
            let dir = stack.archive_dir();
            let away = dir.with_extension("away");
            std::fs::rename(&dir, &away).expect("moving the archive away");
            // A file where the store's root directory was: every write fails.
            std::fs::write(&dir, b"not a directory").expect("blocking the archive");
            tokio::time::sleep(OUTAGE).await;
            std::fs::remove_file(&dir).expect("unblocking the archive");
            std::fs::rename(&away, &dir).expect("moving the archive back");
        }
    }
    Some(Ended::now())
}

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

use std::time::{Duration, Instant};

use serde_json::json;
use sprocket_tests::pg::PgServer;
use sprocket_tests::video;

use crate::crash::FAST_FAILOVER;
use crate::proofs;
use crate::stack::{Kafka, Stack, StackOptions};
use crate::waves::{self, wave, Ended};

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
            Fault::ArchiveUnwritable => {
                format!("archive unwritable {OUTAGE:?} and until an archive retry")
            }
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
        ..StackOptions::default()
    })
    .await;
    let clip = stack.media_dir().join("clip.mp4");
    video::with_cuts(&clip, &[50, 50, 50], 25, true);
    eprintln!("[faults] deployment up at {:.1?}", t0.elapsed());

    // A first wave warms every process up; the second is the baseline.
    let none = None::<NoFault>;
    let mut ids = wave(&mut stack, &clip, "warmup", none).await.ids;
    let base = wave(&mut stack, &clip, "baseline", none).await;
    ids.extend(base.ids.iter().cloned());
    let baseline = base.took;
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
        eprintln!("[faults] {name}: {}", fault.name());
        let w = wave(
            &mut stack,
            &clip,
            &name,
            Some(async |s: &mut Stack, job: &str| apply(s, &pg, fault, job).await),
        )
        .await;
        if matches!(fault, Fault::ArchiveUnwritable) {
            archive_was_retried(&stack, &name, &w.ids).await;
        }
        let row = waves::row(&stack, &fault.name(), &w, baseline).await;
        eprintln!("[faults] {row}");
        rows.push(row);
        ids.extend(w.ids);
    }

    let counted = proofs::prove(&mut stack, &ids, Duration::from_secs(120)).await;
    let report = counted.report(json!({
        "faults": faults.len(),
        "waves": rows,
        "total_s": t0.elapsed().as_secs_f64(),
    }));
    proofs::publish("faults", "SPROCKET_FAULTS_REPORT", &report);
    stack.assert_running();
}

/// No fault: the type of a wave without one.
type NoFault = fn(&mut Stack, &str) -> std::future::Ready<Option<Ended>>;

/// Whether `job`'s archive step was scheduled for a retry.
async fn archive_retried(stack: &Stack, job: &str) -> bool {
    let events = stack.get_ok(&format!("/v1/jobs/{job}/events")).await;
    events["events"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|e| e["type"] == "PhaseRetryScheduled" && e["data"]["phase"] == "archive")
}

/// The archive outage made the archive phase retry.
async fn archive_was_retried(stack: &Stack, name: &str, ids: &[String]) {
    let mut retried = false;
    for id in ids {
        retried |= archive_retried(stack, id).await;
    }
    assert!(
        retried,
        "{name}: the archive outage caused no archive retry"
    );
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
                // What failed stays in the log; the client gets a request id.
                let said = body["error"]["message"].as_str().unwrap_or_default();
                assert!(
                    body["error"]["request_id"].is_string()
                        && said.contains("request id")
                        && !said.to_ascii_lowercase().contains("postgres"),
                    "{body}"
                );
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
            // The outage lasts until the wave's first job has met it: on a
            // slow machine its archive step may come after OUTAGE is over.
            let deadline = Instant::now() + Duration::from_secs(120);
            while !archive_retried(stack, job).await {
                assert!(
                    Instant::now() < deadline,
                    "{job}: no archive retry within 120 s of the archive's outage"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            std::fs::remove_file(&dir).expect("unblocking the archive");
            std::fs::rename(&away, &dir).expect("moving the archive back");
        }
    }
    Some(Ended::now())
}

//! What a run must leave behind however it was disturbed (the crash and fault
//! harnesses): every job succeeded; `sprocket.events`, read as Kafka tooling
//! reads it (`read_committed`), holds exactly one `JobSucceeded` per job and one
//! completion per phase; the archive holds exactly the files each manifest
//! lists, with the bytes it lists; and the projections equal a from-scratch
//! rebuild into a database of their own.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use sprocket_projections::Projections;
use sprocket_tests::pg::PgDatabase;

use crate::archived::outputs_match_manifest;
use crate::rebuild::first_difference;
use crate::stack::Stack;
use crate::topic_log::TopicLog;

/// Each phase's completion event.
pub const COMPLETIONS: [(&str, &str); 4] = [
    ("ingest", "MediaIngested"),
    ("analyze", "MediaAnalyzed"),
    ("render", "MediaRendered"),
    ("archive", "MediaArchived"),
];

/// What the proofs counted.
#[derive(Debug, Default)]
pub struct Counted {
    pub jobs: usize,
    /// Jobs not succeeded at the end.
    pub lost: Vec<String>,
    /// `(job, event type, copies)` wherever a job has more than one.
    pub duplicates: Vec<(String, String, usize)>,
    /// Events on `sprocket.events`.
    pub events: usize,
    /// Phases started more than once for a job (work a kill or fault cut
    /// short and another attempt redid): the disturbance really hit work.
    pub redone: usize,
}

impl Counted {
    /// The counts as JSON, with a harness's own fields (`extra`, an object)
    /// added.
    pub fn report(&self, extra: serde_json::Value) -> serde_json::Value {
        let mut report = serde_json::json!({
            "jobs": self.jobs,
            "lost": self.lost.len(),
            "duplicates": self.duplicates.len(),
            "phases_redone": self.redone,
            "events": self.events,
        });
        if let (Some(r), serde_json::Value::Object(more)) = (report.as_object_mut(), extra) {
            r.extend(more);
        }
        report
    }
}

/// Prints a harness's report, and writes it as JSON where the environment
/// variable `env` names a file.
pub fn publish(tag: &str, env: &str, report: &serde_json::Value) {
    eprintln!("[{tag}] report {report:#}");
    if let Ok(path) = std::env::var(env) {
        std::fs::write(&path, format!("{report:#}\n")).unwrap_or_else(|e| panic!("{path}: {e}"));
    }
}

/// Waits until every job is terminal; returns those not succeeded with why.
pub async fn wait_all_terminal(
    stack: &mut Stack,
    ids: &[String],
    timeout: Duration,
) -> Vec<String> {
    let deadline = Instant::now() + timeout;
    let mut lost = Vec::new();
    for id in ids {
        let left = deadline.saturating_duration_since(Instant::now());
        let job = stack
            .wait_terminal(id, left.max(Duration::from_secs(1)))
            .await;
        if job["status"] != "succeeded" {
            lost.push(format!("{id}: {} ({})", job["status"], job["error"]));
        }
    }
    lost
}

/// Reads `sprocket.events` to its end and counts, per job, `JobSucceeded` and
/// each phase's completion.
pub async fn count_events(kafka: &str, ids: &[String]) -> Counted {
    let mut log = TopicLog::open(kafka, "sprocket.events");
    log.catch_up().await;
    let mut counted = Counted {
        jobs: ids.len(),
        events: log.records.len(),
        ..Counted::default()
    };
    for id in ids {
        for (phase, _) in COMPLETIONS {
            if log.of(id, "PhaseStarted", phase).len() > 1 {
                counted.redone += 1;
            }
        }
        let kinds = COMPLETIONS
            .iter()
            .map(|(_, kind)| *kind)
            .chain(["JobSucceeded"]);
        for kind in kinds {
            let n = log.of(id, kind, "").len();
            if n != 1 {
                counted.duplicates.push((id.clone(), kind.to_owned(), n));
            }
        }
    }
    counted
}

/// Every job's archive folder holds exactly its manifest's files, and the API
/// lists each artifact once.
pub async fn archived_as_manifested(stack: &Stack, ids: &[String]) {
    for id in ids {
        outputs_match_manifest(&stack.archive_dir().join("jobs").join(id));
        let job = stack.get_ok(&format!("/v1/jobs/{id}")).await;
        let mut names = BTreeMap::<String, usize>::new();
        for a in job["artifacts"].as_array().into_iter().flatten() {
            *names
                .entry(a["name"].as_str().unwrap_or_default().to_owned())
                .or_default() += 1;
        }
        assert!(!names.is_empty(), "{id} lists no artifacts: {job:#}");
        assert!(
            names.values().all(|&n| n == 1),
            "{id} lists an artifact twice: {names:?}"
        );
    }
}

/// Projects the topics again from their beginning into a fresh database (a
/// second `sprocket projector` of its own) and compares every table with the
/// stack's, once both have stopped moving.
pub async fn projections_equal_rebuild(stack: &mut Stack) {
    let fresh = PgDatabase::create_on(stack.db.admin_url(), "sprocket_rebuilt");
    stack.run_ok_on(&fresh.url, &["migrate"]).await;
    let mut rebuilt = stack.spawn_on(&fresh.url, "projector-rebuilt", &["projector"]);
    let live = Projections::connect(&stack.db.url).expect("projection database");
    let replayed = Projections::connect(&fresh.url).expect("rebuilt database");
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut steady_since = None;
    loop {
        stack.assert_running();
        rebuilt.assert_running();
        let a = live.offsets().expect("live offsets");
        let b = replayed.offsets().unwrap_or_default();
        if a == b && !a.is_empty() {
            let since = *steady_since.get_or_insert_with(Instant::now);
            if since.elapsed() > Duration::from_secs(2) {
                break;
            }
        } else {
            steady_since = None;
        }
        assert!(
            Instant::now() < deadline,
            "the rebuilt projection did not reach the live one's offsets: {b:?} vs {a:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let now = live.snapshot().expect("live snapshot");
    let again = replayed.snapshot().expect("rebuilt snapshot");
    if let Some(diff) = first_difference("", &again, &now) {
        panic!("a from-scratch rebuild differs from the live projections: {diff}");
    }
    drop(rebuilt);
}

/// The whole proof; panics with the first broken promise, returns the counts.
pub async fn prove(stack: &mut Stack, ids: &[String], timeout: Duration) -> Counted {
    let lost = wait_all_terminal(stack, ids, timeout).await;
    let mut counted = count_events(&stack.kafka, ids).await;
    counted.lost = lost;
    assert!(
        counted.lost.is_empty(),
        "jobs not succeeded: {:?}",
        counted.lost
    );
    assert!(
        counted.duplicates.is_empty(),
        "not exactly once on sprocket.events (job, type, copies): {:?}",
        counted.duplicates
    );
    archived_as_manifested(stack, ids).await;
    projections_equal_rebuild(stack).await;
    counted
}

/// When the first record on the log (any job, any type) occurred after `t_ms`
/// (milliseconds since the epoch), if one did.
pub fn first_event_after(log: &TopicLog, t_ms: i64) -> Option<i64> {
    log.records
        .iter()
        .map(|r| r.at_ms())
        .filter(|&at| at > t_ms)
        .min()
}

/// Milliseconds since the epoch, now.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

//! Waves of jobs, each meeting one disturbance, for the fault harnesses: a
//! wave submits two jobs, applies its fault while they run, and waits until
//! both succeeded; timed faults say when they ended, so the report can give
//! the time from there to the next job transition and to the wave's end.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::proofs;
use crate::stack::Stack;
use crate::topic_log::TopicLog;

/// When a timed fault ended, and how long things took after that.
#[derive(Debug)]
pub struct Ended {
    /// Milliseconds since the epoch.
    pub at_ms: i64,
    pub at: Instant,
    /// Until `/readyz` answered 200 again (PostgreSQL).
    pub ready_after: Option<Duration>,
    /// Until every job of the wave was seen succeeded.
    pub wave_done_after: Option<Duration>,
}

impl Ended {
    pub fn now() -> Ended {
        Ended {
            at_ms: proofs::now_ms(),
            at: Instant::now(),
            ready_after: None,
            wave_done_after: None,
        }
    }
}

/// A finished wave.
pub struct Wave {
    pub ids: Vec<String>,
    pub took: Duration,
    pub ended: Option<Ended>,
}

/// Two jobs of `recipe` on `clip`, then `fault` (given the first job's id)
/// applied while they run; returns once both succeeded.
pub async fn wave(
    stack: &mut Stack,
    clip: &Path,
    name: &str,
    fault: Option<impl AsyncFnOnce(&mut Stack, &str) -> Option<Ended>>,
) -> Wave {
    let start = Instant::now();
    let ids: Vec<String> = (0..2).map(|i| format!("{name}-{i}")).collect();
    for id in &ids {
        stack.submit(clip, id, "highlight").await;
    }
    let mut ended = None;
    if let Some(fault) = fault {
        tokio::time::sleep(Duration::from_millis(500)).await;
        ended = fault(stack, &ids[0]).await;
    }
    for id in &ids {
        let job = stack.wait_terminal(id, Duration::from_secs(240)).await;
        assert_eq!(job["status"], "succeeded", "{name}: {job:#}");
    }
    let took = start.elapsed();
    if let Some(end) = ended.as_mut() {
        end.wave_done_after = Some(end.at.elapsed());
    }
    Wave { ids, took, ended }
}

/// A report row for a wave against the baseline's time.
pub async fn row(stack: &Stack, fault: &str, w: &Wave, baseline: Duration) -> Value {
    let mut row = json!({
        "fault": fault,
        "wave_s": w.took.as_secs_f64(),
        "vs_baseline": w.took.as_secs_f64() / baseline.as_secs_f64(),
    });
    if let Some(end) = &w.ended {
        let mut log = TopicLog::open(&stack.kafka, "sprocket.events");
        log.catch_up().await;
        row["next_transition_after_end_ms"] =
            json!(proofs::first_event_after(&log, end.at_ms).map(|at| at - end.at_ms));
        row["wave_done_after_end_s"] = json!(end.wave_done_after.map(|d| d.as_secs_f64()));
        row["ready_after_end_ms"] = json!(end.ready_after.map(|d| d.as_millis() as u64));
    }
    row
}

//! Liveness from progress: each long-running loop (a worker's poll loop, the
//! projector's) beats as it goes round, and a process is alive while every
//! loop it runs has beaten recently. A loop that is wedged — blocked in a
//! callback, deadlocked, starved — stops beating, and the orchestrator's
//! liveness probe (`GET /healthz` on `metrics.addr`) then fails and restarts
//! the process, which a static "ok" never would.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// How long a loop may go without a beat before the process counts as stuck.
/// Loops beat at least once a second while idle.
pub const STALE_AFTER: Duration = Duration::from_secs(30);

/// One loop's beats.
#[derive(Clone)]
pub struct Heartbeat {
    last_ms: Arc<AtomicI64>,
}

impl Heartbeat {
    pub fn beat(&self) {
        self.last_ms.store(now_ms(), Ordering::Relaxed);
    }

    /// Milliseconds since the last beat.
    pub fn age_ms(&self) -> i64 {
        now_ms() - self.last_ms.load(Ordering::Relaxed)
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn loops() -> &'static Mutex<BTreeMap<String, Heartbeat>> {
    static LOOPS: OnceLock<Mutex<BTreeMap<String, Heartbeat>>> = OnceLock::new();
    LOOPS.get_or_init(Default::default)
}

/// Registers a loop by name (beaten once now); the same name gives the same
/// heartbeat. [`forget`] removes it when the loop ends on purpose.
pub fn register(name: &str) -> Heartbeat {
    let mut loops = loops().lock().unwrap_or_else(|e| e.into_inner());
    let hb = loops
        .entry(name.to_owned())
        .or_insert_with(|| Heartbeat {
            last_ms: Arc::new(AtomicI64::new(0)),
        })
        .clone();
    hb.beat();
    hb
}

/// Removes a loop that has stopped on purpose.
pub fn forget(name: &str) {
    loops()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(name);
}

/// Every registered loop with the age of its last beat, and whether all are
/// within `stale_after`.
pub fn report(stale_after: Duration) -> (bool, BTreeMap<String, i64>) {
    let loops = loops().lock().unwrap_or_else(|e| e.into_inner());
    let ages: BTreeMap<String, i64> = loops.iter().map(|(n, h)| (n.clone(), h.age_ms())).collect();
    let alive = ages.values().all(|a| *a <= stale_after.as_millis() as i64);
    (alive, ages)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_loop_that_stops_beating_is_stale() {
        let hb = register("test-loop-liveness");
        let (alive, ages) = report(Duration::from_secs(1));
        assert!(alive, "{ages:?}");
        hb.last_ms.store(now_ms() - 5_000, Ordering::Relaxed);
        let (alive, ages) = report(Duration::from_secs(1));
        assert!(!alive, "{ages:?}");
        assert!(ages["test-loop-liveness"] >= 5_000);
        hb.beat();
        assert!(report(Duration::from_secs(1)).0);
        forget("test-loop-liveness");
        assert!(!report(Duration::from_secs(1))
            .1
            .contains_key("test-loop-liveness"));
    }
}

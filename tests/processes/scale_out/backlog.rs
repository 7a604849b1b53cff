//! The backlog half of the scale-out test: a batch left waiting on
//! `sprocket.render` while no render worker runs, and the time its renders
//! take once workers start.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use super::{render_phase, submit_batch, BATCH, SESSION};
use crate::render_workers::RenderWorkers;
use crate::stack::Stack;
use crate::topic_log::TopicLog;

/// Submits a batch just after the render workers were killed, and waits until
/// all of it waits on `sprocket.render` (each `MediaAnalyzed` commits with its
/// render item) and the group has let the killed workers go.
pub(super) async fn build_backlog(
    stack: &mut Stack,
    render: &mut RenderWorkers,
    events: &mut TopicLog,
    clip: &Path,
    batch: &str,
) -> Vec<String> {
    let emptied = Instant::now();
    let ids = submit_batch(stack, clip, batch).await;
    events
        .read_until(
            &format!("{batch}: analyzed"),
            Duration::from_secs(120),
            |r| {
                ids.iter().all(|id| {
                    r.iter()
                        .any(|e| e.job() == id && e.kind() == "MediaAnalyzed")
                })
            },
        )
        .await;
    tokio::time::sleep(SESSION.saturating_sub(emptied.elapsed())).await;
    render.assert_running();
    let view = render_phase(stack).await;
    eprintln!(
        "[scale-out] {batch}: render backlog {} (partitions {})",
        view["lag"], view["partitions"]
    );
    assert!(
        view["lag"].as_i64().is_some_and(|l| l >= BATCH as i64),
        "the backlog waits: {view:#}"
    );
    ids
}

/// Waits until every job has rendered; returns the span from the first render
/// start to the last render done, from the events' own times.
pub(super) async fn drain(
    render: &mut RenderWorkers,
    events: &mut TopicLog,
    ids: &[String],
) -> Duration {
    let spawned = Instant::now();
    let done = |r: &[crate::topic_log::Record]| {
        ids.iter().all(|id| {
            r.iter()
                .any(|e| e.job() == id && e.kind() == "MediaRendered")
        })
    };
    while !done(&events.records) {
        render.assert_running();
        assert!(
            spawned.elapsed() < Duration::from_secs(120),
            "the backlog did not drain in 2 minutes"
        );
        events.read_for(Duration::from_millis(200)).await;
    }
    let wall = spawned.elapsed();
    let first = ids
        .iter()
        .flat_map(|id| events.of(id, "PhaseStarted", "render"))
        .map(|e| e.at_ms())
        .min()
        .expect("render starts");
    let last = ids
        .iter()
        .flat_map(|id| events.of(id, "MediaRendered", ""))
        .map(|e| e.at_ms())
        .max()
        .expect("renders");
    let by: BTreeSet<&str> = ids
        .iter()
        .flat_map(|id| events.of(id, "MediaRendered", ""))
        .map(|e| e.producer())
        .collect();
    let span = Duration::from_millis((last - first).max(1) as u64);
    eprintln!("[scale-out] drained by {by:?}: {span:.2?} rendering, {wall:.2?} from the start");
    span
}

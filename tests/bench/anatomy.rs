//! Where a job's time goes inside the runtime: each phase's stretch of a
//! job's timeline cut at moments the runtime itself records — its `work` span
//! opening and closing ([`crate::spans`]), the `PhaseStarted` and completion
//! events' `occurred_at`, and the CreateTime of the records its transaction
//! produces (librdkafka stamps them when they are enqueued, inside the
//! transaction; milliseconds).

use std::collections::HashMap;

use crate::jobs::JobRun;
use crate::observe::Position;
use crate::spans;
use crate::stats::Samples;

/// The stretches of one phase's handling of a work item, in order.
pub const SEGMENTS: [&str; 6] = [
    "item produced → taken up: the rest of the previous transaction (acknowledgements, send_offsets, commit), fetch, lane queue, in-flight permit",
    "taken up → `PhaseStarted` stamped: decode and schema check (ingest: also the recipe, the claim in the work store, the acceptance publish)",
    "`PhaseStarted` stamped → completion stamped: the live `PhaseStarted` handed to its publisher (not awaited), the scratch dir, the (no-op) work",
    "completion stamped → step returned",
    "step returned → next record produced: registry encode of every record, `begin_transaction`",
    "phase total: item produced → next record produced",
];

/// Per phase, per segment ([`SEGMENTS`]), in ms.
#[derive(Debug, Default)]
pub struct Anatomy {
    pub phases: [[Samples; 6]; 4],
    /// Per phase: the gap between a `work` span closing and the next one
    /// opening on the same partition, where that item was already waiting —
    /// the runtime's own transaction (and permit wait) while it has a backlog.
    pub lane_gap: [Samples; 4],
    /// Work items whose span was not seen (should be none).
    pub missing: usize,
}

/// One work item a lane handled: when it was produced, and its span.
struct Handled {
    produced: f64,
    work: spans::Work,
}

/// The anatomy of every job of `runs`.
pub fn of<'a>(runs: impl IntoIterator<Item = &'a JobRun>) -> Anatomy {
    let mut a = Anatomy::default();
    for run in runs {
        add(&mut a, run);
    }
    a
}

fn add(a: &mut Anatomy, run: &JobRun) {
    // Per phase and partition, every item this run handled there.
    let mut lanes: HashMap<(usize, i32), Vec<Handled>> = HashMap::new();
    for t in &run.timelines {
        let item = |p: usize| t.items[p].clone().expect("a complete timeline");
        let at = |v: Option<f64>| v.expect("a complete timeline");
        for p in 0..4 {
            let (position, created): (Position, f64) = item(p);
            let partition = position.1;
            let Some(w) = spans::work(&position) else {
                a.missing += 1;
                continue;
            };
            let next_created = match p {
                3 => t.succeeded.expect("a complete timeline").0,
                _ => item(p + 1).1,
            };
            let (started, done) = (at(t.started[p]), at(t.done[p]));
            let s = &mut a.phases[p];
            s[0].push(w.opened - created);
            s[1].push(started - w.opened);
            s[2].push(done - started);
            s[3].push(w.closed - done);
            s[4].push(next_created - w.closed);
            s[5].push(next_created - created);
            lanes.entry((p, partition)).or_default().push(Handled {
                produced: created,
                work: w,
            });
        }
    }
    for ((p, _), mut items) in lanes {
        items.sort_by(|a, b| a.work.opened.total_cmp(&b.work.opened));
        for pair in items.windows(2) {
            let (done, next) = (&pair[0], &pair[1]);
            if next.produced <= done.work.closed {
                a.lane_gap[p].push(next.work.opened - done.work.closed);
            }
        }
    }
}

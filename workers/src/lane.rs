//! A lane: one owned partition's messages, handled in order by a task of its
//! own with a transactional producer of its own.
//!
//! A lane commits each message's outcome in one transaction ([`crate::commit`]),
//! behind its [`LaneState`]'s gate: when the group takes the partition away
//! (a rebalance revokes it, or the session was lost), the rebalance callback
//! closes the gate, waiting for a transaction under way to finish, and from then
//! on the lane commits nothing — the partition's new owner redoes whatever the
//! lane had not committed. So a revoked lane can never commit an offset behind
//! its successor's back, whatever the group coordinator accepts.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::message::{Message, OwnedMessage};
use rdkafka::producer::FutureProducer;
use sprocket_platform::bus::{header, HEADER_RETRY_AT};
use sprocket_platform::metrics::metrics;
use tokio::sync::{mpsc, Semaphore};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::commit::commit;
use crate::rebalance::WorkerConsumer;
use crate::step::Stepper;

/// What the poll loop, the lane's task and the rebalance callback share about
/// one lane.
#[derive(Default)]
pub(crate) struct LaneState {
    /// Messages handed to the lane and not yet done with.
    pending: AtomicUsize,
    /// Whether the lane paused its partition (backlog).
    pub(crate) paused: AtomicBool,
    /// `true` once the partition is revoked. Held while a transaction is
    /// written, so revoking waits for it.
    gate: Mutex<bool>,
    /// The running item's cancellation flag.
    running: Mutex<Option<Arc<AtomicBool>>>,
    /// The next offset the lane committed (-1: none yet).
    committed: AtomicI64,
}

/// Why a lane did not commit.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Revoked;

impl LaneState {
    pub(crate) fn new() -> LaneState {
        LaneState {
            committed: AtomicI64::new(-1),
            ..LaneState::default()
        }
    }

    pub(crate) fn pending(&self) -> usize {
        self.pending.load(Ordering::SeqCst)
    }

    /// Counts a message handed to the lane; returns how many it now holds.
    pub(crate) fn add(&self) -> usize {
        self.pending.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// Counts a message done with; returns how many are left.
    fn done(&self) -> usize {
        self.pending.fetch_sub(1, Ordering::SeqCst) - 1
    }

    pub(crate) fn committed(&self) -> i64 {
        self.committed.load(Ordering::SeqCst)
    }

    pub(crate) fn is_revoked(&self) -> bool {
        *self.gate.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Closes the gate (after the transaction under way, if one is) and stops
    /// the running item's work. Called by the rebalance callback.
    pub(crate) fn revoke(&self) {
        *self.gate.lock().unwrap_or_else(|e| e.into_inner()) = true;
        if let Some(flag) = self
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            flag.store(true, Ordering::SeqCst);
        }
    }

    /// Runs `write` (a blocking transaction) unless the partition is revoked;
    /// a revocation waits until it is done.
    pub(crate) fn committing<T>(&self, write: impl FnOnce() -> T) -> Result<T, Revoked> {
        let gate = self.gate.lock().unwrap_or_else(|e| e.into_inner());
        if *gate {
            return Err(Revoked);
        }
        let out = tokio::task::block_in_place(write);
        drop(gate);
        Ok(out)
    }

    fn set_running(&self, flag: Option<Arc<AtomicBool>>) {
        *self.running.lock().unwrap_or_else(|e| e.into_inner()) = flag;
    }
}

/// What every lane of a worker shares.
#[derive(Clone)]
pub(crate) struct LaneShared {
    pub(crate) stepper: Arc<Stepper>,
    pub(crate) consumer: Arc<WorkerConsumer>,
    /// Cancelled when the worker stops: lanes take no new message.
    pub(crate) stopping: CancellationToken,
    /// Asks the poll loop to resume a paused partition.
    pub(crate) resume: mpsc::UnboundedSender<(String, i32)>,
    /// Bounds the items the whole worker runs at once (`worker.max_in_flight`).
    pub(crate) in_flight: Arc<Semaphore>,
}

impl LaneShared {
    fn done_with(&self, state: &LaneState, key: &(String, i32)) {
        if state.done() == 0 && state.paused.swap(false, Ordering::SeqCst) {
            let _ = self.resume.send(key.clone());
        }
    }
}

/// Handles one partition's messages in order until the channel closes, the
/// worker stops, the partition is revoked, or a commit fails for good.
pub(crate) async fn lane_loop(
    shared: LaneShared,
    key: (String, i32),
    mut rx: mpsc::UnboundedReceiver<OwnedMessage>,
    state: Arc<LaneState>,
) {
    let stepper = shared.stepper.clone();
    let (topic, partition) = (key.0.clone(), key.1);
    let txn_id = format!(
        "{}-{topic}-{partition}",
        stepper.bus.topics.group(stepper.phase)
    );
    // Initialise the partition's transactional id before any work: a previous
    // owner still working on this partition is fenced now, not at our first commit.
    let mut producer: Option<FutureProducer> = match stepper.bus.transactional_producer(&txn_id) {
        Ok(p) => Some(p),
        Err(e) => {
            tracing::warn!(%txn_id, error = %e, "transactional producer not ready; retrying at the first commit");
            None
        }
    };
    let skips_committed = stepper
        .stand_in
        .as_ref()
        .is_some_and(|s| s.skip_committed());
    loop {
        let msg = tokio::select! {
            biased;
            _ = shared.stopping.cancelled() => return,
            m = rx.recv() => match m {
                Some(m) => m,
                None => return,
            },
        };
        if state.is_revoked() {
            return;
        }
        if !wait_until_due(&msg, &shared.stopping).await {
            return;
        }
        if skips_committed && msg.offset() < state.committed() {
            tracing::debug!(%topic, partition, offset = msg.offset(), "already committed here; skipped");
            shared.done_with(&state, &key);
            continue;
        }
        let permit = tokio::select! {
            biased;
            _ = shared.stopping.cancelled() => return,
            p = shared.in_flight.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => return,
            },
        };
        if state.is_revoked() {
            return;
        }
        let span = tracing::info_span!("work", phase = %stepper.phase, %topic, partition, offset = msg.offset());
        let m = metrics();
        let phase = stepper.phase.as_str();
        m.jobs_in_flight.with_label_values(&[phase]).inc();
        let started = std::time::Instant::now();
        let cancel = Arc::new(AtomicBool::new(false));
        state.set_running(Some(cancel.clone()));
        let outcome = stepper.step(&msg, cancel).instrument(span).await;
        state.set_running(None);
        m.jobs_in_flight.with_label_values(&[phase]).dec();
        m.phase_duration
            .with_label_values(&[phase, outcome.label()])
            .observe(started.elapsed().as_secs_f64());
        let committed = commit(&shared, &state, &mut producer, &txn_id, &msg, &outcome).await;
        drop(permit);
        match committed {
            Ok(()) => {
                state.committed.store(msg.offset() + 1, Ordering::SeqCst);
                shared.done_with(&state, &key);
            }
            Err(crate::commit::CommitError::Revoked) => {
                tracing::info!(%topic, partition, offset = msg.offset(), "partition revoked: the outcome is left for its new owner");
                return;
            }
            Err(crate::commit::CommitError::Bus(e)) => {
                // Fenced, or Kafka unavailable for too long: rewind to this
                // message and end the lane. Whatever it still holds is fetched
                // again, in order, by a fresh lane (or by the partition's new owner).
                tracing::warn!(%topic, partition, offset = msg.offset(), error = %e, "outcome not committed; rewinding");
                rewind(&shared.consumer, &topic, partition, msg.offset());
                if state.paused.swap(false, Ordering::SeqCst) {
                    let _ = shared.resume.send(key.clone());
                }
                return;
            }
        }
    }
}

/// A retried item waits on its lane until its `retry-at` time; only that retry
/// partition waits, the phase topic's partitions go on. False if the worker
/// stopped meanwhile (the item stays uncommitted and is read again later).
async fn wait_until_due(msg: &OwnedMessage, stopping: &CancellationToken) -> bool {
    let Some(due) = header(msg, HEADER_RETRY_AT).and_then(|v| v.parse::<i64>().ok()) else {
        return true;
    };
    let left = due - chrono::Utc::now().timestamp_millis();
    if left <= 0 {
        return true;
    }
    tokio::select! {
        _ = stopping.cancelled() => false,
        _ = tokio::time::sleep(Duration::from_millis(left as u64)) => true,
    }
}

fn rewind(consumer: &WorkerConsumer, topic: &str, partition: i32, offset: i64) {
    use rdkafka::consumer::Consumer;
    if let Err(e) = consumer.seek(
        topic,
        partition,
        rdkafka::Offset::Offset(offset),
        Duration::from_secs(5),
    ) {
        tracing::warn!(%topic, partition, offset, error = %e, "seek back failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_revoked_lane_commits_nothing_and_revoking_waits_for_a_commit() {
        let state = Arc::new(LaneState::new());
        assert_eq!(state.committing(|| 1), Ok(1));
        // A transaction under way holds the gate: revoking waits for it.
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let writer = {
            let state = state.clone();
            tokio::spawn(async move {
                state.committing(|| {
                    started_tx.send(()).unwrap();
                    std::thread::sleep(Duration::from_millis(300));
                    "written"
                })
            })
        };
        started_rx.recv().unwrap();
        let flag = Arc::new(AtomicBool::new(false));
        state.set_running(Some(flag.clone()));
        let t = std::time::Instant::now();
        let revoker = {
            let state = state.clone();
            std::thread::spawn(move || state.revoke())
        };
        revoker.join().unwrap();
        assert!(t.elapsed() >= Duration::from_millis(200), "revoke waited");
        assert_eq!(writer.await.unwrap(), Ok("written"));
        assert!(flag.load(Ordering::SeqCst), "the running work is stopped");
        assert!(state.is_revoked());
        assert_eq!(state.committing(|| 2), Err(Revoked));
    }
}

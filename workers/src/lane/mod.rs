//! A lane: one owned partition's messages, run by a task of its own.
//!
//! Up to `worker.max_in_flight` of the lane's messages run at once, each in a
//! task of its own; their outcomes are committed in offset order (an ordered
//! finalizer), several messages to a transaction: once the oldest running
//! message finishes, it and every finished message after it are committed
//! together when nothing else runs in the lane and no message is ready to be
//! taken up, when `worker.commit_max_items` are waiting, or when the oldest
//! has waited `worker.commit_interval_ms`. A lane with a backlog so fills
//! its transactions as a Kafka Streams task does per commit interval; a lone
//! message commits as soon as it is done.
//! Nothing is ever committed past a message that has not finished, so a
//! crash redoes only uncommitted messages.
//!
//! Every commit happens behind the lane's [`LaneState`] gate: when the group
//! takes the partition away (a rebalance revokes it, or the session was
//! lost), the rebalance callback closes the gate, waiting for a transaction
//! under way to finish, and from then on the lane commits nothing — the
//! partition's new owner redoes whatever the lane had not committed. So a
//! revoked lane does not commit an offset behind its successor's back,
//! whatever the group coordinator accepts.
//!
//! The wait is bounded ([`REVOKE_WAIT`]): the callback runs on the thread
//! that polls the consumer, and librdkafka's `send_offsets_to_transaction`
//! can outlast its own timeout for minutes while the group coordinator is
//! gone — waiting for it stalled the whole worker. A transaction still under
//! way after the bound is left to Kafka: the partition's next lane opens a
//! producer with the same `transactional.id`, which fences it (it aborts or,
//! if it had already committed, the next owner reads past it, as
//! `read_committed` offsets are only served once stable). A lane whose
//! transaction fails after it was revoked leaves the partition as it is, with
//! no rewind: the next owner starts from the group's committed offset.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures::stream::{FuturesOrdered, StreamExt};
use futures::FutureExt;
use rdkafka::message::{Message, OwnedMessage};
use sprocket_platform::bus::{header, HEADER_RETRY_AT};
use sprocket_platform::metrics::metrics;
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::commit::{commit, CommitError, Finished};
use crate::ports::{LaneId, Transactions};
use crate::stepper::Stepper;

mod state;
pub(crate) use state::{LaneState, Revoked, REVOKE_WAIT};

/// How a lane batches its commits.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Batching {
    /// Messages of one lane running at once.
    pub(crate) max_in_flight: usize,
    /// Most messages committed in one transaction.
    pub(crate) max_items: usize,
    /// Longest a finished message waits for others to join its transaction.
    pub(crate) interval: Duration,
}

/// What every lane of one consumer shares.
#[derive(Clone)]
pub(crate) struct LaneShared {
    pub(crate) stepper: Arc<Stepper>,
    pub(crate) tx: Arc<dyn Transactions>,
    /// Cancelled when the worker stops: lanes take no new message, finish and
    /// commit what runs.
    pub(crate) stopping: CancellationToken,
    /// Asks the poll loop to resume a paused partition.
    pub(crate) resume: mpsc::UnboundedSender<LaneId>,
    /// Bounds the messages the whole worker runs at once (`worker.max_in_flight`).
    pub(crate) in_flight: Arc<Semaphore>,
    pub(crate) batching: Batching,
}

impl LaneShared {
    fn done_with(&self, state: &LaneState, key: &LaneId, n: usize) {
        if state.done(n) == 0 && state.paused.swap(false, Ordering::SeqCst) {
            let _ = self.resume.send(key.clone());
        }
    }
}

/// The lane's started messages, in offset order: each one's offset and key,
/// and the tasks deciding their outcomes.
struct Running {
    started: VecDeque<(i64, Option<Vec<u8>>)>,
    tasks: FuturesOrdered<JoinHandle<Finished>>,
    /// Keys (job ids) of started messages not yet taken back: two messages
    /// of one job never run at once (a job id submitted twice must see the
    /// first submission's claim), so a message waits while its key runs.
    keys: HashMap<Vec<u8>, usize>,
}

impl Running {
    fn busy(&self, msg: &OwnedMessage) -> bool {
        msg.key().is_some_and(|k| self.keys.contains_key(k))
    }

    /// Takes back the oldest started message: its offset.
    fn taken(&mut self) -> i64 {
        let (offset, key) = self.started.pop_front().unwrap_or((-1, None));
        if let Some(k) = key {
            if let Some(n) = self.keys.get_mut(&k) {
                *n -= 1;
                if *n == 0 {
                    self.keys.remove(&k);
                }
            }
        }
        offset
    }
}

/// Handles one partition's messages until the channel closes, the worker
/// stops (after committing what runs), the partition is revoked, or a commit
/// fails for good.
pub(crate) async fn lane_loop(
    shared: LaneShared,
    key: LaneId,
    mut rx: mpsc::UnboundedReceiver<OwnedMessage>,
    state: Arc<LaneState>,
) {
    let (topic, partition) = (key.0.clone(), key.1);
    // Ready the partition's transactional id before any work: a previous
    // owner still working on this partition is fenced now, not at our first commit.
    if let Err(e) = shared.tx.open(&key) {
        tracing::warn!(%topic, partition, error = %e, "transactional producer not ready; retrying at the first commit");
    }
    // However the lane ends, its running work stops (uncommitted, so redone).
    let _stop_work = state.stop.clone().drop_guard();
    let floor = shared
        .stepper
        .stand_in
        .as_ref()
        .and_then(|s| s.floor(&key.0, key.1));
    if let Some(floor) = floor {
        state.raise_committed(floor);
    }
    let skips_committed = floor.is_some();
    let max_delay = Duration::from_millis(shared.stepper.config.limits.max_retry_delay_ms);
    let b = shared.batching;
    let mut running = Running {
        started: VecDeque::new(),
        tasks: FuturesOrdered::new(),
        keys: HashMap::new(),
    };
    let mut finished: Vec<Finished> = Vec::new();
    let mut oldest: Option<Instant> = None;
    // A retried message waiting for its due time, or a message waiting for
    // its job's running message; it holds up the ones after it.
    let mut waiting: Option<(OwnedMessage, Instant)> = None;
    let mut held: Option<OwnedMessage> = None;
    let mut taking = true;
    loop {
        // More to take up at once: it joins this transaction rather than
        // wait for the next (a backlog would otherwise commit an item at a
        // time when the work is quick).
        let more_ready = taking && waiting.is_none() && held.is_none() && !rx.is_empty();
        let commit_due = !finished.is_empty()
            && (finished.len() >= b.max_items
                || (running.tasks.is_empty() && !more_ready)
                || oldest.is_some_and(|t| t.elapsed() >= b.interval));
        if commit_due {
            let n = finished.len();
            let last = finished[n - 1].msg.offset();
            match commit(&shared, &state, &key, &mut finished).await {
                Ok(()) => {
                    state.raise_committed(last + 1);
                    shared.done_with(&state, &key, n);
                    finished.clear();
                    oldest = None;
                }
                Err(CommitError::Revoked) => {
                    tracing::info!(%topic, partition, offset = last, "partition revoked: the outcome is left for its new owner");
                    return;
                }
                Err(e @ CommitError::Bus { .. }) => {
                    // Fenced, or Kafka unavailable for too long: rewind to the
                    // first uncommitted message and end the lane. Whatever it
                    // still holds is fetched again, in order, by a fresh lane
                    // (or by the partition's new owner).
                    let first = finished[0].msg.offset();
                    tracing::warn!(%topic, partition, offset = first, error = %e, "outcome not committed; rewinding");
                    shared.tx.rewind(&key, first);
                    if state.paused.swap(false, Ordering::SeqCst) {
                        let _ = shared.resume.send(key.clone());
                    }
                    return;
                }
            }
            continue;
        }
        if state.is_revoked() {
            if let Some(&(offset, _)) = running.started.front() {
                tracing::info!(%topic, partition, offset, "partition revoked: the outcome is left for its new owner");
            }
            return;
        }
        if let Some(msg) = held.take_if(|m| !running.busy(m)) {
            match due_at(&msg, max_delay) {
                Some(due) if due > Instant::now() => waiting = Some((msg, due)),
                _ => start(&shared, &state, &mut running, msg),
            }
        }
        if !taking && waiting.is_none() && running.tasks.is_empty() && finished.is_empty() {
            return;
        }
        let room = running.tasks.len() < b.max_in_flight.max(1);
        let commit_at = oldest.map(|t| t + b.interval);
        tokio::select! {
            biased;
            Some(done) = running.tasks.next(), if !running.tasks.is_empty() => {
                let offset = running.taken();
                let Ok(first) = done else {
                    // The message's task panicked: commit nothing from here on,
                    // read it again from its offset.
                    tracing::error!(%topic, partition, offset, "work panicked; rewinding");
                    let from = finished.first().map_or(offset, |f| f.msg.offset());
                    shared.tx.rewind(&key, from);
                    return;
                };
                oldest.get_or_insert_with(Instant::now);
                finished.push(first);
                // Take every later message that is already finished, in order.
                while let Some(Some(next)) = running.tasks.next().now_or_never() {
                    let offset = running.taken();
                    match next {
                        Ok(f) => finished.push(f),
                        Err(_) => {
                            tracing::error!(%topic, partition, offset, "work panicked; rewinding");
                            let from = finished.first().map_or(offset, |f| f.msg.offset());
                            shared.tx.rewind(&key, from);
                            return;
                        }
                    }
                }
            }
            _ = shared.stopping.cancelled(), if taking => {
                taking = false;
                // A message still waiting was never started.
                waiting = None;
                held = None;
            }
            _ = tokio::time::sleep_until(waiting.as_ref().map_or_else(Instant::now, |w| w.1)), if waiting.is_some() && room => {
                if let Some((msg, _)) = waiting.take() {
                    start(&shared, &state, &mut running, msg);
                }
            }
            m = rx.recv(), if taking && waiting.is_none() && held.is_none() && room => match m {
                None => taking = false,
                Some(msg) => {
                    if skips_committed && msg.offset() < state.committed() {
                        tracing::debug!(%topic, partition, offset = msg.offset(), "already committed here; skipped");
                        shared.done_with(&state, &key, 1);
                        continue;
                    }
                    if running.busy(&msg) {
                        held = Some(msg);
                        continue;
                    }
                    match due_at(&msg, max_delay) {
                        Some(due) if due > Instant::now() => waiting = Some((msg, due)),
                        _ => start(&shared, &state, &mut running, msg),
                    }
                }
            },
            _ = tokio::time::sleep_until(commit_at.unwrap_or_else(Instant::now)), if commit_at.is_some() => {}
        }
    }
}

/// Starts deciding a message's outcome in a task of its own.
fn start(shared: &LaneShared, state: &LaneState, running: &mut Running, msg: OwnedMessage) {
    let stepper = shared.stepper.clone();
    let in_flight = shared.in_flight.clone();
    let cancel = state.stop.child_token();
    let span = tracing::info_span!("work", phase = %stepper.phase, topic = msg.topic(), partition = msg.partition(), offset = msg.offset());
    let key = msg.key().map(<[u8]>::to_vec);
    if let Some(k) = &key {
        *running.keys.entry(k.clone()).or_default() += 1;
    }
    running.started.push_back((msg.offset(), key));
    running.tasks.push_back(tokio::spawn(
        async move {
            let permit = tokio::select! {
                p = in_flight.acquire_owned() => p.ok(),
                _ = cancel.cancelled() => None,
            };
            let m = metrics();
            let phase = stepper.phase.as_str();
            m.jobs_in_flight.with_label_values(&[phase]).inc();
            let started = std::time::Instant::now();
            let outcome = stepper.handle(&msg, cancel).await;
            drop(permit);
            m.jobs_in_flight.with_label_values(&[phase]).dec();
            m.phase_duration
                .with_label_values(&[phase, outcome.label()])
                .observe(started.elapsed().as_secs_f64());
            Finished { msg, outcome }
        }
        .instrument(span),
    ));
}

/// When a retried message is due (its `retry-at` header), on tokio's clock:
/// never further away than `max` (`limits.max_retry_delay_ms`), whatever the
/// header says, so a forged or mistaken header cannot hold up the partition.
fn due_at(msg: &OwnedMessage, max: Duration) -> Option<Instant> {
    let due = header(msg, HEADER_RETRY_AT).and_then(|v| v.parse::<i64>().ok())?;
    let left = due.saturating_sub(chrono::Utc::now().timestamp_millis());
    Some(Instant::now() + Duration::from_millis(left.max(0) as u64).min(max))
}

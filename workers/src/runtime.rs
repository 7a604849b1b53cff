//! The exactly-once worker loop.
//!
//! One consumer (group `sprocket-<phase>`, `read_committed`, no auto-commit) keeps
//! polling, so long work never gets the worker evicted from its group. Each
//! partition it owns gets a lane: a task that handles that partition's messages
//! in order, with a transactional producer of its own
//! (`transactional.id = sprocket-<phase>-<topic>-<partition>`, so a new owner of the
//! partition fences a zombie). A lane commits each message's outcome — events,
//! next work item, dead letter, and the consumed offset — in one transaction.
//! A lane with a backlog pauses its partition; the others carry on.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::producer::FutureProducer;
use rdkafka::{Offset, TopicPartitionList};
use sprocket_core::Topics;
use sprocket_platform::bus::{header, BusError, HEADER_RETRY_AT};
use sprocket_platform::metrics::metrics;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracing::Instrument;

use crate::commit::commit;
use crate::step::Stepper;

/// Messages a lane may hold before its partition is paused.
const LANE_HIGH_WATER: usize = 4;

/// A running worker; `stop` ends it (in-flight work is abandoned uncommitted, so
/// its messages are redelivered).
pub struct WorkerHandle {
    /// `Some(grace)` once stopping.
    stop: watch::Sender<Option<Duration>>,
    task: JoinHandle<()>,
}

impl WorkerHandle {
    /// Stops at once: in-flight work is abandoned uncommitted and redone later.
    pub async fn stop(self) {
        self.shutdown(Duration::ZERO).await
    }

    /// Stops taking work; in-flight items get `grace` to finish and commit, then
    /// whatever is still running is abandoned (uncommitted, so redelivered).
    pub async fn shutdown(self, grace: Duration) {
        let _ = self.stop.send(Some(grace));
        let _ = self.task.await;
    }
}

struct Lane {
    tx: mpsc::UnboundedSender<OwnedMessage>,
    pending: Arc<AtomicUsize>,
    paused: Arc<AtomicBool>,
}

/// Starts consuming the stepper's phase topic.
pub fn run_worker(stepper: Stepper) -> Result<WorkerHandle, BusError> {
    let group = Topics::group(stepper.phase);
    let consumer = Arc::new(stepper.bus.consumer(&group)?);
    let topic = stepper.bus.topics.phase(stepper.phase);
    let retry = stepper.bus.topics.retry(stepper.phase);
    consumer
        .subscribe(&[&topic, &retry])
        .map_err(BusError::kafka(format!(
            "subscribing to {topic} and {retry}"
        )))?;
    let (stop, stopped) = watch::channel(None);
    let cancels = stepper.cancels.follow(&stepper.bus)?;
    let task = tokio::spawn(async move {
        poll_loop(Arc::new(stepper), consumer, group, stopped).await;
        cancels.abort();
        let _ = cancels.await;
    });
    Ok(WorkerHandle { stop, task })
}

async fn poll_loop(
    stepper: Arc<Stepper>,
    consumer: Arc<StreamConsumer>,
    group: String,
    mut stopped: watch::Receiver<Option<Duration>>,
) {
    let mut lanes: HashMap<(String, i32), Lane> = HashMap::new();
    let stopping = Arc::new(AtomicBool::new(false));
    let mut lane_tasks = Vec::new();
    let (resume_tx, mut resume_rx) = mpsc::unbounded_channel::<(String, i32)>();
    let mut lag_tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        tokio::select! {
            _ = stopped.changed() => break,
            _ = lag_tick.tick() => {
                let (c, g) = (consumer.clone(), group.clone());
                tokio::task::spawn_blocking(move || record_lag(&c, &g));
            }
            Some((topic, partition)) = resume_rx.recv() => {
                let mut tpl = TopicPartitionList::new();
                tpl.add_partition(&topic, partition);
                if let Err(e) = consumer.resume(&tpl) {
                    tracing::warn!(%topic, partition, error = %e, "resume failed");
                }
            }
            msg = consumer.recv() => {
                let msg = match msg {
                    Ok(m) => m.detach(),
                    Err(e) => {
                        tracing::warn!(%group, error = %e, "consumer error");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        continue;
                    }
                };
                let key = (msg.topic().to_owned(), msg.partition());
                if lanes.get(&key).is_some_and(|l| l.tx.is_closed()) {
                    lanes.remove(&key);
                }
                let lane = lanes.entry(key.clone()).or_insert_with(|| {
                    let (tx, rx) = mpsc::unbounded_channel();
                    let pending = Arc::new(AtomicUsize::new(0));
                    let paused = Arc::new(AtomicBool::new(false));
                    let shared = LaneShared {
                        stepper: stepper.clone(),
                        consumer: consumer.clone(),
                        stopping: stopping.clone(),
                        resume: resume_tx.clone(),
                    };
                    lane_tasks.push(tokio::spawn(lane_loop(
                        shared,
                        key.clone(),
                        rx,
                        pending.clone(),
                        paused.clone(),
                    )));
                    Lane { tx, pending, paused }
                });
                let n = lane.pending.fetch_add(1, Ordering::SeqCst) + 1;
                let _ = lane.tx.send(msg);
                if n >= LANE_HIGH_WATER && !lane.paused.swap(true, Ordering::SeqCst) {
                    let mut tpl = TopicPartitionList::new();
                    tpl.add_partition(&key.0, key.1);
                    if let Err(e) = consumer.pause(&tpl) {
                        tracing::warn!(topic = %key.0, partition = key.1, error = %e, "pause failed");
                    }
                }
            }
        }
    }
    // Lanes take no new message; the ones working get the grace period to
    // finish and commit. Whatever still runs then is abandoned uncommitted, so
    // another worker redoes it; nothing is half-committed.
    let grace = stopped.borrow().unwrap_or_default();
    stopping.store(true, Ordering::SeqCst);
    drop(lanes);
    let deadline = tokio::time::Instant::now() + grace;
    let mut overdue = Vec::new();
    for mut t in lane_tasks {
        if tokio::time::timeout_at(deadline, &mut t).await.is_err() {
            t.abort();
            overdue.push(t);
        }
    }
    for t in overdue {
        let _ = t.await;
    }
}

/// What every lane of a worker shares.
struct LaneShared {
    stepper: Arc<Stepper>,
    consumer: Arc<StreamConsumer>,
    /// Set when the worker stops: lanes take no new message.
    stopping: Arc<AtomicBool>,
    /// Asks the poll loop to resume a paused partition.
    resume: mpsc::UnboundedSender<(String, i32)>,
}

async fn lane_loop(
    shared: LaneShared,
    (topic, partition): (String, i32),
    mut rx: mpsc::UnboundedReceiver<OwnedMessage>,
    pending: Arc<AtomicUsize>,
    paused: Arc<AtomicBool>,
) {
    let LaneShared {
        stepper,
        consumer,
        stopping,
        resume,
    } = shared;
    let txn_id = format!("sprocket-{}-{topic}-{partition}", stepper.phase);
    // Initialise the partition's transactional id before any work: a previous
    // owner still working on this partition is fenced now, not at our first commit.
    let mut producer: Option<FutureProducer> = match stepper.bus.transactional_producer(&txn_id) {
        Ok(p) => Some(p),
        Err(e) => {
            tracing::warn!(%txn_id, error = %e, "transactional producer not ready; retrying at the first commit");
            None
        }
    };
    // Offsets below this were committed by this lane. If a rebalance takes the
    // partition away and gives it back before the broker has the position, the
    // same messages are fetched again: they are done, and skipped.
    let mut committed_below: i64 = -1;
    while let Some(msg) = rx.recv().await {
        if stopping.load(Ordering::SeqCst) || !wait_until_due(&msg, &stopping).await {
            return;
        }
        if msg.offset() < committed_below {
            tracing::debug!(%topic, partition, offset = msg.offset(), "already committed here; skipped");
            if pending.fetch_sub(1, Ordering::SeqCst) == 1 && paused.swap(false, Ordering::SeqCst) {
                let _ = resume.send((topic.clone(), partition));
            }
            continue;
        }
        let span = tracing::info_span!("work", phase = %stepper.phase, %topic, partition, offset = msg.offset());
        let m = metrics();
        let phase = stepper.phase.as_str();
        m.jobs_in_flight.with_label_values(&[phase]).inc();
        let started = std::time::Instant::now();
        let outcome = stepper
            .step(&msg, Arc::new(AtomicBool::new(false)))
            .instrument(span)
            .await;
        m.jobs_in_flight.with_label_values(&[phase]).dec();
        m.phase_duration
            .with_label_values(&[phase, outcome.label()])
            .observe(started.elapsed().as_secs_f64());
        let committed = commit(&stepper, &consumer, &mut producer, &txn_id, &msg, &outcome).await;
        if committed.is_ok() {
            committed_below = msg.offset() + 1;
        }
        if let Err(e) = committed {
            // Fenced, or Kafka unavailable for too long: rewind to this message and
            // end the lane. Whatever it still holds is fetched again, in order, by
            // a fresh lane (or by the partition's new owner).
            tracing::warn!(%topic, partition, offset = msg.offset(), error = %e, "outcome not committed; rewinding");
            rewind(&consumer, &topic, partition, msg.offset());
            if paused.swap(false, Ordering::SeqCst) {
                let _ = resume.send((topic.clone(), partition));
            }
            return;
        }
        let left = pending.fetch_sub(1, Ordering::SeqCst) - 1;
        if left == 0 && paused.swap(false, Ordering::SeqCst) {
            let _ = resume.send((topic.clone(), partition));
        }
    }
}

/// Publishes the consumer lag of every owned partition: its end minus our position.
pub fn record_lag(consumer: &StreamConsumer, group: &str) {
    let (Ok(assigned), Ok(positions)) = (consumer.assignment(), consumer.position()) else {
        return;
    };
    let valid = |o: Offset| o.to_raw().filter(|o| *o >= 0);
    let at = |tpl: &TopicPartitionList, topic: &str, partition: i32| {
        tpl.find_partition(topic, partition)
            .and_then(|p| valid(p.offset()))
    };
    // Before a partition's first fetch there is no position: fall back to the
    // group's committed offsets, asked for once for all partitions.
    let committed = assigned
        .elements()
        .iter()
        .any(|tp| at(&positions, tp.topic(), tp.partition()).is_none())
        .then(|| {
            consumer
                .committed_offsets(assigned.clone(), Duration::from_secs(2))
                .ok()
        })
        .flatten();
    for tp in assigned.elements() {
        let Ok((_, high)) =
            consumer.fetch_watermarks(tp.topic(), tp.partition(), Duration::from_secs(2))
        else {
            continue;
        };
        let from = at(&positions, tp.topic(), tp.partition())
            .or_else(|| {
                committed
                    .as_ref()
                    .and_then(|c| at(c, tp.topic(), tp.partition()))
            })
            .unwrap_or(0);
        metrics()
            .consumer_lag
            .with_label_values(&[tp.topic(), &tp.partition().to_string(), group])
            .set((high - from).max(0));
    }
}

/// A retried item waits on its lane until its `retry-at` time; only that retry
/// partition waits, the phase topic's partitions go on. False if the worker
/// stopped meanwhile (the item stays uncommitted and is read again later).
async fn wait_until_due(msg: &OwnedMessage, stopping: &AtomicBool) -> bool {
    let Some(due) = header(msg, HEADER_RETRY_AT).and_then(|v| v.parse::<i64>().ok()) else {
        return true;
    };
    loop {
        let left = due - chrono::Utc::now().timestamp_millis();
        if left <= 0 {
            return true;
        }
        if stopping.load(Ordering::SeqCst) {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(left.min(100) as u64)).await;
    }
}

fn rewind(consumer: &StreamConsumer, topic: &str, partition: i32, offset: i64) {
    if let Err(e) = consumer.seek(
        topic,
        partition,
        Offset::Offset(offset),
        Duration::from_secs(5),
    ) {
        tracing::warn!(%topic, partition, offset, error = %e, "seek back failed");
    }
}

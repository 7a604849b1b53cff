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
use rdkafka::producer::{FutureProducer, Producer};
use rdkafka::{Offset, TopicPartitionList};
use sprocket_core::Topics;
use sprocket_platform::bus::{
    header, BusError, Record, HEADER_DLQ_OFFSET, HEADER_DLQ_PARTITION, HEADER_DLQ_REASON,
    HEADER_DLQ_TOPIC, HEADER_PRODUCER, HEADER_RETRY_AT,
};
use sprocket_platform::metrics::metrics;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracing::Instrument;

use crate::step::{Outcome, Stepper};

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
    for tp in assigned.elements() {
        let Ok((_, high)) =
            consumer.fetch_watermarks(tp.topic(), tp.partition(), Duration::from_secs(2))
        else {
            continue;
        };
        let position = positions
            .find_partition(tp.topic(), tp.partition())
            .and_then(|p| p.offset().to_raw())
            .filter(|o| *o >= 0);
        let committed = consumer
            .committed_offsets(assigned.clone(), Duration::from_secs(2))
            .ok()
            .and_then(|c| {
                c.find_partition(tp.topic(), tp.partition())
                    .and_then(|p| p.offset().to_raw())
            })
            .filter(|o| *o >= 0);
        let at = position.or(committed).unwrap_or(0);
        metrics()
            .consumer_lag
            .with_label_values(&[tp.topic(), &tp.partition().to_string(), group])
            .set((high - at).max(0));
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

/// Commits one outcome with the consumed offset in one transaction, retrying
/// transient failures; gives up only when the producer is fenced or fatal.
async fn commit(
    stepper: &Stepper,
    consumer: &StreamConsumer,
    producer: &mut Option<FutureProducer>,
    txn_id: &str,
    msg: &OwnedMessage,
    outcome: &Outcome,
) -> Result<(), BusError> {
    let records = records(stepper, msg, outcome).await?;
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        if producer.is_none() {
            *producer = Some(stepper.bus.transactional_producer(txn_id)?);
        }
        let p = producer.as_ref().expect("just created");
        match transaction(stepper, consumer, p, msg, &records).await {
            Ok(()) => {
                count_committed(stepper, outcome);
                commit_position(consumer, msg);
                return Ok(());
            }
            Err(e) => {
                metrics().transactions.with_label_values(&["aborted"]).inc();
                let _ = blocking(|| p.abort_transaction(Duration::from_secs(10)));
                if !e.retryable() || attempt >= 5 {
                    return Err(e);
                }
                tracing::warn!(txn_id, attempt, error = %e, "transaction failed; retrying");
                *producer = None;
                tokio::time::sleep(Duration::from_millis(200 * attempt as u64)).await;
            }
        }
    }
}

/// librdkafka's transaction calls block until the broker answers: run them so
/// they never hold an async worker thread (which could starve the very tasks —
/// the embedded broker's relay, other lanes — the answer depends on).
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

/// Also records the consumed position through the consumer, after the
/// transaction committed it. Real Kafka already has it from the transaction (this
/// writes the same offset again); librdkafka's mock cluster — the embedded broker
/// of `sprocket dev` and the tests — answers transactional offset commits
/// without storing them, and without this a partition's next owner would start
/// from its beginning.
fn commit_position(consumer: &StreamConsumer, msg: &OwnedMessage) {
    let mut tpl = TopicPartitionList::new();
    let next = Offset::Offset(msg.offset() + 1);
    if tpl
        .add_partition_offset(msg.topic(), msg.partition(), next)
        .is_ok()
    {
        let sync = rdkafka::consumer::CommitMode::Sync;
        if let Err(e) = blocking(|| consumer.commit(&tpl, sync)) {
            tracing::debug!(topic = msg.topic(), partition = msg.partition(), error = %e, "position commit");
        }
    }
}

/// Counts what a committed outcome means for the job and the phase.
fn count_committed(stepper: &Stepper, outcome: &Outcome) {
    let m = metrics();
    m.transactions.with_label_values(&["committed"]).inc();
    if outcome.dead_letter.is_some() {
        m.dead_letters
            .with_label_values(&[stepper.phase.as_str()])
            .inc();
    }
    for e in &outcome.events {
        match e.body {
            sprocket_core::EventBody::JobSucceeded(_) => {
                m.jobs_finished.with_label_values(&["succeeded"]).inc()
            }
            sprocket_core::EventBody::JobFailed(_) => {
                m.jobs_finished.with_label_values(&["failed"]).inc()
            }
            sprocket_core::EventBody::JobCancelled(_) => {
                m.jobs_finished.with_label_values(&["cancelled"]).inc()
            }
            _ => {}
        }
    }
}

async fn transaction(
    stepper: &Stepper,
    consumer: &StreamConsumer,
    p: &FutureProducer,
    msg: &OwnedMessage,
    records: &[Record],
) -> Result<(), BusError> {
    let t = Duration::from_secs(30);
    blocking(|| p.begin_transaction()).map_err(BusError::kafka("begin_transaction"))?;
    for r in records {
        stepper.bus.send(p, r).await?;
    }
    let mut offsets = TopicPartitionList::new();
    offsets
        .add_partition_offset(
            msg.topic(),
            msg.partition(),
            Offset::Offset(msg.offset() + 1),
        )
        .map_err(BusError::kafka("offsets"))?;
    let meta = consumer.group_metadata().ok_or_else(|| BusError::Kafka {
        context: "no consumer group metadata".into(),
        source: rdkafka::error::KafkaError::NoMessageReceived,
    })?;
    blocking(|| p.send_offsets_to_transaction(&offsets, &meta, t))
        .map_err(BusError::kafka("send_offsets_to_transaction"))?;
    blocking(|| p.commit_transaction(t)).map_err(BusError::kafka("commit_transaction"))
}

async fn records(
    stepper: &Stepper,
    msg: &OwnedMessage,
    outcome: &Outcome,
) -> Result<Vec<Record>, BusError> {
    let topics = &stepper.bus.topics;
    let mut out = Vec::new();
    for e in &outcome.events {
        out.push(stepper.bus.record(&topics.events(), e).await?);
    }
    if let Some(next) = &outcome.next {
        if let sprocket_core::EventBody::WorkItem(item) = &next.body {
            out.push(stepper.bus.record(&topics.phase(item.phase), next).await?);
        }
    }
    if let Some(retry) = &outcome.retry {
        let mut r = stepper
            .bus
            .record(&topics.retry(stepper.phase), &retry.item)
            .await?;
        r.headers
            .push((HEADER_RETRY_AT.into(), retry.due_at_ms.to_string()));
        out.push(r);
    }
    if let Some(dl) = &outcome.dead_letter {
        out.push(Record {
            topic: topics.dlq(stepper.phase),
            key: dl.key.clone().unwrap_or_default(),
            payload: dl.payload.clone(),
            headers: vec![
                (HEADER_DLQ_REASON.into(), dl.reason.clone()),
                (HEADER_DLQ_TOPIC.into(), msg.topic().to_owned()),
                (HEADER_DLQ_PARTITION.into(), msg.partition().to_string()),
                (HEADER_DLQ_OFFSET.into(), msg.offset().to_string()),
                (HEADER_PRODUCER.into(), stepper.bus.producer_name.clone()),
            ],
        });
    }
    Ok(out)
}

//! The exactly-once worker loop.
//!
//! A consumer per topic (the phase topic and its retry topic; group
//! `sprocket-<phase>`, `read_committed`, no auto-commit, cooperative
//! rebalancing) keeps polling, so long work never gets the worker evicted from
//! its group. Each partition it owns gets a lane ([`crate::lane`]):
//! a task that handles that partition's messages in order, with a
//! transactional producer of its own (`transactional.id =
//! <group>-<topic>-<partition>`, so a new owner of the partition fences a
//! zombie). A lane commits each message's outcome — events, next work item,
//! dead letter, and the consumed offset — in one transaction. A lane with a
//! backlog pauses its partition; the others carry on. At most
//! `worker.max_in_flight` items run at once in the whole worker.
//!
//! Once a second, idle partitions get their position committed, so a drained
//! phase reads lag 0 ([`crate::positions`]).

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::Consumer;
use rdkafka::error::KafkaResult;
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::TopicPartitionList;
use sprocket_platform::bus::BusError;
use sprocket_platform::liveness;
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::lane::{lane_loop, Batching, LaneShared, LaneState};
use crate::ports::kafka::KafkaTransactions;
use crate::positions::{commit_empty, commit_idle_positions, record_lag};
use crate::rebalance::{Lane, Lanes, Rebalances, WorkerConsumer};
use crate::stepper::Stepper;

/// Messages a lane may hold (queued, running, or finished and not yet
/// committed) before its partition is paused: a full transaction's worth of
/// finished items, every item it may run at once, and as many waiting to
/// run. Less would cap the items a transaction can carry below
/// `commit_max_items` (at 2 × `max_in_flight`, a 2-core worker committed at
/// most 4 items a transaction however long its backlog).
fn lane_high_water(b: &Batching) -> usize {
    (b.max_items + 2 * b.max_in_flight).max(4)
}

/// How often idle partitions' positions are committed (and liveness beats).
const IDLE_INTERVAL: Duration = Duration::from_secs(1);
/// How often every idle position is committed again, whether or not it
/// moved: a commit the group refused during a rebalance (`ILLEGAL_GENERATION`)
/// is not always reported back to the commit callback, and a position left
/// behind a commit marker would hold the group's lag at 1 for good (the
/// real-Kafka faults harness met it after a zombie's rejoin).
const IDLE_REASSERT: Duration = Duration::from_secs(10);

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

/// The worker's consumers, one per topic it reads (the phase topic, then its
/// retry topic), all in the phase's group. One consumer per topic lets the
/// assignor balance each topic on its own: a single consumer of both would be
/// balanced on the total count, and one worker could end up owning only retry
/// partitions while another owns two of the phase topic's.
struct Consumers {
    by_topic: Vec<(String, Arc<WorkerConsumer>)>,
}

impl Consumers {
    fn of(&self, topic: &str) -> Option<&Arc<WorkerConsumer>> {
        self.by_topic
            .iter()
            .find(|(t, _)| t == topic)
            .map(|(_, c)| c)
    }

    fn all(&self) -> impl Iterator<Item = &Arc<WorkerConsumer>> {
        self.by_topic.iter().map(|(_, c)| c)
    }

    /// The next message from any of them, with the index of its consumer.
    async fn recv(&self) -> (usize, KafkaResult<OwnedMessage>) {
        let next =
            self.by_topic.iter().enumerate().map(|(i, (_, c))| {
                Box::pin(async move { (i, c.recv().await.map(|m| m.detach())) })
            });
        futures::future::select_all(next).await.0
    }
}

/// Starts consuming the stepper's phase topic and its retry topic.
pub fn run_worker(stepper: Stepper) -> Result<WorkerHandle, BusError> {
    let Some(bus) = stepper.bus.clone() else {
        return Err(BusError::Kafka {
            context: "a worker on fakes cannot consume Kafka".into(),
            source: rdkafka::error::KafkaError::ClientCreation("no bus".into()),
        });
    };
    let group = bus.topics.group(stepper.phase);
    let lanes = Arc::new(Lanes::default());
    let mut by_topic = Vec::new();
    for topic in [
        bus.topics.phase(stepper.phase),
        bus.topics.retry(stepper.phase),
    ] {
        let consumer: WorkerConsumer = bus
            .consumer_config(&group)
            .create_with_context(Rebalances::new(lanes.clone()))
            .map_err(BusError::kafka(format!("creating a consumer in {group}")))?;
        consumer
            .subscribe(&[&topic])
            .map_err(BusError::kafka(format!("subscribing to {topic}")))?;
        by_topic.push((topic, Arc::new(consumer)));
    }
    let consumers = Consumers { by_topic };
    let (stop, stopped) = watch::channel(None);
    let cancels = stepper.cancels.follow(&bus)?;
    let task = tokio::spawn(async move {
        poll_loop(Arc::new(stepper), bus, consumers, lanes, group, stopped).await;
        cancels.abort();
        let _ = cancels.await;
    });
    Ok(WorkerHandle { stop, task })
}

async fn poll_loop(
    stepper: Arc<Stepper>,
    bus: sprocket_platform::bus::Bus,
    consumers: Consumers,
    lanes: Arc<Lanes>,
    group: String,
    mut stopped: watch::Receiver<Option<Duration>>,
) {
    let beat_name = format!("worker {group} {}", uuid::Uuid::now_v7());
    let heartbeat = liveness::register(&beat_name);
    let stopping = CancellationToken::new();
    let mut lane_tasks = Vec::new();
    let (resume_tx, mut resume_rx) = mpsc::unbounded_channel::<(String, i32)>();
    let w = &stepper.config.worker;
    let in_flight = Arc::new(Semaphore::new(w.max_in_flight.max(1)));
    let batching = Batching {
        max_in_flight: w.max_in_flight.max(1),
        max_items: w.commit_max_items.max(1),
        interval: Duration::from_millis(w.commit_interval_ms),
    };
    let lag_interval = Duration::from_millis(w.lag_interval_ms.max(1));
    let high_water = lane_high_water(&batching);
    // What the lanes of each consumer share (they differ in the consumer only).
    let shared: Vec<LaneShared> = consumers
        .all()
        .map(|c| LaneShared {
            stepper: stepper.clone(),
            tx: Arc::new(KafkaTransactions::new(
                bus.clone(),
                c.clone(),
                group.clone(),
                stepper.stand_in.clone(),
            )),
            stopping: stopping.clone(),
            resume: resume_tx.clone(),
            in_flight: in_flight.clone(),
            batching,
        })
        .collect();
    drop(resume_tx);
    let mut idle_committed: HashMap<(String, i32), i64> = HashMap::new();
    // Owned partitions that are empty and have no committed offset, as the
    // lag reading found them.
    let (empty_tx, mut empty_rx) = mpsc::unbounded_channel::<Vec<(String, i32, i64)>>();
    let mut lag_tick = tokio::time::interval(lag_interval);
    let mut idle_tick = tokio::time::interval(IDLE_INTERVAL);
    let mut reasserted = tokio::time::Instant::now();
    loop {
        heartbeat.beat();
        tokio::select! {
            _ = stopped.changed() => break,
            _ = lag_tick.tick() => {
                let (all, g, tx): (Vec<_>, _, _) = (consumers.all().cloned().collect(), group.clone(), empty_tx.clone());
                tokio::task::spawn_blocking(move || {
                    for c in all {
                        let _ = tx.send(record_lag(&c, &g));
                    }
                });
            }
            Some(empty) = empty_rx.recv() => {
                for c in consumers.all() {
                    commit_empty(c, &lanes, &mut idle_committed, &empty);
                }
            }
            _ = idle_tick.tick() => {
                if reasserted.elapsed() >= IDLE_REASSERT {
                    idle_committed.clear();
                    reasserted = tokio::time::Instant::now();
                }
                for (topic, c) in &consumers.by_topic {
                    if let Some(s) = &stepper.stand_in {
                        s.repair(c, topic);
                    }
                    commit_idle_positions(topic, c, &lanes, &mut idle_committed);
                }
            }
            Some((topic, partition)) = resume_rx.recv() => {
                let mut tpl = TopicPartitionList::new();
                tpl.add_partition(&topic, partition);
                if let Some(Err(e)) = consumers.of(&topic).map(|c| c.resume(&tpl)) {
                    tracing::warn!(%topic, partition, error = %e, "resume failed");
                }
            }
            (from, msg) = consumers.recv() => {
                let msg = match msg {
                    Ok(m) => m,
                    Err(e) => {
                        tracing::warn!(%group, error = %e, "consumer error");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        continue;
                    }
                };
                let key = (msg.topic().to_owned(), msg.partition());
                let mut map = lanes.lock();
                // A lane that ended (a commit failed for good) is replaced.
                if map.get(&key).is_some_and(|l| l.tx.is_closed()) {
                    map.remove(&key);
                }
                let lane = map.entry(key.clone()).or_insert_with(|| {
                    let (tx, rx) = mpsc::unbounded_channel();
                    let state = Arc::new(LaneState::new());
                    lane_tasks.push(tokio::spawn(lane_loop(shared[from].clone(), key.clone(), rx, state.clone())));
                    Lane { tx, state }
                });
                let n = lane.state.add();
                let _ = lane.tx.send(msg);
                if n >= high_water && !lane.state.paused.swap(true, Ordering::SeqCst) {
                    let mut tpl = TopicPartitionList::new();
                    tpl.add_partition(&key.0, key.1);
                    if let Err(e) = consumers.by_topic[from].1.pause(&tpl) {
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
    stopping.cancel();
    drop(shared);
    finish_lanes(&consumers, lane_tasks, grace).await;
    liveness::forget(&beat_name);
    // Leaving the group runs the last revocation inside librdkafka's close,
    // which must not hold this task (and the runtime) if it never returns.
    sprocket_platform::bus::close_detached(&group, consumers, sprocket_platform::bus::CLOSE_WITHIN)
        .await;
}

/// Waits up to `grace` for the lanes to finish their items, then aborts the
/// rest. Meanwhile the consumer keeps polling with every partition paused: the
/// worker stays in its group, a rebalance (another worker joining) is served
/// rather than held up until this member times out, and a partition revoked
/// now still closes its lane (the lanes stay registered until the end).
async fn finish_lanes(consumers: &Consumers, lane_tasks: Vec<JoinHandle<()>>, grace: Duration) {
    for consumer in consumers.all() {
        if let Ok(owned) = consumer.assignment() {
            if let Err(e) = consumer.pause(&owned) {
                tracing::debug!(error = %e, "pausing for the shutdown");
            }
        }
    }
    let aborts: Vec<_> = lane_tasks.iter().map(JoinHandle::abort_handle).collect();
    let mut lanes = std::pin::pin!(futures::future::join_all(lane_tasks));
    let deadline = tokio::time::sleep(grace);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            _ = &mut lanes => return,
            _ = &mut deadline => break,
            // Fetched before the pause: left uncommitted for the next owner.
            _ = consumers.recv() => {}
        }
    }
    for a in &aborts {
        a.abort();
    }
    lanes.await;
}

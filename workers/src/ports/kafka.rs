//! The real adapters: the schema-registry codec and Kafka producers of a
//! [`Bus`], claims in the work store, and Kafka transactions.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use rdkafka::consumer::Consumer;
use rdkafka::error::KafkaError;
use rdkafka::message::OwnedMessage;
use rdkafka::producer::{FutureProducer, Producer};
use rdkafka::{Offset, TopicPartitionList};
use sprocket_core::machine::Claim;
use sprocket_core::{Envelope, JobId};
use sprocket_platform::bus::{self, Bus, BusError, Record};
use sprocket_platform::store::{self, Store};
use tokio::sync::{mpsc, oneshot};

use super::{Claims, Codec, LaneId, Live, Transactions};
use crate::rebalance::WorkerConsumer;
use crate::standin::StandIn;

#[async_trait]
impl Codec for Bus {
    async fn decode(&self, msg: &OwnedMessage) -> Result<Envelope, String> {
        self.decode_patiently(msg).await.map_err(|e| e.to_string())
    }

    async fn encode(&self, topic: &str, env: &Envelope) -> Result<Record, BusError> {
        self.record(topic, env).await
    }
}

/// Live facts through a plain (non-transactional) producer, fed by one task
/// so they reach the broker in the order they were published.
pub struct KafkaLive {
    queue: mpsc::UnboundedSender<(Envelope, Option<oneshot::Sender<()>>)>,
}

impl KafkaLive {
    pub fn new(bus: Bus, producer: FutureProducer) -> KafkaLive {
        let (queue, mut rx) = mpsc::unbounded_channel::<(Envelope, Option<oneshot::Sender<()>>)>();
        tokio::spawn(async move {
            let topic = bus.topics.events();
            while let Some((env, done)) = rx.recv().await {
                let sent = match bus.record(&topic, &env).await {
                    // Enqueued in order; the delivery is awaited beside the queue.
                    Ok(rec) => producer
                        .send_result(rec.future())
                        .map_err(|(e, _)| e.to_string()),
                    Err(e) => Err(e.to_string()),
                };
                let (job, kind) = (env.job_id.clone(), env.kind().0);
                match sent {
                    Ok(delivery) => {
                        tokio::spawn(async move {
                            match delivery.await {
                                Ok(Ok(_)) => {}
                                Ok(Err((e, _))) => {
                                    tracing::warn!(job_id = %job, kind, error = %e, "live event not published")
                                }
                                Err(_) => {
                                    tracing::warn!(job_id = %job, kind, "live event not published: cancelled")
                                }
                            }
                            if let Some(done) = done {
                                let _ = done.send(());
                            }
                        });
                    }
                    Err(e) => {
                        tracing::warn!(job_id = %job, kind, error = %e, "live event not published");
                        if let Some(done) = done {
                            let _ = done.send(());
                        }
                    }
                }
            }
        });
        KafkaLive { queue }
    }
}

#[async_trait]
impl Live for KafkaLive {
    fn publish(&self, env: Envelope) {
        let _ = self.queue.send((env, None));
    }

    async fn publish_durably(&self, env: Envelope) {
        let (done, delivered) = oneshot::channel();
        if self.queue.send((env, Some(done))).is_ok() {
            let _ = delivered.await;
        }
    }
}

/// Claims as objects in the work store: `jobs/<id>/submission` holds the
/// event id of the submission that claimed the id.
pub struct StoreClaims(pub Store);

#[async_trait]
impl Claims for StoreClaims {
    async fn claim(&self, job: &JobId, event_id: &str) -> Claim {
        let key = format!("{}submission", sprocket_core::work::job_prefix(job));
        match store::get_bytes(&self.0, &key).await {
            Ok(owner) if owner.as_ref() != event_id.as_bytes() => Claim::Theirs,
            Ok(_) => Claim::Ours,
            Err(store::StoreError::NotFound { .. }) => {
                if let Err(e) = store::put_bytes(&self.0, &key, event_id.as_bytes().to_vec()).await
                {
                    tracing::warn!(job_id = %job, error = %e, "cannot record the job's claim");
                }
                Claim::Ours
            }
            Err(e) => {
                tracing::warn!(job_id = %job, error = %e, "cannot read the job's claim");
                Claim::Ours
            }
        }
    }
}

/// The `transactional.id` of a lane's producer: the same for every owner the
/// partition ever has, so Kafka fences an old owner (a zombie) as soon as the
/// new one readies its producer.
pub fn transactional_id(group: &str, topic: &str, partition: i32) -> String {
    format!("{group}-{topic}-{partition}")
}

/// Kafka transactions of one consumer's lanes: a transactional producer per
/// partition (`transactional.id = <group>-<topic>-<partition>`, so a new owner
/// of the partition fences a zombie).
pub struct KafkaTransactions {
    pub bus: Bus,
    pub consumer: Arc<WorkerConsumer>,
    pub group: String,
    pub stand_in: Option<Arc<dyn StandIn>>,
    producers: Mutex<HashMap<LaneId, FutureProducer>>,
}

impl KafkaTransactions {
    pub fn new(
        bus: Bus,
        consumer: Arc<WorkerConsumer>,
        group: String,
        stand_in: Option<Arc<dyn StandIn>>,
    ) -> Self {
        KafkaTransactions {
            bus,
            consumer,
            group,
            stand_in,
            producers: Mutex::default(),
        }
    }

    fn producers(&self) -> std::sync::MutexGuard<'_, HashMap<LaneId, FutureProducer>> {
        self.producers.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn create(&self, lane: &LaneId) -> Result<FutureProducer, BusError> {
        self.bus
            .transactional_producer(&transactional_id(&self.group, &lane.0, lane.1))
    }

    /// Takes the lane's idle producer out for a transaction, or makes one.
    /// A producer is out only while its transaction runs: a lane that
    /// replaces one revoked with its transaction stuck (librdkafka waiting on
    /// a lost group coordinator) makes a new producer, which fences the
    /// stuck one rather than joining its transaction.
    fn check_out(&self, lane: &LaneId) -> Result<FutureProducer, BusError> {
        let idle = self.producers().remove(lane);
        match idle {
            Some(p) => Ok(p),
            None => self.create(lane),
        }
    }

    /// Puts a producer back after a committed transaction, unless a newer
    /// one (which fenced it) took its place.
    fn check_in(&self, lane: &LaneId, p: FutureProducer) {
        self.producers().entry(lane.clone()).or_insert(p);
    }
}

impl Transactions for KafkaTransactions {
    fn open(&self, lane: &LaneId) -> Result<(), BusError> {
        if self.producers().contains_key(lane) {
            return Ok(());
        }
        let p = self.create(lane)?;
        self.producers().insert(lane.clone(), p);
        Ok(())
    }

    /// Blocks until the broker answers. The records' acknowledgements are
    /// awaited before the offsets are added and the transaction committed:
    /// with records outstanding, rust-rdkafka's `commit_transaction` first
    /// flushes by polling in 100 ms steps (the engine bench: hand-offs took
    /// 103 ms each, 7 ms with deliveries awaited). A failed transaction is
    /// aborted and its producer dropped, so the next try starts afresh (and
    /// fences it, should it still be in Kafka's hands).
    fn commit(&self, lane: &LaneId, records: &Arc<[Record]>, next: i64) -> Result<(), BusError> {
        let p = self.check_out(lane)?;
        let r = self.watched(&p, lane, records, next);
        match &r {
            Ok(()) => {
                if let Some(s) = &self.stand_in {
                    s.committed(&self.consumer, &lane.0, lane.1, next);
                }
                self.check_in(lane, p);
            }
            Err(_) => {
                let _ = p.abort_transaction(Duration::from_secs(10));
            }
        }
        r
    }

    /// On Kafka the group's committed offset decides, once a new producer
    /// of the lane's `transactional.id` has fenced the old one (and so
    /// waited out any commit of it still in flight): a transaction whose
    /// outcome was unknown may have committed, and reading again from the
    /// lane's own first uncommitted offset would redo it. The embedded
    /// broker's stand-in keeps its own floor, so there `offset` is used.
    fn rewind(&self, lane: &LaneId, offset: i64) {
        tokio::task::block_in_place(|| {
            let to = match self.stand_in {
                Some(_) => offset,
                None => self.group_committed(lane).unwrap_or_else(|e| {
                    tracing::warn!(topic = %lane.0, partition = lane.1, offset, error = %e, "the group's committed offset is unknown; reading again from the lane's first uncommitted offset");
                    offset
                }),
            };
            if to != offset {
                tracing::info!(topic = %lane.0, partition = lane.1, lane_first = offset, committed = to, "reading again from the group's committed offset");
            }
            let seek =
                self.consumer
                    .seek(&lane.0, lane.1, Offset::Offset(to), Duration::from_secs(5));
            if let Err(e) = seek {
                tracing::warn!(topic = %lane.0, partition = lane.1, offset = to, error = %e, "seek back failed");
            }
        })
    }
}

/// How long a transaction may take before it counts as stuck. librdkafka
/// has been seen to wait for good in `send_offsets_to_transaction` while a
/// group coordinator was lost, and for minutes in a transaction under a
/// loaded machine (the real-Kafka faults harness). Giving one up early is
/// safe, only wasteful: its producer is fenced and the partition is read
/// again from the group's committed offset.
const STUCK_AFTER: Duration = Duration::from_secs(60);

impl KafkaTransactions {
    /// Runs the transaction on a thread of its own and waits at most
    /// [`STUCK_AFTER`] for it. A stuck one is left to its thread and its
    /// producer is dropped: the lane ends, and its rewind fences that
    /// producer with a new one.
    fn watched(
        &self,
        p: &FutureProducer,
        lane: &LaneId,
        records: &Arc<[Record]>,
        next: i64,
    ) -> Result<(), BusError> {
        let (done, outcome) = std::sync::mpsc::channel();
        let stage = Arc::new(AtomicUsize::new(0));
        let (consumer, p2, lane2, records2, stage2) = (
            self.consumer.clone(),
            p.clone(),
            lane.clone(),
            records.clone(),
            stage.clone(),
        );
        let spawned = std::thread::Builder::new()
            .name(format!("txn {}-{}", lane.0, lane.1))
            .spawn(move || {
                let r = transaction(&consumer, &p2, &lane2, &records2, next, &stage2);
                let _ = done.send(r);
            });
        if let Err(e) = spawned {
            return Err(BusError::Kafka {
                context: format!("starting the transaction's thread: {e}"),
                source: KafkaError::Canceled,
            });
        }
        outcome.recv_timeout(STUCK_AFTER).unwrap_or_else(|_| {
            let at = STAGES[stage.load(Ordering::Relaxed).min(STAGES.len() - 1)];
            tracing::error!(topic = %lane.0, partition = lane.1, after = ?STUCK_AFTER, at, "the transaction is stuck in librdkafka; abandoning its producer");
            Err(BusError::Kafka {
                context: format!("the transaction did not finish in {STUCK_AFTER:?} (stuck at {at})"),
                source: KafkaError::MessageProduction(rdkafka::types::RDKafkaErrorCode::Fatal),
            })
        })
    }

    /// The group's committed offset of the lane's partition, read once a
    /// fresh producer has fenced every earlier one.
    fn group_committed(&self, lane: &LaneId) -> Result<i64, BusError> {
        let fresh = self.create(lane)?;
        self.producers().insert(lane.clone(), fresh);
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(&lane.0, lane.1);
        let committed = self
            .consumer
            .committed_offsets(tpl, Duration::from_secs(10))
            .map_err(BusError::kafka("reading the group's committed offset"))?;
        committed
            .find_partition(&lane.0, lane.1)
            .and_then(|e| e.offset().to_raw())
            .filter(|o| *o >= 0)
            .ok_or_else(|| BusError::Kafka {
                context: "the group has no committed offset for the partition".into(),
                source: KafkaError::NoMessageReceived,
            })
    }
}

/// The step a transaction is at, for the log of one that is stuck.
const STAGES: [&str; 5] = [
    "begin_transaction",
    "producing and awaiting the deliveries",
    "consumer group metadata",
    "send_offsets_to_transaction",
    "commit_transaction",
];

fn transaction(
    consumer: &WorkerConsumer,
    p: &FutureProducer,
    lane: &LaneId,
    records: &[Record],
    next: i64,
    stage: &AtomicUsize,
) -> Result<(), BusError> {
    let t = Duration::from_secs(30);
    let at = |i: usize| stage.store(i, Ordering::Relaxed);
    at(0);
    p.begin_transaction()
        .map_err(BusError::kafka("begin_transaction"))?;
    at(1);
    bus::produce_all(p, records)?;
    let mut offsets = TopicPartitionList::new();
    offsets
        .add_partition_offset(&lane.0, lane.1, Offset::Offset(next))
        .map_err(BusError::kafka("offsets"))?;
    at(2);
    let meta = consumer.group_metadata().ok_or_else(|| BusError::Kafka {
        context: "no consumer group metadata".into(),
        source: KafkaError::NoMessageReceived,
    })?;
    at(3);
    p.send_offsets_to_transaction(&offsets, &meta, t)
        .map_err(BusError::kafka("send_offsets_to_transaction"))?;
    at(4);
    bus::commit_transaction(p, t, &format!("{} [{}]", lane.0, lane.1))
}

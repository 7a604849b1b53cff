//! In-memory fakes of the ports, for tests that drive the runtime without
//! Kafka, a schema registry or a store.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rdkafka::error::KafkaError;
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::Timestamp;
use sprocket_core::event::Fill;
use sprocket_core::machine::Claim;
use sprocket_core::{Envelope, JobId};
use sprocket_platform::bus::{BusError, Record};

use super::{Claims, Codec, LaneId, Live, Ports, Transactions};

/// Plain JSON envelopes, as an outside producer writes them.
pub struct JsonCodec;

#[async_trait]
impl Codec for JsonCodec {
    async fn decode(&self, msg: &OwnedMessage) -> Result<Envelope, String> {
        let fill = || Fill {
            event_id: format!("{}-{}-{}", msg.topic(), msg.partition(), msg.offset()),
            occurred_at: chrono::Utc::now(),
            producer: "test".into(),
        };
        Envelope::from_json(msg.payload().unwrap_or_default(), fill).map_err(|e| e.to_string())
    }

    async fn encode(&self, topic: &str, env: &Envelope) -> Result<Record, BusError> {
        Ok(Record {
            topic: topic.to_owned(),
            key: env.job_id.to_string(),
            payload: env.to_json(),
            headers: vec![],
        })
    }
}

/// Claims in a map.
#[derive(Default)]
pub struct MemClaims(Mutex<HashMap<JobId, String>>);

#[async_trait]
impl Claims for MemClaims {
    async fn claim(&self, job: &JobId, event_id: &str) -> Claim {
        let mut map = self.0.lock().unwrap();
        match map.get(job) {
            Some(owner) if owner != event_id => Claim::Theirs,
            Some(_) => Claim::Ours,
            None => {
                map.insert(job.clone(), event_id.to_owned());
                Claim::Ours
            }
        }
    }
}

/// Live facts kept in order.
#[derive(Default)]
pub struct MemLive(pub Mutex<Vec<Envelope>>);

#[async_trait]
impl Live for MemLive {
    fn publish(&self, env: Envelope) {
        self.0.lock().unwrap().push(env);
    }

    async fn publish_durably(&self, env: Envelope) {
        self.publish(env);
    }
}

/// One committed transaction.
#[derive(Debug, Clone)]
pub struct Committed {
    pub lane: LaneId,
    pub records: Vec<Record>,
    /// The lane's committed offset: the next one to read.
    pub next: i64,
}

/// Transactions kept in order; the next `fail` ones fail (retryably).
#[derive(Default)]
pub struct MemTransactions {
    pub committed: Mutex<Vec<Committed>>,
    pub fail: AtomicUsize,
    /// Every transaction from now on is fenced.
    pub fenced: AtomicBool,
    /// While set, a transaction does not return (as librdkafka's calls do
    /// while a group coordinator is lost); `entered` counts the calls.
    pub hang: AtomicBool,
    pub entered: AtomicUsize,
    pub rewound: Mutex<Vec<(LaneId, i64)>>,
}

impl MemTransactions {
    /// Every committed record, in commit order.
    pub fn records(&self) -> Vec<Record> {
        let c = self.committed.lock().unwrap();
        c.iter().flat_map(|t| t.records.clone()).collect()
    }

    /// The last committed offset of a lane.
    pub fn offset(&self, lane: &LaneId) -> Option<i64> {
        let c = self.committed.lock().unwrap();
        c.iter().rev().find(|t| &t.lane == lane).map(|t| t.next)
    }
}

impl Transactions for MemTransactions {
    fn open(&self, _lane: &LaneId) -> Result<(), BusError> {
        Ok(())
    }

    fn commit(&self, lane: &LaneId, records: &Arc<[Record]>, next: i64) -> Result<(), BusError> {
        self.entered.fetch_add(1, Ordering::SeqCst);
        while self.hang.load(Ordering::SeqCst) {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let failing = self
            .fail
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if failing {
            return Err(BusError::Kafka {
                context: "injected transaction failure".into(),
                source: KafkaError::Canceled,
            });
        }
        if self.fenced.load(Ordering::SeqCst) {
            return Err(BusError::Kafka {
                context: "injected fencing".into(),
                source: KafkaError::MessageProduction(RDKafkaErrorCode::ProducerFenced),
            });
        }
        self.committed.lock().unwrap().push(Committed {
            lane: lane.clone(),
            records: records.to_vec(),
            next,
        });
        Ok(())
    }

    fn rewind(&self, lane: &LaneId, offset: i64) {
        self.rewound.lock().unwrap().push((lane.clone(), offset));
    }
}

/// Every port faked, with handles on what they saw.
pub struct Fakes {
    pub claims: Arc<MemClaims>,
    pub live: Arc<MemLive>,
}

impl Fakes {
    pub fn new() -> (Fakes, Ports) {
        let claims = Arc::new(MemClaims::default());
        let live = Arc::new(MemLive::default());
        let ports = Ports {
            codec: Arc::new(JsonCodec),
            claims: claims.clone(),
            live: live.clone(),
        };
        (Fakes { claims, live }, ports)
    }
}

/// A consumed message carrying `env` as JSON.
pub fn message(topic: &str, partition: i32, offset: i64, env: &Envelope) -> OwnedMessage {
    OwnedMessage::new(
        Some(env.to_json()),
        Some(env.job_id.to_string().into_bytes()),
        topic.to_owned(),
        Timestamp::CreateTime(chrono::Utc::now().timestamp_millis()),
        partition,
        offset,
        None,
    )
}

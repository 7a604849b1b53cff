//! Kafka clients and the message conventions every Sprocket process follows:
//! keyed by job id, headers `event-type`, `traceparent`, `producer`, values in the
//! Confluent wire format through [`Codec`].

use std::time::Duration;

use chrono::{DateTime, Utc};
use rdkafka::admin::AdminClient;
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use sha2::{Digest, Sha256};
use sprocket_core::event::Fill;
use sprocket_core::{Envelope, Topics};

use crate::admin::{self, TopicsReport};
use crate::codec::{Codec, CodecError};
use crate::config::Config;

pub mod properties;

pub const HEADER_EVENT_TYPE: &str = "event-type";
pub const HEADER_TRACEPARENT: &str = "traceparent";
pub const HEADER_PRODUCER: &str = "producer";
pub const HEADER_DLQ_REASON: &str = "dlq-reason";
pub const HEADER_DLQ_TOPIC: &str = "dlq-topic";
pub const HEADER_DLQ_PARTITION: &str = "dlq-partition";
pub const HEADER_DLQ_OFFSET: &str = "dlq-offset";
/// On `sprocket.<phase>.retry`: when the attempt is due, epoch milliseconds.
pub const HEADER_RETRY_AT: &str = "retry-at";

/// How long a process waits for its Kafka clients to close (a consumer
/// leaves its group, running its last revocation) when it stops.
pub const CLOSE_WITHIN: Duration = Duration::from_secs(15);

/// Drops `clients` (consumers leave their groups, producers flush) on a
/// thread of their own and waits for that at most `within`.
///
/// librdkafka's consumer close blocks its thread, and parts of it wait
/// without a limit: a cooperative revocation during close was seen waiting
/// for ever on the group coordinator of the embedded broker. On a runtime
/// thread that would hold the stopping process (and a test's runtime) for
/// good; here an overrun is logged and the close is left to finish, or not,
/// on its own thread.
pub async fn close_detached<T: Send + 'static>(what: &str, clients: T, within: Duration) {
    let (done, closed) = tokio::sync::oneshot::channel();
    let closing = std::thread::Builder::new()
        .name("kafka-close".into())
        .spawn(move || {
            drop(clients);
            let _ = done.send(());
        });
    if let Err(e) = closing {
        tracing::warn!(clients = what, error = %e, "no thread to close Kafka clients on");
        return;
    }
    if tokio::time::timeout(within, closed).await.is_err() {
        tracing::warn!(
            clients = what,
            within_s = within.as_secs(),
            "closing Kafka clients overran; leaving them to finish on their own thread"
        );
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("kafka: {context}: {source}")]
    Kafka { context: String, source: KafkaError },
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// A reader did not reach a position in time (it may yet).
    #[error("{0}")]
    Behind(String),
}

impl BusError {
    pub fn kafka(context: impl Into<String>) -> impl FnOnce(KafkaError) -> BusError {
        let context = context.into();
        move |source| BusError::Kafka { context, source }
    }

    /// Whether trying again could succeed (fencing and fatal errors cannot).
    pub fn retryable(&self) -> bool {
        match self {
            BusError::Kafka { source, .. } => !matches!(
                source.rdkafka_error_code(),
                Some(RDKafkaErrorCode::Fenced)
                    | Some(RDKafkaErrorCode::ProducerFenced)
                    | Some(RDKafkaErrorCode::InvalidProducerEpoch)
                    | Some(RDKafkaErrorCode::Fatal)
            ),
            BusError::Codec(e) => e.retryable(),
            BusError::Behind(_) => true,
        }
    }
}

/// A message ready to produce.
#[derive(Debug, Clone)]
pub struct Record {
    pub topic: String,
    pub key: String,
    pub payload: Vec<u8>,
    pub headers: Vec<(String, String)>,
}

impl Record {
    /// Bytes on the wire, roughly: key, payload and headers.
    pub fn size(&self) -> usize {
        self.key.len()
            + self.payload.len()
            + self
                .headers
                .iter()
                .map(|(k, v)| k.len() + v.len())
                .sum::<usize>()
    }

    pub fn future(&self) -> FutureRecord<'_, str, [u8]> {
        let mut headers = OwnedHeaders::new_with_capacity(self.headers.len());
        for (k, v) in &self.headers {
            headers = headers.insert(Header {
                key: k,
                value: Some(v.as_bytes()),
            });
        }
        FutureRecord::to(&self.topic)
            .key(self.key.as_str())
            .payload(self.payload.as_slice())
            .headers(headers)
    }
}

/// Everything a process needs to talk to Kafka the Sprocket way.
#[derive(Clone)]
pub struct Bus {
    base: ClientConfig,
    pub topics: Topics,
    pub codec: Codec,
    /// Written in the `producer` field and header, e.g. `sprocket-worker-render@host`.
    pub producer_name: String,
    partitions: i32,
    replication: i32,
}

impl Bus {
    pub async fn connect(cfg: &Config, producer_name: impl Into<String>) -> Result<Bus, BusError> {
        let base = client_config(cfg);
        let codec = Codec::connect(&cfg.registry.url, &cfg.kafka.topic_prefix).await?;
        Ok(Bus {
            base,
            topics: Topics::new(cfg.kafka.topic_prefix.clone()),
            codec,
            producer_name: producer_name.into(),
            partitions: cfg.kafka.partitions,
            replication: cfg.kafka.replication,
        })
    }

    pub fn client_config(&self) -> ClientConfig {
        self.base.clone()
    }

    /// An idempotent producer for facts published outside transactions.
    pub fn producer(&self) -> Result<FutureProducer, BusError> {
        self.base
            .clone()
            .set("enable.idempotence", "true")
            .set("linger.ms", "2")
            .set("client.id", &self.producer_name)
            .create()
            .map_err(BusError::kafka("creating a producer"))
    }

    /// A transactional producer with `transactional.id = id`, transactions
    /// initialised. A transaction is open only while an outcome is written
    /// (never during the work), so `transaction.timeout.ms` (60 s unless
    /// `[kafka.properties]` sets it) bounds the writing, not the work.
    pub fn transactional_producer(&self, id: &str) -> Result<FutureProducer, BusError> {
        use rdkafka::producer::Producer;
        let p: FutureProducer = self
            .base
            .clone()
            .set("transactional.id", id)
            .set(
                "transaction.timeout.ms",
                self.base.get("transaction.timeout.ms").unwrap_or("60000"),
            )
            .set("linger.ms", "2")
            .set("client.id", &self.producer_name)
            .create()
            .map_err(BusError::kafka("creating a transactional producer"))?;
        // Blocks until the coordinator answers: keep it off the async threads.
        tokio::task::block_in_place(|| p.init_transactions(Duration::from_secs(30)))
            .map_err(BusError::kafka(format!("init_transactions for {id}")))?;
        Ok(p)
    }

    /// A consumer that sees committed data only and never commits by itself
    /// ([`consumer_config`](Self::consumer_config)).
    pub fn consumer(&self, group: &str) -> Result<StreamConsumer, BusError> {
        self.consumer_config(group)
            .create()
            .map_err(BusError::kafka(format!("creating a consumer in {group}")))
    }

    /// The configuration of a consumer in `group`: `read_committed`, no
    /// automatic commits or offset stores, from the earliest offset when the
    /// group has none. Unless `[kafka.properties]` says otherwise: session
    /// timeout 10 s with heartbeats every second, and the cooperative-sticky
    /// assignor, so a rebalance moves only the partitions that change owner
    /// and every other lane keeps working (`group.protocol = "consumer"`, the
    /// KIP-848 protocol, may be set instead).
    pub fn consumer_config(&self, group: &str) -> ClientConfig {
        let or = |key: &str, default: &'static str| -> String {
            self.base.get(key).unwrap_or(default).to_owned()
        };
        let mut c = self.base.clone();
        c.set("group.id", group)
            .set("isolation.level", "read_committed")
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("enable.partition.eof", "false")
            .set("fetch.wait.max.ms", or("fetch.wait.max.ms", "100"))
            // One id per process: a process may run several consumers in a
            // group (a worker runs one per topic), and the group's processes
            // are counted by it.
            .set(
                "client.id",
                format!("{}#{}", self.producer_name, std::process::id()),
            );
        if self.base.get("group.protocol") != Some("consumer") {
            // The KIP-848 protocol has its session and assignment on the broker.
            c.set("session.timeout.ms", or("session.timeout.ms", "10000"))
                .set("heartbeat.interval.ms", or("heartbeat.interval.ms", "1000"))
                .set(
                    "partition.assignment.strategy",
                    or("partition.assignment.strategy", "cooperative-sticky"),
                );
        }
        c
    }

    /// Encodes an event for `topic` with the contract's key and headers.
    pub async fn record(&self, topic: &str, env: &Envelope) -> Result<Record, BusError> {
        let payload = self.codec.encode(env).await?;
        Ok(Record {
            topic: topic.to_owned(),
            key: env.job_id.to_string(),
            payload,
            headers: vec![
                (HEADER_EVENT_TYPE.into(), env.kind().0.into()),
                (
                    HEADER_TRACEPARENT.into(),
                    traceparent(env.job_id.as_str(), &env.event_id),
                ),
                (HEADER_PRODUCER.into(), env.producer.clone()),
            ],
        })
    }

    /// Decodes a consumed message. Envelope fields an outside producer left out
    /// are derived from the message's position ([`fill_for`]), so every reader
    /// fills in the same values.
    pub async fn decode<M: Message>(&self, msg: &M) -> Result<Envelope, CodecError> {
        self.codec
            .decode(msg.payload().unwrap_or_default(), fill_of(msg))
            .await
    }

    /// Like [`decode`](Self::decode), but waits out a schema registry outage
    /// ([`Codec::decode_patiently`]), so a good message is never given up for
    /// one. Only errors that can never pass are returned.
    pub async fn decode_patiently<M: Message>(&self, msg: &M) -> Result<Envelope, CodecError> {
        let waiting = |e: &CodecError, delay: Duration| {
            tracing::warn!(topic = msg.topic(), partition = msg.partition(), offset = msg.offset(),
                error = %e, retry_in_ms = delay.as_millis() as u64, "cannot decode yet; retrying");
        };
        let payload = msg.payload().unwrap_or_default();
        self.codec
            .decode_patiently(payload, fill_of(msg), waiting)
            .await
    }

    /// Produces one record and waits for the broker's acknowledgement.
    pub async fn send(
        &self,
        producer: &FutureProducer,
        record: &Record,
    ) -> Result<(i32, i64), BusError> {
        let d = producer
            .send(record.future(), Duration::from_secs(30))
            .await
            .map_err(|(e, _)| BusError::Kafka {
                context: format!("producing to {}", record.topic),
                source: e,
            })?;
        Ok((d.partition, d.offset))
    }

    /// Creates Sprocket's missing topics with their configs and checks the
    /// existing ones against them ([`crate::admin`]). A broker that does not
    /// serve CreateTopics (the embedded one) is never asked when all exist.
    pub async fn create_topics(&self) -> Result<TopicsReport, BusError> {
        let admin: AdminClient<DefaultClientContext> = self
            .base
            .create()
            .map_err(BusError::kafka("creating an admin client"))?;
        let wanted = admin::specs(&self.topics, self.partitions, self.replication);
        admin::ensure(&admin, wanted).await
    }

    /// Partition count of a topic, from the cluster's metadata.
    pub fn partition_count(&self, consumer: &StreamConsumer, topic: &str) -> Result<i32, BusError> {
        let md = consumer
            .fetch_metadata(Some(topic), Duration::from_secs(10))
            .map_err(BusError::kafka(format!("metadata of {topic}")))?;
        Ok(md
            .topics()
            .first()
            .map(|t| t.partitions().len() as i32)
            .unwrap_or(0))
    }
}

/// How often one transaction's commit is tried while it fails retriably.
const COMMIT_TRIES: u32 = 3;

/// Produces `records` in the open transaction of `p` and waits for every
/// delivery; returns where each landed. Blocking: call it off the async
/// threads.
pub fn produce_all(p: &FutureProducer, records: &[Record]) -> Result<Vec<(i32, i64)>, BusError> {
    let produced = |topic: &str, e| BusError::Kafka {
        context: format!("producing to {topic}"),
        source: e,
    };
    let mut deliveries = Vec::with_capacity(records.len());
    for r in records {
        let d = p
            .send_result(r.future())
            .map_err(|(e, _)| produced(&r.topic, e))?;
        deliveries.push((r, d));
    }
    let mut at = Vec::with_capacity(records.len());
    for (r, d) in deliveries {
        // Completed by the producer's own polling thread, not by a runtime.
        match futures::executor::block_on(d) {
            Ok(Ok(d)) => at.push((d.partition, d.offset)),
            Ok(Err((e, _))) => return Err(produced(&r.topic, e)),
            Err(_) => return Err(produced(&r.topic, KafkaError::Canceled)),
        }
    }
    Ok(at)
}

/// Commits the open transaction of `p`. A commit that failed with a
/// retriable error (it timed out, the coordinator moved) may still complete:
/// librdkafka's contract is to call it again, as aborting and producing anew
/// could commit the records twice. Blocking.
pub fn commit_transaction(
    p: &FutureProducer,
    within: Duration,
    what: &str,
) -> Result<(), BusError> {
    use rdkafka::producer::Producer;
    let mut tries = 1;
    loop {
        match p.commit_transaction(within) {
            Err(KafkaError::Transaction(e)) if e.is_retriable() && tries < COMMIT_TRIES => {
                tracing::warn!(what, error = %e, "commit_transaction failed; committing the same transaction again");
                tries += 1;
            }
            r => return r.map_err(BusError::kafka(format!("commit_transaction ({what})"))),
        }
    }
}

/// Writes `records` in a transaction of their own on the transactional
/// producer `p`: all of them or (aborted) none. Blocking.
pub fn write_alone(
    p: &FutureProducer,
    records: &[Record],
    what: &str,
) -> Result<Vec<(i32, i64)>, BusError> {
    use rdkafka::producer::Producer;
    let within = Duration::from_secs(30);
    p.begin_transaction()
        .map_err(BusError::kafka(format!("begin_transaction ({what})")))?;
    let written = produce_all(p, records).and_then(|at| {
        commit_transaction(p, within, what)?;
        Ok(at)
    });
    if written.is_err() {
        // A transaction left open would hold back every read_committed reader.
        if let Err(e) = p.abort_transaction(within) {
            tracing::warn!(what, error = %e, "abort_transaction failed");
        }
    }
    written
}

/// What every Kafka client of a Sprocket process starts from: the bootstrap
/// servers, a 1 s reconnect backoff cap, then `[kafka.properties]` (TLS, SASL,
/// and overrides of Sprocket's own defaults). Producers, transactional
/// producers, consumers, the admin client and the lag probe all derive from
/// it, so a SASL principal configured once authenticates every one of them.
pub fn client_config(cfg: &Config) -> ClientConfig {
    let mut base = ClientConfig::new();
    base.set("bootstrap.servers", &cfg.kafka.brokers);
    // librdkafka backs off reconnecting up to 10 s, so after a broker
    // outage clients would idle that long; the Java client's 1 s cap gets
    // work moving again as soon as the broker is back.
    base.set("reconnect.backoff.max.ms", "1000");
    for (k, v) in &cfg.kafka.properties {
        base.set(k, v);
    }
    base
}

/// A W3C traceparent. The trace id is derived from the job id, so every message
/// of one job belongs to one trace; the span id from the event id.
pub fn traceparent(job_id: &str, event_id: &str) -> String {
    let trace = Sha256::digest(job_id.as_bytes());
    let span = Sha256::digest(event_id.as_bytes());
    format!(
        "00-{}-{}-01",
        hex::encode(&trace[..16]),
        hex::encode(&span[..8])
    )
}

/// Envelope fields for a message whose producer left them out. Derived from the
/// message's position and timestamp, so every reader fills in the same event id.
pub fn fill_for(topic: &str, partition: i32, offset: i64, timestamp_ms: Option<i64>) -> Fill {
    let ms = timestamp_ms.unwrap_or(0).max(0) as u64;
    let h = Sha256::digest(format!("{topic}/{partition}/{offset}").as_bytes());
    let mut rand = [0u8; 10];
    rand.copy_from_slice(&h[..10]);
    let id = uuid::Builder::from_unix_timestamp_millis(ms, &rand).into_uuid();
    Fill {
        event_id: id.to_string(),
        occurred_at: DateTime::<Utc>::from_timestamp_millis(ms as i64).unwrap_or_else(Utc::now),
        producer: "external".into(),
    }
}

/// [`fill_for`] a consumed message's position.
fn fill_of<M: Message>(msg: &M) -> impl Fn() -> Fill + '_ {
    || {
        fill_for(
            msg.topic(),
            msg.partition(),
            msg.offset(),
            msg.timestamp().to_millis(),
        )
    }
}

/// Reads a header as text.
pub fn header<M: Message>(msg: &M, name: &str) -> Option<String> {
    let h = msg.headers()?;
    h.iter()
        .find(|h| h.key == name)
        .and_then(|h| h.value)
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

#[cfg(test)]
mod tests {

    /// Whatever `close_detached` drops: records that it was dropped, or
    /// never finishes dropping (as a close stuck in librdkafka).
    struct Client {
        dropped: std::sync::Arc<std::sync::atomic::AtomicBool>,
        stuck: bool,
    }

    impl Drop for Client {
        fn drop(&mut self) {
            if self.stuck {
                std::thread::park();
            }
            self.dropped
                .store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }

    #[tokio::test]
    async fn clients_are_closed_and_a_stuck_close_does_not_hold_the_caller() {
        use std::sync::atomic::Ordering;
        let dropped = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let client = Client {
            dropped: dropped.clone(),
            stuck: false,
        };
        close_detached("fine", client, Duration::from_secs(60)).await;
        assert!(
            dropped.load(Ordering::SeqCst),
            "returned before the close ended"
        );

        let dropped = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let client = Client {
            dropped: dropped.clone(),
            stuck: true,
        };
        // Returns (after its limit) although the close never ends.
        tokio::time::timeout(
            Duration::from_secs(60),
            close_detached("stuck", client, Duration::from_millis(50)),
        )
        .await
        .expect("close_detached waited for a close that never ends");
        assert!(!dropped.load(Ordering::SeqCst));
    }

    use super::*;

    #[test]
    fn traceparent_is_w3c_shaped_and_stable_per_job() {
        let a = traceparent("job1", "e1");
        let b = traceparent("job1", "e2");
        assert_eq!(a.len(), 55);
        assert_eq!(&a[..36], &b[..36], "same job, same trace id");
        assert_ne!(a, b);
    }

    #[test]
    fn fill_is_deterministic_per_position() {
        let a = fill_for("t", 0, 5, Some(1_700_000_000_000));
        let b = fill_for("t", 0, 5, Some(1_700_000_000_000));
        let c = fill_for("t", 0, 6, Some(1_700_000_000_000));
        assert_eq!(a.event_id, b.event_id);
        assert_ne!(a.event_id, c.event_id);
        assert_eq!(
            uuid::Uuid::parse_str(&a.event_id)
                .unwrap()
                .get_version_num(),
            7
        );
    }
}

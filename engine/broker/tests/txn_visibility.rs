//! The embedded broker hides uncommitted transactional writes: `read_committed`
//! consumers see the records of committed transactions only, never those of an
//! aborted transaction, of a producer that died before committing, or of a
//! transaction that outlived its timeout. Real rdkafka clients against a fresh
//! [`EmbeddedBroker`] per test.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use sprocket_broker::EmbeddedBroker;
use tokio::task::block_in_place;

const T: Duration = Duration::from_secs(10);
const TOPIC: &str = "txn-visibility";

/// A name no other read in this process uses.
fn unique(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("{prefix}-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

async fn broker() -> EmbeddedBroker {
    let broker = EmbeddedBroker::start("127.0.0.1:0").await.unwrap();
    broker.create_topic(TOPIC, 2).unwrap();
    broker.create_topic("txn-input", 1).unwrap();
    broker
}

fn plain_producer(broker: &EmbeddedBroker) -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap_servers())
        .set("enable.idempotence", "true")
        .set("linger.ms", "2")
        .create()
        .unwrap()
}

/// A transactional producer, transactions initialised.
fn txn_producer(broker: &EmbeddedBroker, id: &str) -> FutureProducer {
    txn_producer_with(broker, id, &[])
}

/// A transactional producer with extra settings, transactions initialised.
fn txn_producer_with(
    broker: &EmbeddedBroker,
    id: &str,
    settings: &[(&str, &str)],
) -> FutureProducer {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", broker.bootstrap_servers())
        .set("transactional.id", id)
        .set("linger.ms", "2");
    for (k, v) in settings {
        config.set(*k, *v);
    }
    let p: FutureProducer = config.create().unwrap();
    block_in_place(|| p.init_transactions(T)).unwrap();
    p
}

fn begin(p: &FutureProducer) {
    block_in_place(|| p.begin_transaction()).unwrap();
}

fn commit(p: &FutureProducer) {
    block_in_place(|| p.commit_transaction(T)).unwrap();
}

/// Produces `value` to the topic's `partition` and waits for the acknowledgement.
async fn send(p: &FutureProducer, partition: i32, key: &str, value: &str) {
    let rec = FutureRecord::to(TOPIC)
        .partition(partition)
        .key(key)
        .payload(value);
    p.send(rec, T).await.map_err(|(e, _)| e).unwrap();
}

/// What a `read_committed` consumer reads from every partition: values other than
/// markers, in (partition, offset) order. A fresh marker produced to each
/// partition first tells where the log ends.
async fn read_committed(broker: &EmbeddedBroker) -> Vec<(i32, String)> {
    let marker = unique("marker");
    let plain = plain_producer(broker);
    for partition in 0..2 {
        send(&plain, partition, "marker", &marker).await;
    }
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap_servers())
        .set("group.id", unique("reader"))
        .set("isolation.level", "read_committed")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for partition in 0..2 {
        tpl.add_partition_offset(TOPIC, partition, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let (mut seen, mut markers) = (Vec::new(), 0);
    let deadline = Instant::now() + Duration::from_secs(20);
    while markers < 2 {
        assert!(
            Instant::now() < deadline,
            "markers not read; so far {seen:?}"
        );
        let Some(m) = block_in_place(|| consumer.poll(Duration::from_millis(200))) else {
            continue;
        };
        let m = m.unwrap();
        let value = String::from_utf8(m.payload().unwrap_or_default().to_vec()).unwrap();
        match m.key() {
            Some(b"marker") => markers += usize::from(value == marker),
            _ => seen.push((m.partition(), m.offset(), value)),
        }
    }
    seen.sort();
    seen.into_iter().map(|(p, _, v)| (p, v)).collect()
}

fn values(read: &[(i32, String)]) -> Vec<&str> {
    read.iter().map(|(_, v)| v.as_str()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_transaction_is_read_with_its_offsets_sent() {
    let broker = broker().await;
    let p = txn_producer(&broker, "txn-commit");
    let group: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap_servers())
        .set("group.id", "txn-commit-group")
        .create()
        .unwrap();
    begin(&p);
    for (i, v) in ["a1", "a2", "a3"].iter().enumerate() {
        send(&p, i as i32 % 2, "k", v).await;
    }
    let mut offsets = TopicPartitionList::new();
    offsets
        .add_partition_offset("txn-input", 0, Offset::Offset(1))
        .unwrap();
    let meta = group.group_metadata().unwrap();
    block_in_place(|| p.send_offsets_to_transaction(&offsets, &meta, T)).unwrap();
    commit(&p);
    let read = read_committed(&broker).await;
    assert_eq!(
        read,
        vec![(0, "a1".into()), (0, "a3".into()), (1, "a2".into())]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aborted_transaction_is_not_read_and_the_producer_goes_on() {
    let broker = broker().await;
    let p = txn_producer(&broker, "txn-abort");
    begin(&p);
    send(&p, 0, "k", "aborted-1").await;
    send(&p, 1, "k", "aborted-2").await;
    block_in_place(|| p.abort_transaction(T)).unwrap();
    assert_eq!(read_committed(&broker).await, vec![]);
    // The same producer's next transaction commits (its sequence numbers
    // continue past the aborted records, which the mock cluster never saw).
    begin(&p);
    send(&p, 0, "k", "kept-1").await;
    send(&p, 0, "k", "kept-2").await;
    commit(&p);
    assert_eq!(values(&read_committed(&broker).await), ["kept-1", "kept-2"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abandoned_transaction_is_not_read_after_a_restart() {
    let broker = broker().await;
    let crashed = txn_producer(&broker, "txn-crash");
    begin(&crashed);
    send(&crashed, 0, "k", "lost-1").await;
    send(&crashed, 1, "k", "lost-2").await;
    block_in_place(|| crashed.flush(T)).unwrap();
    // A crash: the producer never commits, aborts or closes.
    std::mem::forget(crashed);
    assert_eq!(read_committed(&broker).await, vec![]);
    let restarted = txn_producer(&broker, "txn-crash");
    begin(&restarted);
    send(&restarted, 0, "k", "after-restart").await;
    commit(&restarted);
    assert_eq!(
        read_committed(&broker).await,
        vec![(0, "after-restart".into())]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interleaved_transactions_on_one_partition_all_commit_in_order() {
    let broker = broker().await;
    let a = txn_producer(&broker, "txn-a");
    let b = txn_producer(&broker, "txn-b");
    begin(&a);
    begin(&b);
    for i in 1..=3 {
        send(&a, 0, "a", &format!("a{i}")).await;
        send(&b, 0, "b", &format!("b{i}")).await;
    }
    commit(&b);
    commit(&a);
    let read = read_committed(&broker).await;
    let of = |prefix: char| -> Vec<&str> {
        values(&read)
            .into_iter()
            .filter(|v| v.starts_with(prefix))
            .collect()
    };
    assert_eq!(read.len(), 6, "{read:?}");
    assert_eq!(of('a'), ["a1", "a2", "a3"]);
    assert_eq!(of('b'), ["b1", "b2", "b3"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_records_are_read_at_once_and_held_ones_at_commit() {
    let broker = broker().await;
    let t = txn_producer(&broker, "txn-open");
    begin(&t);
    send(&t, 0, "k", "held").await;
    send(&plain_producer(&broker), 0, "k", "plain").await;
    assert_eq!(values(&read_committed(&broker).await), ["plain"]);
    commit(&t);
    assert_eq!(values(&read_committed(&broker).await), ["plain", "held"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_open_past_its_timeout_is_aborted_and_its_commit_fails() {
    let broker = broker().await;
    let timeout = [("transaction.timeout.ms", "1000")];
    let p = txn_producer_with(&broker, "txn-timeout", &timeout);
    begin(&p);
    send(&p, 0, "k", "timed-out").await;
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let err = block_in_place(|| p.commit_transaction(T)).unwrap_err();
    // Fenced, as by Kafka's coordinator: fatal, the producer must be replaced.
    let KafkaError::Transaction(e) = &err else {
        panic!("not a transaction error: {err:?}");
    };
    assert!(e.is_fatal(), "{err:?}");
    assert_eq!(read_committed(&broker).await, vec![]);
    drop(p);
    let next = txn_producer_with(&broker, "txn-timeout", &timeout);
    begin(&next);
    send(&next, 1, "k", "in-time").await;
    commit(&next);
    assert_eq!(read_committed(&broker).await, vec![(1, "in-time".into())]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_whose_replays_meet_produce_errors_appends_each_record_once() {
    use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
    let broker = broker().await;
    let p = txn_producer(&broker, "txn-replay-errors");
    begin(&p);
    // Each awaited on its own: two held Produce requests, two replays.
    send(&p, 0, "k", "first").await;
    send(&p, 1, "k", "second").await;
    // Three Produce requests fail, as while a partition's leader moves: the
    // first replay's tries. Replayed once each, the second request would be
    // appended and the first refused, and the commit reported failed.
    broker.request_errors(
        RDKafkaApiKey::Produce,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION; 3],
    );
    commit(&p);
    assert_eq!(values(&read_committed(&broker).await), ["first", "second"]);
}

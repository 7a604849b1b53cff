//! A lane's zombie is fenced by Kafka itself: every owner of a partition
//! readies its producer under the same `transactional.id`
//! ([`transactional_id`]), so once a new owner has, the old owner's open
//! transaction is aborted by the coordinator and its commit refused, and
//! nothing of it is ever read `read_committed`. The worker runtime's own
//! guard (a revoked lane commits nothing) comes first in practice (the
//! frozen-worker wave of `kafka_faults`); this shows the broker's guard
//! behind it, with Sprocket's own producer settings.

use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::Producer;
use rdkafka::{Offset, TopicPartitionList};
use sprocket_platform::bus::{self, Bus, Record};
use sprocket_platform::config::Config;
use sprocket_workers::ports::kafka::transactional_id;

use crate::stack::Stack;

const TOPIC: &str = "sprocket.fencing-check";

/// Two owners of one lane in turn, the first frozen mid-transaction.
pub(crate) async fn a_lanes_zombie_is_fenced_by_kafka(stack: &Stack) {
    let cluster = stack.cluster();
    cluster.tool_ok(
        "kafka-topics",
        &[
            "--bootstrap-server",
            &stack.kafka,
            "--create",
            "--topic",
            TOPIC,
            "--partitions",
            "1",
            "--replication-factor",
            &cluster.replication().to_string(),
        ],
    );
    let mut cfg = Config::default();
    cfg.kafka.brokers = stack.kafka.clone();
    cfg.registry.url = stack.registry.clone();
    let bus = Bus::connect(&cfg, "fencing-check").await.expect("a bus");
    assert!(
        !sprocket_server::standin::is_embedded(&bus),
        "Apache Kafka taken for the embedded broker: its workarounds would run"
    );
    let id = transactional_id("sprocket-render", TOPIC, 0);
    assert_eq!(id, transactional_id("sprocket-render", TOPIC, 0));
    let record = |what: &str| Record {
        topic: TOPIC.into(),
        key: "lane-0".into(),
        payload: what.as_bytes().to_vec(),
        headers: vec![],
    };

    // The first owner writes its outcome, and freezes before committing.
    let zombie = bus.transactional_producer(&id).expect("the first owner");
    tokio::task::block_in_place(|| {
        zombie.begin_transaction().expect("begin");
        bus::produce_all(&zombie, &[record("zombie")]).expect("the zombie's write is acknowledged");
    });
    // The partition's next owner readies its producer: Kafka aborts the
    // zombie's transaction and bumps the epoch.
    let successor = bus.transactional_producer(&id).expect("the new owner");
    tokio::task::block_in_place(|| {
        successor.begin_transaction().expect("begin");
        bus::produce_all(&successor, &[record("successor")]).expect("write");
        bus::commit_transaction(&successor, Duration::from_secs(30), "successor")
            .expect("the new owner commits");
    });
    // The zombie thaws and commits.
    let refused = tokio::task::block_in_place(|| {
        bus::commit_transaction(&zombie, Duration::from_secs(30), "zombie")
    })
    .expect_err("the zombie's commit is refused");
    let said = format!("{refused:?}").to_lowercase();
    assert!(
        said.contains("fenced") || said.contains("epoch"),
        "refused for another reason: {refused:?}"
    );
    assert!(
        !refused.retryable(),
        "a fenced producer is done: {refused:?}"
    );
    eprintln!("[fencing] the zombie's commit: {refused}");

    assert_eq!(
        committed_payloads(&stack.kafka),
        vec!["successor".to_owned()],
        "read_committed holds the new owner's record only"
    );
    let described = cluster.tool_ok(
        "kafka-transactions",
        &[
            "--bootstrap-server",
            &stack.kafka,
            "describe",
            "--transactional-id",
            &id,
        ],
    );
    assert!(
        described.contains(&id) && described.contains("CompleteCommit"),
        "kafka-transactions describe: {described}"
    );
}

/// Every record of the check's topic as a `read_committed` reader sees it.
fn committed_payloads(brokers: &str) -> Vec<String> {
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "fencing-check-reader")
        .set("isolation.level", "read_committed")
        .set("enable.auto.commit", "false")
        .create()
        .expect("a reader");
    let (_, high) = consumer
        .fetch_watermarks(TOPIC, 0, Duration::from_secs(10))
        .expect("watermarks");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(TOPIC, 0, Offset::Beginning)
        .expect("offset");
    consumer.assign(&tpl).expect("assign");
    let mut seen = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while std::time::Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                seen.push(String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned());
                if m.offset() + 1 >= high {
                    break;
                }
            }
            Some(Err(e)) => panic!("reading {TOPIC}: {e}"),
            None => {
                let pos = consumer.position().expect("position");
                let at = pos
                    .find_partition(TOPIC, 0)
                    .and_then(|p| p.offset().to_raw());
                if at.is_some_and(|o| o >= high) {
                    break;
                }
            }
        }
    }
    seen
}

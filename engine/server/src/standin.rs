//! The embedded broker's workarounds for the worker runtime, used only when
//! the cluster a worker joins is the embedded one (librdkafka's mock cluster,
//! told apart by its cluster id). Against Apache Kafka none of this runs.

use std::time::Duration;

use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::producer::Producer;
use rdkafka::{Offset, TopicPartitionList};
use sprocket_platform::bus::Bus;
use sprocket_workers::{StandIn, WorkerConsumer};

/// The mock cluster's cluster ids start with this (librdkafka's
/// `rd_kafka_mock_cluster_new`).
const MOCK_CLUSTER_ID: &str = "mockCluster";

/// Whether `bus` talks to the embedded broker.
pub fn is_embedded(bus: &Bus) -> bool {
    let Ok(producer) = bus.producer() else {
        return false;
    };
    let id =
        tokio::task::block_in_place(|| producer.client().fetch_cluster_id(Duration::from_secs(10)));
    id.is_some_and(|id| id.starts_with(MOCK_CLUSTER_ID))
}

/// What the mock cluster needs: it answers transactional offset commits
/// without storing them, so each committed position is also committed through
/// the consumer (one more round trip per item), and lanes skip messages
/// redelivered below what they committed.
pub struct MockCluster;

impl StandIn for MockCluster {
    fn committed(&self, consumer: &WorkerConsumer, topic: &str, partition: i32, next: i64) {
        let mut tpl = TopicPartitionList::new();
        if tpl
            .add_partition_offset(topic, partition, Offset::Offset(next))
            .is_ok()
        {
            if let Err(e) = consumer.commit(&tpl, CommitMode::Sync) {
                tracing::debug!(topic, partition, error = %e, "position commit");
            }
        }
    }

    fn skip_committed(&self) -> bool {
        true
    }
}

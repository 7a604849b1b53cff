//! The embedded broker's workarounds for the worker runtime, used only when
//! the cluster a worker joins is the embedded one (librdkafka's mock cluster,
//! told apart by its cluster id). Against Apache Kafka none of this runs.

use std::collections::HashMap;
use std::sync::Mutex;
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
/// the consumer (one more round trip per transaction), and lanes skip messages
/// redelivered below the highest position this process committed. That
/// position is kept here, beyond any one lane or assignment: the consumer
/// commit fails while the broker is down, and a session that times out then
/// hands the partition back at the stale position it had stored.
#[derive(Default)]
pub struct MockCluster {
    positions: Mutex<HashMap<(String, i32), i64>>,
}

impl StandIn for MockCluster {
    fn committed(&self, consumer: &WorkerConsumer, topic: &str, partition: i32, next: i64) {
        {
            let mut positions = self.positions.lock().unwrap_or_else(|e| e.into_inner());
            let at = positions
                .entry((topic.to_owned(), partition))
                .or_insert(next);
            *at = (*at).max(next);
        }
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

    fn floor(&self, topic: &str, partition: i32) -> Option<i64> {
        let positions = self.positions.lock().unwrap_or_else(|e| e.into_inner());
        Some(
            positions
                .get(&(topic.to_owned(), partition))
                .copied()
                .unwrap_or(-1),
        )
    }
}

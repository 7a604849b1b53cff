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
    /// Positions whose consumer commit failed (a rebalance under way, the
    /// broker down), stored again by [`StandIn::repair`].
    unstored: Mutex<HashMap<(String, i32), i64>>,
}

impl MockCluster {
    /// Commits `next` as `topic`/`partition`'s position through `consumer`,
    /// remembering it for [`StandIn::repair`] if that fails.
    fn store(&self, consumer: &WorkerConsumer, topic: &str, partition: i32, next: i64) {
        let key = (topic.to_owned(), partition);
        let mut tpl = TopicPartitionList::new();
        let stored = tpl
            .add_partition_offset(topic, partition, Offset::Offset(next))
            .map_err(|e| e.to_string())
            .and_then(|()| {
                consumer
                    .commit(&tpl, CommitMode::Sync)
                    .map_err(|e| e.to_string())
            });
        let mut unstored = self.unstored.lock().unwrap_or_else(|e| e.into_inner());
        match stored {
            Ok(()) => {
                if unstored.get(&key).is_some_and(|at| *at <= next) {
                    unstored.remove(&key);
                }
            }
            Err(e) => {
                tracing::debug!(topic, partition, error = %e, "position commit; retried within a second");
                let at = unstored.entry(key).or_insert(next);
                *at = (*at).max(next);
            }
        }
    }
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
        self.store(consumer, topic, partition, next);
    }

    fn repair(&self, consumer: &WorkerConsumer, topic: &str) {
        let due: Vec<(i32, i64)> = {
            let unstored = self.unstored.lock().unwrap_or_else(|e| e.into_inner());
            unstored
                .iter()
                .filter(|((t, _), _)| t == topic)
                .map(|((_, p), at)| (*p, *at))
                .collect()
        };
        if due.is_empty() {
            return;
        }
        // Only what this consumer still owns: another owner's lane commits
        // its own position.
        let Ok(owned) = consumer.assignment() else {
            return;
        };
        for (partition, at) in due {
            if owned.find_partition(topic, partition).is_some() {
                self.store(consumer, topic, partition, at);
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

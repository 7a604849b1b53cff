//! The worker consumer's context: what happens when the group moves
//! partitions. A revoked (or lost) partition's lane is closed before the
//! rebalance completes ([`crate::lane`]): a transaction it is writing gets a
//! few seconds to finish first, and it commits nothing afterwards. Newly
//! assigned partitions start unpaused.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::error::KafkaResult;
use rdkafka::message::OwnedMessage;
use rdkafka::TopicPartitionList;
use tokio::sync::mpsc;

use crate::lane::{LaneState, REVOKE_WAIT};

/// The consumer every worker uses.
pub type WorkerConsumer = StreamConsumer<Rebalances>;

/// A lane as the poll loop and the rebalance callback see it.
pub(crate) struct Lane {
    pub(crate) tx: mpsc::UnboundedSender<OwnedMessage>,
    pub(crate) state: Arc<LaneState>,
}

/// The worker's lanes by (topic, partition).
#[derive(Default)]
pub(crate) struct Lanes {
    map: Mutex<HashMap<(String, i32), Lane>>,
}

impl Lanes {
    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, i32), Lane>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Closes a partition's lane: it finishes a transaction under way, commits
    /// nothing more, and its running work is stopped.
    fn revoke(&self, topic: &str, partition: i32) {
        let lane = self.lock().remove(&(topic.to_owned(), partition));
        if let Some(lane) = lane {
            lane.state.revoke(REVOKE_WAIT);
            tracing::info!(%topic, partition, "partition revoked: its lane is closed");
        }
    }
}

/// Rebalance handling for the worker consumer.
pub struct Rebalances {
    pub(crate) lanes: Arc<Lanes>,
    /// Partitions whose plain (non-transactional) commit failed, for the
    /// poll loop to commit again: a commit refused during a rebalance must
    /// not leave the group's lag at 1 for ever.
    pub(crate) failed_commits: Mutex<Vec<(String, i32)>>,
}

impl Rebalances {
    pub(crate) fn new(lanes: Arc<Lanes>) -> Self {
        Self {
            lanes,
            failed_commits: Mutex::default(),
        }
    }

    /// The partitions whose commit failed since the last call.
    pub(crate) fn take_failed_commits(&self) -> Vec<(String, i32)> {
        std::mem::take(
            &mut *self
                .failed_commits
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        )
    }
}

impl ClientContext for Rebalances {}

impl ConsumerContext for Rebalances {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Revoke(tpl) => {
                let lost = consumer.assignment_lost();
                for e in tpl.elements() {
                    tracing::debug!(
                        topic = e.topic(),
                        partition = e.partition(),
                        lost,
                        "revoking"
                    );
                    self.lanes.revoke(e.topic(), e.partition());
                }
            }
            Rebalance::Assign(tpl) => {
                let parts: Vec<String> = tpl
                    .elements()
                    .iter()
                    .map(|e| format!("{}/{}", e.topic(), e.partition()))
                    .collect();
                tracing::info!(partitions = ?parts, "partitions assigned");
            }
            Rebalance::Error(e) => tracing::warn!(error = %e, "rebalance error"),
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, offsets: &TopicPartitionList) {
        if let Err(e) = result {
            tracing::debug!(error = %e, "a commit failed; it is made again");
            let mut failed = self
                .failed_commits
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            failed.extend(
                offsets
                    .elements()
                    .iter()
                    .map(|e| (e.topic().to_owned(), e.partition())),
            );
        }
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        // A partition paused by a lane that was revoked may come back paused.
        if let Rebalance::Assign(tpl) = rebalance {
            if let Err(e) = consumer.resume(tpl) {
                tracing::debug!(error = %e, "resuming newly assigned partitions");
            }
        }
    }
}

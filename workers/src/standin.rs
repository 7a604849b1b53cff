//! What a stand-in broker needs from the runtime besides Kafka's protocol.
//!
//! The runtime itself speaks to Apache Kafka only. A stand-in for it (the
//! embedded broker of `sprocket dev` and the fast tests: librdkafka's mock
//! cluster, which answers transactional offset commits without storing them)
//! gets its workarounds through this trait, implemented beside the stand-in
//! and given to the [`Stepper`](crate::Stepper) only when the cluster is one;
//! against real Kafka no such code runs.

use crate::rebalance::WorkerConsumer;

pub trait StandIn: Send + Sync {
    /// Called inside the lane's commit, right after a transaction committed
    /// `next` as `topic`/`partition`'s position.
    fn committed(&self, consumer: &WorkerConsumer, topic: &str, partition: i32, next: i64);

    /// The offset below which a new lane of `topic`/`partition` skips
    /// redelivered messages, or `None` if lanes skip nothing. A stand-in may
    /// hand a partition back before it has stored its position, or after
    /// failing to store it (the broker was down), so the position it was
    /// given must outlive the lane and the assignment.
    fn floor(&self, topic: &str, partition: i32) -> Option<i64>;

    /// Called by the poll loop once a second for each of its consumers:
    /// stores again the positions of `consumer`'s `topic` that
    /// [`committed`](Self::committed) could not store. The lanes believe
    /// them committed, so nothing else would, and the group's lag would
    /// read 1 for ever.
    fn repair(&self, consumer: &WorkerConsumer, topic: &str);
}

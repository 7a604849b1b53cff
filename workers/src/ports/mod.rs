//! The worker's narrow ports: one small trait per outside thing the runtime
//! talks to, with the real adapters ([`kafka`]) and in-memory fakes
//! ([`fakes`], feature `fakes`) beside them.

use std::sync::Arc;

use async_trait::async_trait;
use rdkafka::message::OwnedMessage;
use sprocket_core::machine::Claim;
use sprocket_core::{Envelope, JobId};
use sprocket_platform::bus::{BusError, Record};

#[cfg(any(test, feature = "fakes"))]
pub mod fakes;
pub mod kafka;

/// A partition a lane owns: (topic, partition).
pub type LaneId = (String, i32);

/// Turns consumed messages into envelopes and envelopes into records.
#[async_trait]
pub trait Codec: Send + Sync + 'static {
    /// Decodes a consumed message; waits out a schema registry that is
    /// unreachable, fails only for what can never be decoded.
    async fn decode(&self, msg: &OwnedMessage) -> Result<Envelope, String>;
    /// Encodes an event for `topic` with the contract's key and headers.
    async fn encode(&self, topic: &str, env: &Envelope) -> Result<Record, BusError>;
}

/// Who submitted a job id first.
#[async_trait]
pub trait Claims: Send + Sync + 'static {
    /// Claims `job` for the submission `event_id`, or says who has it.
    async fn claim(&self, job: &JobId, event_id: &str) -> Claim;
}

/// Publishes live facts (acceptance, `PhaseStarted`, `PhaseProgress`) outside
/// any transaction: they say what is happening, not what was decided. Facts
/// are written in the order they are published.
#[async_trait]
pub trait Live: Send + Sync + 'static {
    /// Sends without waiting for the broker; a failure is logged.
    fn publish(&self, env: Envelope);
    /// Sends and waits until the broker has it (or gave up; that is logged):
    /// a submission's acceptance is in the log before anything of its job.
    async fn publish_durably(&self, env: Envelope);
}

/// The transactional bus of a worker's lanes: records and the consumed
/// offset, committed together or not at all. Blocking calls.
pub trait Transactions: Send + Sync + 'static {
    /// Readies the lane's transactional producer (fencing a previous owner).
    fn open(&self, lane: &LaneId) -> Result<(), BusError>;
    /// Writes `records` and commits the lane's offset `next` in one transaction.
    fn commit(&self, lane: &LaneId, records: &Arc<[Record]>, next: i64) -> Result<(), BusError>;
    /// Moves the lane's consumer back to read again from what is not
    /// committed: `offset` (the lane's first uncommitted message) unless
    /// the bus knows better — after a transaction whose outcome is unknown,
    /// the group's committed offset once the old producer is fenced.
    fn rewind(&self, lane: &LaneId, offset: i64);
}

/// The ports a worker's messages go through.
#[derive(Clone)]
pub struct Ports {
    pub codec: Arc<dyn Codec>,
    pub claims: Arc<dyn Claims>,
    pub live: Arc<dyn Live>,
}

//! Sprocket's phase workers.
//!
//! [`runtime`] consumes a phase topic and commits each work item's outcome — its
//! events, the next work item and the consumed offset — in one Kafka transaction,
//! one lane per owned partition (`lane`), closed when a rebalance takes the
//! partition away ([`rebalance`]).
//! [`step`] is the single-step function behind it: one message in, the outcome
//! out, so tests can drive a worker deterministically. [`phases`] holds the four
//! phases' real work.

pub mod cancel;
mod commit;
pub mod context;
pub mod error;
mod lane;
mod outcome;
pub mod phases;
mod positions;
pub mod rebalance;
pub mod runtime;
pub mod standin;
pub mod step;

pub use context::{Cx, Stores};
pub use error::WorkError;
pub use phases::{phase_work, Done, PhaseWork};
pub use rebalance::WorkerConsumer;
pub use runtime::{run_worker, WorkerHandle};
pub use standin::StandIn;
pub use step::{Outcome, Stepper};

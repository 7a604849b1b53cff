//! Sprocket's phase workers.
//!
//! [`runtime`] consumes a phase topic and commits each work item's outcome — its
//! events, the next work item and the consumed offset — in one Kafka transaction,
//! one lane per owned partition (`lane`), closed when a rebalance takes the
//! partition away ([`rebalance`]).
//! [`step`] is the pure single-step function behind it (a message and its
//! phase's result in, the [`Outcome`] out, decided by the core);
//! [`stepper`] does the I/O around it through narrow [`ports`], which have
//! in-memory fakes beside the real adapters. [`phases`] holds the four
//! phases' real work.

pub mod cancel;
mod commit;
pub mod context;
pub mod error;
mod lane;
pub mod outcome;
pub mod params;
pub mod phases;
pub mod ports;
mod positions;
pub mod rebalance;
pub mod runtime;
pub mod standin;
pub mod step;
pub mod stepper;

pub use context::{Cx, Stores};
pub use error::WorkError;
pub use outcome::Outcome;
pub use phases::{phase_work, Done, PhaseWork};
pub use rebalance::WorkerConsumer;
pub use runtime::{run_worker, WorkerHandle};
pub use standin::StandIn;
pub use step::{PhaseResult, Step};
pub use stepper::Stepper;

#[cfg(test)]
mod tests;

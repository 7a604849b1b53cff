//! End-to-end tests: Sprocket driven as its users drive it.

mod bad_input;
mod intake;
mod metrics;
mod phases;
mod pipeline;
mod runtime;

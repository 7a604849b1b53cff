//! End-to-end tests: Sprocket driven as its users drive it.

mod bad_input;
mod intake;
mod metrics;
mod pipeline;
mod runtime;

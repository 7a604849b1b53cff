//! Helpers for the contract tests: fresh stores on each backend, and histories.

pub mod history;
pub mod stores;

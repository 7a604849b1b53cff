//! Helpers for the contract tests: fresh stores on each backend, and histories.
//! Each test binary uses part of them.
#![allow(dead_code)]

pub mod history;
pub mod stores;

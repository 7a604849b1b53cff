//! End-to-end tests: Sprocket driven as its users drive it.

mod access;
mod bad_events;
mod bad_input;
mod bad_media;
mod cancel;
mod contract;
mod dashboard;
mod demo;
mod intake;
mod jobs_watch;
mod metrics;
mod outputs;
mod phases;
mod pipeline;
mod recipes;
mod redrive;
mod retention;
mod retry;
mod runtime;
mod stream;
mod url_sources;
mod webhooks;

//! Sprocket deployed as separate processes, as in production but on one machine:
//! `sprocket broker` (embedded Kafka + schema registry), `migrate`,
//! `topics create`, the projector, one worker per phase and the API, all on one
//! PostgreSQL database and shared `file://` object stores, driven through the CLI
//! and the REST API.

mod deployment;
mod rebuild;
mod stack;

//! Sprocket deployed as separate processes, as in production but on one machine:
//! `sprocket broker` (embedded Kafka + schema registry), `migrate`,
//! `topics create`, the projector, one worker per phase and the API, all on one
//! PostgreSQL database and shared `file://` object stores, driven through the CLI
//! and the REST API.

/// The tests here measure and kill processes: they run one at a time, so one's
/// load does not skew another's timings on a 2-core machine.
pub(crate) static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

mod archived;
mod crash;
mod deployment;
mod dev_kafka;
mod faults;
mod fencing;
mod janitor_kill;
mod kafka_clients;
mod kafka_faults;
mod kafka_sasl;
mod kafka_tls;
mod lag_views;
mod proofs;
mod rebuild;
mod render_workers;
mod rollout;
mod scale_out;
mod stack;
mod topic_log;
mod waves;

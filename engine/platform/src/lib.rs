//! Adapters every Sprocket process shares.
//!
//! * [`config`]: layered, validated configuration.
//! * [`bus`]: Kafka clients (rdkafka): producers, consumers, headers.
//! * [`codec`]: the Confluent wire format with JSON Schema, through the registry.
//! * [`registry`]: the embedded schema registry (Confluent REST API).
//! * [`store`]: object stores (local files, memory, S3).

pub mod bus;
pub mod codec;
pub mod config;
pub mod metrics;
pub mod registry;
pub mod store;

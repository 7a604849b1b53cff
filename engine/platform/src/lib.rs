//! Adapters every Sprocket process shares.
//!
//! * [`config`]: layered, validated configuration.
//! * [`admin`]: Sprocket's topics, created and checked on a cluster.
//! * [`bus`]: Kafka clients (rdkafka): producers, consumers, headers.
//! * [`liveness`]: liveness from the progress of each process's loops.
//! * [`outbound`]: HTTP fetches on a user's behalf, guarded against SSRF.
//! * [`codec`]: the Confluent wire format with JSON Schema, through the registry.
//! * [`recipes`]: the stored recipes, read from `sprocket.recipes` into a table.
//! * [`registry`]: the embedded schema registry (Confluent REST API).
//! * [`store`]: object stores (local files, memory, S3).

pub mod admin;
pub mod bus;
pub mod codec;
pub mod config;
pub mod liveness;
pub mod metrics;
pub mod outbound;
pub mod recipes;
pub mod registry;
pub mod store;

//! Sprocket's projections: the job and event tables the status API reads, folded
//! from `sprocket.events` with Diesel.
//!
//! One code path serves SQLite (embedded, `sprocket dev`) and PostgreSQL
//! (deployments): every query is written once against a `MultiConnection` over
//! both. The projector's consumer offsets live in the same database and move in
//! the same transaction as the rows, so a batch is projected exactly once, and
//! emptying the tables and replaying the topics rebuilds identical state.
//!
//! The API is blocking; async callers wrap calls in `spawn_blocking`. Each call
//! borrows a connection from the handle's pool ([`PoolOptions`]), so readers
//! do not queue behind each other or behind the projector's transactions.

mod access;
mod apply;
mod connection;
mod cursor;
mod error;
mod fold;
mod hooks;
mod pool;
mod queries;
mod retention;
mod rows;
mod schema;
mod store;

pub use access::{ApiKey, UploadUse};
pub use error::ProjectionError;
pub use hooks::{Delivery, Outcome as DeliveryOutcome, Webhook};
pub use pool::PoolOptions;
pub use queries::JobFilter;
pub use retention::{UploadClaim, UploadRef, UploadRule, WorkClaim};
pub use rows::timestamp;
pub use store::Projections;

/// A place on a Kafka topic partition.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Position {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

impl Position {
    pub fn new(topic: impl Into<String>, partition: i32, offset: i64) -> Self {
        Position {
            topic: topic.into(),
            partition,
            offset,
        }
    }
}

/// What one `apply` did: events projected, and events skipped (work items and
/// events already stored).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Applied {
    pub events: usize,
    pub skipped: usize,
}

/// One page of a listing; `next` is the opaque cursor of the following page.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

//! Webhooks: each event of a tenant is POSTed, signed, to the tenant's
//! webhooks that want its type, at least once, retried with backoff through
//! Kafka for up to `webhooks.max_age_s`, and given up on only as a dead
//! letter (on `sprocket.webhooks.dlq`, and recorded for the API).
//!
//! Two loops, one process (`sprocket webhooks`, a task of `sprocket dev`):
//!
//! * the **fan-out** ([`fanout`]) reads `sprocket.events` in a consumer group
//!   of its own and writes one [`Due`] delivery per event and webhook to
//!   `sprocket.webhooks` (keyed by webhook id), committing an event's offset
//!   only once its deliveries are acknowledged;
//! * the **sender** ([`sender`]) reads `sprocket.webhooks`, holds each
//!   delivery until it is due, POSTs it, and writes the next attempt (or the
//!   dead letter) back to Kafka before the delivery's offset is committed;
//!   offsets are committed in order per partition, never past a delivery
//!   still pending, so a crash repeats attempts but loses none.
//!
//! Every attempt is recorded in the database beside the projections
//! (`GET /v1/webhooks/{id}/deliveries`).

mod fanout;
mod sender;
pub mod sign;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sprocket_platform::bus::Bus;
use sprocket_platform::config::Config;
use sprocket_projections::Projections;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::error::ServerError;

/// One delivery of one event to one webhook, as it waits on
/// `sprocket.webhooks` (JSON, keyed by webhook id).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Due {
    pub webhook_id: String,
    pub event_id: String,
    pub job_id: String,
    pub event_type: String,
    /// The event envelope, the body of every attempt.
    pub event: serde_json::Value,
    /// This attempt's number, from 1.
    pub attempt: u32,
    /// When the first attempt was due: the delivery is given up on
    /// `webhooks.max_age_s` after it.
    pub first_due_at: DateTime<Utc>,
    /// Not to be attempted before.
    pub due_at: DateTime<Utc>,
}

/// Starts both loops; they end when `stop` turns true.
pub async fn start(
    cfg: Arc<Config>,
    projections: Projections,
    stop: watch::Receiver<bool>,
) -> Result<Vec<JoinHandle<()>>, ServerError> {
    let bus = Bus::connect(&cfg, crate::services::producer_name("webhooks")).await?;
    let fanout = fanout::FanOut::new(bus.clone(), projections.clone(), &cfg)?;
    let sender = sender::Sender::new(bus, projections, cfg.webhooks.clone())?;
    Ok(vec![
        tokio::spawn(fanout.run(stop.clone())),
        tokio::spawn(sender.run(stop)),
    ])
}

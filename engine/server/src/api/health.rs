use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use rdkafka::producer::Producer;
use serde_json::{json, Value};

use super::{ApiError, AppState};

/// The process is alive.
pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// The projections answer and Kafka's metadata can be read.
pub async fn readyz(State(s): State<AppState>) -> Result<Json<Value>, ApiError> {
    let p = s.projections.clone();
    tokio::task::spawn_blocking(move || p.ping())
        .await
        .map_err(ApiError::unavailable)??;
    let producer = s.producer.clone();
    let topic = s.bus.topics.events();
    tokio::task::spawn_blocking(move || {
        producer
            .client()
            .fetch_metadata(Some(&topic), Duration::from_secs(2))
    })
    .await
    .map_err(ApiError::unavailable)?
    .map_err(|e| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            format!("kafka: {e}"),
        )
    })?;
    Ok(Json(json!({"status": "ready"})))
}

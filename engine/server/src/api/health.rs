use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use rdkafka::producer::Producer;
use serde_json::{json, Value};

use super::error::{AuthErrors, ErrorBody};
use super::view::Health;
use super::{ApiError, AppState};
use crate::auth::{Admin, Authorized};

/// The process is alive.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "Alive: `{\"status\": \"ok\"}`", body = Health)))]
pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// Prometheus metrics in the text exposition format, for an admin key; a
/// scraper without one reads them on `metrics.addr`, an address of their own.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses(
        (status = 200, description = "Prometheus text format 0.0.4",
            body = String, content_type = "text/plain"),
        AuthErrors,
        (status = 503, description = "The projections do not answer", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn metrics(_: Authorized<Admin>) -> impl axum::response::IntoResponse {
    sprocket_platform::metrics::exposition()
}

/// The projections answer and Kafka's metadata can be read.
#[utoipa::path(get, path = "/readyz", tag = "operations", responses(
    (status = 200, description = "Ready: `{\"status\": \"ready\"}`", body = Health),
    (status = 503, description = "The projections or Kafka do not answer", body = ErrorBody),
))]
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

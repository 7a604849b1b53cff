use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};
use sprocket_core::JobStatus;

use super::error::{AuthErrors, ErrorBody};
use super::view::PhaseList;
use super::{ApiError, AppState};
use crate::auth::{Authorized, Read};

/// `GET /v1/phases`: per phase, backlog (lag), jobs in flight, group members, the
/// age of the oldest waiting item, recent throughput and KEDA's replica plan.
#[utoipa::path(get, path = "/v1/phases", tag = "operations",
    responses(
        (status = 200, description = "Per phase, in pipeline order", body = PhaseList),
        AuthErrors,
        (status = 503, description = "Kafka or the projections do not answer", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
/// Counts of every tenant's work, no job's content: any reader may see them.
pub async fn list(State(s): State<AppState>, _: Authorized<Read>) -> Result<Json<Value>, ApiError> {
    let probe = s.lag.clone();
    let mut phases = tokio::task::spawn_blocking(move || probe.read())
        .await
        .map_err(ApiError::unavailable)?
        .map_err(|e| ApiError::unavailable(format!("kafka: {e}")))?;
    let p = s.projections.clone();
    let running = tokio::task::spawn_blocking(move || p.jobs(Some(JobStatus::Running), 1000, None))
        .await
        .map_err(ApiError::unavailable)??;
    let mut out = Vec::new();
    for v in phases.drain(..) {
        let in_flight = running
            .items
            .iter()
            .filter(|j| j.phase == Some(v.phase))
            .count();
        let mut value = serde_json::to_value(&v).expect("phase view serializes");
        value["in_flight"] = json!(in_flight);
        out.push(value);
    }
    Ok(Json(json!({"phases": out})))
}

//! Commands on a job: cancel.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use sprocket_core::event::JobCancelRequested;
use sprocket_core::{Envelope, EventBody};

use super::jobs::{job_id, load};
use super::{ApiError, AppState};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CancelBody {
    reason: Option<String>,
}

/// `POST /v1/jobs/{id}/cancel`: records `JobCancelRequested` on `sprocket.events`
/// and on `sprocket.cancellations`, where every worker hears it. A queued job
/// never starts; a running phase is stopped and its partial outputs removed.
pub async fn cancel(
    State(s): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let id = job_id(&id)?;
    let req: CancelBody = if body.is_empty() {
        CancelBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            ApiError::bad_request("invalid_request", format!("invalid cancel request: {e}"))
        })?
    };
    let job = load(&s, &id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("job {id} not found")))?;
    if job.status.is_terminal() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "job_finished",
            format!(
                "job {id} is {}; only queued or running jobs can be cancelled",
                job.status
            ),
        ));
    }
    let env = Envelope::new(
        id.clone(),
        s.bus.producer_name.clone(),
        job.attempts().max(1),
        EventBody::JobCancelRequested(JobCancelRequested { reason: req.reason }),
    );
    for topic in [s.bus.topics.cancellations(), s.bus.topics.events()] {
        let record = s
            .bus
            .record(&topic, &env)
            .await
            .map_err(ApiError::unavailable)?;
        s.bus
            .send(&s.producer, &record)
            .await
            .map_err(ApiError::unavailable)?;
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"id": id, "status": job.status, "cancel_requested": true})),
    ))
}

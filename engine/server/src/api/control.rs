//! Commands on a job: cancel and retry (redrive).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use sprocket_core::event::{JobCancelRequested, JobRedriven};
use sprocket_core::machine::{self, Action, Refusal};
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
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    super::error::json_body(&headers, &body)?;
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
    machine::request_cancel(&job).map_err(refused)?;
    let env = Envelope::new(
        id.clone(),
        s.bus.producer_name.clone(),
        job.attempts().max(1),
        EventBody::JobCancelRequested(JobCancelRequested { reason: req.reason }),
    );
    for topic in [s.bus.topics.cancellations(), s.bus.topics.events()] {
        s.publish(&topic, &env).await?;
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"id": id, "status": job.status, "cancel_requested": true})),
    ))
}

/// `POST /v1/jobs/{id}/retry`: restarts a failed (or dead-lettered) job from the
/// phase that failed, keeping its history: `JobRedriven` on `sprocket.events` and
/// the phase's work item, rebuilt from the projection, on `sprocket.<phase>`.
pub async fn retry(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let id = job_id(&id)?;
    let job = load(&s, &id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("job {id} not found")))?;
    let item = match machine::redrive(&job).map_err(refused)? {
        Action::Redrive(item) => item,
        other => {
            return Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                format!("a redrive was decided as {other:?}"),
            ))
        }
    };
    let phase = item.phase;
    let producer = s.bus.producer_name.clone();
    let redriven = Envelope::new(
        id.clone(),
        producer.clone(),
        1,
        EventBody::JobRedriven(JobRedriven { phase }),
    );
    let work = Envelope::new(id.clone(), producer, 1, EventBody::WorkItem(item));
    s.publish(&s.bus.topics.events(), &redriven).await?;
    s.publish(&s.bus.topics.phase(phase), &work).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"id": id, "status": "queued", "phase": phase})),
    ))
}

/// A command the core refused: 409 with its code and reason.
fn refused(r: Refusal) -> ApiError {
    ApiError::new(StatusCode::CONFLICT, r.code, r.message)
}

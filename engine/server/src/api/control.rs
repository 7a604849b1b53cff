//! Commands on a job: cancel and retry (redrive).

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use sprocket_core::event::{JobCancelRequested, JobRedriven};
use sprocket_core::machine::{self, Action, Refusal};
use sprocket_core::{Envelope, EventBody};
use sprocket_projections::WorkClaim;

use super::error::{AuthErrors, ErrorBody, JobErrors};
use super::jobs::{job_id, load};
use super::view::{CancelAccepted, RetryAccepted};
use super::{ApiError, AppState};
use crate::auth::{Authorized, Write};

/// The optional body of a cancel request.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelBody {
    /// Recorded on the job's `JobCancelRequested`.
    reason: Option<String>,
}

/// `POST /v1/jobs/{id}/cancel`: records `JobCancelRequested` on `sprocket.events`
/// and on `sprocket.cancellations`, where every worker hears it. A queued job
/// never starts; a running phase is stopped and its partial outputs removed.
#[utoipa::path(post, path = "/v1/jobs/{id}/cancel", tag = "control",
    params(("id" = String, Path, description = "The job id", pattern = "^[A-Za-z0-9_-]{1,64}$")),
    request_body(content = Option<CancelBody>, content_type = "application/json",
        description = "Optional; an empty body needs no content type"),
    responses(
        (status = 202, description = "The cancellation is recorded", body = CancelAccepted),
        (status = 409, description = "The job cannot be cancelled (it has finished)", body = ErrorBody),
        (status = 413, description = "The body is over the limit", body = ErrorBody),
        (status = 415, description = "The body is not JSON", body = ErrorBody),
        JobErrors,
        AuthErrors,
    ),
    security(("bearer" = [])),
)]
pub async fn cancel(
    State(s): State<AppState>,
    Authorized(caller, _): Authorized<Write>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let body = body?;
    let id = job_id(&id)?;
    let req: CancelBody = if body.is_empty() {
        CancelBody::default()
    } else {
        super::error::read_json(&headers, &body, "cancel request")?
    };
    let job = load(&s, &caller, &id).await?;
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
#[utoipa::path(post, path = "/v1/jobs/{id}/retry", tag = "control",
    params(("id" = String, Path, description = "The job id", pattern = "^[A-Za-z0-9_-]{1,64}$")),
    responses(
        (status = 202, description = "Queued again at the phase that failed", body = RetryAccepted),
        (status = 409, description = "The job cannot be retried: it has not failed (`not_retryable`), or retention removed its working data (`data_expired`)", body = ErrorBody),
        (status = 429, description = "The job's tenant has as many jobs queued or running as its quota allows; `Retry-After` says when to try again", body = ErrorBody),
        (status = 500, description = "The core decided something other than a redrive", body = ErrorBody),
        JobErrors,
        AuthErrors,
    ),
    security(("bearer" = [])),
)]
pub async fn retry(
    State(s): State<AppState>,
    Authorized(caller, _): Authorized<Write>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let id = job_id(&id)?;
    let job = load(&s, &caller, &id).await?;
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
    // A retried job is active again: it counts against its tenant's quota
    // as a new submission does.
    let tenant = job.tenant.as_deref().unwrap_or(&s.config.tenants.default);
    super::quota::active_jobs(&s, tenant).await?;
    // The janitor may be removing the job's working data right now: whoever
    // takes the job's claim first wins, and a retry that loses is refused.
    let (p, job_id) = (s.projections.clone(), id.to_string());
    let claimed = tokio::task::spawn_blocking(move || {
        p.claim_work(&job_id, WorkClaim::Retry, chrono::Utc::now())
    })
    .await
    .map_err(ApiError::unavailable)??;
    if !claimed {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "data_expired",
            format!(
                "job {id}'s working data is being removed under retention.work; submit it again"
            ),
        ));
    }
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

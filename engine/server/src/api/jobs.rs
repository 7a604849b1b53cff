use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use sprocket_core::bounds::MAX_SUBMISSION_BYTES;
use sprocket_core::event::Submitted;
use sprocket_core::stored::Pin;
use sprocket_core::{CoreError, Envelope, EventBody, JobId, Phase, RecipeRef, Source};

mod list;

pub use list::{__path_list, list};

use super::error::{AuthErrors, ErrorBody, JobErrors};
use super::view::{EventList, Submitted as SubmittedView};
use super::{ApiError, AppState, JobView};
use crate::auth::{Authorized, Caller, Read, Write};

/// `POST /v1/jobs` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitJob {
    /// 1–64 of `A-Z a-z 0-9 _ -`; generated when absent. Submitting a known
    /// id again changes nothing.
    #[schema(pattern = "^[A-Za-z0-9_-]{1,64}$")]
    job_id: Option<String>,
    source: Source,
    /// A recipe's name (built-in: `highlight`, `minimal`; or stored with
    /// `PUT /v1/recipes/{name}`) or a recipe inline; `highlight` when absent.
    #[serde(default)]
    recipe: RecipeRef,
    /// A stored recipe's version to run (its latest when absent).
    #[schema(minimum = 1)]
    recipe_version: Option<u32>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

pub(super) fn job_id(id: &str) -> Result<JobId, ApiError> {
    JobId::parse(id).map_err(|e| ApiError::bad_request("invalid_job_id", e.to_string()))
}

/// Job `id`, whoever it belongs to.
async fn load_any(s: &AppState, id: &JobId) -> Result<Option<sprocket_core::Job>, ApiError> {
    let (p, id) = (s.projections.clone(), id.clone());
    Ok(tokio::task::spawn_blocking(move || p.job(&id))
        .await
        .map_err(ApiError::unavailable)??)
}

/// Job `id` if `caller` may see it: another tenant's job is as good as
/// absent (404, never 403, so ids of other tenants cannot be probed).
pub(super) async fn load(
    s: &AppState,
    caller: &Caller,
    id: &JobId,
) -> Result<sprocket_core::Job, ApiError> {
    load_any(s, id)
        .await?
        .filter(|job| caller.sees(job))
        .ok_or_else(|| ApiError::not_found(format!("job {id} not found")))
}

/// Submits a job: validates it, then produces `JobSubmitted` to the intake.
/// Submitting a known job id again changes nothing.
#[utoipa::path(post, path = "/v1/jobs", tag = "jobs",
    request_body(content = SubmitJob, content_type = "application/json"),
    responses(
        (status = 202, description = "Queued (or already known)", body = SubmittedView),
        (status = 400, description = "Not a valid submission, or over a limit", body = ErrorBody),
        AuthErrors,
        (status = 404, description = "The upload it names is not the tenant's", body = ErrorBody),
        (status = 409, description = "The job id is another tenant's", body = ErrorBody),
        (status = 410, description = "Retention removed the upload it names (`upload_expired`)", body = ErrorBody),
        (status = 413, description = "The body is over the submission limit", body = ErrorBody),
        (status = 415, description = "The body is not JSON", body = ErrorBody),
        (status = 422, description = "A valid submission that cannot be run (unknown recipe, bad source)", body = ErrorBody),
        (status = 429, description = "The tenant has as many jobs queued or running as its quota allows; `Retry-After` says when to try again", body = ErrorBody),
        (status = 503, description = "Kafka or the projections do not answer", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn submit(
    State(s): State<AppState>,
    Authorized(caller, _): Authorized<Write>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let body = body?;
    super::error::json_body(&headers, &body)?;
    if body.len() > MAX_SUBMISSION_BYTES {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!(
                "the submission is {} bytes, over the limit of {MAX_SUBMISSION_BYTES}",
                body.len()
            ),
        ));
    }
    let req: SubmitJob = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request("invalid_request", format!("invalid job submission: {e}"))
    })?;
    let id = match &req.job_id {
        Some(id) => job_id(id)?,
        None => JobId::generate(),
    };
    let submitted = Submitted {
        source: req.source,
        recipe: req.recipe,
        recipe_version: req.recipe_version,
        labels: req.labels,
        tenant: Some(caller.tenant.clone()),
    };
    // A stored recipe's name goes to the intake as that recipe inline with
    // its version: the job runs what this API saw, whatever is stored next.
    let submitted = match s
        .recipes
        .pin(&submitted)
        .await
        .map_err(ApiError::unavailable)?
    {
        Pin::Pinned(pinned) => pinned,
        Pin::Unchanged => submitted,
        Pin::Unknown => {
            let e = sprocket_core::stored::unknown(&submitted);
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                e.code(),
                e.to_string(),
            ));
        }
    };
    // The ingest worker decides the same way; refusing here saves a round trip.
    s.config
        .limits
        .bounds()
        .submission(&submitted)
        .map_err(|e| {
            let status = match e {
                CoreError::OverLimit(_) => StatusCode::BAD_REQUEST,
                _ => StatusCode::UNPROCESSABLE_ENTITY,
            };
            ApiError::new(status, e.code(), e.to_string())
        })?;
    if let Some(job) = load_any(&s, &id).await? {
        if !caller.sees(&job) {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "job_id_taken",
                format!("job id {id} is taken: choose another, or leave it out"),
            ));
        }
        return Ok((
            StatusCode::ACCEPTED,
            Json(json!({"id": id, "status": job.status})),
        ));
    }
    if let Source::Upload(upload) = &submitted.source {
        super::uploads::check_owner(&s, &caller, upload).await?;
    }
    super::quota::active_jobs(&s, &caller.tenant).await?;
    if let Source::Upload(upload) = &submitted.source {
        super::uploads::claim(&s, upload).await?;
    }
    let env = Envelope::new(
        id.clone(),
        s.bus.producer_name.clone(),
        1,
        EventBody::JobSubmitted(submitted),
    );
    s.publish(&s.bus.topics.phase(Phase::Ingest), &env).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"id": id, "status": "queued"})),
    ))
}

/// `GET /v1/jobs/{id}`.
#[utoipa::path(get, path = "/v1/jobs/{id}", tag = "jobs",
    params(("id" = String, Path, description = "The job id", pattern = "^[A-Za-z0-9_-]{1,64}$")),
    responses(
        (status = 200, description = "The job", body = JobView),
        JobErrors,
        AuthErrors,
    ),
    security(("bearer" = [])),
)]
pub async fn show(
    State(s): State<AppState>,
    Authorized(caller, _): Authorized<Read>,
    Path(id): Path<String>,
) -> Result<Json<JobView>, ApiError> {
    let id = job_id(&id)?;
    let job = load(&s, &caller, &id).await?;
    Ok(Json(JobView::from(&job)))
}

/// `GET /v1/jobs/{id}/events`: the job's history in order.
#[utoipa::path(get, path = "/v1/jobs/{id}/events", tag = "jobs",
    params(("id" = String, Path, description = "The job id", pattern = "^[A-Za-z0-9_-]{1,64}$")),
    responses(
        (status = 200, description = "The job's events in order", body = EventList),
        JobErrors,
        AuthErrors,
    ),
    security(("bearer" = [])),
)]
pub async fn events(
    State(s): State<AppState>,
    Authorized(caller, _): Authorized<Read>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = job_id(&id)?;
    load(&s, &caller, &id).await?;
    let (p, jid) = (s.projections.clone(), id.clone());
    let events = tokio::task::spawn_blocking(move || p.events(&jid))
        .await
        .map_err(ApiError::unavailable)??;
    Ok(Json(json!({"events": events})))
}

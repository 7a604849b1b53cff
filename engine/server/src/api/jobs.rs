use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use sprocket_core::bounds::MAX_SUBMISSION_BYTES;
use sprocket_core::event::Submitted;
use sprocket_core::{CoreError, Envelope, EventBody, JobId, JobStatus, Phase, RecipeRef, Source};

use super::error::{ErrorBody, JobErrors};
use super::view::{EventList, JobPage, Submitted as SubmittedView};
use super::{ApiError, AppState, JobView};

/// `POST /v1/jobs` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitJob {
    /// 1–64 of `A-Z a-z 0-9 _ -`; generated when absent. Submitting a known
    /// id again changes nothing.
    #[schema(pattern = "^[A-Za-z0-9_-]{1,64}$")]
    job_id: Option<String>,
    source: Source,
    /// A built-in recipe's name (`highlight`, `minimal`) or a recipe inline;
    /// `highlight` when absent.
    #[serde(default)]
    recipe: RecipeRef,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

pub(super) fn job_id(id: &str) -> Result<JobId, ApiError> {
    JobId::parse(id).map_err(|e| ApiError::bad_request("invalid_job_id", e.to_string()))
}

pub(super) async fn load(s: &AppState, id: &JobId) -> Result<Option<sprocket_core::Job>, ApiError> {
    let (p, id) = (s.projections.clone(), id.clone());
    Ok(tokio::task::spawn_blocking(move || p.job(&id))
        .await
        .map_err(ApiError::unavailable)??)
}

/// Submits a job: validates it, then produces `JobSubmitted` to the intake.
/// Submitting a known job id again changes nothing.
#[utoipa::path(post, path = "/v1/jobs", tag = "jobs",
    request_body(content = SubmitJob, content_type = "application/json"),
    responses(
        (status = 202, description = "Queued (or already known)", body = SubmittedView),
        (status = 400, description = "Not a valid submission, or over a limit", body = ErrorBody),
        (status = 413, description = "The body is over the submission limit", body = ErrorBody),
        (status = 415, description = "The body is not JSON", body = ErrorBody),
        (status = 422, description = "A valid submission that cannot be run (unknown recipe, bad source)", body = ErrorBody),
        (status = 503, description = "Kafka or the projections do not answer", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn submit(
    State(s): State<AppState>,
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
        labels: req.labels,
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
    if let Some(job) = load(&s, &id).await? {
        return Ok((
            StatusCode::ACCEPTED,
            Json(json!({"id": id, "status": job.status})),
        ));
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

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only jobs with this status.
    #[param(value_type = Option<JobStatus>)]
    status: Option<String>,
    /// Page size, 1–500 (50 when absent; values outside are clamped).
    limit: Option<u32>,
    /// The `next` of the previous page.
    after: Option<String>,
}

/// `GET /v1/jobs?status=&limit=&after=`: newest first, keyset-paginated.
#[utoipa::path(get, path = "/v1/jobs", tag = "jobs", params(ListQuery),
    responses(
        (status = 200, description = "One page of jobs", body = JobPage),
        (status = 400, description = "A bad query (unknown status or key, bad number, a cursor no page handed out)", body = ErrorBody),
        (status = 503, description = "The projections do not answer", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn list(
    State(s): State<AppState>,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = q?;
    let status = match q.status.as_deref() {
        Some(st) => Some(
            st.parse::<JobStatus>()
                .map_err(|e| ApiError::bad_request("invalid_status", e))?,
        ),
        None => None,
    };
    let limit = q.limit.unwrap_or(50).clamp(1, 500);
    let p = s.projections.clone();
    let page = tokio::task::spawn_blocking(move || p.jobs(status, limit, q.after.as_deref()))
        .await
        .map_err(ApiError::unavailable)??;
    let jobs: Vec<JobView> = page.items.iter().map(JobView::from).collect();
    Ok(Json(json!({"jobs": jobs, "next": page.next})))
}

/// `GET /v1/jobs/{id}`.
#[utoipa::path(get, path = "/v1/jobs/{id}", tag = "jobs",
    params(("id" = String, Path, description = "The job id", pattern = "^[A-Za-z0-9_-]{1,64}$")),
    responses(
        (status = 200, description = "The job", body = JobView),
        JobErrors,
    ),
    security(("bearer" = [])),
)]
pub async fn show(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<JobView>, ApiError> {
    let id = job_id(&id)?;
    let job = load(&s, &id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("job {id} not found")))?;
    Ok(Json(JobView::from(&job)))
}

/// `GET /v1/jobs/{id}/events`: the job's history in order.
#[utoipa::path(get, path = "/v1/jobs/{id}/events", tag = "jobs",
    params(("id" = String, Path, description = "The job id", pattern = "^[A-Za-z0-9_-]{1,64}$")),
    responses(
        (status = 200, description = "The job's events in order", body = EventList),
        JobErrors,
    ),
    security(("bearer" = [])),
)]
pub async fn events(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = job_id(&id)?;
    let (p, jid) = (s.projections.clone(), id.clone());
    let events = tokio::task::spawn_blocking(move || p.events(&jid))
        .await
        .map_err(ApiError::unavailable)??;
    if events.is_empty() && load(&s, &id).await?.is_none() {
        return Err(ApiError::not_found(format!("job {id} not found")));
    }
    Ok(Json(json!({"events": events})))
}

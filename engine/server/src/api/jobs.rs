use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use sprocket_core::bounds::MAX_SUBMISSION_BYTES;
use sprocket_core::event::Submitted;
use sprocket_core::{CoreError, Envelope, EventBody, JobId, JobStatus, Phase, RecipeRef, Source};

use super::{ApiError, AppState, JobView};

/// `POST /v1/jobs` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SubmitJob {
    job_id: Option<String>,
    source: Source,
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
pub async fn submit(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    status: Option<String>,
    limit: Option<u32>,
    after: Option<String>,
}

/// `GET /v1/jobs?status=&limit=&after=`: newest first, keyset-paginated.
pub async fn list(
    State(s): State<AppState>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
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

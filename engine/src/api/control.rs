//! Commands on a job: cancel and retry (redrive).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use sprocket_core::event::{JobCancelRequested, JobRedriven};
use sprocket_core::{Envelope, EventBody, JobStatus, WorkItem};

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
    let conflict = |m: String| ApiError::new(StatusCode::CONFLICT, "not_retryable", m);
    if job.status != JobStatus::Failed {
        return Err(conflict(format!(
            "job {id} is {}; only failed jobs can be retried",
            job.status
        )));
    }
    let recipe = job
        .resolved_recipe()
        .ok_or_else(|| conflict(format!("job {id} has no valid recipe to run again")))?;
    let (Some(phase), Some(source), Some(submitted_at)) =
        (job.phase, job.source.clone(), job.submitted_at)
    else {
        return Err(conflict(format!(
            "job {id} failed before any phase ran; submit it again"
        )));
    };
    let item = WorkItem {
        job_id: id.clone(),
        phase,
        recipe,
        source,
        labels: job.labels.clone(),
        submitted_at,
        artifacts: job.artifacts.clone(),
        media: job.media.clone(),
        phases: job
            .phases
            .iter()
            .filter(|(p, t)| **p < phase && t.finished_at.is_some())
            .map(|(p, t)| (*p, t.clone()))
            .collect(),
    };
    let producer = s.bus.producer_name.clone();
    let redriven = Envelope::new(
        id.clone(),
        producer.clone(),
        1,
        EventBody::JobRedriven(JobRedriven { phase }),
    );
    let work = Envelope::new(id.clone(), producer, 1, EventBody::WorkItem(Box::new(item)));
    s.publish(&s.bus.topics.events(), &redriven).await?;
    s.publish(&s.bus.topics.phase(phase), &work).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"id": id, "status": "queued", "phase": phase})),
    ))
}

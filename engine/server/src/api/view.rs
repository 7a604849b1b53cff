//! The JSON shape of a job for readers.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;
use sprocket_core::{ErrorInfo, Job, JobStatus, MediaInfo, Phase, PhaseTimes, RecipeRef, Source};
use utoipa::ToSchema;

/// An output of a job, with the URL that downloads it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ArtifactView {
    pub name: String,
    pub bytes: u64,
    pub sha256: String,
    pub content_type: String,
    pub url: String,
    /// What retention did to it, when it acted: `archived` (served from the
    /// archive), `tiered` (served from the cold store `to`) or `expired`
    /// (`410 Gone`), each with `at` and `rule`; absent while it is where its
    /// phase wrote it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retention: Option<sprocket_core::retention::Kept>,
}

/// A job as its readers see it.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobView {
    pub id: String,
    pub status: JobStatus,
    pub phase: Option<Phase>,
    /// Overall progress, 0–100.
    pub progress: f64,
    pub attempts: u32,
    pub submitted_at: Option<chrono::DateTime<chrono::Utc>>,
    pub updated_at: Option<chrono::DateTime<chrono::Utc>>,
    pub source: Option<Source>,
    pub recipe: Option<RecipeRef>,
    /// The version of the stored recipe the job runs (`recipe` is then that
    /// version inline); absent for built-in and inline recipes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recipe_version: Option<u32>,
    pub labels: BTreeMap<String, String>,
    /// Per phase that started (`ingest`, `analyze`, `render`, `archive`).
    #[schema(value_type = BTreeMap<String, PhaseTimes>)]
    pub phases: BTreeMap<Phase, PhaseTimes>,
    pub media: Option<MediaInfo>,
    pub artifacts: Vec<ArtifactView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorInfo>,
}

impl From<&Job> for JobView {
    fn from(j: &Job) -> Self {
        JobView {
            id: j.id.to_string(),
            status: j.status,
            phase: j.phase,
            progress: (j.progress() * 10.0).round() / 10.0,
            attempts: j.attempts(),
            submitted_at: j.submitted_at,
            updated_at: j.updated_at,
            source: j.source.clone(),
            recipe: j.recipe.clone(),
            recipe_version: j.recipe_version,
            labels: j.labels.clone(),
            phases: j.phases.clone(),
            media: j.media.clone(),
            artifacts: j
                .artifacts
                .values()
                .map(|a| ArtifactView {
                    name: a.name.clone(),
                    bytes: a.bytes,
                    sha256: a.sha256.clone(),
                    content_type: a.content_type.clone(),
                    url: format!("/v1/jobs/{}/artifacts/{}", j.id, a.name),
                    retention: j.kept.get(&a.name).cloned(),
                })
                .collect(),
            error: j.error.clone(),
        }
    }
}

/// `202` to `POST /v1/jobs`: the job's id and status (`queued` when new; a
/// known job id answers with that job's status and changes nothing).
#[derive(Debug, Serialize, ToSchema)]
pub struct Submitted {
    pub id: String,
    pub status: JobStatus,
}

/// `GET /v1/jobs`: one page, newest first; `next` is the `after` of the next page.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobPage {
    pub jobs: Vec<JobView>,
    pub next: Option<String>,
}

/// `GET /v1/jobs/{id}/events`: the job's events (envelopes) in order.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventList {
    #[schema(value_type = Vec<Object>)]
    pub events: Vec<sprocket_core::Envelope>,
}

/// `202` to a cancel request.
#[derive(Debug, Serialize, ToSchema)]
pub struct CancelAccepted {
    pub id: String,
    /// The job's status when the request was recorded.
    pub status: JobStatus,
    pub cancel_requested: bool,
}

/// `202` to a retry: the job is queued again at the phase that failed.
#[derive(Debug, Serialize, ToSchema)]
pub struct RetryAccepted {
    pub id: String,
    pub status: JobStatus,
    pub phase: Phase,
}

/// `201` to `POST /v1/uploads`: the id to submit as `{"upload": id}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct UploadCreated {
    pub upload: String,
    pub bytes: u64,
    pub sha256: String,
}

/// `GET /v1/phases`: per phase, its lag, partitions, retry topic, group
/// members, oldest waiting item, throughput, replica plan and `in_flight`.
#[derive(Debug, Serialize, ToSchema)]
pub struct PhaseList {
    #[schema(value_type = Vec<Object>)]
    pub phases: Vec<Value>,
}

/// `/healthz` and `/readyz`: `ok` or `ready`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    pub status: String,
}

//! The JSON shape of a job for readers.

use std::collections::BTreeMap;

use serde::Serialize;
use sprocket_core::{ErrorInfo, Job, JobStatus, MediaInfo, Phase, PhaseTimes, RecipeRef, Source};

#[derive(Debug, Serialize)]
pub struct ArtifactView {
    pub name: String,
    pub bytes: u64,
    pub sha256: String,
    pub content_type: String,
    pub url: String,
}

#[derive(Debug, Serialize)]
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
    pub labels: BTreeMap<String, String>,
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
                })
                .collect(),
            error: j.error.clone(),
        }
    }
}

//! Work items: what travels on a phase topic from one phase to the next.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::event::{Artifact, MediaInfo};
use crate::{JobId, Phase, PhaseTimes, Recipe, Source};

/// The routing slip in flight: the resolved recipe, the source, and everything the
/// earlier phases produced that the later ones need.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkItem {
    pub job_id: JobId,
    /// The phase this item is due for.
    pub phase: Phase,
    pub recipe: Recipe,
    pub source: Source,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    pub submitted_at: DateTime<Utc>,
    /// Outputs of earlier phases by name (`source`, `analysis.json`, …).
    #[serde(default)]
    pub artifacts: BTreeMap<String, Artifact>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media: Option<MediaInfo>,
    /// When each earlier phase ran.
    #[serde(default)]
    pub phases: BTreeMap<Phase, PhaseTimes>,
}

impl WorkItem {
    /// The same item, handed on to `next` after `done` finished with `artifacts`.
    pub fn forward(
        &self,
        next: Phase,
        times: PhaseTimes,
        artifacts: impl IntoIterator<Item = Artifact>,
    ) -> WorkItem {
        let mut item = self.clone();
        item.phases.insert(self.phase, times);
        item.phase = next;
        for a in artifacts {
            item.artifacts.insert(a.name.clone(), a);
        }
        item
    }

    /// The parameters of this item's phase in its recipe, without the keys the
    /// runtime owns (`retry`, `timeout_s`).
    pub fn params(&self) -> serde_json::Map<String, serde_json::Value> {
        crate::retry::phase_params(&self.step_params())
    }

    /// Every parameter of this item's step, runtime keys included.
    pub fn step_params(&self) -> serde_json::Map<String, serde_json::Value> {
        self.recipe
            .step(self.phase)
            .map(|s| s.params.clone())
            .unwrap_or_default()
    }

    /// The object-key prefix every output of this job lives under.
    pub fn prefix(&self) -> String {
        job_prefix(&self.job_id)
    }
}

/// `uploads/<upload id>`: where `POST /v1/uploads` stores a file, which
/// ingest copies and retention removes.
pub fn upload_key(upload: &str) -> String {
    format!("uploads/{upload}")
}

/// `jobs/<job id>/`: outputs go to deterministic keys under it, so redone work
/// overwrites rather than duplicates.
pub fn job_prefix(job: &JobId) -> String {
    format!("jobs/{job}/")
}

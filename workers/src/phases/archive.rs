//! Archive: copy the outputs to the archive store, verify each sha256 after the
//! copy, and write the job's `manifest.json`.

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde_json::json;
use sprocket_core::event::{Artifact, MediaArchived};
use sprocket_core::{EventBody, Phase, PhaseTimes, WorkItem};
use sprocket_platform::store;

use super::{output_key, Done, PhaseWork};
use crate::{Cx, WorkError};

const PHASE: Phase = Phase::Archive;

pub struct Archive;

#[async_trait]
impl PhaseWork for Archive {
    fn phase(&self) -> Phase {
        PHASE
    }

    async fn run(&self, item: &WorkItem, cx: &Cx) -> Result<Done, WorkError> {
        let started_at = chrono::Utc::now();
        let outputs: Vec<&Artifact> = item
            .artifacts
            .values()
            .filter(|a| a.name != "source")
            .collect();
        let mut archived = Vec::new();
        let mut progress = cx.progress();
        for (i, a) in outputs.iter().enumerate() {
            archived.push(copy_verified(cx, a).await?);
            progress(100.0 * (i + 1) as f64 / (outputs.len() + 1) as f64);
        }
        let manifest = manifest(item, &archived, started_at);
        let body =
            serde_json::to_vec_pretty(&manifest).map_err(|e| WorkError::internal(PHASE, e))?;
        let key = output_key(item, "manifest.json");
        let w = store::put_bytes(&cx.stores.archive, &key, body.clone())
            .await
            .map_err(WorkError::store(PHASE))?;
        // A copy in the working store, so the status API serves it like any output.
        store::put_bytes(&cx.stores.work, &key, body)
            .await
            .map_err(WorkError::store(PHASE))?;
        progress(100.0);
        let manifest = Artifact {
            name: "manifest.json".into(),
            key,
            bytes: w.bytes,
            sha256: w.sha256,
            content_type: "application/json".into(),
        };
        Ok(Done {
            event: EventBody::MediaArchived(MediaArchived {
                artifacts: archived,
                manifest,
            }),
            artifacts: vec![],
            media: None,
        })
    }
}

/// Streams one output into the archive store and checks the archived bytes.
async fn copy_verified(cx: &Cx, a: &Artifact) -> Result<Artifact, WorkError> {
    let (_, stream) = store::get_stream(&cx.stores.work, &a.key)
        .await
        .map_err(WorkError::store(PHASE))?;
    let written = store::put_stream(&cx.stores.archive, &a.key, Box::pin(stream), u64::MAX)
        .await
        .map_err(WorkError::store(PHASE))?;
    let reread = store::digest(&cx.stores.archive, &a.key)
        .await
        .map_err(WorkError::store(PHASE))?;
    if written.sha256 != a.sha256 || reread.sha256 != a.sha256 || reread.bytes != a.bytes {
        return Err(WorkError::internal(
            PHASE,
            format!(
                "checksum mismatch archiving {}: expected {} ({} bytes), archived {} ({} bytes)",
                a.name, a.sha256, a.bytes, reread.sha256, reread.bytes
            ),
        ));
    }
    Ok(a.clone())
}

fn manifest(
    item: &WorkItem,
    archived: &[Artifact],
    started_at: chrono::DateTime<chrono::Utc>,
) -> serde_json::Value {
    let mut phases: BTreeMap<Phase, PhaseTimes> = item.phases.clone();
    phases.insert(
        PHASE,
        PhaseTimes {
            started_at: Some(started_at),
            finished_at: Some(chrono::Utc::now()),
            attempts: 1,
        },
    );
    let source = item.artifacts.get("source");
    json!({
        "job_id": item.job_id,
        "recipe": item.recipe,
        "labels": item.labels,
        "submitted_at": item.submitted_at,
        "source": {
            "kind": item.source.kind(),
            "value": item.source.redacted().value(),
            "bytes": source.map(|s| s.bytes),
            "sha256": source.map(|s| &s.sha256),
            "media": item.media,
        },
        "artifacts": archived.iter().map(|a| json!({
            "name": a.name, "key": a.key, "bytes": a.bytes, "sha256": a.sha256, "content_type": a.content_type,
        })).collect::<Vec<_>>(),
        "phases": phases,
    })
}

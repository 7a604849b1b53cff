//! Analyze: shots, per-shot keyframes, faces, quality and highlight scores, as
//! `analysis.json`, and a thumbnail of each shot's keyframe (`shot-001.jpg`,
//! …, listed per shot in `analysis.json`), each an output of the job.
//!
//! A shot whose thumbnail could not be made (a frame the encoder refused)
//! does not fail the job: `analysis.json` gives the shot `"thumbnail": null`
//! and the reason in `thumbnail_error`, and a warning names the job and the
//! shot. A thumbnail that cannot be stored fails the attempt, like the
//! analysis itself, and is retried.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use futures::{StreamExt, TryStreamExt};
use sprocket_core::event::{AnalysisSummary, Artifact, MediaAnalyzed};
use sprocket_core::{EventBody, Phase, WorkItem};
use sprocket_media::analyze::{analyze, AnalyzeParams};
use sprocket_media::faces::{Mtcnn, MTCNN_SUBDIR};
use sprocket_media::tensors::device;

use super::{blocking, fetch_artifact, publish_file, Done, PhaseWork};
use crate::{Cx, WorkError};

const PHASE: Phase = Phase::Analyze;

/// The analyze phase, with its models loaded once for the worker's life.
pub struct Analyze {
    faces: Arc<Mtcnn>,
}

impl Analyze {
    /// Loads the models from `models_dir` (which holds `mtcnn/`) on the
    /// analysis device; missing weights are an error naming the setup command.
    pub fn load(models_dir: &Path) -> Result<Analyze, WorkError> {
        let faces = Mtcnn::load(&models_dir.join(MTCNN_SUBDIR), device())
            .map_err(WorkError::media(PHASE))?;
        tracing::info!(model = %faces.info().version, device = ?faces.device(), "analyze: MTCNN loaded");
        Ok(Analyze {
            faces: Arc::new(faces),
        })
    }
}

#[async_trait]
impl PhaseWork for Analyze {
    fn phase(&self) -> Phase {
        PHASE
    }

    async fn run(&self, item: &WorkItem, cx: &Cx) -> Result<Done, WorkError> {
        let mut params =
            AnalyzeParams::from_params(&item.params()).map_err(WorkError::media(PHASE))?;
        // The stream the probe judged, and never past the longest source
        // allowed, whatever the container says of its length.
        params.stream = item.media.as_ref().and_then(|m| m.video_stream);
        params.longest_s = Some(cx.config.ingest.max_duration_s);
        let thumbnails_dir = cx
            .scratch_file("thumbnails")
            .map_err(|e| WorkError::internal(PHASE, e))?;
        params.thumbnails_dir = Some(thumbnails_dir.clone());
        let src = fetch_artifact(PHASE, cx, item, "source").await?;
        let mut progress = cx.progress();
        let cancel = cx.cancel.clone();
        let faces = self.faces.clone();
        let analysis = blocking(PHASE, move || {
            analyze(&src, &params, &faces, &mut progress, &cancel)
        })
        .await?;
        for shot in analysis.shots.iter() {
            if let (Some(_), Some(why)) = (&shot.keyframe, &shot.thumbnail_error) {
                tracing::warn!(job_id = %item.job_id, shot = shot.index, error = %why,
                    "analyze: a shot has no thumbnail");
            }
        }
        // The thumbnails go first, so that an analysis.json in the store
        // never names one that is not there.
        let thumbnails = publish_thumbnails(cx, item, &thumbnails_dir, &analysis).await?;
        let json = cx
            .scratch_file("analysis.json")
            .map_err(|e| WorkError::internal(PHASE, e))?;
        let body =
            serde_json::to_vec_pretty(&analysis).map_err(|e| WorkError::internal(PHASE, e))?;
        std::fs::write(&json, body).map_err(|e| WorkError::internal(PHASE, e))?;
        let artifact = publish_file(
            PHASE,
            &cx.stores.work,
            item,
            "analysis.json",
            &json,
            "application/json",
        )
        .await?;
        Ok(Done {
            event: EventBody::MediaAnalyzed(MediaAnalyzed {
                analysis: artifact.clone(),
                frames: analysis.frames,
                fps: analysis.fps,
                shots: analysis.shots.len() as u32,
                summary: Some(AnalysisSummary {
                    faces: analysis.shots.iter().map(|s| s.faces).sum(),
                    shots_with_faces: analysis.shots.iter().filter(|s| s.faces > 0).count() as u32,
                    models: analysis
                        .models
                        .iter()
                        .map(|m| (m.name.clone(), m.version.clone()))
                        .collect(),
                }),
                thumbnails: thumbnails.clone(),
            }),
            artifacts: [artifact].into_iter().chain(thumbnails).collect(),
            media: None,
        })
    }
}

/// Thumbnails stored at once, at most.
const UPLOADS: usize = 8;

/// Stores the thumbnails `analysis` names (written under `dir`), in shot order.
async fn publish_thumbnails(
    cx: &Cx,
    item: &WorkItem,
    dir: &Path,
    analysis: &sprocket_media::Analysis,
) -> Result<Vec<Artifact>, WorkError> {
    let names: Vec<String> = analysis
        .shots
        .iter()
        .filter_map(|s| s.thumbnail.clone())
        .collect();
    let uploads = names.into_iter().map(|name| {
        let file = dir.join(&name);
        async move { publish_file(PHASE, &cx.stores.work, item, &name, &file, "image/jpeg").await }
    });
    futures::stream::iter(uploads)
        .buffered(UPLOADS)
        .try_collect()
        .await
}

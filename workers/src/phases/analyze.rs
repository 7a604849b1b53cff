//! Analyze: shots, per-shot quality and highlight scores, as `analysis.json`.

use async_trait::async_trait;
use sprocket_core::event::MediaAnalyzed;
use sprocket_core::{EventBody, Phase, WorkItem};
use sprocket_media::analyze::{analyze, AnalyzeParams};

use super::{blocking, fetch_artifact, publish_file, Done, PhaseWork};
use crate::{Cx, WorkError};

const PHASE: Phase = Phase::Analyze;

pub struct Analyze;

#[async_trait]
impl PhaseWork for Analyze {
    fn phase(&self) -> Phase {
        PHASE
    }

    async fn run(&self, item: &WorkItem, cx: &Cx) -> Result<Done, WorkError> {
        let params = AnalyzeParams::from_params(&item.params()).map_err(WorkError::media(PHASE))?;
        let src = fetch_artifact(PHASE, cx, item, "source").await?;
        let mut progress = cx.progress();
        let cancel = cx.cancel.clone();
        let analysis = blocking(PHASE, move || {
            analyze(&src, &params, &mut progress, &cancel)
        })
        .await?;
        let json = cx.scratch_file("analysis.json");
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
            }),
            artifacts: vec![artifact],
            media: None,
        })
    }
}

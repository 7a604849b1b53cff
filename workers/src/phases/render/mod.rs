//! Render: the recipe's outputs with ffmpeg (highlight reel, poster), with
//! progress from ffmpeg's own progress output.

use async_trait::async_trait;
use sprocket_core::event::MediaRendered;
use sprocket_core::{EventBody, Phase, WorkItem};
use sprocket_media::render::{
    poster_time, render_highlight, render_poster, select_highlights, RenderParams,
};
use sprocket_media::Analysis;

use super::{blocking, fetch_artifact, publish_file, Done, PhaseWork};
use crate::{Cx, WorkError};

const PHASE: Phase = Phase::Render;

pub struct Render;

#[async_trait]
impl PhaseWork for Render {
    fn phase(&self) -> Phase {
        PHASE
    }

    async fn run(&self, item: &WorkItem, cx: &Cx) -> Result<Done, WorkError> {
        let params = RenderParams::from_params(&item.params()).map_err(WorkError::media(PHASE))?;
        let src = fetch_artifact(PHASE, cx, item, "source").await?;
        let analysis_file = fetch_artifact(PHASE, cx, item, "analysis.json").await?;
        let analysis: Analysis = serde_json::from_slice(
            &std::fs::read(&analysis_file).map_err(|e| WorkError::internal(PHASE, e))?,
        )
        .map_err(|e| WorkError::Rejected {
            phase: PHASE,
            code: "invalid_analysis",
            message: format!("analysis.json does not parse: {e}"),
        })?;
        let has_audio = item.media.as_ref().is_some_and(|m| m.audio_codec.is_some());
        // The video stream the probe judged, as analyze decoded it.
        let stream = item.media.as_ref().and_then(|m| m.video_stream);
        let wants = |o: &str| params.outputs.iter().any(|x| x == o);
        let mut artifacts = Vec::new();
        let mut progress = cx.progress();

        if wants("highlight") {
            let out = cx
                .scratch_file("highlight.mp4")
                .map_err(|e| WorkError::internal(PHASE, e))?;
            let segments = select_highlights(&analysis.shots, params.target_duration_s);
            let (s, o, cancel) = (src.clone(), out.clone(), cx.cancel.clone());
            let poster_too = wants("poster");
            let mut report = cx.progress();
            blocking(PHASE, move || {
                let mut scaled = |p: f64| report(if poster_too { p * 0.95 } else { p });
                render_highlight(&s, stream, &segments, has_audio, &o, &mut scaled, &cancel)
            })
            .await?;
            artifacts.push(
                publish_file(
                    PHASE,
                    &cx.stores.work,
                    item,
                    "highlight.mp4",
                    &out,
                    "video/mp4",
                )
                .await?,
            );
        }
        if wants("poster") {
            let out = cx
                .scratch_file("poster.jpg")
                .map_err(|e| WorkError::internal(PHASE, e))?;
            let at = poster_time(&analysis);
            let (s, o, cancel) = (src.clone(), out.clone(), cx.cancel.clone());
            blocking(PHASE, move || render_poster(&s, stream, at, &o, &cancel)).await?;
            artifacts.push(
                publish_file(
                    PHASE,
                    &cx.stores.work,
                    item,
                    "poster.jpg",
                    &out,
                    "image/jpeg",
                )
                .await?,
            );
        }
        progress(100.0);
        Ok(Done {
            event: EventBody::MediaRendered(MediaRendered {
                artifacts: artifacts.clone(),
            }),
            artifacts,
            media: None,
        })
    }
}

//! Render: the recipe's outputs with ffmpeg (highlight reel, poster, reframed
//! edits, the HLS ladder, scrub thumbnails), in the order the recipe lists
//! them, with progress from ffmpeg's own progress output.

mod ladder;
mod reframe;

use async_trait::async_trait;
use sprocket_core::event::MediaRendered;
use sprocket_core::{Artifact, EventBody, Phase, WorkItem};
use sprocket_media::render::{
    poster_time, render_highlight, render_poster, select_highlights, Output, RenderParams, Source,
};
use sprocket_media::Analysis;

use super::{blocking, fetch_artifact, publish_file, Done, PhaseWork};
use crate::{Cx, WorkError};

const PHASE: Phase = Phase::Render;

pub struct Render;

/// What every output's rendering reads: the source, its analysis and the
/// render step's parameters.
pub(super) struct Inputs {
    /// The fetched source file, its stream as analyze decoded it, and the
    /// most of it any run reads (`ingest.max_duration_s`).
    pub source: Source,
    pub analysis: Analysis,
    pub params: RenderParams,
}

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
        let inputs = Inputs {
            source: Source {
                path: src,
                stream: item.media.as_ref().and_then(|m| m.video_stream),
                has_audio: item.media.as_ref().is_some_and(|m| m.audio_codec.is_some()),
                longest_s: cx.config.ingest.max_duration_s,
            },
            analysis,
            params,
        };
        let mut artifacts = Vec::new();
        let mut progress = cx.progress();
        let n = inputs.params.outputs.len() as f64;
        for (i, output) in inputs.params.outputs.iter().enumerate() {
            // Each output gets an equal share of the bar.
            let share = Share {
                from: i as f64 / n * 100.0,
                width: 100.0 / n,
            };
            let made = match output {
                Output::Highlight(_) => vec![highlight(&inputs, item, cx, share).await?],
                Output::Poster(_) => vec![poster(&inputs, item, cx).await?],
                Output::Vertical(p) | Output::Square(p) => {
                    reframe::render(&inputs, output.name(), p, item, cx, share).await?
                }
                Output::Hls(p) => ladder::hls(&inputs, p, item, cx, share).await?,
                Output::Thumbnails(p) => ladder::thumbnails(&inputs, p, item, cx, share).await?,
            };
            artifacts.extend(made);
            progress(share.from + share.width);
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

/// One output's part of the progress bar, in percent.
#[derive(Debug, Clone, Copy)]
pub(super) struct Share {
    from: f64,
    width: f64,
}

impl Share {
    /// A progress reporter that maps the output's own 0–100 onto its share.
    pub fn reporter(self, cx: &Cx) -> impl FnMut(f64) + Send + 'static {
        let mut report = cx.progress();
        move |p: f64| report(self.from + p.clamp(0.0, 100.0) / 100.0 * self.width)
    }
}

async fn highlight(
    inputs: &Inputs,
    item: &WorkItem,
    cx: &Cx,
    share: Share,
) -> Result<Artifact, WorkError> {
    let out = cx
        .scratch_file("highlight.mp4")
        .map_err(|e| WorkError::internal(PHASE, e))?;
    let target = inputs.params.highlight_target_s().unwrap_or(30.0);
    let segments = select_highlights(&inputs.analysis.shots, target);
    let (source, o, cancel) = (inputs.source.clone(), out.clone(), cx.cancel.clone());
    let loudness = inputs.params.loudness;
    let mut report = share.reporter(cx);
    blocking(PHASE, move || {
        render_highlight(&source, &segments, &loudness, &o, &mut report, &cancel)
    })
    .await?;
    publish_file(
        PHASE,
        &cx.stores.work,
        item,
        "highlight.mp4",
        &out,
        "video/mp4",
    )
    .await
}

async fn poster(inputs: &Inputs, item: &WorkItem, cx: &Cx) -> Result<Artifact, WorkError> {
    let out = cx
        .scratch_file("poster.jpg")
        .map_err(|e| WorkError::internal(PHASE, e))?;
    let at = poster_time(&inputs.analysis);
    let (source, o, cancel) = (inputs.source.clone(), out.clone(), cx.cancel.clone());
    blocking(PHASE, move || render_poster(&source, at, &o, &cancel)).await?;
    publish_file(
        PHASE,
        &cx.stores.work,
        item,
        "poster.jpg",
        &out,
        "image/jpeg",
    )
    .await
}

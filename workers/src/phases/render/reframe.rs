//! The `vertical` and `square` outputs: a crop that follows the faces of
//! each shot's face track (from the analysis). When the recipe asks for both,
//! the first of them listed renders both from one decode of the source (one
//! ffmpeg run, the loudness measured once) and publishes both; the second
//! then has nothing left to do.

use sprocket_core::{Artifact, WorkItem};
use sprocket_media::reframe::{render_reframed, Aspect, Reframe, ReframeParams};
use sprocket_media::render::Output;

use super::{Inputs, Share, PHASE};
use crate::phases::{blocking, publish_file};
use crate::{Cx, WorkError};

/// The reframed outputs the recipe asks for, in its order: shape, artifact
/// name and parameters.
fn wanted(inputs: &Inputs) -> Vec<(Aspect, &'static str, ReframeParams)> {
    inputs
        .params
        .outputs
        .iter()
        .filter_map(|o| match o {
            Output::Vertical(p) => Some((Aspect::Vertical, "vertical.mp4", p.clone())),
            Output::Square(p) => Some((Aspect::Square, "square.mp4", p.clone())),
            _ => None,
        })
        .collect()
}

/// Renders the reframed output `name` (`vertical` or `square`) and, when it
/// is the first of the two the recipe lists, the other one too, in the same
/// ffmpeg run; for the second it returns nothing (it is already published).
pub(super) async fn render(
    inputs: &Inputs,
    name: &str,
    params: &ReframeParams,
    item: &WorkItem,
    cx: &Cx,
    share: Share,
) -> Result<Vec<Artifact>, WorkError> {
    let mut todo = wanted(inputs);
    let file_name = format!("{name}.mp4");
    if todo.first().map(|w| w.1) != Some(file_name.as_str()) {
        // Rendered and published with the first reframed output.
        return Ok(Vec::new());
    }
    if let Some(own) = todo.iter_mut().find(|w| w.1 == file_name) {
        own.2 = params.clone();
    }
    let mut files = Vec::with_capacity(todo.len());
    for (_, artifact, _) in &todo {
        files.push(
            cx.scratch_file(artifact)
                .map_err(|e| WorkError::internal(PHASE, e))?,
        );
    }
    let (source, cancel, analysis) = (
        inputs.source.clone(),
        cx.cancel.clone(),
        inputs.analysis.clone(),
    );
    let loudness = inputs.params.loudness;
    let (shapes, outs) = (todo.clone(), files.clone());
    let mut report = share.reporter(cx);
    blocking(PHASE, move || {
        let outputs: Vec<Reframe> = shapes
            .iter()
            .zip(&outs)
            .map(|((aspect, _, params), out)| Reframe {
                aspect: *aspect,
                params,
                out,
            })
            .collect();
        render_reframed(
            &source,
            &analysis,
            &loudness,
            &outputs,
            &mut report,
            &cancel,
        )
    })
    .await?;
    let mut artifacts = Vec::with_capacity(todo.len());
    for ((_, artifact, _), file) in todo.iter().zip(&files) {
        artifacts
            .push(publish_file(PHASE, &cx.stores.work, item, artifact, file, "video/mp4").await?);
    }
    Ok(artifacts)
}

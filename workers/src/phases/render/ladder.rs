//! The `hls` and `thumbnails` outputs.

use sprocket_core::{Artifact, WorkItem};
use sprocket_media::hls::{render_hls, HlsParams};
use sprocket_media::sprite::{render_sprite, SpriteParams};

use super::{Inputs, Share, PHASE};
use crate::phases::{blocking, publish_file, HLS_PREFIX};
use crate::{Cx, WorkError};

/// The content type of a file of the ladder, by its extension.
fn content_type(name: &str) -> &'static str {
    match name.rsplit_once('.').map(|(_, ext)| ext) {
        Some("m3u8") => "application/vnd.apple.mpegurl",
        Some("mp4") | Some("m4s") => "video/mp4",
        Some("ts") => "video/mp2t",
        _ => "application/octet-stream",
    }
}

/// The source's picture size and duration, as the probe found them at
/// ingest (the analysis may have decoded it smaller).
fn picture(inputs: &Inputs, item: &WorkItem) -> ((u32, u32), f64) {
    match &item.media {
        Some(m) if m.width > 0 && m.height > 0 => {
            let d = if m.duration_s > 0.0 {
                m.duration_s
            } else {
                inputs.analysis.duration_s
            };
            ((m.width, m.height), d)
        }
        _ => (
            (inputs.analysis.width, inputs.analysis.height),
            inputs.analysis.duration_s,
        ),
    }
}

/// Renders the HLS ladder under `hls/`.
pub(super) async fn hls(
    inputs: &Inputs,
    params: &HlsParams,
    item: &WorkItem,
    cx: &Cx,
    share: Share,
) -> Result<Vec<Artifact>, WorkError> {
    let dir = cx
        .scratch_file("hls")
        .map_err(|e| WorkError::internal(PHASE, e))?;
    let (size, duration) = picture(inputs, item);
    let (source, o, cancel, p) = (
        inputs.source.clone(),
        dir.clone(),
        cx.cancel.clone(),
        params.clone(),
    );
    let loudness = inputs.params.loudness;
    let mut report = share.reporter(cx);
    let ladder = blocking(PHASE, move || {
        render_hls(
            &source,
            size,
            duration,
            &p,
            &loudness,
            &o,
            &mut report,
            &cancel,
        )
    })
    .await?;
    let mut artifacts = Vec::new();
    for file in ladder.files() {
        let name = format!("{HLS_PREFIX}{file}");
        let path = dir.join(&file);
        artifacts.push(
            publish_file(
                PHASE,
                &cx.stores.work,
                item,
                &name,
                &path,
                content_type(&file),
            )
            .await?,
        );
    }
    Ok(artifacts)
}

/// Renders the scrub-preview sprite sheet and its WebVTT.
pub(super) async fn thumbnails(
    inputs: &Inputs,
    params: &SpriteParams,
    item: &WorkItem,
    cx: &Cx,
    share: Share,
) -> Result<Vec<Artifact>, WorkError> {
    let scratch = |name| {
        cx.scratch_file(name)
            .map_err(|e| WorkError::internal(PHASE, e))
    };
    let (jpg, vtt) = (scratch("thumbnails.jpg")?, scratch("thumbnails.vtt")?);
    let (size, duration) = picture(inputs, item);
    let (source, j, v, cancel, p) = (
        inputs.source.clone(),
        jpg.clone(),
        vtt.clone(),
        cx.cancel.clone(),
        params.clone(),
    );
    let mut report = share.reporter(cx);
    report(0.0);
    blocking(PHASE, move || {
        render_sprite(&source, size, duration, &p, &j, &v, &cancel)
    })
    .await?;
    report(100.0);
    let store = &cx.stores.work;
    Ok(vec![
        publish_file(PHASE, store, item, "thumbnails.jpg", &jpg, "image/jpeg").await?,
        publish_file(PHASE, store, item, "thumbnails.vtt", &vtt, "text/vtt").await?,
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ladder_files_have_their_content_types() {
        assert_eq!(content_type("master.m3u8"), "application/vnd.apple.mpegurl");
        assert_eq!(content_type("720p.mp4"), "video/mp4");
        assert_eq!(content_type("720p.ts"), "video/mp2t");
    }
}

//! The `hls` and `thumbnails` outputs.

use sprocket_core::{Artifact, WorkItem};
use sprocket_media::hls::HlsParams;
use sprocket_media::sprite::SpriteParams;

use super::{Inputs, Share, PHASE};
use crate::{Cx, WorkError};

/// Renders the HLS ladder under `hls/`.
pub(super) async fn hls(
    _inputs: &Inputs,
    _params: &HlsParams,
    _item: &WorkItem,
    _cx: &Cx,
    _share: Share,
) -> Result<Vec<Artifact>, WorkError> {
    Err(WorkError::Rejected {
        phase: PHASE,
        code: "unsupported_output",
        message: "the hls output is not built yet".into(),
    })
}

/// Renders the scrub-preview sprite sheet and its WebVTT.
pub(super) async fn thumbnails(
    _inputs: &Inputs,
    _params: &SpriteParams,
    _item: &WorkItem,
    _cx: &Cx,
    _share: Share,
) -> Result<Vec<Artifact>, WorkError> {
    Err(WorkError::Rejected {
        phase: PHASE,
        code: "unsupported_output",
        message: "the thumbnails output is not built yet".into(),
    })
}

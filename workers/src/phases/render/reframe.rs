//! The `vertical` and `square` outputs.

use sprocket_core::{Artifact, WorkItem};
use sprocket_media::reframe::ReframeParams;

use super::{Inputs, Share, PHASE};
use crate::{Cx, WorkError};

/// Renders the reframed output `name` (`vertical` or `square`).
pub(super) async fn render(
    _inputs: &Inputs,
    name: &str,
    _params: &ReframeParams,
    _item: &WorkItem,
    _cx: &Cx,
    _share: Share,
) -> Result<Vec<Artifact>, WorkError> {
    Err(WorkError::Rejected {
        phase: PHASE,
        code: "unsupported_output",
        message: format!("the {name} output is not built yet"),
    })
}

//! The HLS ladder: renditions from one decode, aligned keyframes, a master
//! playlist.

use serde::Deserialize;

/// The ladder's parameters.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HlsParams {}

impl HlsParams {
    pub(crate) fn validate(&self) -> Result<(), String> {
        Ok(())
    }
}

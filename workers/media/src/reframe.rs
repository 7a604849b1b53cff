//! Reframing to 9:16 (`vertical`) and 1:1 (`square`): a crop window that
//! follows the subject through each shot.

use serde::Deserialize;

/// A reframed output's parameters.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReframeParams {}

impl ReframeParams {
    pub(crate) fn validate(&self) -> Result<(), String> {
        Ok(())
    }
}

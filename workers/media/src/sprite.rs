//! Scrub previews: a sprite sheet of frames at a fixed interval and the
//! WebVTT file that maps each interval to its tile.

use serde::Deserialize;

/// The sprite sheet's parameters.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SpriteParams {}

impl SpriteParams {
    pub(crate) fn validate(&self) -> Result<(), String> {
        Ok(())
    }
}

//! The analyze phase's parameters, from the recipe (the shot detector and
//! its tuning, the decode width, the thumbnails), with their ranges.

use crate::adaptive::{AdaptiveDetector, AdaptiveParams};
use crate::shots::{ContentDetector, ContentParams, ContentWeights, Detector};
use crate::thumbnail::MAX_THUMBNAILS;
use crate::MediaError;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Face samples a second taken through each shot unless the recipe says.
pub const DEFAULT_FACE_SAMPLES_PER_S: f64 = 4.0;
/// The most face samples a second a recipe may ask for.
pub const MAX_FACE_SAMPLES_PER_S: f64 = 30.0;

/// Which shot detector the analyze phase runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DetectorKind {
    /// [`ContentDetector`]: a fixed threshold on the content score.
    Content,
    /// [`AdaptiveDetector`]: the score against its neighbours', with flash
    /// suppression.
    #[default]
    Adaptive,
}

/// The analyze phase's parameters, from the recipe.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AnalyzeParams {
    /// Content score at or above which a frame starts a new shot (0–255
    /// scale of OpenCV's 8-bit HSV; PySceneDetect's default 27).
    pub threshold: f64,
    /// Fewest frames a shot may have (at least 1).
    pub min_shot_len: u32,
    /// Analyse only the first this many seconds.
    pub max_seconds: Option<f64>,
    /// Width frames are decoded at for analysis: even, 16–3840.
    pub analysis_width: u32,
    /// The shot detector: `"adaptive"` (default) or `"content"`.
    pub detector: DetectorKind,
    /// Adaptive: ratio of a frame's score to its neighbours' mean that a cut
    /// needs (positive; PySceneDetect's default 3.0).
    pub adaptive_threshold: f64,
    /// Adaptive: frames on each side averaged (1–32; default 2).
    pub window_width: u32,
    /// Adaptive: content score a cut needs as well (0–255; default 15).
    pub min_content_val: f64,
    /// Adaptive: longest flash, in frames, not taken for a cut (0–16; 0 turns
    /// flash suppression off; default 3).
    pub flash_frames: u32,
    /// Most shots given a thumbnail of their keyframe, the first ones in
    /// order (0–200; 0 makes none; default 100).
    pub max_thumbnails: u32,
    /// Frames a second sampled through every shot for its face track (the
    /// largest face on each, which the reframed outputs follow): 0–30; 0
    /// samples none; default 4.
    pub face_samples_per_s: f64,
    /// The video stream to analyse (the probe's choice); not a recipe
    /// parameter: the phase sets it from the job's media.
    #[serde(skip)]
    pub stream: Option<u32>,
    /// The longest source allowed (`ingest.max_duration_s`): decoding stops
    /// there whatever the container says of its length. Not a recipe
    /// parameter either.
    #[serde(skip)]
    pub longest_s: Option<f64>,
    /// Where thumbnails are written (`shot-001.jpg`, …); none are made
    /// without it. Not a recipe parameter: the phase gives its scratch
    /// directory.
    #[serde(skip)]
    pub thumbnails_dir: Option<PathBuf>,
}

impl Default for AnalyzeParams {
    fn default() -> Self {
        AnalyzeParams {
            threshold: 27.0,
            min_shot_len: 15,
            max_seconds: None,
            analysis_width: 320,
            detector: DetectorKind::default(),
            adaptive_threshold: 3.0,
            window_width: 2,
            min_content_val: 15.0,
            flash_frames: 3,
            max_thumbnails: 100,
            face_samples_per_s: DEFAULT_FACE_SAMPLES_PER_S,
            stream: None,
            longest_s: None,
            thumbnails_dir: None,
        }
    }
}

impl AnalyzeParams {
    /// Reads and validates the recipe's parameters for the analyze phase;
    /// missing ones take their defaults, unknown ones are rejected.
    pub fn from_params(
        map: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<Self, MediaError> {
        let params: AnalyzeParams = serde_json::from_value(serde_json::Value::Object(map.clone()))
            .map_err(|e| MediaError::InvalidParams(format!("analyze: {e}")))?;
        params.validate()?;
        Ok(params)
    }

    /// Checks the ranges of the parameters.
    pub fn validate(&self) -> Result<(), MediaError> {
        let invalid = |m: String| Err(MediaError::InvalidParams(format!("analyze: {m}")));
        if !(self.threshold.is_finite() && self.threshold > 0.0 && self.threshold <= 255.0) {
            return invalid(format!(
                "threshold must be in (0, 255], got {}",
                self.threshold
            ));
        }
        if self.min_shot_len == 0 {
            return invalid("min_shot_len must be at least 1".into());
        }
        if let Some(s) = self.max_seconds {
            if !(s.is_finite() && s > 0.0) {
                return invalid(format!("max_seconds must be positive, got {s}"));
            }
        }
        let w = self.analysis_width;
        if !(16..=3840).contains(&w) || !w.is_multiple_of(2) {
            return invalid(format!(
                "analysis_width must be even and in 16–3840, got {w}"
            ));
        }
        if !(self.adaptive_threshold.is_finite() && self.adaptive_threshold > 0.0) {
            return invalid(format!(
                "adaptive_threshold must be positive, got {}",
                self.adaptive_threshold
            ));
        }
        if !(1..=32).contains(&self.window_width) {
            return invalid(format!(
                "window_width must be in 1–32, got {}",
                self.window_width
            ));
        }
        let m = self.min_content_val;
        if !(m.is_finite() && (0.0..=255.0).contains(&m)) {
            return invalid(format!("min_content_val must be in 0–255, got {m}"));
        }
        if self.flash_frames > 16 {
            return invalid(format!(
                "flash_frames must be at most 16, got {}",
                self.flash_frames
            ));
        }
        if self.max_thumbnails > MAX_THUMBNAILS {
            return invalid(format!(
                "max_thumbnails must be at most {MAX_THUMBNAILS}, got {}",
                self.max_thumbnails
            ));
        }
        let r = self.face_samples_per_s;
        if !(r.is_finite() && (0.0..=MAX_FACE_SAMPLES_PER_S).contains(&r)) {
            return invalid(format!(
                "face_samples_per_s must be in 0–{MAX_FACE_SAMPLES_PER_S}, got {r}"
            ));
        }
        Ok(())
    }

    /// Every how many frames of a `fps` stream a face sample is taken;
    /// `None` when sampling is off.
    pub fn face_sample_stride(&self, fps: f64) -> Option<u64> {
        (self.face_samples_per_s > 0.0 && fps.is_finite() && fps > 0.0)
            .then(|| ((fps / self.face_samples_per_s).round() as u64).max(1))
    }

    /// How many shots get a thumbnail: none without a directory to write
    /// them to.
    pub fn thumbnails(&self) -> u32 {
        if self.thumbnails_dir.is_some() {
            self.max_thumbnails
        } else {
            0
        }
    }

    /// The shot detector these parameters ask for.
    pub fn shot_detector(&self) -> Box<dyn Detector> {
        match self.detector {
            DetectorKind::Content => Box::new(ContentDetector::new(self.content_params())),
            DetectorKind::Adaptive => Box::new(AdaptiveDetector::new(self.adaptive_params())),
        }
    }

    fn adaptive_params(&self) -> AdaptiveParams {
        AdaptiveParams {
            adaptive_threshold: self.adaptive_threshold,
            window_width: self.window_width,
            min_content_val: self.min_content_val,
            min_shot_len: self.min_shot_len,
            flash_frames: self.flash_frames,
            weights: ContentWeights::default(),
        }
    }

    fn content_params(&self) -> ContentParams {
        ContentParams {
            threshold: self.threshold,
            min_shot_len: self.min_shot_len,
            weights: ContentWeights::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: serde_json::Value) -> Result<AnalyzeParams, MediaError> {
        AnalyzeParams::from_params(v.as_object().expect("an object"))
    }

    #[test]
    fn detector_and_its_parameters_are_parsed_and_checked() {
        let defaults = parse(json!({})).unwrap();
        assert_eq!(defaults.detector, DetectorKind::Adaptive);
        assert_eq!(defaults.shot_detector().name(), "adaptive");
        let content = parse(json!({"detector": "content", "threshold": 30})).unwrap();
        assert_eq!(content.shot_detector().name(), "content");
        assert_eq!(content.shot_detector().params()["threshold"], 30.0);
        let tuned = parse(json!({"window_width": 3, "flash_frames": 0})).unwrap();
        let params = tuned.shot_detector().params();
        assert_eq!(
            (
                params["window_width"].as_u64(),
                params["flash_frames"].as_u64()
            ),
            (Some(3), Some(0))
        );
        assert_eq!(defaults.face_sample_stride(25.0), Some(6));
        assert_eq!(defaults.face_sample_stride(2.0), Some(1));
        let off = parse(json!({"face_samples_per_s": 0})).unwrap();
        assert_eq!(off.face_sample_stride(25.0), None);
        for bad in [
            json!({"detector": "histogram"}),
            json!({"adaptive_threshold": 0}),
            json!({"window_width": 0}),
            json!({"min_content_val": -1}),
            json!({"flash_frames": 17}),
            json!({"max_thumbnails": 201}),
            json!({"face_samples_per_s": -1}),
            json!({"face_samples_per_s": 31}),
        ] {
            let err = parse(bad.clone()).expect_err(&bad.to_string());
            assert!(
                matches!(err, MediaError::InvalidParams(_)),
                "{bad}: {err:?}"
            );
        }
    }
}

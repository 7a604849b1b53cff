//! The analyze phase's pipeline: decode frames in batches, find shots and
//! measure their quality in one pass, and produce [`Analysis`].

use crate::decode::{DecodeOptions, FrameDecoder};
use crate::quality::{shot_quality, FrameQuality, QualityMeter};
use crate::shots::{ContentDetector, ContentParams, ContentWeights, Detector};
use crate::tensors::{device, device_name, rgb_planes};
use crate::{Analysis, MediaError, Shot};
use serde::Deserialize;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

/// Frames decoded and analysed per batch.
pub const BATCH_FRAMES: usize = 64;

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
}

impl Default for AnalyzeParams {
    fn default() -> Self {
        AnalyzeParams {
            threshold: 27.0,
            min_shot_len: 15,
            max_seconds: None,
            analysis_width: 320,
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
        Ok(())
    }

    fn content_params(&self) -> ContentParams {
        ContentParams {
            threshold: self.threshold,
            min_shot_len: self.min_shot_len,
            weights: ContentWeights::default(),
        }
    }
}

/// Analyses `input`: shots in order (the first at frame 0, each `end_frame`
/// exclusive, the last ending at `frames`), each with its mean quality and
/// highlight score.
///
/// `on_progress` gets 0–100 as decoding advances (when the duration is known)
/// and 100 at the end. `cancel` is checked between frames and before each
/// batch is analysed; once set, ffmpeg is killed and `Cancelled` returned.
pub fn analyze(
    input: &Path,
    params: &AnalyzeParams,
    on_progress: &mut dyn FnMut(f64),
    cancel: &AtomicBool,
) -> Result<Analysis, MediaError> {
    params.validate()?;
    let device = device();
    let options = DecodeOptions {
        width: params.analysis_width,
        batch_frames: BATCH_FRAMES,
        max_seconds: params.max_seconds,
    };
    let mut decoder = FrameDecoder::open(input, &options)?;
    let mut detector: Box<dyn Detector> = Box::new(ContentDetector::new(params.content_params()));
    let mut meter = QualityMeter::new();
    let mut cuts = Vec::new();
    let mut frames: Vec<FrameQuality> = Vec::new();
    while let Some(batch) = decoder.next_batch(on_progress, cancel)? {
        if cancel.load(Ordering::Relaxed) {
            return Err(MediaError::Cancelled);
        }
        let planes = rgb_planes(&batch, device)?;
        cuts.extend(detector.push(&planes)?);
        frames.extend(meter.measure(&planes)?);
    }
    cuts.extend(detector.finish());

    let fps = decoder.fps();
    let (width, height) = decoder.size();
    let total = decoder.frames();
    let rate = decoder.frame_rate();
    let shots = build_shots(&cuts, &frames, fps);
    on_progress(100.0);
    tracing::debug!(
        frames = total,
        shots = shots.len(),
        "analysed {}",
        input.display()
    );
    Ok(Analysis {
        fps,
        frames: total,
        width,
        height,
        duration_s: total as f64 / fps,
        detector: serde_json::json!({
            "name": detector.name(),
            "params": detector.params(),
            "decode": {
                "width": width,
                "height": height,
                "frame_rate": format!("{}/{}", rate.num, rate.den),
                "max_seconds": params.max_seconds,
                "pix_fmt": "rgb24",
            },
            "device": device_name(device),
        }),
        shots,
    })
}

/// Shots between consecutive cuts (`cuts` ascending, inside `1..frames.len()`),
/// with the mean quality of their frames and their score.
fn build_shots(cuts: &[u64], frames: &[FrameQuality], fps: f64) -> Vec<Shot> {
    let total = frames.len() as u64;
    let mut bounds = vec![0];
    bounds.extend(cuts.iter().copied().filter(|&c| c > 0 && c < total));
    bounds.dedup();
    bounds.push(total);
    bounds
        .windows(2)
        .enumerate()
        .map(|(index, w)| {
            let (start, end) = (w[0], w[1]);
            let q = shot_quality(&frames[start as usize..end as usize]);
            let (start_s, end_s) = (start as f64 / fps, end as f64 / fps);
            Shot {
                index: index as u32,
                start_frame: start,
                end_frame: end,
                start_s,
                end_s,
                brightness: q.brightness,
                sharpness: q.sharpness,
                motion: q.motion,
                score: crate::quality::score(q.brightness, q.sharpness, q.motion, end_s - start_s),
            }
        })
        .collect()
}

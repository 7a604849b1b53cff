//! The analyze phase's pipeline: decode frames in batches, find shots,
//! measure their quality and pick each shot's keyframe in one pass, look for
//! faces on the keyframes with MTCNN, and produce [`Analysis`].
//!
//! Shot detection is chosen by [`AnalyzeParams::detector`]:
//!
//! * `"adaptive"` (the default): [`AdaptiveDetector`] with PySceneDetect's
//!   adaptive defaults (ratio 3.0 over a window of 2 frames each side, score
//!   at least 15, shots of at least 15 frames) and flash suppression of up to
//!   3 frames.
//! * `"content"`: [`ContentDetector`], PySceneDetect's content rule
//!   (threshold 27, shots of at least 15 frames).
//!
//! Why adaptive is the default: on videos with known truth
//! (`tests/hard_cases.rs`, which prints this table; false / missed cuts, ±1
//! frame; "PySD" is PySceneDetect 0.6.7.1 with its defaults):
//!
//! | case | adaptive (default) | content | PySD content | PySD adaptive |
//! |---|---|---|---|---|
//! | flashes (3 flashes, 1 cut) | 0 / 0 | 3 / 0 | 3 / 0 | 3 / 0 |
//! | fast pan, hold, cut | 0 / 0 | 5 / 0 | 0 / 0 | 0 / 0 |
//! | fast pan straight into a cut | 0 / 0 | 6 / 1 | 0 / 1 | 0 / 0 |
//! | wide / 2× close-up of one scene (3 cuts) | 0 / 0 | 0 / 3 | 0 / 3 | 0 / 0 |
//!
//! On plain hard cuts both detectors find every cut and match PySceneDetect
//! frame for frame (`tests/scenedetect.rs`). The content rule cuts again every
//! `min_shot_len` frames through a fast pan of a detailed scene, since every
//! pan frame scores above any fixed threshold, and misses cuts between two
//! framings of one scene, whose colours barely change; the adaptive ratio
//! handles both. Flashes fool both PySceneDetect rules; the flash suppression
//! the default carries (adaptive without it: 3 / 0) does not.

use crate::adaptive::{AdaptiveDetector, AdaptiveParams};
use crate::analysis::Keyframe;
use crate::decode::{DecodeOptions, FrameDecoder};
use crate::faces::Mtcnn;
use crate::keyframes::{face_queue, find_faces, ShotFaces, ShotKeyframes};
use crate::quality::{shot_quality, FrameQuality, QualityMeter};
use crate::shots::{ContentDetector, ContentParams, ContentWeights, Detector};
use crate::tensors::{device, device_name, frames as frame_tensor};
use crate::{Analysis, MediaError, Shot};
use serde::{Deserialize, Serialize};
use std::path::Path;
use tokio_util::sync::CancellationToken;

/// Frames decoded and analysed per batch: few enough that a batch's frames,
/// their HSV and their luma (about 2 MB at the default 320x180) stay in the
/// CPU's caches while the kernels go over them one after another, which
/// makes the analysis about twice as fast as with 64-frame batches.
pub const BATCH_FRAMES: usize = 8;

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
    /// The video stream to analyse (the probe's choice); not a recipe
    /// parameter: the phase sets it from the job's media.
    #[serde(skip)]
    pub stream: Option<u32>,
    /// The longest source allowed (`ingest.max_duration_s`): decoding stops
    /// there whatever the container says of its length. Not a recipe
    /// parameter either.
    #[serde(skip)]
    pub longest_s: Option<f64>,
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
            stream: None,
            longest_s: None,
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
        Ok(())
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
    faces: &Mtcnn,
    on_progress: &mut dyn FnMut(f64),
    cancel: &CancellationToken,
) -> Result<Analysis, MediaError> {
    params.validate()?;
    let device = device();
    let options = DecodeOptions {
        width: params.analysis_width,
        batch_frames: BATCH_FRAMES,
        max_seconds: match (params.max_seconds, params.longest_s) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        },
        stream: params.stream,
    };
    let mut decoder = FrameDecoder::open(input, &options)?;
    let mut detector = params.shot_detector();
    let mut meter = QualityMeter::new();
    let mut cuts = Vec::new();
    let mut frames: Vec<FrameQuality> = Vec::new();
    let (jobs, queue) = face_queue();
    // The face finder runs MTCNN on each shot's keyframe on a thread of its
    // own, beside the decoding and the analysis; what it found is joined at
    // the end. Leaving the scope early (an error, a cancel) drops the queue's
    // sender, which ends it.
    let (found, total, (width, height)) = std::thread::scope(|scope| -> Result<_, MediaError> {
        let finder = std::thread::Builder::new()
            .name("faces".into())
            .spawn_scoped(scope, || find_faces(queue, faces, cancel))
            .map_err(|e| MediaError::io(input, e))?;
        let mut keys = ShotKeyframes::new(params.min_shot_len, jobs);
        while let Some(batch) = decoder.next_batch(on_progress, cancel)? {
            if cancel.is_cancelled() {
                return Err(MediaError::Cancelled);
            }
            if keys.finder_gone() {
                break;
            }
            let candidates = keys.candidates(&batch);
            let (first, width, height) = (batch.first_frame, batch.width, batch.height);
            let batch = frame_tensor(batch, device)?;
            let found = detector.push(&batch)?;
            let quality = meter.measure(&batch)?;
            keys.offer(candidates, first, &quality);
            for &c in &found {
                keys.cut(c, width, height);
            }
            cuts.extend(found);
            frames.extend(quality);
        }
        let total = decoder.frames();
        let (width, height) = decoder.size();
        for c in detector.finish() {
            if c < total {
                keys.cut(c, width, height);
                cuts.push(c);
            }
        }
        keys.finish(width, height);
        let found = finder.join().unwrap_or_else(|_| {
            Err(candle_core::Error::Msg("the face finder panicked".into()).into())
        })?;
        Ok((found, total, (width, height)))
    })?;

    let fps = decoder.fps();
    let rate = decoder.frame_rate();
    let shots = build_shots(&cuts, &frames, fps, &found);
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
        models: vec![faces.info().clone()],
        shots,
    })
}

/// A shot's highlight score: [`quality::score`](crate::quality::score) times
/// `0.8 + 0.2·people`, where `people` is 1 when the keyframe shows a face: shots
/// of people make better highlights, other things being equal.
fn score_with_faces(base: f64, faces: u32) -> f64 {
    base * (0.8 + 0.2 * f64::from(u8::from(faces > 0)))
}

/// Shots between consecutive cuts (`cuts` ascending, inside `1..frames.len()`),
/// with the mean quality of their frames and their score.
fn build_shots(cuts: &[u64], frames: &[FrameQuality], fps: f64, keys: &ShotFaces) -> Vec<Shot> {
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
            let (keyframe, faces, largest_face) = match keys.get(&start) {
                Some((k, n, face)) => {
                    let k = Keyframe {
                        time_s: k.frame as f64 / fps,
                        ..k.clone()
                    };
                    (Some(k), *n, face.clone())
                }
                None => (None, 0, None),
            };
            let base = crate::quality::score(q.brightness, q.sharpness, q.motion, end_s - start_s);
            Shot {
                index: index as u32,
                start_frame: start,
                end_frame: end,
                start_s,
                end_s,
                brightness: q.brightness,
                sharpness: q.sharpness,
                motion: q.motion,
                keyframe,
                faces,
                largest_face,
                score: score_with_faces(base, faces),
            }
        })
        .collect()
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
        for bad in [
            json!({"detector": "histogram"}),
            json!({"adaptive_threshold": 0}),
            json!({"window_width": 0}),
            json!({"min_content_val": -1}),
            json!({"flash_frames": 17}),
        ] {
            let err = parse(bad.clone()).expect_err(&bad.to_string());
            assert!(
                matches!(err, MediaError::InvalidParams(_)),
                "{bad}: {err:?}"
            );
        }
    }
}

//! Shot boundary detection on decoded frames, with candle ops (the fused
//! HSV conversion and plane differences of [`crate::kernels`]).
//!
//! [`ContentDetector`] follows PySceneDetect's content detector: each frame is
//! converted to HSV with OpenCV's 8-bit convention (H in 0..180, S and V in
//! 0..255), the mean absolute difference of each plane against the previous
//! frame is taken, and their weighted average is the frame's score. A frame
//! whose score reaches the threshold starts a new shot, unless the current shot
//! is still shorter than the minimum length. Because the scale is OpenCV's, the
//! customary threshold (27) means the same here.
//!
//! Detectors implement [`Detector`], which takes frames batch by batch and may
//! hold decisions back until it has seen later frames, so a detector that
//! compares a frame's score with its neighbours' (an adaptive detector) fits
//! the same interface. [`ContentScorer`] is the reusable scoring part.

pub mod motion;

use crate::kernels;
use crate::MediaError;
use candle_core::Tensor;
use serde::{Deserialize, Serialize};

/// A shot boundary detector fed with consecutive batches of frames.
pub trait Detector {
    /// Stable name, recorded in the analysis.
    fn name(&self) -> &'static str;
    /// The detector's parameters, recorded in the analysis.
    fn params(&self) -> serde_json::Value;
    /// Feeds the next batch: frames of planar RGB, `u8` of shape `[frames,
    /// 3, height, width]` (see [`crate::tensors::frames`]). Returns the cuts
    /// decided so far, as indices of the frames that start a new shot,
    /// ascending.
    fn push(&mut self, frames: &Tensor) -> Result<Vec<u64>, MediaError>;
    /// The stream has ended: cuts still held back.
    fn finish(&mut self) -> Vec<u64>;
}

/// Weights of the HSV components in a frame's score.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContentWeights {
    pub hue: f64,
    pub saturation: f64,
    pub value: f64,
}

impl Default for ContentWeights {
    fn default() -> Self {
        ContentWeights {
            hue: 1.0,
            saturation: 1.0,
            value: 1.0,
        }
    }
}

impl ContentWeights {
    /// Whether a weighted average can be taken: finite, not negative, not all zero.
    pub fn is_valid(&self) -> bool {
        let w = [self.hue, self.saturation, self.value];
        w.iter().all(|x| x.is_finite() && *x >= 0.0) && w.iter().sum::<f64>() > 0.0
    }

    fn average(&self, dh: f64, ds: f64, dv: f64) -> f64 {
        let total = self.hue + self.saturation + self.value;
        (self.hue * dh + self.saturation * ds + self.value * dv) / total
    }
}

/// Converts frames of planar RGB (`u8`, `[frames, 3, height, width]`) to
/// planar HSV of the same shape and type with OpenCV's 8-bit convention:
/// `V = max`, `S = 255·(max−min)/max`, `H` = hue in degrees halved (0..180),
/// each rounded to an integer as OpenCV does (`floor(x + 0.5)`); grey pixels
/// have `H = S = 0`. One fused op (see [`crate::kernels`]).
pub fn rgb_to_hsv(frames: &Tensor) -> Result<Tensor, MediaError> {
    Ok(kernels::rgb_to_hsv(frames)?)
}

/// Scores frames by their content change against the previous frame. Keeps
/// the previous frame's HSV planes between batches.
#[derive(Debug, Clone)]
pub struct ContentScorer {
    weights: ContentWeights,
    previous: Option<Tensor>,
}

impl ContentScorer {
    pub fn new(weights: ContentWeights) -> Self {
        ContentScorer {
            weights,
            previous: None,
        }
    }

    pub fn weights(&self) -> ContentWeights {
        self.weights
    }

    /// One score per frame of the batch (`u8` RGB frames, see
    /// [`Detector::push`]); `None` for the stream's first frame, which has
    /// nothing to be compared with.
    pub fn scores(&mut self, frames: &Tensor) -> Result<Vec<Option<f64>>, MediaError> {
        if frames.dim(0)? == 0 {
            return Ok(Vec::new());
        }
        self.scores_hsv(&rgb_to_hsv(frames)?)
    }

    /// As [`scores`](Self::scores), for frames already converted with
    /// [`rgb_to_hsv`] (so a detector that keeps the HSV frames converts once).
    pub fn scores_hsv(&mut self, hsv: &Tensor) -> Result<Vec<Option<f64>>, MediaError> {
        let frames = hsv.dim(0)?;
        if frames == 0 {
            return Ok(Vec::new());
        }
        let mut scores = Vec::with_capacity(frames);
        match self.previous.take() {
            Some(previous) => {
                let first = hsv.narrow(0, 0, 1)?;
                scores.extend(
                    pair_scores(self.weights, &previous, &first)?
                        .into_iter()
                        .map(Some),
                );
            }
            None => scores.push(None),
        }
        if frames > 1 {
            let before = hsv.narrow(0, 0, frames - 1)?;
            let after = hsv.narrow(0, 1, frames - 1)?;
            scores.extend(
                pair_scores(self.weights, &before, &after)?
                    .into_iter()
                    .map(Some),
            );
        }
        self.previous = Some(hsv.narrow(0, frames - 1, 1)?);
        Ok(scores)
    }
}

/// Content scores between frame pairs: `a` and `b` are HSV frames of the
/// same shape `[pairs, 3, height, width]` (`u8`); the score of pair `i` is
/// the weighted average of the mean `|Δ|` of H, S and V between `a[i]` and
/// `b[i]`.
pub fn pair_scores(
    weights: ContentWeights,
    a: &Tensor,
    b: &Tensor,
) -> Result<Vec<f64>, MediaError> {
    // [pairs, 3]: mean |Δ| of H, S and V for each pair.
    let deltas = kernels::plane_abs_diff_means(a, b)?.to_vec2::<f64>()?;
    Ok(deltas
        .iter()
        .map(|d| weights.average(d[0], d[1], d[2]))
        .collect())
}

/// Parameters of [`ContentDetector`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ContentParams {
    /// Score at or above which a frame starts a new shot (PySceneDetect: 27).
    pub threshold: f64,
    /// Fewest frames a shot may have; a cut closer than this to the previous
    /// cut (or to the first frame) is dropped.
    pub min_shot_len: u32,
    pub weights: ContentWeights,
}

impl Default for ContentParams {
    fn default() -> Self {
        ContentParams {
            threshold: 27.0,
            min_shot_len: 15,
            weights: ContentWeights::default(),
        }
    }
}

/// Hard-cut detector: a frame starts a shot when its content score reaches
/// the threshold and the current shot has at least `min_shot_len` frames.
/// Decides each frame as it arrives, so it never holds cuts back.
#[derive(Debug, Clone)]
pub struct ContentDetector {
    params: ContentParams,
    scorer: ContentScorer,
    next_frame: u64,
    last_cut: u64,
}

impl ContentDetector {
    pub fn new(params: ContentParams) -> Self {
        ContentDetector {
            params,
            scorer: ContentScorer::new(params.weights),
            next_frame: 0,
            last_cut: 0,
        }
    }

    /// Applies the threshold and minimum length to the scores of consecutive
    /// frames, the first being frame `self.next_frame`.
    fn decide(&mut self, scores: &[Option<f64>]) -> Vec<u64> {
        let mut cuts = Vec::new();
        for score in scores {
            let frame = self.next_frame;
            self.next_frame += 1;
            let Some(score) = score else { continue };
            let long_enough = frame - self.last_cut >= u64::from(self.params.min_shot_len);
            if *score >= self.params.threshold && long_enough {
                cuts.push(frame);
                self.last_cut = frame;
            }
        }
        cuts
    }
}

impl Detector for ContentDetector {
    fn name(&self) -> &'static str {
        "content"
    }

    fn params(&self) -> serde_json::Value {
        serde_json::json!({
            "threshold": self.params.threshold,
            "min_shot_len": self.params.min_shot_len,
            "weights": self.params.weights,
        })
    }

    fn push(&mut self, frames: &Tensor) -> Result<Vec<u64>, MediaError> {
        let scores = self.scorer.scores(frames)?;
        Ok(self.decide(&scores))
    }

    fn finish(&mut self) -> Vec<u64> {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// Frames `[n, 3, h, w]` of planar RGB, each a flat colour.
    fn flat_frames(colours: &[[u8; 3]], h: usize, w: usize) -> Tensor {
        let data = colours
            .iter()
            .flat_map(|colour| colour.iter().flat_map(|&c| std::iter::repeat_n(c, h * w)))
            .collect::<Vec<u8>>();
        Tensor::from_vec(data, (colours.len(), 3, h, w), &Device::Cpu).unwrap()
    }

    #[test]
    fn score_is_weighted_mean_of_plane_differences() {
        // red → green: |ΔH| = 60, ΔS = 0, ΔV = 0.
        let mut scorer = ContentScorer::new(ContentWeights::default());
        let scores = scorer
            .scores(&flat_frames(&[[255, 0, 0], [0, 255, 0]], 2, 2))
            .unwrap();
        assert_eq!(scores[0], None);
        assert!((scores[1].unwrap() - 20.0).abs() < 1e-6, "{scores:?}");

        let hue_only = ContentWeights {
            hue: 1.0,
            saturation: 0.0,
            value: 0.0,
        };
        let mut scorer = ContentScorer::new(hue_only);
        let scores = scorer
            .scores(&flat_frames(&[[255, 0, 0], [0, 255, 0]], 2, 2))
            .unwrap();
        assert!((scores[1].unwrap() - 60.0).abs() < 1e-6);
    }

    /// Runs a detector over `colours` fed in batches of `batch` frames.
    fn detect(colours: &[[u8; 3]], batch: usize, params: ContentParams) -> Vec<u64> {
        let mut detector = ContentDetector::new(params);
        let mut cuts = Vec::new();
        for chunk in colours.chunks(batch) {
            cuts.extend(detector.push(&flat_frames(chunk, 4, 6)).unwrap());
        }
        cuts.extend(detector.finish());
        cuts
    }

    fn segments(parts: &[([u8; 3], usize)]) -> Vec<[u8; 3]> {
        parts
            .iter()
            .flat_map(|(c, n)| std::iter::repeat_n(*c, *n))
            .collect()
    }

    #[test]
    fn cuts_are_found_across_batch_boundaries() {
        let video = segments(&[([200, 30, 30], 20), ([30, 30, 200], 16), ([20, 20, 20], 30)]);
        for batch in [1, 7, 16, 20, 64] {
            assert_eq!(
                detect(&video, batch, ContentParams::default()),
                vec![20, 36],
                "batch {batch}"
            );
        }
    }

    #[test]
    fn min_shot_len_suppresses_close_cuts() {
        let video = segments(&[([200, 30, 30], 20), ([30, 30, 200], 5), ([20, 20, 20], 30)]);
        assert_eq!(detect(&video, 8, ContentParams::default()), vec![20]);
        let short = ContentParams {
            min_shot_len: 5,
            ..ContentParams::default()
        };
        assert_eq!(detect(&video, 8, short), vec![20, 25]);
        // The first shot is held to the minimum too.
        let early = segments(&[([200, 30, 30], 10), ([30, 30, 200], 30)]);
        assert_eq!(
            detect(&early, 8, ContentParams::default()),
            Vec::<u64>::new()
        );
    }

    #[test]
    fn threshold_decides_what_is_a_cut() {
        // Grey 100 → 120: ΔV = 20, score 20/3.
        let video = segments(&[([100, 100, 100], 20), ([120, 120, 120], 20)]);
        assert_eq!(
            detect(&video, 16, ContentParams::default()),
            Vec::<u64>::new()
        );
        let low = ContentParams {
            threshold: 6.0,
            ..ContentParams::default()
        };
        assert_eq!(detect(&video, 16, low), vec![20]);
    }
}

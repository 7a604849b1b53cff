//! The adaptive detector: a frame's content score judged against its
//! neighbours' rather than against a fixed threshold, after PySceneDetect's
//! adaptive detector, plus Sprocket's flash suppression.
//!
//! Each frame gets the content score of [`ContentScorer`] (the stream's first
//! frame scores 0). Frame `t`'s *adaptive ratio* is its score over the mean
//! score of the `window_width` frames on each side of it (255 when that mean
//! is zero and the score reaches `min_content_val`, 0 when both are zero,
//! capped at 255). Frame `t` starts a new shot when its ratio reaches
//! `adaptive_threshold`, its score reaches `min_content_val`, and the frame
//! being read (`t + window_width`) is at least `min_shot_len` frames after the
//! last cut (or the first frame) — the reference measures the minimum length
//! from the newest frame, and so does this, to give the same cut lists. A
//! frame is decided once `window_width` later frames are known; the first and
//! last `window_width` frames have no full window and are never cuts.
//!
//! Camera motion scores high on every frame, so its ratio stays near 1, where
//! a fixed threshold would cut again and again; that is what this detector is
//! for. With `flash_frames > 0` a cut is also held until `flash_frames` later
//! frames are known and dropped when it is a flash (see [`crate::flash`]),
//! which neither PySceneDetect detector does; `flash_frames = 0` gives
//! PySceneDetect's adaptive detector exactly.
//!
//! With `flash_frames > 0` there is also a second look for cuts hidden by
//! camera motion. A cut straight out of a fast pan, to a picture of similar
//! texture, scores little more than the pan's frames around it, so its ratio
//! stays low. A frame that reaches `min_content_val` but not the ratio is
//! judged again on motion-compensated scores ([`compensated_score`], shifts
//! up to [`MAX_SHIFT`] pixels): its own and its neighbours', each against the
//! frame before it. A pan matched frame to frame scores next to nothing and
//! the cut keeps its score, so the ratio rule applies again. Only frames
//! that reach `min_content_val` (in practice those in motion) pay for the
//! search, each frame once.

use crate::flash::{is_flash, FlashMatch};
use crate::shots::motion::compensated_score;
use crate::shots::{rgb_to_hsv, ContentScorer, ContentWeights, Detector};
use crate::MediaError;
use candle_core::Tensor;
use std::collections::{BTreeMap, VecDeque};

/// The farthest camera motion matched, in pixels a frame at the analysis
/// size (320 wide by default): a pan across the frame's width in a little
/// over half a second.
pub const MAX_SHIFT: u32 = 24;

/// Parameters of [`AdaptiveDetector`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdaptiveParams {
    /// Ratio of a frame's score to its neighbours' mean at or above which it
    /// may start a shot (PySceneDetect: 3.0).
    pub adaptive_threshold: f64,
    /// Frames on each side of a frame whose scores are averaged (at least 1;
    /// PySceneDetect: 2).
    pub window_width: u32,
    /// Content score a cut must reach as well (PySceneDetect: 15.0); also the
    /// score below which two frames around a flash count as the same picture.
    pub min_content_val: f64,
    /// Fewest frames a shot may have (PySceneDetect: 15).
    pub min_shot_len: u32,
    /// Longest flash suppressed, in frames; 0 turns flash suppression off.
    pub flash_frames: u32,
    pub weights: ContentWeights,
}

impl Default for AdaptiveParams {
    /// PySceneDetect's adaptive defaults, with flash suppression of up to 3
    /// frames.
    fn default() -> Self {
        AdaptiveParams {
            adaptive_threshold: 3.0,
            window_width: 2,
            min_content_val: 15.0,
            min_shot_len: 15,
            flash_frames: 3,
            weights: ContentWeights::default(),
        }
    }
}

impl AdaptiveParams {
    /// PySceneDetect's adaptive detector, without flash suppression.
    pub fn reference() -> Self {
        AdaptiveParams {
            flash_frames: 0,
            ..AdaptiveParams::default()
        }
    }
}

/// Adaptive-ratio cut detector; see the module docs.
#[derive(Debug, Clone)]
pub struct AdaptiveDetector {
    params: AdaptiveParams,
    scorer: ContentScorer,
    /// Scores of frames `scores_first..next_frame`.
    scores: Vec<f64>,
    scores_first: u64,
    /// Motion-compensated scores computed so far, by frame.
    motion: BTreeMap<u64, f64>,
    /// HSV frames kept for flash checks, as the batches they came in (the
    /// index of each batch's first frame, and its frames), oldest first; the
    /// last ends at `next_frame`.
    hsv: VecDeque<(u64, Tensor)>,
    /// The next frame to be judged.
    target: u64,
    next_frame: u64,
    last_cut: u64,
}

impl AdaptiveDetector {
    pub fn new(params: AdaptiveParams) -> Self {
        let window = u64::from(params.window_width.max(1));
        AdaptiveDetector {
            params: AdaptiveParams {
                window_width: window as u32,
                ..params
            },
            scorer: ContentScorer::new(params.weights),
            scores: Vec::new(),
            scores_first: 0,
            motion: BTreeMap::new(),
            hsv: VecDeque::new(),
            target: window,
            next_frame: 0,
            last_cut: 0,
        }
    }

    fn window(&self) -> u64 {
        u64::from(self.params.window_width)
    }

    fn score(&self, frame: u64) -> f64 {
        self.scores[(frame - self.scores_first) as usize]
    }

    /// Judges frames while their windows (and flash look-ahead, unless the
    /// stream has ended) are complete.
    fn decide(&mut self, ended: bool) -> Result<Vec<u64>, MediaError> {
        let w = self.window();
        let flash = u64::from(self.params.flash_frames);
        let mut cuts = Vec::new();
        while self.target + w < self.next_frame && (ended || self.target + flash < self.next_frame)
        {
            let t = self.target;
            self.target += 1;
            let score = self.score(t);
            let neighbours: f64 = (t - w..t).chain(t + 1..=t + w).map(|f| self.score(f)).sum();
            let mean = neighbours / (2 * w) as f64;
            let ratio = if mean.abs() < 1e-5 {
                if score >= self.params.min_content_val {
                    255.0
                } else {
                    0.0
                }
            } else {
                (score / mean).min(255.0)
            };
            let p = self.params;
            let long_enough = t + w - self.last_cut >= u64::from(p.min_shot_len);
            let mut met = ratio >= p.adaptive_threshold && score >= p.min_content_val;
            if !met && score >= p.min_content_val && long_enough && p.flash_frames > 0 {
                met = self.cut_in_motion(t)?;
            }
            if met && long_enough && !self.flash_at(t)? {
                cuts.push(t);
                self.last_cut = t;
            }
        }
        self.forget()?;
        Ok(cuts)
    }

    /// The adaptive ratio on motion-compensated scores: whether frame `t`
    /// (which needs `window_width` frames each side) stands out once the
    /// camera's motion is taken out.
    fn cut_in_motion(&mut self, t: u64) -> Result<bool, MediaError> {
        let w = self.window();
        let p = self.params;
        let own = self.motion_score(t)?;
        if own < p.min_content_val {
            return Ok(false);
        }
        let mut neighbours = 0.0;
        for f in (t - w..t).chain(t + 1..=t + w) {
            neighbours += self.motion_score(f)?;
        }
        let mean = neighbours / (2 * w) as f64;
        Ok(mean.abs() < 1e-5 || own / mean >= p.adaptive_threshold)
    }

    /// Frame `f`'s score against frame `f − 1` at the shift that matches
    /// them best (its plain score when a frame is no longer kept).
    fn motion_score(&mut self, f: u64) -> Result<f64, MediaError> {
        if let Some(m) = self.motion.get(&f) {
            return Ok(*m);
        }
        let m = match (f.checked_sub(1).map(|e| self.frame(e)), self.frame(f)) {
            (Some(Some(a)), Some(b)) => compensated_score(self.params.weights, &a, &b, MAX_SHIFT)?,
            _ => self.score(f),
        };
        self.motion.insert(f, m);
        Ok(m)
    }

    /// Kept HSV frame `f` (`[3, height, width]`), if it is still kept.
    fn frame(&self, f: u64) -> Option<Tensor> {
        self.hsv.iter().find_map(|(start, batch)| {
            let len = batch.dim(0).ok()? as u64;
            (f >= *start && f < start + len)
                .then(|| batch.get((f - start) as usize).ok())
                .flatten()
        })
    }

    fn flash_at(&self, t: u64) -> Result<bool, MediaError> {
        let p = &self.params;
        let frames = u64::from(p.flash_frames);
        if frames == 0 {
            return Ok(false);
        }
        // The batches holding the frames a flash at `t` is judged on (see
        // `straddling_pairs`), joined: only for the rare frames that would
        // be cuts, so the batches are never copied otherwise.
        let (from, to) = (t.saturating_sub(frames + 1), t + frames + 1);
        let mut first = None;
        let mut parts = Vec::new();
        for (start, batch) in &self.hsv {
            let end = start + batch.dim(0)? as u64;
            if end > from && *start <= to {
                first.get_or_insert(*start);
                parts.push(batch);
            }
        }
        let Some(first) = first else {
            return Ok(false);
        };
        let hsv = match parts[..] {
            [one] => one.clone(),
            _ => Tensor::cat(&parts, 0)?,
        };
        let how = FlashMatch {
            weights: p.weights,
            match_below: p.min_content_val,
            max_shift: MAX_SHIFT,
        };
        is_flash(&hsv, first, t, frames, how)
    }

    /// Drops scores and frames no longer needed for the frames still to judge.
    fn forget(&mut self) -> Result<(), MediaError> {
        let keep_scores = self.target.saturating_sub(self.window());
        if keep_scores > self.scores_first {
            self.scores
                .drain(..(keep_scores - self.scores_first) as usize);
            self.scores_first = keep_scores;
        }
        self.motion = self.motion.split_off(&keep_scores);
        // Frames for flash checks and for the motion-compensated scores of
        // the window (each against the frame before it).
        let behind = u64::from(self.params.flash_frames).max(self.window()) + 1;
        let keep_frames = self.target.saturating_sub(behind);
        while let Some((start, batch)) = self.hsv.front() {
            if start + batch.dim(0)? as u64 > keep_frames {
                break;
            }
            self.hsv.pop_front();
        }
        Ok(())
    }
}

impl Detector for AdaptiveDetector {
    fn name(&self) -> &'static str {
        "adaptive"
    }

    fn params(&self) -> serde_json::Value {
        let p = &self.params;
        serde_json::json!({
            "adaptive_threshold": p.adaptive_threshold,
            "window_width": p.window_width,
            "min_content_val": p.min_content_val,
            "min_shot_len": p.min_shot_len,
            "flash_frames": p.flash_frames,
            "weights": p.weights,
        })
    }

    fn push(&mut self, frames: &Tensor) -> Result<Vec<u64>, MediaError> {
        let hsv = rgb_to_hsv(frames)?;
        let frames = hsv.dim(0)?;
        if frames == 0 {
            return Ok(Vec::new());
        }
        let scores = self.scorer.scores_hsv(&hsv)?;
        self.scores.extend(scores.iter().map(|s| s.unwrap_or(0.0)));
        if self.params.flash_frames > 0 {
            self.hsv.push_back((self.next_frame, hsv));
        }
        self.next_frame += frames as u64;
        self.decide(false)
    }

    fn finish(&mut self) -> Vec<u64> {
        // Frames whose window is complete but whose flash look-ahead ran past
        // the end: judged with the frames there are.
        self.decide(true).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "adaptive detector: last frames not judged");
            Vec::new()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn flat_frames(colours: &[[u8; 3]]) -> Tensor {
        let data = colours
            .iter()
            .flat_map(|colour| colour.iter().flat_map(|&c| std::iter::repeat_n(c, 4 * 6)))
            .collect::<Vec<u8>>();
        Tensor::from_vec(data, (colours.len(), 3, 4, 6), &Device::Cpu).unwrap()
    }

    fn segments(parts: &[([u8; 3], usize)]) -> Vec<[u8; 3]> {
        parts
            .iter()
            .flat_map(|(c, n)| std::iter::repeat_n(*c, *n))
            .collect()
    }

    fn detect(colours: &[[u8; 3]], batch: usize, params: AdaptiveParams) -> Vec<u64> {
        let mut detector = AdaptiveDetector::new(params);
        let mut cuts = Vec::new();
        for chunk in colours.chunks(batch) {
            cuts.extend(detector.push(&flat_frames(chunk)).unwrap());
        }
        cuts.extend(detector.finish());
        cuts
    }

    const RED: [u8; 3] = [200, 30, 30];
    const BLUE: [u8; 3] = [30, 30, 200];
    const DARK: [u8; 3] = [20, 20, 20];
    const WHITE: [u8; 3] = [255, 255, 255];

    #[test]
    fn cuts_are_found_across_batch_boundaries() {
        let video = segments(&[(RED, 20), (BLUE, 16), (DARK, 30)]);
        for params in [AdaptiveParams::default(), AdaptiveParams::reference()] {
            for batch in [1, 2, 7, 16, 20, 64] {
                assert_eq!(detect(&video, batch, params), vec![20, 36], "batch {batch}");
            }
        }
    }

    #[test]
    fn min_shot_len_counts_from_the_newest_frame() {
        // A cut 13 frames after the last is allowed: 13 + window 2 ≥ 15.
        let video = segments(&[(RED, 20), (BLUE, 13), (DARK, 30)]);
        assert_eq!(detect(&video, 8, AdaptiveParams::default()), vec![20, 33]);
        let video = segments(&[(RED, 20), (BLUE, 12), (DARK, 30)]);
        assert_eq!(detect(&video, 8, AdaptiveParams::default()), vec![20]);
    }

    #[test]
    fn steady_change_is_not_a_cut_but_a_spike_is() {
        // Grey rising 12 levels a frame (score 4 each, ratio 1) never cuts,
        // even with a tiny min_content_val; a jump of 60 levels does.
        let ramp: Vec<[u8; 3]> = (0..20u8).map(|i| [i * 12; 3]).collect();
        let low = AdaptiveParams {
            min_content_val: 1.0,
            ..AdaptiveParams::default()
        };
        assert_eq!(detect(&ramp, 5, low), Vec::<u64>::new());
        let mut jump = segments(&[([40; 3], 20)]);
        jump.extend(segments(&[([100; 3], 20)]));
        assert_eq!(detect(&jump, 5, low), vec![20]);
        // The score must still reach min_content_val (here 60/3 = 20).
        let strict = AdaptiveParams {
            min_content_val: 25.0,
            ..AdaptiveParams::default()
        };
        assert_eq!(detect(&jump, 5, strict), Vec::<u64>::new());
    }

    #[test]
    fn flashes_are_suppressed_only_when_asked() {
        for flash_len in [1, 2, 3] {
            let video = segments(&[(DARK, 30), (WHITE, flash_len), (DARK, 30), (BLUE, 20)]);
            let cut_to_blue = 60 + flash_len as u64;
            assert_eq!(
                detect(&video, 16, AdaptiveParams::default()),
                vec![cut_to_blue],
                "{flash_len}-frame flash"
            );
            let reference = detect(&video, 16, AdaptiveParams::reference());
            assert_eq!(reference, vec![30, cut_to_blue], "{flash_len}-frame flash");
        }
    }

    #[test]
    fn a_cut_near_the_end_is_judged_when_the_stream_ends() {
        // The cut at 30 has its window (2 frames) but not its flash
        // look-ahead (3 frames) when the stream ends.
        let video = segments(&[(RED, 30), (BLUE, 3)]);
        let low = AdaptiveParams {
            min_shot_len: 2,
            ..AdaptiveParams::default()
        };
        let mut detector = AdaptiveDetector::new(low);
        let pushed = detector.push(&flat_frames(&video)).unwrap();
        assert!(pushed.is_empty(), "{pushed:?}");
        assert_eq!(detector.finish(), vec![30]);
    }
}

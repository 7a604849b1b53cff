//! Keyframes: one frame per shot, the sharpest of the shot's candidates, picked
//! while frames stream past, in memory bounded however long the shot or the
//! video is.
//!
//! Every `stride`-th frame is a candidate: its pixels are copied, with its
//! sharpness. A detector confirms a cut some frames after it happens, so
//! candidates newer than `horizon` frames stay pending (a cut may yet fall
//! before them); older ones fold into the open shot's best so far, of which
//! only one is kept. When the cut at frame `c` is confirmed, the shot that
//! ends there takes its sharpest candidate below `c`. With `stride` no larger
//! than the shortest shot a detector allows, every shot has a candidate; at
//! most `1 + horizon / stride` frames are held at any time.
//!
//! `ShotKeyframes` is the analyze phase's use of it: each shot's keyframe as
//! the detector confirms the shot, and the faces MTCNN finds on it.

use std::collections::{BTreeMap, VecDeque};

use crate::analysis::{FaceBox, Keyframe};
use crate::decode::FrameBatch;
use crate::faces::Mtcnn;
use crate::quality::FrameQuality;
use crate::MediaError;

/// A candidate frame: its index, sharpness and pixels (as the decoder gave them).
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub frame: u64,
    pub sharpness: f64,
    pub rgb: Vec<u8>,
}

/// Picks each shot's keyframe from the frames offered to it.
#[derive(Debug)]
pub struct KeyframePicker {
    stride: u64,
    horizon: u64,
    /// First frame of the open shot.
    shot_start: u64,
    /// The sharpest candidate of the open shot older than the horizon.
    best: Option<Candidate>,
    /// Candidates newer than the horizon, in frame order.
    pending: VecDeque<Candidate>,
}

impl KeyframePicker {
    /// `stride` ≥ 1: every how many frames a candidate is taken; `horizon`:
    /// how many frames after a cut the detector may confirm it.
    pub fn new(stride: u64, horizon: u64) -> KeyframePicker {
        KeyframePicker {
            stride: stride.max(1),
            horizon,
            shot_start: 0,
            best: None,
            pending: VecDeque::new(),
        }
    }

    /// Whether frame `frame` is a candidate (then [`offer`](Self::offer) it).
    pub fn wants(&self, frame: u64) -> bool {
        frame.is_multiple_of(self.stride)
    }

    /// Offers a candidate; frames come in increasing order.
    pub fn offer(&mut self, frame: u64, sharpness: f64, rgb: &[u8]) {
        self.pending.push_back(Candidate {
            frame,
            sharpness,
            rgb: rgb.to_vec(),
        });
        self.settle(frame);
    }

    /// Folds candidates older than the horizon (seen from `now`) into the best.
    fn settle(&mut self, now: u64) {
        while let Some(c) = self.pending.front() {
            if c.frame + self.horizon >= now {
                break;
            }
            let c = self.pending.pop_front().expect("a front element");
            self.best = sharper(self.best.take(), Some(c));
        }
    }

    /// The cut at frame `c` is confirmed: the shot `[start, c)` closes, and its
    /// keyframe (if it had any candidate) is returned with the shot's start.
    pub fn cut(&mut self, c: u64) -> (u64, Option<Candidate>) {
        let mut pick = self.best.take();
        if pick.as_ref().is_some_and(|b| b.frame >= c) {
            // Confirmed later than the horizon allowed for: it is the next shot's.
            self.pending.push_front(pick.take().expect("checked"));
        }
        while self.pending.front().is_some_and(|f| f.frame < c) {
            pick = sharper(pick, self.pending.pop_front());
        }
        let start = std::mem::replace(&mut self.shot_start, c);
        (start, pick)
    }

    /// The video ended: the last shot closes.
    pub fn finish(&mut self) -> (u64, Option<Candidate>) {
        self.cut(u64::MAX)
    }

    /// Frames held now (for the memory bound).
    pub fn held(&self) -> usize {
        self.pending.len() + usize::from(self.best.is_some())
    }
}

/// The sharper of two candidates; the earlier one on a tie.
fn sharper(a: Option<Candidate>, b: Option<Candidate>) -> Option<Candidate> {
    match (a, b) {
        (Some(a), Some(b)) => Some(if b.sharpness > a.sharpness { b } else { a }),
        (a, b) => a.or(b),
    }
}

// --- The analyze phase's use: keyframes of the shots a detector finds, and the
// faces on them.

/// Frames kept pending for keyframes after they pass: a cut is confirmed at
/// most a batch, the adaptive window and a flash after it happens.
const KEYFRAME_HORIZON: u64 = 2 * crate::analyze::BATCH_FRAMES as u64 + 64;

/// Each shot's keyframe and the faces on it, found as the shots close.
pub(crate) struct ShotKeyframes<'a> {
    picker: KeyframePicker,
    faces: &'a Mtcnn,
    /// Shot start frame → keyframe, faces on it, the largest face.
    pub(crate) found: BTreeMap<u64, (Keyframe, u32, Option<FaceBox>)>,
    /// Cuts already closed (detectors report each once, in order).
    last_cut: u64,
}

impl<'a> ShotKeyframes<'a> {
    pub(crate) fn new(min_shot_len: u32, faces: &'a Mtcnn) -> Self {
        ShotKeyframes {
            // Every shot (at least `min_shot_len` frames) holds a candidate.
            picker: KeyframePicker::new(min_shot_len as u64, KEYFRAME_HORIZON),
            faces,
            found: BTreeMap::new(),
            last_cut: 0,
        }
    }

    /// Copies of the batch's candidate frames, by index in the stream.
    pub(crate) fn candidates(&self, batch: &FrameBatch) -> Vec<(u64, Vec<u8>)> {
        let size = batch.width as usize * batch.height as usize * 3;
        (0..batch.len)
            .map(|i| (batch.first_frame + i as u64, i))
            .filter(|(f, _)| self.picker.wants(*f))
            .map(|(f, i)| (f, batch.data[i * size..(i + 1) * size].to_vec()))
            .collect()
    }

    pub(crate) fn offer(
        &mut self,
        candidates: Vec<(u64, Vec<u8>)>,
        first: u64,
        quality: &[FrameQuality],
    ) {
        for (f, rgb) in candidates {
            let sharpness = quality[(f - first) as usize].sharpness;
            self.picker.offer(f, sharpness, &rgb);
        }
    }

    /// The shot ending at `c` closes: faces are looked for on its keyframe.
    pub(crate) fn cut(&mut self, c: u64, width: u32, height: u32) -> Result<(), MediaError> {
        if c <= self.last_cut {
            return Ok(());
        }
        self.last_cut = c;
        let (start, pick) = self.picker.cut(c);
        self.record(start, pick, width, height)
    }

    pub(crate) fn finish(&mut self, width: u32, height: u32) -> Result<(), MediaError> {
        let (start, pick) = self.picker.finish();
        self.record(start, pick, width, height)
    }

    fn record(
        &mut self,
        start: u64,
        pick: Option<Candidate>,
        width: u32,
        height: u32,
    ) -> Result<(), MediaError> {
        let Some(k) = pick else { return Ok(()) };
        let faces = self
            .faces
            .detect(&packed(&k.rgb), width as usize, height as usize)?;
        let (w, h) = (width as f64, height as f64);
        let largest = faces
            .iter()
            .max_by(|a, b| area(a).total_cmp(&area(b)))
            .map(|f| FaceBox {
                x: (f.bbox[0] as f64 / w).clamp(0.0, 1.0),
                y: (f.bbox[1] as f64 / h).clamp(0.0, 1.0),
                w: ((f.bbox[2] - f.bbox[0]) as f64 / w).clamp(0.0, 1.0),
                h: ((f.bbox[3] - f.bbox[1]) as f64 / h).clamp(0.0, 1.0),
                prob: f.prob as f64,
            });
        let keyframe = Keyframe {
            frame: k.frame,
            time_s: 0.0,
            sharpness: k.sharpness,
        };
        self.found
            .insert(start, (keyframe, faces.len() as u32, largest));
        Ok(())
    }
}

/// One planar RGB frame (the decoder's layout) as packed RGB24 (MTCNN's input).
fn packed(planar: &[u8]) -> Vec<u8> {
    let n = planar.len() / 3;
    let (r, rest) = planar.split_at(n);
    let (g, b) = rest.split_at(n);
    let mut out = Vec::with_capacity(planar.len());
    for i in 0..n {
        out.extend_from_slice(&[r[i], g[i], b[i]]);
    }
    out
}

fn area(f: &crate::faces::Face) -> f32 {
    (f.bbox[2] - f.bbox[0]).max(0.0) * (f.bbox[3] - f.bbox[1]).max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Streams `frames` frames with the given sharpness, confirming each cut
    /// `lag` frames after it; returns (shot start, keyframe) per shot.
    fn run(sharp: impl Fn(u64) -> f64, frames: u64, cuts: &[u64], lag: u64) -> Vec<(u64, u64)> {
        let mut p = KeyframePicker::new(5, 20);
        let mut out = Vec::new();
        let mut max_held = 0;
        for f in 0..frames {
            if p.wants(f) {
                p.offer(f, sharp(f), &[f as u8; 3]);
            }
            for &c in cuts.iter().filter(|&&c| c + lag == f) {
                let (start, k) = p.cut(c);
                out.push((start, k.expect("a keyframe").frame));
            }
            max_held = max_held.max(p.held());
        }
        let (start, k) = p.finish();
        out.push((start, k.expect("a keyframe").frame));
        assert!(max_held <= 1 + 20 / 5 + 1, "held {max_held} frames");
        out
    }

    #[test]
    fn each_shot_gets_its_sharpest_candidate_despite_late_cuts() {
        // Sharpness peaks at frames 10, 45 and 90; cuts at 30 and 60.
        let sharp = |f: u64| match f {
            10 | 45 | 90 => 9.0,
            _ => 1.0,
        };
        for lag in [0, 7, 19] {
            assert_eq!(
                run(sharp, 120, &[30, 60], lag),
                vec![(0, 10), (30, 45), (60, 90)],
                "lag {lag}"
            );
        }
    }

    #[test]
    fn memory_stays_bounded_in_a_long_shot() {
        // One shot of 10 000 frames: the bound is checked inside `run`.
        let picked = run(|f| (f % 97) as f64, 10_000, &[], 0);
        assert_eq!(picked.len(), 1);
        // 290 = 2 * 97 + 96: the first multiple of 5 where f % 97 peaks.
        assert_eq!(picked[0], (0, 290));
    }

    #[test]
    fn a_shot_without_candidates_has_no_keyframe() {
        let mut p = KeyframePicker::new(10, 5);
        p.offer(0, 1.0, &[0]);
        assert_eq!(p.cut(3).1.map(|c| c.frame), Some(0));
        // [3, 7) holds no multiple of 10.
        assert_eq!(p.cut(7), (3, None));
        p.offer(10, 1.0, &[0]);
        assert_eq!(p.finish().1.map(|c| c.frame), Some(10));
    }
}

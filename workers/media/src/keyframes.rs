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
//! `ShotKeyframes` ([`finder`]) is the analyze phase's use of it: each shot's
//! keyframe as the detector confirms the shot, handed to [`find_faces`], which
//! runs MTCNN on it and makes its thumbnail on a thread of its own while the
//! decoding and the analysis go on.

mod finder;

pub(crate) use finder::{face_queue, find_faces, largest_face, packed, ShotFaces, ShotKeyframes};

use std::collections::VecDeque;

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

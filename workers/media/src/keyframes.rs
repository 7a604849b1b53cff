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
//! the detector confirms the shot, handed to [`find_faces`], which runs MTCNN
//! on it on a thread of its own while the decoding and the analysis go on.

use std::collections::{BTreeMap, VecDeque};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use tokio_util::sync::CancellationToken;

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
// faces on them, looked for on a thread of their own.

/// Frames kept pending for keyframes after they pass: a cut is confirmed at
/// most a batch, the adaptive window and a flash after it happens.
const KEYFRAME_HORIZON: u64 = 2 * crate::analyze::BATCH_FRAMES as u64 + 64;

/// Keyframes waiting for the face finder at most. MTCNN takes about as long
/// on a keyframe as the decoder takes on a shot of the shortest length, so
/// a few absorb runs of short shots; when they are all taken, the analysis
/// waits (which bounds the memory: a few frames).
const FACE_QUEUE: usize = 4;

/// Each shot's keyframe and the faces on it, by the shot's first frame.
pub(crate) type ShotFaces = BTreeMap<u64, (Keyframe, u32, Option<FaceBox>)>;

/// A closed shot's keyframe, for the face finder.
pub(crate) struct FaceJob {
    start: u64,
    key: Candidate,
    width: u32,
    height: u32,
}

/// Picks each shot's keyframe as the detector confirms the shot, and hands
/// it to the face finder ([`find_faces`], on its own thread, so that MTCNN
/// runs beside the decoding instead of holding it up).
pub(crate) struct ShotKeyframes {
    picker: KeyframePicker,
    jobs: SyncSender<FaceJob>,
    /// Whether the face finder has stopped (it failed: its result says why).
    finder_gone: bool,
    /// Cuts already closed (detectors report each once, in order).
    last_cut: u64,
}

impl ShotKeyframes {
    /// Keyframes for shots of at least `min_shot_len` frames, sent to the
    /// face finder reading [`face_queue`]'s other end.
    pub(crate) fn new(min_shot_len: u32, jobs: SyncSender<FaceJob>) -> Self {
        ShotKeyframes {
            // Every shot (at least `min_shot_len` frames) holds a candidate.
            picker: KeyframePicker::new(min_shot_len as u64, KEYFRAME_HORIZON),
            jobs,
            finder_gone: false,
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

    /// The shot ending at `c` closes: its keyframe goes to the face finder.
    pub(crate) fn cut(&mut self, c: u64, width: u32, height: u32) {
        if c <= self.last_cut {
            return;
        }
        self.last_cut = c;
        let (start, pick) = self.picker.cut(c);
        self.send(start, pick, width, height);
    }

    /// The video ended: the last shot closes, and the face finder is told
    /// there is nothing more.
    pub(crate) fn finish(mut self, width: u32, height: u32) {
        let (start, pick) = self.picker.finish();
        self.send(start, pick, width, height);
    }

    /// Whether the face finder has stopped early (it failed).
    pub(crate) fn finder_gone(&self) -> bool {
        self.finder_gone
    }

    fn send(&mut self, start: u64, pick: Option<Candidate>, width: u32, height: u32) {
        let Some(key) = pick else { return };
        let job = FaceJob {
            start,
            key,
            width,
            height,
        };
        if !self.finder_gone && self.jobs.send(job).is_err() {
            self.finder_gone = true;
        }
    }
}

/// The channel between [`ShotKeyframes`] and [`find_faces`].
pub(crate) fn face_queue() -> (SyncSender<FaceJob>, Receiver<FaceJob>) {
    sync_channel(FACE_QUEUE)
}

/// The face finder: MTCNN on each keyframe received, until the sender is
/// gone (then the faces of every shot) or `cancel` is set (`Cancelled`).
pub(crate) fn find_faces(
    jobs: Receiver<FaceJob>,
    faces: &Mtcnn,
    cancel: &CancellationToken,
) -> Result<ShotFaces, MediaError> {
    let mut found = ShotFaces::new();
    for job in jobs {
        if cancel.is_cancelled() {
            return Err(MediaError::Cancelled);
        }
        let (w, h) = (job.width as usize, job.height as usize);
        let on_key = faces.detect(&packed(&job.key.rgb), w, h)?;
        let (w, h) = (w as f64, h as f64);
        let largest = on_key
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
            frame: job.key.frame,
            time_s: 0.0,
            sharpness: job.key.sharpness,
        };
        found.insert(job.start, (keyframe, on_key.len() as u32, largest));
    }
    Ok(found)
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

    fn grey_job(start: u64, frame: u64) -> FaceJob {
        FaceJob {
            start,
            key: Candidate {
                frame,
                sharpness: 1.0,
                rgb: vec![128; 64 * 48 * 3],
            },
            width: 64,
            height: 48,
        }
    }

    #[test]
    fn the_face_finder_reports_every_shot_it_was_sent() {
        let mtcnn = Mtcnn::shared_default().expect("MTCNN weights (bash models/fetch.sh)");
        let cancel = CancellationToken::new();
        let (jobs, queue) = face_queue();
        let found = std::thread::scope(|s| {
            let finder = s.spawn(|| find_faces(queue, mtcnn, &cancel));
            for (start, frame) in [(0, 5), (30, 45), (60, 60)] {
                jobs.send(grey_job(start, frame)).expect("the finder runs");
            }
            drop(jobs);
            finder.join().expect("no panic")
        })
        .expect("faces");
        let shots: Vec<(u64, u64, u32)> = found
            .iter()
            .map(|(start, (key, faces, largest))| {
                assert!(largest.is_none());
                (*start, key.frame, *faces)
            })
            .collect();
        assert_eq!(shots, [(0, 5, 0), (30, 45, 0), (60, 60, 0)]);
    }

    #[test]
    fn a_cancelled_face_finder_stops_with_cancelled() {
        let mtcnn = Mtcnn::shared_default().expect("MTCNN weights (bash models/fetch.sh)");
        let cancel = CancellationToken::new();
        cancel.cancel();
        let (jobs, queue) = face_queue();
        jobs.send(grey_job(0, 0)).expect("room in the queue");
        drop(jobs);
        let err = find_faces(queue, mtcnn, &cancel).expect_err("cancelled");
        assert!(matches!(err, MediaError::Cancelled), "{err:?}");
    }
}

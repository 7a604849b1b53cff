//! The analyze phase's use of [`KeyframePicker`]: each shot's keyframe as
//! the detector confirms the shot ([`ShotKeyframes`]), handed to
//! [`find_faces`], which runs MTCNN on it and makes its thumbnail on a thread
//! of its own while the decoding and the analysis go on.

use std::collections::BTreeMap;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use tokio_util::sync::CancellationToken;

use super::{Candidate, KeyframePicker};
use crate::analysis::{FaceBox, Keyframe};
use crate::decode::FrameBatch;
use crate::faces::Mtcnn;
use crate::quality::FrameQuality;
use crate::thumbnail::{thumbnail, Thumbnail};
use crate::MediaError;

/// Frames kept pending for keyframes after they pass: a cut is confirmed at
/// most a batch, the adaptive window and a flash after it happens.
const KEYFRAME_HORIZON: u64 = 2 * crate::analyze::BATCH_FRAMES as u64 + 64;

/// Keyframes waiting for the face finder at most. MTCNN takes about as long
/// on a keyframe as the decoder takes on a shot of the shortest length, so
/// a few absorb runs of short shots; when they are all taken, the analysis
/// waits (which bounds the memory: a few frames).
const FACE_QUEUE: usize = 4;

/// What the face finder made of one shot's keyframe.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ShotKey {
    /// The keyframe (its `time_s` is left for the caller, who knows the rate).
    pub keyframe: Keyframe,
    /// Faces MTCNN found on it.
    pub faces: u32,
    /// The largest of them, as fractions of the frame.
    pub largest_face: Option<FaceBox>,
    /// Its thumbnail, or why none could be made; `None` for shots past the
    /// number of thumbnails asked for.
    pub thumbnail: Option<Result<Thumbnail, String>>,
}

/// Each shot's keyframe and what was made of it, by the shot's first frame.
pub(crate) type ShotFaces = BTreeMap<u64, ShotKey>;

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

/// The face finder: MTCNN on each keyframe received, and a thumbnail of
/// each of the first `thumbnails` ([`crate::thumbnail`]), until the sender is
/// gone (then what was found for every shot) or `cancel` is set
/// (`Cancelled`). A thumbnail that cannot be made is not an error of the
/// analysis: its reason is kept for the shot instead.
pub(crate) fn find_faces(
    jobs: Receiver<FaceJob>,
    faces: &Mtcnn,
    thumbnails: u32,
    cancel: &CancellationToken,
) -> Result<ShotFaces, MediaError> {
    let mut found = ShotFaces::new();
    for (n, job) in jobs.into_iter().enumerate() {
        if cancel.is_cancelled() {
            return Err(MediaError::Cancelled);
        }
        // Shots arrive in order and the n-th has index n or more, so these
        // cover every shot below `thumbnails`.
        let thumbnail = (n < thumbnails as usize)
            .then(|| thumbnail(&job.key.rgb, job.width, job.height).map_err(|e| e.to_string()));
        let (w, h) = (job.width as usize, job.height as usize);
        let on_key = faces.detect(&packed(&job.key.rgb), w, h)?;
        let largest = largest_face(&on_key, w, h);
        let keyframe = Keyframe {
            frame: job.key.frame,
            time_s: 0.0,
            sharpness: job.key.sharpness,
        };
        found.insert(
            job.start,
            ShotKey {
                keyframe,
                faces: on_key.len() as u32,
                largest_face: largest,
                thumbnail,
            },
        );
    }
    Ok(found)
}

/// The largest of `faces` found on a `w × h` frame, as fractions of it.
pub(crate) fn largest_face(faces: &[crate::faces::Face], w: usize, h: usize) -> Option<FaceBox> {
    let (w, h) = (w as f64, h as f64);
    faces
        .iter()
        .max_by(|a, b| area(a).total_cmp(&area(b)))
        .map(|f| FaceBox {
            x: (f.bbox[0] as f64 / w).clamp(0.0, 1.0),
            y: (f.bbox[1] as f64 / h).clamp(0.0, 1.0),
            w: ((f.bbox[2] - f.bbox[0]) as f64 / w).clamp(0.0, 1.0),
            h: ((f.bbox[3] - f.bbox[1]) as f64 / h).clamp(0.0, 1.0),
            prob: f.prob as f64,
        })
}

/// One planar RGB frame (the decoder's layout) as packed RGB24 (MTCNN's input).
pub(crate) fn packed(planar: &[u8]) -> Vec<u8> {
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

    /// Every shot it was sent comes back, with thumbnails for the first two
    /// asked for.
    #[test]
    fn the_face_finder_reports_every_shot_it_was_sent() {
        let mtcnn = Mtcnn::shared_default().expect("MTCNN weights (bash models/fetch.sh)");
        let cancel = CancellationToken::new();
        let (jobs, queue) = face_queue();
        let found = std::thread::scope(|s| {
            let finder = s.spawn(|| find_faces(queue, mtcnn, 2, &cancel));
            for (start, frame) in [(0, 5), (30, 45), (60, 60)] {
                jobs.send(grey_job(start, frame)).expect("the finder runs");
            }
            drop(jobs);
            finder.join().expect("no panic")
        })
        .expect("faces");
        let shots: Vec<_> = found
            .iter()
            .map(|(start, key)| {
                assert!(key.largest_face.is_none());
                let size = key.thumbnail.as_ref().map(|t| {
                    let t = t.as_ref().expect("a thumbnail");
                    assert_eq!(&t.jpeg[..2], &[0xFF, 0xD8]);
                    (t.width, t.height)
                });
                (*start, key.keyframe.frame, key.faces, size)
            })
            .collect();
        assert_eq!(
            shots,
            [
                (0, 5, 0, Some((64, 48))),
                (30, 45, 0, Some((64, 48))),
                (60, 60, 0, None)
            ]
        );
    }

    #[test]
    fn a_cancelled_face_finder_stops_with_cancelled() {
        let mtcnn = Mtcnn::shared_default().expect("MTCNN weights (bash models/fetch.sh)");
        let cancel = CancellationToken::new();
        cancel.cancel();
        let (jobs, queue) = face_queue();
        jobs.send(grey_job(0, 0)).expect("room in the queue");
        drop(jobs);
        let err = find_faces(queue, mtcnn, 0, &cancel).expect_err("cancelled");
        assert!(matches!(err, MediaError::Cancelled), "{err:?}");
    }
}

//! The face track: the largest face on frames sampled through the video
//! (every `stride`-th frame), found by MTCNN on a thread of its own beside
//! the decoding, as the keyframes' faces are. The reframed outputs follow it.

use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use tokio_util::sync::CancellationToken;

use crate::analysis::{FaceBox, FaceSample, Shot};
use crate::decode::FrameBatch;
use crate::faces::Mtcnn;
use crate::keyframes::{largest_face, packed};
use crate::MediaError;

/// Sampled frames waiting for MTCNN at most (about 170 KB each at the default
/// analysis width); when they are all taken, the decoding waits.
const QUEUE: usize = 8;

/// One sampled frame, planar RGB as the decoder gives it.
pub(crate) struct SampleJob {
    frame: u64,
    rgb: Vec<u8>,
    width: u32,
    height: u32,
}

/// The decoding side: picks the sampled frames out of each batch and hands
/// them to [`find_track`].
pub(crate) struct Sampler {
    stride: Option<u64>,
    jobs: Option<SyncSender<SampleJob>>,
}

impl Sampler {
    /// Samples every `stride`-th frame (none when `None`) into `jobs`.
    pub(crate) fn new(stride: Option<u64>, jobs: SyncSender<SampleJob>) -> Sampler {
        Sampler {
            stride,
            jobs: Some(jobs),
        }
    }

    /// Sends the batch's sampled frames; `false` once the tracker has
    /// stopped (it failed: its result says why).
    pub(crate) fn offer(&mut self, batch: &FrameBatch) -> bool {
        let (Some(stride), Some(jobs)) = (self.stride, self.jobs.as_ref()) else {
            return true;
        };
        let size = batch.width as usize * batch.height as usize * 3;
        for i in 0..batch.len {
            let frame = batch.first_frame + i as u64;
            if !frame.is_multiple_of(stride) {
                continue;
            }
            let job = SampleJob {
                frame,
                rgb: batch.data[i * size..(i + 1) * size].to_vec(),
                width: batch.width,
                height: batch.height,
            };
            if jobs.send(job).is_err() {
                self.jobs = None;
                return false;
            }
        }
        true
    }
}

/// The channel between [`Sampler`] and [`find_track`].
pub(crate) fn track_queue() -> (SyncSender<SampleJob>, Receiver<SampleJob>) {
    sync_channel(QUEUE)
}

/// MTCNN on every sampled frame received, until the sender is gone (then the
/// samples in frame order: the frame and its largest face) or `cancel` is set.
pub(crate) fn find_track(
    jobs: Receiver<SampleJob>,
    faces: &Mtcnn,
    cancel: &CancellationToken,
) -> Result<Vec<(u64, Option<FaceBox>)>, MediaError> {
    let mut track = Vec::new();
    for job in jobs {
        if cancel.is_cancelled() {
            return Err(MediaError::Cancelled);
        }
        let (w, h) = (job.width as usize, job.height as usize);
        let found = faces.detect(&packed(&job.rgb), w, h)?;
        track.push((job.frame, largest_face(&found, w, h).map(rounded)));
    }
    Ok(track)
}

/// A box to 1/10 000 of the frame (a tenth of a pixel at 1000 pixels), which
/// keeps `analysis.json` small.
fn rounded(b: FaceBox) -> FaceBox {
    let r = |v: f64| (v * 1e4).round() / 1e4;
    FaceBox {
        x: r(b.x),
        y: r(b.y),
        w: r(b.w),
        h: r(b.h),
        prob: r(b.prob),
    }
}

/// Hands each shot the samples inside it (`track` in frame order).
pub(crate) fn assign(shots: &mut [Shot], track: &[(u64, Option<FaceBox>)], fps: f64) {
    for shot in shots {
        let from = track.partition_point(|(f, _)| *f < shot.start_frame);
        let to = track.partition_point(|(f, _)| *f < shot.end_frame);
        shot.face_track = track[from..to]
            .iter()
            .map(|(frame, face)| FaceSample {
                frame: *frame,
                time_s: (*frame as f64 / fps * 1e4).round() / 1e4,
                face: face.clone(),
            })
            .collect();
    }
}

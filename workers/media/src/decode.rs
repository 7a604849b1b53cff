//! Streams decoded frames out of ffmpeg in bounded batches.
//!
//! The input's first video stream is decoded by an `ffmpeg` child process
//! (driven through `ffmpeg-sidecar`), scaled down to the analysis width with
//! area averaging, converted to packed `rgb24` and read from its stdout. A
//! reader thread splits each frame into R, G and B planes (the layout tensor
//! code wants) and gathers frames into batches of at most
//! [`DecodeOptions::batch_frames`], so the memory used is bounded however long
//! the video is.
//!
//! Accuracy: the decoder runs with its default (frame) threading, which is
//! bit-exact; nothing is skipped (no `-skip_frame`, no `-flags2 fast`, no
//! loop-filter skipping). Output is put on a constant frame-rate grid
//! (`-fps_mode cfr` at the stream's frame rate), so frame `i` is at media time
//! `i / fps` exactly — the convention `Analysis` uses for shot times.

pub use crate::source::{probe_source, FrameRate, SourceInfo};

use crate::batcher::{read_batches, Delivery};
use crate::source::{file_url, tool_error};
use crate::MediaError;
use ffmpeg_sidecar::command::FfmpegCommand;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError};
use std::time::Duration;

/// How to decode for analysis.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodeOptions {
    /// Width of the decoded frames: even, at least 16. The height follows the
    /// display aspect ratio, rounded to an even number.
    pub width: u32,
    /// Frames per batch (at least 1).
    pub batch_frames: usize,
    /// Stop after this much media time, in seconds.
    pub max_seconds: Option<f64>,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        DecodeOptions {
            width: 320,
            batch_frames: 64,
            max_seconds: None,
        }
    }
}

/// Consecutive decoded frames, each stored as planar RGB (the red plane, then
/// green, then blue, each row-major): `u8` of shape `[len, 3, height, width]`.
#[derive(Debug, Clone, PartialEq)]
pub struct FrameBatch {
    /// Index of the batch's first frame in the stream.
    pub first_frame: u64,
    /// Frames in the batch.
    pub len: usize,
    pub width: u32,
    pub height: u32,
    pub data: Vec<u8>,
}

impl FrameBatch {
    /// The batch as a `u8` tensor of shape `[len, 3, height, width]`.
    pub fn to_tensor(
        &self,
        device: &candle_core::Device,
    ) -> Result<candle_core::Tensor, MediaError> {
        let shape = (self.len, 3, self.height as usize, self.width as usize);
        Ok(candle_core::Tensor::from_slice(&self.data, shape, device)?)
    }
}

/// How long a wait for the next batch lasts before `cancel` is looked at again.
const CANCEL_POLL: Duration = Duration::from_millis(20);

/// A running ffmpeg decode of one input. Dropping it kills ffmpeg.
///
/// A reader thread collects ffmpeg's frames into batches and keeps one batch
/// ready ahead of the caller, so decoding overlaps with the analysis of the
/// previous batch; at most three batches exist at once.
pub struct FrameDecoder {
    child: ffmpeg_sidecar::child::FfmpegChild,
    batches: Receiver<Delivery>,
    path: PathBuf,
    source: SourceInfo,
    max_seconds: Option<f64>,
    width: u32,
    height: u32,
    frames: u64,
    finished: bool,
}

impl FrameDecoder {
    /// Probes `input` and starts ffmpeg on it. Fails with `Unusable` when the
    /// input has no decodable video stream.
    pub fn open(input: &Path, options: &DecodeOptions) -> Result<Self, MediaError> {
        if options.width < 16 || !options.width.is_multiple_of(2) {
            return Err(MediaError::InvalidParams(format!(
                "analysis width must be even and at least 16, got {}",
                options.width
            )));
        }
        if options.batch_frames == 0 {
            return Err(MediaError::InvalidParams(
                "batch size must be at least 1".into(),
            ));
        }
        let source = probe_source(input)?;
        let rate = source.frame_rate;
        let scale = format!(
            "scale=w={}:h='max(2,2*trunc(ow/dar/2+0.5))':flags=area",
            options.width
        );
        let mut command = FfmpegCommand::new();
        command
            .hide_banner()
            .args(["-nostdin", "-nostats"])
            .input(file_url(input))
            .args(["-map", "0:v:0", "-an", "-sn", "-dn"])
            .filter(scale)
            .fps_mode("cfr")
            .arg("-r")
            .arg(format!("{}/{}", rate.num, rate.den));
        if let Some(seconds) = options.max_seconds {
            command.duration(format!("{seconds:.6}"));
        }
        command.rawvideo();
        let mut child = command
            .spawn()
            .map_err(|e| tool_error("ffmpeg", input, format!("could not run ffmpeg: {e}")))?;
        let started = child
            .iter()
            .and_then(|mut events| events.collect_metadata().map(|meta| (events, meta)));
        let video = match started {
            Ok((events, metadata)) => metadata
                .output_streams
                .iter()
                .find_map(|s| s.video_data().cloned())
                .map(|video| (events, video)),
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(tool_error("ffmpeg", input, e.to_string()));
            }
        };
        let Some((events, video)) = video else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(tool_error("ffmpeg", input, "no video output stream".into()));
        };
        let frame_bytes = video.width as usize * video.height as usize * 3;
        let (sender, batches) = sync_channel(1);
        let batch_frames = options.batch_frames;
        std::thread::Builder::new()
            .name("ffmpeg-frames".into())
            .spawn(move || read_batches(events, frame_bytes, batch_frames, sender))
            .map_err(|e| MediaError::io(input, e))?;
        Ok(FrameDecoder {
            child,
            batches,
            path: input.to_path_buf(),
            source,
            max_seconds: options.max_seconds,
            width: video.width,
            height: video.height,
            frames: 0,
            finished: false,
        })
    }

    /// Frames per second of the decoded (constant-rate) stream.
    pub fn fps(&self) -> f64 {
        self.source.frame_rate.as_f64()
    }

    pub fn frame_rate(&self) -> FrameRate {
        self.source.frame_rate
    }

    /// Width and height of the decoded frames.
    pub fn size(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    /// Frames handed out so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Duration of the input, when ffprobe knows it.
    pub fn duration_s(&self) -> Option<f64> {
        self.source.duration_s
    }

    /// How far decoding has got, 0–100: decoded media time over the time to
    /// decode (the duration, or `max_seconds` when shorter). `None` while the
    /// duration is unknown.
    pub fn progress_percent(&self) -> Option<f64> {
        let total = match (self.source.duration_s, self.max_seconds) {
            (Some(d), Some(m)) => d.min(m),
            (Some(d), None) => d,
            (None, m) => m?,
        };
        let done = self.frames as f64 / self.fps();
        Some(if total > 0.0 {
            (100.0 * done / total).clamp(0.0, 100.0)
        } else {
            100.0
        })
    }

    /// The next batch of frames, or `None` once the stream is exhausted.
    ///
    /// After each batch `on_progress` gets [`progress_percent`](Self::progress_percent)
    /// when it is known. `cancel` is looked at every few milliseconds while
    /// waiting: once set, ffmpeg is killed and `Cancelled` returned. A failure
    /// of ffmpeg is `Tool`; a stream that yields no frame at all is `Unusable`.
    pub fn next_batch(
        &mut self,
        on_progress: &mut dyn FnMut(f64),
        cancel: &AtomicBool,
    ) -> Result<Option<FrameBatch>, MediaError> {
        if self.finished {
            return Ok(None);
        }
        loop {
            if cancel.load(Ordering::Relaxed) {
                self.stop();
                return Err(MediaError::Cancelled);
            }
            let delivery = match self.batches.recv_timeout(CANCEL_POLL) {
                Ok(delivery) => delivery,
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => {
                    Delivery::Broken("frame reader stopped".into())
                }
            };
            return match delivery {
                Delivery::Frames { data, len } => {
                    let batch = FrameBatch {
                        first_frame: self.frames,
                        len,
                        width: self.width,
                        height: self.height,
                        data,
                    };
                    self.frames += len as u64;
                    if let Some(percent) = self.progress_percent() {
                        on_progress(percent);
                    }
                    Ok(Some(batch))
                }
                Delivery::Ended { errors } => self.finish(&errors).map(|()| None),
                Delivery::Broken(message) => {
                    self.stop();
                    Err(tool_error("ffmpeg", &self.path, message))
                }
            };
        }
    }

    /// ffmpeg's output has ended: reap it and judge how it went.
    fn finish(&mut self, errors: &[String]) -> Result<(), MediaError> {
        self.finished = true;
        let status = self
            .child
            .wait()
            .map_err(|e| tool_error("ffmpeg", &self.path, format!("waiting for ffmpeg: {e}")))?;
        let said = if errors.is_empty() {
            String::new()
        } else {
            format!(": {}", errors.join("; "))
        };
        if !status.success() {
            let message = format!("exited with {status}{said}");
            return Err(tool_error("ffmpeg", &self.path, message));
        }
        if self.frames == 0 {
            return Err(MediaError::Unusable(format!(
                "no decodable video frames{said}"
            )));
        }
        Ok(())
    }

    /// Kills ffmpeg (if still running) and reaps it. The reader thread then
    /// sees the output end and exits.
    fn stop(&mut self) {
        if !self.finished {
            self.finished = true;
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Drop for FrameDecoder {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_options_are_rejected_before_ffmpeg_runs() {
        let path = Path::new("/nonexistent/video.mp4");
        for options in [
            DecodeOptions {
                width: 15,
                ..DecodeOptions::default()
            },
            DecodeOptions {
                width: 8,
                ..DecodeOptions::default()
            },
            DecodeOptions {
                batch_frames: 0,
                ..DecodeOptions::default()
            },
        ] {
            let err = FrameDecoder::open(path, &options).err().expect("rejected");
            assert!(matches!(err, MediaError::InvalidParams(_)), "{err:?}");
        }
    }
}

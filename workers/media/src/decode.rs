//! Streams decoded frames out of ffmpeg in bounded batches.
//!
//! The input's first video stream is decoded by an `ffmpeg` child process
//! (started through `ffmpeg-sidecar`, which also parses its log), scaled down
//! to the analysis width with area averaging, converted to packed `rgb24` and
//! read from its stdout. A reader thread reads each frame straight into the
//! batch being filled, split into R, G and B planes (the layout tensor code
//! wants), and hands batches of at most [`DecodeOptions::batch_frames`] over
//! a bounded channel, so the memory used is bounded however long the video
//! is. [`ffmpeg_args`] gives the exact command, so that the decoder can be
//! timed alone with the same settings.
//!
//! Cost: in the analyze benchmark (`benches/analyze.rs`, whose report lists
//! what was tried) the H.264 decoder is about 85% of ffmpeg's CPU time and
//! scaling about 15%. The scaler's flags move that by a few percent at most
//! (`fast_bilinear`, the cheapest, aliases), and neither the decoder's thread
//! count nor swscale's threads changed it beyond the noise, so area averaging
//! and the default threads stay.
//!
//! Accuracy: the decoder runs with its default (frame) threading, which is
//! bit-exact; nothing is skipped (no `-skip_frame`, no `-flags2 fast`, no
//! loop-filter skipping). Output is put on a constant frame-rate grid
//! (`-fps_mode cfr` at the stream's frame rate), so frame `i` is at media time
//! `i / fps` exactly — the convention `Analysis` uses for shot times.

pub use crate::source::{probe_source, FrameRate, SourceInfo};

mod start;

pub use start::{ffmpeg_args, widen_pipe, PIPE_BYTES};

use crate::batcher::{drain_log, read_batches, Delivery};
use crate::source::tool_error;
use crate::MediaError;
use start::Started;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

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
    /// The video stream to decode, by its index among all the file's streams
    /// (the probe's choice, `MediaInfo::video_stream`); `None`: the first
    /// video stream.
    pub stream: Option<u32>,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        DecodeOptions {
            width: 320,
            batch_frames: 64,
            max_seconds: None,
            stream: None,
        }
    }
}

/// Consecutive decoded frames, each stored as planar RGB (the red plane, then
/// green, then blue, each row-major): `u8` of shape `[len, 3, height, width]`
/// ([`crate::tensors::frames`] makes it a tensor without a copy).
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

/// Full batches the reader thread may have waiting for the caller: enough
/// to ride out the analysis thread being preempted for a few milliseconds by
/// ffmpeg's own threads (with the pipe's buffer, see [`PIPE_BYTES`]), few
/// enough to keep the memory at a few megabytes.
const QUEUED_BATCHES: usize = 4;

/// How long a wait for the next batch lasts before `cancel` is looked at again.
const CANCEL_POLL: Duration = Duration::from_millis(20);

/// A running ffmpeg decode of one input. Dropping it kills ffmpeg.
///
/// A reader thread collects ffmpeg's frames into batches and keeps up to
/// [`QUEUED_BATCHES`] ready ahead of the caller, so decoding overlaps with
/// the analysis of earlier batches; at most `QUEUED_BATCHES + 2` batches exist
/// at once (one being filled, those queued, one being analysed).
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
        // ffprobe (for the exact frame rate and the duration) and ffmpeg
        // start together, which hides ffprobe's start-up (about 0.1 s) behind
        // ffmpeg's: ffmpeg on the frame rate it guesses itself, the rule the
        // probe follows too, checked against the probe's exact fraction once
        // both are known. Only where they differ does ffmpeg start again, on
        // the probe's rate.
        let stream = options.stream;
        let probe = {
            let path = input.to_path_buf();
            std::thread::Builder::new()
                .name("ffprobe".into())
                .spawn(move || probe_source(&path, stream))
                .map_err(|e| MediaError::io(input, e))?
        };
        let guessed = Started::spawn(input, options, None);
        let probed = probe
            .join()
            .unwrap_or_else(|_| Err(tool_error("ffprobe", input, "the probe panicked".into())));
        let source = match probed {
            Ok(source) => source,
            Err(e) => {
                if let Ok(started) = guessed {
                    started.stop();
                }
                return Err(e);
            }
        };
        let started = match guessed? {
            started if started.runs_at(source.frame_rate) => started,
            started => {
                tracing::debug!(
                    guessed = started.fps,
                    probed = source.frame_rate.as_f64(),
                    "ffmpeg's frame rate is not the probe's: restarting it on the probe's"
                );
                started.stop();
                Started::spawn(input, options, Some(source.frame_rate))?
            }
        };
        let Started {
            child,
            events,
            output,
            width,
            height,
            ..
        } = started;
        let frame_bytes = width as usize * height as usize * 3;
        let (sender, batches) = sync_channel(QUEUED_BATCHES);
        let batch_frames = options.batch_frames;
        let spawned = std::thread::Builder::new()
            .name("ffmpeg-log".into())
            .spawn(move || drain_log(events))
            .and_then(|log| {
                std::thread::Builder::new()
                    .name("ffmpeg-frames".into())
                    .spawn(move || read_batches(output, log, frame_bytes, batch_frames, sender))
            });
        if let Err(e) = spawned {
            let mut child = child;
            let _ = child.kill();
            let _ = child.wait();
            return Err(MediaError::io(input, e));
        }
        Ok(FrameDecoder {
            child,
            batches,
            path: input.to_path_buf(),
            source,
            max_seconds: options.max_seconds,
            width,
            height,
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
        cancel: &CancellationToken,
    ) -> Result<Option<FrameBatch>, MediaError> {
        if self.finished {
            return Ok(None);
        }
        loop {
            if cancel.is_cancelled() {
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
    fn ffmpeg_args_name_the_input_scale_rate_and_output() {
        let options = DecodeOptions {
            max_seconds: Some(2.5),
            ..DecodeOptions::default()
        };
        let rate = FrameRate {
            num: 30000,
            den: 1001,
        };
        let args = ffmpeg_args(Path::new("-odd:name.mp4"), &options, Some(rate));
        let args: Vec<String> = args.iter().map(|a| a.to_string_lossy().into()).collect();
        let line = args.join(" ");
        assert!(
            line.contains(" -i file:-odd:name.mp4 -map 0:v:0 "),
            "{line}"
        );
        assert!(line.contains(" -filter scale=w=320:"), "{line}");
        let tail = "-fps_mode cfr -r 30000/1001 -t 2.500000 -f rawvideo -pix_fmt rgb24 -";
        assert!(line.ends_with(tail), "{line}");
        let third = DecodeOptions {
            stream: Some(3),
            ..DecodeOptions::default()
        };
        let line = ffmpeg_args(Path::new("a.mp4"), &third, None)
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ");
        assert!(line.contains(" -map 0:3 "), "{line}");
        let guessed = ffmpeg_args(Path::new("a.mp4"), &DecodeOptions::default(), None);
        let guessed: Vec<String> = guessed.iter().map(|a| a.to_string_lossy().into()).collect();
        assert!(guessed
            .join(" ")
            .ends_with("-fps_mode cfr -f rawvideo -pix_fmt rgb24 -"));
    }

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

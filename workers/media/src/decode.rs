//! Streams decoded frames out of ffmpeg in bounded batches.
//!
//! The input's first video stream is decoded by an `ffmpeg` child process
//! (driven through `ffmpeg-sidecar`), scaled down to the analysis width with
//! area averaging, converted to packed `rgb24` and read from its stdout. Frames
//! are handed out in batches of at most [`DecodeOptions::batch_frames`], so the
//! memory used is bounded however long the video is.
//!
//! Accuracy: the decoder runs with its default (frame) threading, which is
//! bit-exact; nothing is skipped (no `-skip_frame`, no `-flags2 fast`, no
//! loop-filter skipping). Output is put on a constant frame-rate grid
//! (`-fps_mode cfr` at the stream's frame rate), so frame `i` is at media time
//! `i / fps` exactly — the convention `Analysis` uses for shot times.

use crate::MediaError;
use ffmpeg_sidecar::command::FfmpegCommand;
use ffmpeg_sidecar::event::{FfmpegEvent, LogLevel};
use ffmpeg_sidecar::iter::FfmpegIterator;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

/// Most ffmpeg error lines kept for an error message.
const KEPT_ERRORS: usize = 8;

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

/// Consecutive decoded frames, packed `rgb24`, row-major, `[len, height, width, 3]`.
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
    /// The batch as a `u8` tensor of shape `[len, height, width, 3]`.
    pub fn to_tensor(
        &self,
        device: &candle_core::Device,
    ) -> Result<candle_core::Tensor, MediaError> {
        let shape = (self.len, self.height as usize, self.width as usize, 3);
        Ok(candle_core::Tensor::from_slice(&self.data, shape, device)?)
    }
}

/// A frame rate as the exact fraction ffprobe reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameRate {
    pub num: u32,
    pub den: u32,
}

impl FrameRate {
    fn parse(text: &str) -> Option<FrameRate> {
        let (num, den) = text.split_once('/').unwrap_or((text, "1"));
        let rate = FrameRate {
            num: num.trim().parse().ok()?,
            den: den.trim().parse().ok()?,
        };
        (rate.num > 0 && rate.den > 0).then_some(rate)
    }

    pub fn as_f64(self) -> f64 {
        f64::from(self.num) / f64::from(self.den)
    }
}

/// What ffprobe says about the input's first video stream.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceInfo {
    pub frame_rate: FrameRate,
    /// Duration of the stream (or, failing that, the container), when known.
    pub duration_s: Option<f64>,
}

/// Reads the frame rate and duration of `input`'s first video stream.
///
/// The frame rate follows ffmpeg's own guess: the stream's base rate
/// (`r_frame_rate`), unless that is implausibly high for a stream whose average
/// rate is ordinary, which marks variable frame-rate material.
pub fn probe_source(input: &Path) -> Result<SourceInfo, MediaError> {
    std::fs::metadata(input).map_err(|e| MediaError::io(input, e))?;
    let output = std::process::Command::new(ffmpeg_sidecar::ffprobe::ffprobe_path())
        .args(["-v", "error", "-select_streams", "v:0", "-show_entries"])
        .arg("stream=r_frame_rate,avg_frame_rate,duration:format=duration")
        .args(["-of", "json"])
        .arg(file_url(input))
        .output()
        .map_err(|e| tool_error("ffprobe", input, format!("could not run ffprobe: {e}")))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let reason = stderr.lines().last().unwrap_or("unknown error").trim();
        return Err(MediaError::Unusable(format!(
            "not decodable media: {reason}"
        )));
    }
    let json: serde_json::Value = serde_json::from_slice(&output.stdout)
        .map_err(|e| tool_error("ffprobe", input, format!("unreadable output: {e}")))?;
    let stream = json["streams"]
        .get(0)
        .ok_or_else(|| MediaError::Unusable("no video stream".into()))?;
    let rate = |key: &str| stream[key].as_str().and_then(FrameRate::parse);
    let frame_rate = match (rate("r_frame_rate"), rate("avg_frame_rate")) {
        (Some(r), Some(avg)) if avg.as_f64() < 70.0 && r.as_f64() > 210.0 => avg,
        (Some(r), _) => r,
        (None, Some(avg)) => avg,
        (None, None) => {
            return Err(MediaError::Unusable(
                "the video stream has no frame rate".into(),
            ))
        }
    };
    let seconds = |v: &serde_json::Value| {
        v.as_str()
            .and_then(|s| s.parse::<f64>().ok())
            .filter(|d| d.is_finite() && *d > 0.0)
    };
    let duration_s = seconds(&stream["duration"]).or_else(|| seconds(&json["format"]["duration"]));
    Ok(SourceInfo {
        frame_rate,
        duration_s,
    })
}

/// `file:` URL for a local path, so that names with `:` or a leading `-`
/// are never taken for protocols or options.
fn file_url(path: &Path) -> std::ffi::OsString {
    let mut url = std::ffi::OsString::from("file:");
    url.push(path.as_os_str());
    url
}

fn tool_error(tool: &'static str, path: &Path, message: String) -> MediaError {
    MediaError::Tool {
        tool,
        path: path.to_path_buf(),
        message,
    }
}

/// A running ffmpeg decode of one input. Dropping it kills ffmpeg.
pub struct FrameDecoder {
    child: ffmpeg_sidecar::child::FfmpegChild,
    events: FfmpegIterator,
    path: PathBuf,
    source: SourceInfo,
    batch_frames: usize,
    max_seconds: Option<f64>,
    width: u32,
    height: u32,
    frames: u64,
    errors: Vec<String>,
    finished: bool,
}

impl FrameDecoder {
    /// Probes `input` and starts ffmpeg on it. Fails with `Unusable` when the
    /// input has no decodable video stream.
    pub fn open(input: &Path, options: &DecodeOptions) -> Result<Self, MediaError> {
        if options.width < 16 || options.width % 2 != 0 {
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
        let (events, metadata) = match started {
            Ok(started) => started,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(tool_error("ffmpeg", input, e.to_string()));
            }
        };
        let video = metadata
            .output_streams
            .iter()
            .find_map(|s| s.video_data().cloned());
        let Some(video) = video else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(tool_error("ffmpeg", input, "no video output stream".into()));
        };
        Ok(FrameDecoder {
            child,
            events,
            path: input.to_path_buf(),
            source,
            batch_frames: options.batch_frames,
            max_seconds: options.max_seconds,
            width: video.width,
            height: video.height,
            frames: 0,
            errors: Vec::new(),
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
    /// when it is known. `cancel` is checked between frames: once set, ffmpeg
    /// is killed and `Cancelled` returned. A failure of ffmpeg is `Tool`; a
    /// stream that yields no frame at all is `Unusable`.
    pub fn next_batch(
        &mut self,
        on_progress: &mut dyn FnMut(f64),
        cancel: &AtomicBool,
    ) -> Result<Option<FrameBatch>, MediaError> {
        if self.finished {
            return Ok(None);
        }
        let frame_bytes = self.width as usize * self.height as usize * 3;
        let mut data = Vec::with_capacity(frame_bytes * self.batch_frames);
        let mut len = 0;
        let mut ended = false;
        while len < self.batch_frames {
            if cancel.load(Ordering::Relaxed) {
                self.stop();
                return Err(MediaError::Cancelled);
            }
            match self.events.next() {
                None => {
                    ended = true;
                    break;
                }
                Some(FfmpegEvent::OutputFrame(frame)) => {
                    if frame.data.len() != frame_bytes {
                        self.stop();
                        return Err(tool_error(
                            "ffmpeg",
                            &self.path,
                            format!(
                                "frame of {} bytes, expected {frame_bytes}",
                                frame.data.len()
                            ),
                        ));
                    }
                    data.extend_from_slice(&frame.data);
                    len += 1;
                }
                Some(FfmpegEvent::Error(message))
                | Some(FfmpegEvent::Log(LogLevel::Error | LogLevel::Fatal, message)) => {
                    if self.errors.len() == KEPT_ERRORS {
                        self.errors.remove(0);
                    }
                    self.errors.push(message.trim().to_string());
                }
                Some(_) => {}
            }
        }
        let first_frame = self.frames;
        self.frames += len as u64;
        if ended {
            self.finish()?;
        }
        if len == 0 {
            return Ok(None);
        }
        let batch = FrameBatch {
            first_frame,
            len,
            width: self.width,
            height: self.height,
            data,
        };
        if let Some(percent) = self.progress_percent() {
            on_progress(percent);
        }
        Ok(Some(batch))
    }

    /// ffmpeg's output has ended: reap it and judge how it went.
    fn finish(&mut self) -> Result<(), MediaError> {
        self.finished = true;
        let status = self
            .child
            .wait()
            .map_err(|e| tool_error("ffmpeg", &self.path, format!("waiting for ffmpeg: {e}")))?;
        if !status.success() {
            let message = if self.errors.is_empty() {
                format!("exited with {status}")
            } else {
                format!("exited with {status}: {}", self.errors.join("; "))
            };
            return Err(tool_error("ffmpeg", &self.path, message));
        }
        if self.frames == 0 && self.errors.is_empty() {
            return Err(MediaError::Unusable(
                "the video stream has no frames".into(),
            ));
        }
        if self.frames == 0 {
            return Err(MediaError::Unusable(format!(
                "no decodable video frames: {}",
                self.errors.join("; ")
            )));
        }
        Ok(())
    }

    /// Kills ffmpeg (if still running) and reaps it.
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

//! Starting the decoder's ffmpeg: its arguments, and the running process
//! with its raw-frame output, its parsed log and the size and rate of the
//! frames it announced.

use super::{DecodeOptions, FrameRate};
use crate::source::{file_url, tool_error};
use crate::MediaError;
use ffmpeg_sidecar::child::FfmpegChild;
use ffmpeg_sidecar::command::FfmpegCommand;
use ffmpeg_sidecar::iter::FfmpegIterator;
use std::ffi::OsString;
use std::path::Path;
use std::process::ChildStdout;

/// The arguments ffmpeg runs with to decode `input` for analysis (after the
/// program name): the video stream `options.stream` (the first when unset), scaled to `options.width` with area
/// averaging, on a constant frame-rate grid, as packed `rgb24` frames on
/// stdout. The grid is at `rate`, or with `None` at the stream's own rate as
/// ffmpeg guesses it, which is the rule [`super::probe_source`] follows too.
/// Public so that a benchmark can time the decoder alone with exactly these
/// settings.
pub fn ffmpeg_args(
    input: &Path,
    options: &DecodeOptions,
    rate: Option<FrameRate>,
) -> Vec<OsString> {
    let scale = format!(
        "scale=w={}:h='max(2,2*trunc(ow/dar/2+0.5))':flags=area",
        options.width
    );
    let mut args: Vec<OsString> = vec!["-hide_banner".into(), "-nostdin".into()];
    args.extend(["-nostats".into(), "-i".into(), file_url(input)]);
    let map = crate::source::stream_spec(options.stream, "0:");
    let middle = ["-map", &map, "-an", "-sn", "-dn", "-filter", &scale];
    args.extend(middle.into_iter().map(OsString::from));
    args.extend(["-fps_mode", "cfr"].map(OsString::from));
    if let Some(rate) = rate {
        args.extend(["-r".into(), format!("{}/{}", rate.num, rate.den).into()]);
    }
    if let Some(seconds) = options.max_seconds {
        args.extend(["-t".into(), format!("{seconds:.6}").into()]);
    }
    args.extend(["-f", "rawvideo", "-pix_fmt", "rgb24", "-"].map(OsString::from));
    args
}

/// The size the decoder asks for ffmpeg's stdout pipe: about six 320x180
/// frames, where the default (64 KiB) holds not even one, so that ffmpeg
/// keeps decoding through a short hold-up on the reading side instead of
/// blocking on its next write. Linux's limit for unprivileged processes
/// (`/proc/sys/fs/pipe-max-size`) is 1 MiB by default.
pub const PIPE_BYTES: i32 = 1 << 20;

/// Asks for [`PIPE_BYTES`] of buffer in `pipe`; where the system refuses (an
/// older kernel, a lower limit), the pipe keeps its size, which only costs
/// some overlap.
pub fn widen_pipe(pipe: &impl std::os::fd::AsRawFd) {
    // SAFETY: F_SETPIPE_SZ on a valid descriptor only resizes the pipe's
    // buffer; a failure changes nothing.
    let _ = unsafe { libc::fcntl(pipe.as_raw_fd(), libc::F_SETPIPE_SZ, PIPE_BYTES) };
}

/// A running ffmpeg that has announced its output stream.
pub(super) struct Started {
    pub child: FfmpegChild,
    /// Its log, parsed (ffmpeg-sidecar reads stderr).
    pub events: FfmpegIterator,
    /// Its raw frames, read directly (not through `events`).
    pub output: ChildStdout,
    pub width: u32,
    pub height: u32,
    /// The frame rate of its output, as its log gives it (two decimals).
    pub fps: f32,
}

impl Started {
    /// Runs ffmpeg with [`ffmpeg_args`] and waits until it has announced its
    /// output stream.
    pub fn spawn(
        input: &Path,
        options: &DecodeOptions,
        rate: Option<FrameRate>,
    ) -> Result<Started, MediaError> {
        let mut child = FfmpegCommand::new()
            .args(ffmpeg_args(input, options, rate))
            .spawn()
            .map_err(|e| tool_error("ffmpeg", input, format!("could not run ffmpeg: {e}")))?;
        // Frames are read from stdout by the decoder, not through
        // ffmpeg-sidecar's events: straight into the batch, without a copy
        // and a thread hand-over per frame.
        let output = child.take_stdout();
        if let Some(output) = &output {
            widen_pipe(output);
        }
        let started = child
            .iter()
            .and_then(|mut events| events.collect_metadata().map(|meta| (events, meta)));
        let failure = match (started, output) {
            (Ok((events, metadata)), Some(output)) => {
                let video = metadata
                    .output_streams
                    .iter()
                    .find_map(|s| s.video_data().cloned());
                match video {
                    Some(video) => {
                        return Ok(Started {
                            child,
                            events,
                            output,
                            width: video.width,
                            height: video.height,
                            fps: video.fps,
                        })
                    }
                    None => "no video output stream".to_string(),
                }
            }
            (Ok(_), None) => "no output pipe".to_string(),
            (Err(e), _) => e.to_string(),
        };
        let _ = child.kill();
        let _ = child.wait();
        Err(tool_error("ffmpeg", input, failure))
    }

    /// Whether ffmpeg put its output on `rate`.
    pub fn runs_at(&self, rate: FrameRate) -> bool {
        same_rate(self.fps, rate)
    }

    /// Kills and reaps ffmpeg.
    pub fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether `fps`, a rate as ffmpeg's log gives it (two decimals), is `rate`:
/// the rates ffmpeg can pick other than the probe's differ from it by far
/// more than the rounding.
fn same_rate(fps: f32, rate: FrameRate) -> bool {
    (f64::from(fps) - rate.as_f64()).abs() < 0.006
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_from_the_log_are_matched_to_exact_fractions() {
        let rate = |num, den| FrameRate { num, den };
        assert!(same_rate(29.97, rate(30000, 1001)));
        assert!(same_rate(23.98, rate(24000, 1001)));
        assert!(same_rate(25.0, rate(25, 1)));
        assert!(!same_rate(30.0, rate(30000, 1001)));
        assert!(!same_rate(25.0, rate(50, 1)));
        assert!(!same_rate(0.0, rate(25, 1)));
    }
}

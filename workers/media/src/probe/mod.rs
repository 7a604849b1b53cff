//! ffprobe a file and decide whether it is usable media.
//!
//! Usable means: a non-empty file within the size limit that ffprobe reads, with
//! a real video stream (cover art does not count) of known frame rate, size and
//! duration, all within the limits. Everything else is [`MediaError::Unusable`]
//! with a reason a person can act on; only a failure to run ffprobe at all is a
//! retryable [`MediaError::Tool`].

use crate::isobmff::{self, Layout};
use crate::tool::{self, Deadlines, Ended, Supervised};
use crate::MediaError;
use serde::{Deserialize, Serialize};
use sprocket_core::MediaInfo;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// How long ffprobe may take on one file before it is killed.
const PROBE_TIMEOUT: Duration = Duration::from_secs(60);
/// The highest frame rate believed; above it ffprobe is reporting a timebase.
const MAX_FPS: f64 = 1000.0;
/// Most bytes one decoded frame may take (8K at 8 bytes a pixel is 265 MB).
const MAX_FRAME_BYTES: u64 = 7680 * 4320 * 8;
/// Demuxers that only point at other files or are not media: never accepted.
const INDIRECT_FORMATS: &[&str] = &["hls", "concat", "dash", "ffmetadata", "tty"];

/// What a source may be at most.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// File size in bytes (default 4 GiB).
    pub max_bytes: u64,
    /// Duration in seconds (default 4 hours).
    pub max_duration_s: f64,
    /// Video width in pixels (default 7680).
    pub max_width: u32,
    /// Video height in pixels (default 4320).
    pub max_height: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: 4 << 30,
            max_duration_s: crate::render::Source::DEFAULT_LONGEST_S,
            max_width: 7680,
            max_height: 4320,
        }
    }
}

/// Probes `path` with ffprobe and returns what it is, or why it cannot be used.
pub fn probe(path: &Path, limits: &Limits) -> Result<MediaInfo, MediaError> {
    let meta = std::fs::metadata(path).map_err(|e| MediaError::io(path, e))?;
    if !meta.is_file() {
        return Err(MediaError::Unusable("not a regular file".into()));
    }
    let size = meta.len();
    if size == 0 {
        return Err(MediaError::Unusable("the file is empty (0 bytes)".into()));
    }
    if size > limits.max_bytes {
        return Err(MediaError::Unusable(format!(
            "the file is {size} bytes, over the limit of {} bytes",
            limits.max_bytes
        )));
    }

    let report = ffprobe(path)?;
    let info = media_info(&report, limits)?;
    if is_iso_bmff(&info.format) {
        check_whole(path, size)?;
    }
    Ok(info)
}

/// The video stream of `path` that the probe judged, decode analyses and
/// render cuts (its index among all of the file's streams): the default
/// one of the streams that are not cover art, else the first of them.
pub fn video_stream(path: &Path) -> Result<u32, MediaError> {
    let report = ffprobe(path)?;
    let video =
        chosen_video(&report).ok_or_else(|| MediaError::Unusable("no video stream".into()))?;
    video
        .index
        .ok_or_else(|| MediaError::Unusable("ffprobe gave the video stream no index".into()))
}

/// The video stream Sprocket works on: see [`video_stream`].
fn chosen_video(report: &ProbeReport) -> Option<&StreamReport> {
    let videos: Vec<&StreamReport> = report
        .streams
        .iter()
        .filter(|s| s.codec_type.as_deref() == Some("video") && s.disposition.attached_pic == 0)
        .collect();
    videos
        .iter()
        .find(|s| s.disposition.default == 1)
        .or(videos.first())
        .copied()
}

/// ffprobe's report on `path`'s container and streams.
fn ffprobe(path: &Path) -> Result<ProbeReport, MediaError> {
    let mut command = Command::new("ffprobe");
    command
        .args(["-v", "error", "-protocol_whitelist", "file"])
        .args(["-print_format", "json", "-show_format", "-show_streams"])
        .arg(tool::file_url(path));
    let mut run = Supervised::spawn("ffprobe", path, command)?;
    let mut json = String::new();
    let deadlines = Deadlines {
        total: Some(PROBE_TIMEOUT),
        idle: None,
    };
    let ended = run.wait(None, deadlines, &mut |line| {
        json.push_str(line);
        json.push('\n');
    })?;
    match ended {
        Ended::Exited { status, .. } if status.success() => {}
        // Killed by a signal (out of memory, say): the machine's fault, not the file's.
        Ended::Exited {
            status,
            stderr_tail,
        } if status.code().is_none() => {
            return Err(run.error(format!("{status}: {}", tool::last_line(&stderr_tail))))
        }
        Ended::Exited { stderr_tail, .. } => {
            return Err(MediaError::Unusable(unreadable_reason(path, &stderr_tail)))
        }
        Ended::TimedOut(why) => return Err(run.error(why)),
        Ended::Cancelled => return Err(MediaError::Cancelled),
    }
    serde_json::from_str(&json).map_err(|e| run.error(format!("unexpected ffprobe output: {e}")))
}

/// Why ffprobe could not read the file, from its stderr and a look at the bytes.
fn unreadable_reason(path: &Path, stderr_tail: &str) -> String {
    // The MOV demuxer is picked by the extension too, so check the bytes are ISO BMFF.
    let layout = std::fs::File::open(path)
        .and_then(|f| isobmff::layout(f, std::fs::metadata(path)?.len()))
        .unwrap_or(Layout::NotIsoBmff);
    if stderr_tail.contains("moov atom not found") && layout != Layout::NotIsoBmff {
        return "the MP4/MOV file is truncated or incomplete: its index (the moov atom) is missing"
            .into();
    }
    // A cut-off index makes ffprobe say only "error reading header" or "Invalid data".
    if let Some(why) = truncation(&layout) {
        return why;
    }
    match tool::last_line(stderr_tail) {
        "" => "not a media file: ffprobe could not read it".into(),
        line => {
            let detail = line.rsplit(": ").next().unwrap_or(line);
            format!("not a media file that can be read: {detail}")
        }
    }
}

fn is_iso_bmff(format: &str) -> bool {
    format.split(',').any(|f| f == "mov" || f == "mp4")
}

fn check_whole(path: &Path, size: u64) -> Result<(), MediaError> {
    let file = std::fs::File::open(path).map_err(|e| MediaError::io(path, e))?;
    let layout = isobmff::layout(file, size).map_err(|e| MediaError::io(path, e))?;
    match truncation(&layout) {
        Some(why) => Err(MediaError::Unusable(why)),
        None => Ok(()),
    }
}

/// Says how the file is cut short, if its top-level boxes run past its end.
fn truncation(layout: &Layout) -> Option<String> {
    match layout {
        Layout::Truncated {
            box_type,
            needs,
            file_len,
        } => Some(format!(
            "the MP4/MOV file is truncated: its '{box_type}' box needs {needs} bytes but the file has {file_len}"
        )),
        Layout::Whole | Layout::NotIsoBmff => None,
    }
}

/// The part of ffprobe's JSON that is used.
#[derive(Debug, Deserialize)]
struct ProbeReport {
    #[serde(default)]
    streams: Vec<StreamReport>,
    format: Option<FormatReport>,
}

#[derive(Debug, Deserialize)]
struct StreamReport {
    index: Option<u32>,
    codec_type: Option<String>,
    codec_name: Option<String>,
    width: Option<u32>,
    height: Option<u32>,
    sample_aspect_ratio: Option<String>,
    pix_fmt: Option<String>,
    avg_frame_rate: Option<String>,
    r_frame_rate: Option<String>,
    duration: Option<String>,
    #[serde(default)]
    disposition: Disposition,
}

#[derive(Debug, Default, Deserialize)]
struct Disposition {
    #[serde(default)]
    attached_pic: u8,
    #[serde(default)]
    default: u8,
}

#[derive(Debug, Deserialize)]
struct FormatReport {
    format_name: Option<String>,
    duration: Option<String>,
    bit_rate: Option<String>,
}

/// Builds [`MediaInfo`] from ffprobe's report, or says why the media is unusable.
fn media_info(report: &ProbeReport, limits: &Limits) -> Result<MediaInfo, MediaError> {
    let unusable = |why: String| Err(MediaError::Unusable(why));
    let Some(format) = &report.format else {
        return unusable("ffprobe found no container format".into());
    };
    let format_name = format.format_name.clone().unwrap_or_default();
    if format_name.is_empty() || INDIRECT_FORMATS.contains(&format_name.as_str()) {
        return unusable(format!(
            "'{format_name}' is not a media container that can be used"
        ));
    }
    let of_type = |t: &'static str| {
        report
            .streams
            .iter()
            .filter(move |s| s.codec_type.as_deref() == Some(t))
    };
    let Some(video) = chosen_video(report) else {
        let has_cover = of_type("video").next().is_some();
        let has_audio = of_type("audio").next().is_some();
        return unusable(match (has_audio, has_cover) {
            (true, true) => "audio only: no video stream, just cover art".into(),
            (true, false) => "audio only: no video stream".into(),
            (false, true) => "no video stream, just an attached picture".into(),
            (false, false) => "no video stream".into(),
        });
    };
    let codec = video.codec_name.clone().unwrap_or_default();
    let (width, height) = (video.width.unwrap_or(0), video.height.unwrap_or(0));
    if codec.is_empty() || width == 0 || height == 0 {
        return unusable("the video stream has an unknown codec or size".into());
    }
    if width > limits.max_width || height > limits.max_height {
        return unusable(format!(
            "the video is {width}x{height}, over the limit of {}x{}",
            limits.max_width, limits.max_height
        ));
    }
    // What players and the render's scaler make of it: the storage size
    // stretched by the sample aspect ratio.
    let sar = video
        .sample_aspect_ratio
        .as_deref()
        .and_then(|r| parse_ratio(r, ':'))
        .unwrap_or(1.0);
    let (display_w, display_h) = (
        (width as f64 * sar.max(1.0)).round(),
        (height as f64 / sar.min(1.0)).round(),
    );
    if display_w > limits.max_width as f64 || display_h > limits.max_height as f64 {
        return unusable(format!(
            "the video is shown at {display_w}x{display_h} (sample aspect ratio {}), over the limit of {}x{}",
            video.sample_aspect_ratio.as_deref().unwrap_or("1:1"),
            limits.max_width,
            limits.max_height
        ));
    }
    let frame_bytes = width as u64 * height as u64 * bytes_per_pixel(video.pix_fmt.as_deref());
    if frame_bytes > MAX_FRAME_BYTES {
        return unusable(format!(
            "a decoded frame is {frame_bytes} bytes ({width}x{height} {}), over the limit of {MAX_FRAME_BYTES}",
            video.pix_fmt.as_deref().unwrap_or("unknown pixel format")
        ));
    }
    let fps = [&video.avg_frame_rate, &video.r_frame_rate]
        .into_iter()
        .filter_map(|r| r.as_deref().and_then(parse_rate))
        .find(|f| *f <= MAX_FPS);
    let Some(fps) = fps else {
        return unusable("the video's frame rate is unknown".into());
    };
    let duration_s = [&format.duration, &video.duration]
        .into_iter()
        .filter_map(|d| d.as_deref()?.parse::<f64>().ok())
        .find(|d| d.is_finite() && *d > 0.0);
    let Some(duration_s) = duration_s else {
        let still = format_name.ends_with("_pipe") || format_name == "image2";
        return unusable(if still {
            "a still image, not a video (unknown duration)".into()
        } else {
            "the video's duration is unknown".into()
        });
    };
    if duration_s > limits.max_duration_s {
        return unusable(format!(
            "the video is {duration_s:.1} s long, over the limit of {:.1} s",
            limits.max_duration_s
        ));
    }
    let audio_codec = of_type("audio").find_map(|s| s.codec_name.clone());
    Ok(MediaInfo {
        format: format_name,
        duration_s,
        width,
        height,
        fps,
        video_codec: codec,
        audio_codec,
        bit_rate: format.bit_rate.as_deref().and_then(|b| b.parse().ok()),
        video_stream: video.index,
    })
}

/// Parses an ffprobe rational such as `30000/1001`; `0/0` and the like are `None`.
fn parse_rate(rate: &str) -> Option<f64> {
    parse_ratio(rate, '/')
}

/// A positive ratio `num<sep>den` (`30000/1001`, a sample aspect ratio
/// `64:45`); `0/0`, `0:1` (unknown) and the like are `None`.
fn parse_ratio(ratio: &str, sep: char) -> Option<f64> {
    let (num, den) = ratio.split_once(sep).unwrap_or((ratio, "1"));
    let (num, den): (f64, f64) = (num.trim().parse().ok()?, den.trim().parse().ok()?);
    let r = num / den;
    (r.is_finite() && r > 0.0).then_some(r)
}

/// Bytes a decoded pixel takes in memory, at most: 16-bit formats take
/// twice 8-bit ones; 4 (a padded 8-bit RGBA) for the rest and the unknown.
fn bytes_per_pixel(pix_fmt: Option<&str>) -> u64 {
    let f = pix_fmt.unwrap_or_default();
    let deep = ["16", "12", "10", "9", "64", "48", "f32", "f16"]
        .iter()
        .any(|d| f.contains(d));
    if deep {
        8
    } else {
        4
    }
}

#[cfg(test)]
mod tests;

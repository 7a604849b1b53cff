//! What decoding needs to know about an input before it starts: the exact
//! frame rate and the duration of its first video stream, from ffprobe.

use crate::MediaError;
use std::path::Path;

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

/// How ffmpeg names video stream `stream` of input `prefix` (`"0:"`, or `""`
/// for ffprobe's `-select_streams`): by its index, or the first video
/// stream when `None`.
pub fn stream_spec(stream: Option<u32>, prefix: &str) -> String {
    match stream {
        Some(i) => format!("{prefix}{i}"),
        None => format!("{prefix}v:0"),
    }
}

/// Reads the frame rate and duration of `input`'s video stream `stream` (the
/// first when `None`).
///
/// The frame rate follows ffmpeg's own guess: the stream's base rate
/// (`r_frame_rate`), unless that is implausibly high for a stream whose average
/// rate is ordinary, which marks variable frame-rate material.
pub fn probe_source(input: &Path, stream: Option<u32>) -> Result<SourceInfo, MediaError> {
    std::fs::metadata(input).map_err(|e| MediaError::io(input, e))?;
    let output = std::process::Command::new(ffmpeg_sidecar::ffprobe::ffprobe_path())
        .args(["-v", "error", "-select_streams", &stream_spec(stream, "")])
        .arg("-show_entries")
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
pub(crate) fn file_url(path: &Path) -> std::ffi::OsString {
    let mut url = std::ffi::OsString::from("file:");
    url.push(path.as_os_str());
    url
}

pub(crate) fn tool_error(tool: &'static str, path: &Path, message: String) -> MediaError {
    MediaError::Tool {
        tool,
        path: path.to_path_buf(),
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_rates_parse_as_exact_fractions() {
        let ntsc = FrameRate::parse("30000/1001").unwrap();
        assert_eq!((ntsc.num, ntsc.den), (30000, 1001));
        assert!((ntsc.as_f64() - 29.97003).abs() < 1e-5);
        assert_eq!(FrameRate::parse("25").map(FrameRate::as_f64), Some(25.0));
        assert_eq!(FrameRate::parse("0/0"), None);
        assert_eq!(FrameRate::parse("fast"), None);
    }

    #[test]
    fn file_urls_protect_odd_names() {
        assert_eq!(file_url(Path::new("-i:x.mp4")), "file:-i:x.mp4");
    }
}

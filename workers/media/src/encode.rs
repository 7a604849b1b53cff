//! The render phase's ffmpeg runs: the highlight reel (one filter graph of
//! trim/atrim + concat, H.264 + AAC in a fast-start MP4) and the poster (one JPEG
//! frame). Both write to `<out>.part` and rename on success, so `out` is either
//! whole or absent; on cancel or failure the partial file is removed.

use crate::loudness::Loudness;
use crate::tool::{self, Deadlines, Ended, Supervised};
use crate::MediaError;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// ffmpeg is killed when it reports no progress for this long.
pub(crate) const STALL_TIMEOUT: Duration = Duration::from_secs(300);
/// How long extracting the poster frame may take.
const POSTER_TIMEOUT: Duration = Duration::from_secs(300);

/// The file a render reads and what the probe found in it.
#[derive(Debug, Clone)]
pub struct Source {
    pub path: PathBuf,
    /// The video stream the probe judged (the first when `None`).
    pub stream: Option<u32>,
    /// Whether the file has an audio stream (its first is used).
    pub has_audio: bool,
    /// The most of the file any run reads, in seconds (the deployment's
    /// `ingest.max_duration_s`): `-t` on the input of every ffmpeg run, so a
    /// container that understates its length cannot make one run for hours.
    pub longest_s: f64,
}

impl Source {
    /// `ingest.max_duration_s`'s default: four hours.
    pub const DEFAULT_LONGEST_S: f64 = 4.0 * 3600.0;

    /// The input options of every ffmpeg run over the source: read at most
    /// [`longest_s`](Self::longest_s), from a local file only.
    pub(crate) fn input<'c>(&self, command: &'c mut Command) -> &'c mut Command {
        command
            .args(["-t", &format!("{:.6}", self.longest_s)])
            .args(["-protocol_whitelist", "file", "-i"])
            .arg(tool::file_url(&self.path))
    }
}

/// Renders the highlight reel of `segments` (`(start_s, end_s)`, in order) from
/// `input` into `out` as MP4 (H.264 yuv420p + AAC, `+faststart`). Without source
/// audio the reel carries silence, so it always has an AAC track.
///
/// `on_progress` gets percentages from ffmpeg's own `-progress` output against
/// the reel's known duration: rising, starting at 0 and ending at 100. Raising
/// `cancel` kills ffmpeg within ~50 ms and returns [`MediaError::Cancelled`].
pub fn render_highlight(
    source: &Source,
    segments: &[(f64, f64)],
    loudness: &Loudness,
    out: &Path,
    on_progress: &mut dyn FnMut(f64),
    cancel: &CancellationToken,
) -> Result<(), MediaError> {
    if segments.is_empty() {
        return Err(MediaError::InvalidParams(
            "highlight: no segments to render".into(),
        ));
    }
    for (i, &(start, end)) in segments.iter().enumerate() {
        let ordered = i == 0 || segments[i - 1].1 <= start;
        if !(start.is_finite() && end.is_finite() && start >= 0.0 && end > start && ordered) {
            return Err(MediaError::InvalidParams(format!(
                "highlight: segment {i} ({start}, {end}) is empty, negative or out of order"
            )));
        }
    }
    let (input, stream, has_audio) = (&source.path, source.stream, source.has_audio);
    let total_s: f64 = segments.iter().map(|(a, b)| b - a).sum();
    // The first loudness pass hears the reel's audio as it will be cut.
    let gain = if has_audio {
        crate::loudness::second_pass(source, &highlight_audio_graph(segments), loudness, cancel)?
    } else {
        None
    };
    let part = partial_path(out);
    let mut command = ffmpeg();
    command.args(["-progress", "pipe:1", "-stats_period", "0.5"]);
    source
        .input(&mut command)
        .arg("-filter_complex")
        .arg(highlight_graph(
            segments,
            has_audio,
            stream,
            gain.as_deref(),
        ))
        .args(["-map", "[v]"])
        // The reel's own length: nothing longer can come out, whatever the
        // source's container claims.
        .args(["-t", &format!("{total_s:.6}")]);
    if has_audio {
        command.args(["-map", "[a]", "-c:a", "aac", "-b:a", "128k"]);
    }
    h264_faststart_mp4(&mut command).arg(tool::file_url(&part));

    let mut progress = Progress::new(total_s);
    on_progress(0.0);
    let deadlines = Deadlines {
        total: None,
        idle: Some(STALL_TIMEOUT),
    };
    let mut run = Supervised::spawn("ffmpeg", input, command)?;
    let ended = run.wait(Some(cancel), deadlines, &mut |line| {
        if let Some(pct) = progress.line(line) {
            on_progress(pct);
        }
    });
    finish(&run, ended, &part, out)?;
    on_progress(100.0);
    Ok(())
}

/// Writes the frame of `input` at `at_s` seconds to `out` as a JPEG at the
/// source's size. Raising `cancel` kills ffmpeg and returns
/// [`MediaError::Cancelled`].
pub fn render_poster(
    source: &Source,
    at_s: f64,
    out: &Path,
    cancel: &CancellationToken,
) -> Result<(), MediaError> {
    if !(at_s.is_finite() && at_s >= 0.0) {
        return Err(MediaError::InvalidParams(format!(
            "poster: time {at_s} is not a position in the video"
        )));
    }
    if at_s >= source.longest_s {
        return Err(MediaError::InvalidParams(format!(
            "poster: time {at_s} s is past the {} s of a source that is read",
            source.longest_s
        )));
    }
    let part = partial_path(out);
    let mut command = ffmpeg();
    command.args(["-ss", &format!("{at_s:.6}")]);
    source
        .input(&mut command)
        .args(["-map", &crate::source::stream_spec(source.stream, "0:")])
        .args(["-frames:v", "1", "-an", "-sn", "-dn"])
        .args([
            "-c:v",
            "mjpeg",
            "-q:v",
            "2",
            "-map_metadata",
            "-1",
            "-f",
            "image2",
            "-update",
            "1",
        ])
        .arg(tool::file_url(&part));
    let deadlines = Deadlines {
        total: Some(POSTER_TIMEOUT),
        idle: None,
    };
    let mut run = Supervised::spawn("ffmpeg", &source.path, command)?;
    let ended = run.wait(Some(cancel), deadlines, &mut |_| {});
    finish(&run, ended, &part, out)
}

/// H.264 (veryfast, CRF 23, yuv420p) in a fast-start MP4 without the
/// source's metadata: the video of every whole-file output.
pub(crate) fn h264_faststart_mp4(command: &mut Command) -> &mut Command {
    command
        .args([
            "-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-pix_fmt", "yuv420p",
        ])
        .args([
            "-map_metadata",
            "-1",
            "-movflags",
            "+faststart",
            "-f",
            "mp4",
        ])
}

/// The audio of `graph`'s outputs: the first audio stream, with `gain` (the
/// second loudness pass) when there is one, as 48 kHz stereo, split `n` ways
/// into `[a0]`, `[a1]`, …
pub(crate) fn audio_split(g: &mut String, gain: Option<&str>, n: usize) {
    g.push_str(";[0:a:0]");
    if let Some(gain) = gain {
        let _ = write!(g, "{gain},");
    }
    let _ = write!(
        g,
        "aformat=sample_fmts=fltp:sample_rates=48000:channel_layouts=stereo,asplit={n}"
    );
    (0..n).for_each(|i| {
        let _ = write!(g, "[a{i}]");
    });
}

/// ffmpeg with the options every run shares: quiet except errors, no stdin, overwrite.
pub(crate) fn ffmpeg() -> Command {
    let mut command = Command::new("ffmpeg");
    command.args(["-nostdin", "-hide_banner", "-nostats", "-v", "error", "-y"]);
    command
}

pub(crate) fn partial_path(out: &Path) -> PathBuf {
    let mut name = out.as_os_str().to_owned();
    name.push(".part");
    PathBuf::from(name)
}

/// Turns how ffmpeg ended into the result: renames the partial output into place
/// on success, removes it otherwise.
pub(crate) fn finish(
    run: &Supervised,
    ended: Result<Ended, MediaError>,
    part: &Path,
    out: &Path,
) -> Result<(), MediaError> {
    let result = match ended {
        Ok(Ended::Exited {
            status,
            stderr_tail,
        }) if status.success() => {
            if std::fs::metadata(part).is_ok_and(|m| m.len() > 0) {
                std::fs::rename(part, out).map_err(|e| MediaError::io(out, e))
            } else {
                Err(run.error(format!(
                    "ffmpeg wrote nothing (is the position past the end?) {}",
                    tail_lines(&stderr_tail, 8)
                )))
            }
        }
        Ok(Ended::Exited {
            status,
            stderr_tail,
        }) => Err(run.error(format!("{status}: {}", tail_lines(&stderr_tail, 8)))),
        Ok(Ended::Cancelled) => Err(MediaError::Cancelled),
        Ok(Ended::TimedOut(why)) => Err(run.error(why)),
        Err(e) => Err(e),
    };
    if result.is_err() {
        let _ = std::fs::remove_file(part);
    }
    result
}

fn tail_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The filter graph: the video stream `stream` (the first when `None`) and the
/// first audio stream are each split once per
/// segment, every branch is cut with `trim`/`atrim` (frame- and sample-exact)
/// and restamped from zero, and `concat` joins the pieces. Without source audio
/// the reel has none either (`[v]` only). `gain` (the second loudness pass) is
/// applied to the joined audio.
fn highlight_graph(
    segments: &[(f64, f64)],
    has_audio: bool,
    stream: Option<u32>,
    gain: Option<&str>,
) -> String {
    let n = segments.len();
    let mut g = String::new();
    let video = crate::source::stream_spec(stream, "0:");
    let _ = write!(g, "[{video}]setpts=PTS-STARTPTS,split={n}");
    (0..n).for_each(|i| {
        let _ = write!(g, "[v{i}]");
    });
    if has_audio {
        let _ = write!(g, ";[0:a:0]asetpts=PTS-STARTPTS,asplit={n}");
        (0..n).for_each(|i| {
            let _ = write!(g, "[a{i}]");
        });
    }
    for (i, (start, end)) in segments.iter().enumerate() {
        let _ = write!(
            g,
            ";[v{i}]trim=start={start:.6}:end={end:.6},setpts=PTS-STARTPTS[sv{i}]"
        );
        if has_audio {
            let _ = write!(
                g,
                ";[a{i}]atrim=start={start:.6}:end={end:.6},asetpts=PTS-STARTPTS[sa{i}]"
            );
        }
    }
    g.push(';');
    for i in 0..n {
        let _ = write!(g, "[sv{i}]");
        if has_audio {
            let _ = write!(g, "[sa{i}]");
        }
    }
    let a = u8::from(has_audio);
    let _ = write!(g, "concat=n={n}:v=1:a={a}[vc]");
    if has_audio {
        g.push_str("[ac]");
    }
    g.push_str(";[vc]scale=trunc(iw/2)*2:trunc(ih/2)*2,format=yuv420p[v]");
    if has_audio {
        g.push_str(";[ac]");
        if let Some(gain) = gain {
            let _ = write!(g, "{gain},");
        }
        g.push_str("aformat=sample_fmts=fltp:sample_rates=48000:channel_layouts=stereo[a]");
    }
    g
}

/// The reel's audio alone, cut and joined as [`highlight_graph`] does, as
/// `[a]`: what the first loudness pass measures.
fn highlight_audio_graph(segments: &[(f64, f64)]) -> String {
    let n = segments.len();
    let mut g = format!("[0:a:0]asetpts=PTS-STARTPTS,asplit={n}");
    (0..n).for_each(|i| {
        let _ = write!(g, "[a{i}]");
    });
    for (i, (start, end)) in segments.iter().enumerate() {
        let _ = write!(
            g,
            ";[a{i}]atrim=start={start:.6}:end={end:.6},asetpts=PTS-STARTPTS[sa{i}]"
        );
    }
    g.push(';');
    (0..n).for_each(|i| {
        let _ = write!(g, "[sa{i}]");
    });
    let _ = write!(g, "concat=n={n}:v=0:a=1[a]");
    g
}

/// Turns ffmpeg's `-progress` lines into rising percentages of `total_s`,
/// below 100 until ffmpeg has finished.
pub(crate) struct Progress {
    total_us: f64,
    last: f64,
}

impl Progress {
    pub(crate) fn new(total_s: f64) -> Self {
        Progress {
            total_us: total_s * 1e6,
            last: 0.0,
        }
    }

    /// A new, higher percentage, if this line carries one.
    pub(crate) fn line(&mut self, line: &str) -> Option<f64> {
        let value = line.strip_prefix("out_time_us=")?.trim();
        let us: f64 = value.parse().ok().filter(|v: &f64| v.is_finite())?;
        let pct = (us / self.total_us * 100.0).clamp(0.0, 99.9);
        (pct > self.last).then(|| {
            self.last = pct;
            pct
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_rises_and_stays_below_100() {
        let mut p = Progress::new(10.0);
        assert_eq!(p.line("frame=10"), None);
        assert_eq!(p.line("out_time_us=N/A"), None);
        assert_eq!(p.line("out_time_us=2500000"), Some(25.0));
        assert_eq!(p.line("out_time_us=2500000"), None);
        assert_eq!(p.line("out_time_us=1000000"), None);
        assert_eq!(p.line("out_time_us=-5"), None);
        assert_eq!(p.line("out_time_us=12000000"), Some(99.9));
    }

    #[test]
    fn graph_with_and_without_audio() {
        let g = highlight_graph(&[(1.0, 2.5), (4.0, 5.0)], true, None, Some("volume=2"));
        assert!(g.ends_with("[ac]volume=2,aformat=sample_fmts=fltp:sample_rates=48000:channel_layouts=stereo[a]"), "{g}");
        let a = highlight_audio_graph(&[(1.0, 2.5), (4.0, 5.0)]);
        assert!(a.contains("[a1]atrim=start=4.000000:end=5.000000"), "{a}");
        assert!(a.ends_with("[sa0][sa1]concat=n=2:v=0:a=1[a]"), "{a}");
        assert!(
            g.starts_with("[0:v:0]setpts=PTS-STARTPTS,split=2[v0][v1];[0:a:0]"),
            "{g}"
        );
        assert!(
            g.contains("[v1]trim=start=4.000000:end=5.000000,setpts=PTS-STARTPTS[sv1]"),
            "{g}"
        );
        assert!(g.contains("[a0]atrim=start=1.000000:end=2.500000"), "{g}");
        assert!(
            g.contains("[sv0][sa0][sv1][sa1]concat=n=2:v=1:a=1[vc][ac]"),
            "{g}"
        );
        let g = highlight_graph(&[(1.0, 2.5)], false, Some(2), None);
        assert!(g.starts_with("[0:2]setpts"), "{g}");
        assert!(!g.contains("0:a"), "{g}");
        assert!(g.ends_with("[sv0]concat=n=1:v=1:a=0[vc];[vc]scale=trunc(iw/2)*2:trunc(ih/2)*2,format=yuv420p[v]"), "{g}");
        assert!(
            !g.contains("[a]"),
            "a silent source gives a reel without audio: {g}"
        );
    }

    #[test]
    fn partial_path_sits_beside_output() {
        assert_eq!(
            partial_path(Path::new("/x/reel.mp4")),
            PathBuf::from("/x/reel.mp4.part")
        );
    }
}

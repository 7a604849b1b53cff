//! The reframed outputs' ffmpeg run: one decode of the source, split into one
//! moving crop per output. The windows' paths reach the `crop` filters as
//! `sendcmd` commands (one line per frame on which a window moves, none while
//! it holds still), read from a file beside the first output. Audio is the
//! source's, loudness-normalised (measured once for every output), or none.
//! Each output is written to `<out>.part` and renamed when ffmpeg succeeds, so
//! every output is whole or absent.

use super::{plan, Framing, Reframe};
use crate::encode::{ffmpeg, h264_faststart_mp4, partial_path, Progress, Source, STALL_TIMEOUT};
use crate::loudness::{self, Loudness};
use crate::tool::{self, Deadlines, Ended, Supervised};
use crate::{Analysis, MediaError};
use std::fmt::Write as _;
use std::path::Path;
use tokio_util::sync::CancellationToken;

/// Renders every output in `outputs` from one ffmpeg run over `source`,
/// following the face tracks of `analysis` (the source's analysis), and
/// returns each output's window path, in order.
///
/// Video is H.264 yuv420p, audio (when the source has any) AAC brought to
/// `loudness`, in fast-start MP4. `on_progress` gets rising percentages
/// from ffmpeg's `-progress` output, ending at 100; raising `cancel` kills
/// ffmpeg and returns [`MediaError::Cancelled`], leaving no output.
pub fn render_reframed(
    source: &Source,
    analysis: &Analysis,
    loudness: &Loudness,
    outputs: &[Reframe],
    on_progress: &mut dyn FnMut(f64),
    cancel: &CancellationToken,
) -> Result<Vec<Framing>, MediaError> {
    let Some(first) = outputs.first() else {
        return Err(MediaError::InvalidParams(
            "reframe: no outputs to render".into(),
        ));
    };
    for o in outputs {
        o.params
            .validate()
            .map_err(|m| MediaError::InvalidParams(format!("reframe: {m}")))?;
    }
    if !(analysis.fps.is_finite() && analysis.fps > 0.0) {
        return Err(MediaError::InvalidParams(format!(
            "reframe: the analysis' frame rate {} is not usable",
            analysis.fps
        )));
    }
    let input = &source.path;
    let display = display_size(input, source.stream, analysis)?;
    let framings: Vec<Framing> = outputs
        .iter()
        .map(|o| plan(analysis, display.size, o.aspect, o.params))
        .collect();
    let gain = if source.has_audio {
        loudness::second_pass(source, loudness::whole_source_graph(), loudness, cancel)?
    } else {
        None
    };
    // A still window needs no commands (and sendcmd refuses an empty file).
    let script = sendcmd_script(&framings, analysis.fps);
    let commands = (!script.is_empty()).then(|| partial_path(first.out).with_extension("cmds"));
    if let Some(path) = &commands {
        std::fs::write(path, &script).map_err(|e| MediaError::io(path, e))?;
    }

    let graph = graph(
        source,
        &display,
        &framings,
        commands.as_deref(),
        gain.as_deref(),
    );
    let mut command = ffmpeg();
    command.args(["-progress", "pipe:1", "-stats_period", "0.5"]);
    source.input(&mut command).arg("-filter_complex").arg(graph);
    for (i, o) in outputs.iter().enumerate() {
        command.args(["-map", &format!("[v{i}]")]);
        if source.has_audio {
            command.args(["-map", &format!("[a{i}]"), "-c:a", "aac", "-b:a", "128k"]);
        }
        h264_faststart_mp4(&mut command).arg(tool::file_url(&partial_path(o.out)));
    }

    let mut progress = Progress::new(analysis.duration_s.max(1e-3));
    on_progress(0.0);
    let deadlines = Deadlines {
        total: None,
        idle: Some(STALL_TIMEOUT),
    };
    let ended = Supervised::spawn("ffmpeg", input, command).map(|mut run| {
        let ended = run.wait(Some(cancel), deadlines, &mut |line| {
            if let Some(pct) = progress.line(line) {
                on_progress(pct);
            }
        });
        (run, ended)
    });
    if let Some(path) = &commands {
        let _ = std::fs::remove_file(path);
    }
    let result = match ended {
        Ok((run, ended)) => finish_all(&run, ended, outputs),
        Err(e) => Err(e),
    };
    if result.is_err() {
        for o in outputs {
            let _ = std::fs::remove_file(partial_path(o.out));
        }
    }
    result?;
    on_progress(100.0);
    Ok(framings)
}

/// How ffmpeg ended, as the result: every partial output renamed into place.
fn finish_all(
    run: &Supervised,
    ended: Result<Ended, MediaError>,
    outputs: &[Reframe],
) -> Result<(), MediaError> {
    run.succeeded(ended?)?;
    for o in outputs {
        let part = partial_path(o.out);
        if !std::fs::metadata(&part).is_ok_and(|m| m.len() > 0) {
            return Err(run.error(format!("ffmpeg wrote nothing to {}", o.out.display())));
        }
    }
    for o in outputs {
        std::fs::rename(partial_path(o.out), o.out).map_err(|e| MediaError::io(o.out, e))?;
    }
    Ok(())
}

/// The decoded frame's size in square pixels, and whether the stream's
/// pixels must be scaled to get it.
struct Display {
    size: (u32, u32),
    rescale: bool,
}

/// The video stream's display size: its coded size stretched by its sample
/// aspect ratio, turned a quarter when the decoder rotates it (which the
/// analysed frame's shape shows).
fn display_size(
    input: &Path,
    stream: Option<u32>,
    analysis: &Analysis,
) -> Result<Display, MediaError> {
    let out = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-select_streams"])
        .arg(crate::source::stream_spec(stream, ""))
        .args([
            "-show_entries",
            "stream=width,height,sample_aspect_ratio",
            "-of",
            "json",
        ])
        .arg(tool::file_url(input))
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| MediaError::io(input, e))?;
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    let s = &json["streams"][0];
    let (Some(w), Some(h)) = (s["width"].as_u64(), s["height"].as_u64()) else {
        return Err(MediaError::Unusable(
            "reframe: the video stream has no size".into(),
        ));
    };
    let sar = s["sample_aspect_ratio"]
        .as_str()
        .and_then(|r| r.split_once(':'))
        .and_then(|(a, b)| Some(a.parse::<f64>().ok()? / b.parse::<f64>().ok()?))
        .filter(|r| r.is_finite() && *r > 0.0)
        .unwrap_or(1.0);
    let width = super::even(w as f64 * sar);
    let height = super::even(h as f64);
    let rescale = width as u64 != w || height as u64 != h;
    let analysed = f64::from(analysis.width) / f64::from(analysis.height.max(1));
    let ours = f64::from(width) / f64::from(height);
    let turned = (analysed.ln() + ours.ln()).abs() < (analysed.ln() - ours.ln()).abs();
    Ok(Display {
        size: if turned {
            (height, width)
        } else {
            (width, height)
        },
        rescale,
    })
}

/// The filter graph: the video restamped from zero, brought to square
/// pixels if need be, driven by `sendcmd`, split once per output and cropped
/// (`crop@r<i>`), scaled down where the output is smaller than its window;
/// the audio normalised by `gain` and split likewise.
fn graph(
    source: &Source,
    display: &Display,
    framings: &[Framing],
    commands: Option<&Path>,
    gain: Option<&str>,
) -> String {
    let n = framings.len();
    let mut g = format!(
        "[{}]setpts=PTS-STARTPTS",
        crate::source::stream_spec(source.stream, "0:")
    );
    if display.rescale {
        let (w, h) = display.size;
        let _ = write!(g, ",scale={w}:{h},setsar=1");
    }
    if let Some(commands) = commands {
        let _ = write!(g, ",sendcmd=f={}", escape(commands));
    }
    let _ = write!(g, ",split={n}");
    (0..n).for_each(|i| {
        let _ = write!(g, "[s{i}]");
    });
    for (i, f) in framings.iter().enumerate() {
        let (x, y) = (
            f.xs.first().copied().unwrap_or(0),
            f.ys.first().copied().unwrap_or(0),
        );
        let _ = write!(
            g,
            ";[s{i}]crop@r{i}=w={}:h={}:x={x}:y={y}",
            f.window.0, f.window.1
        );
        if f.output != f.window {
            let _ = write!(g, ",scale={}:{}", f.output.0, f.output.1);
        }
        let _ = write!(g, ",setsar=1,format=yuv420p[v{i}]");
    }
    if source.has_audio {
        crate::encode::audio_split(&mut g, gain, n);
    }
    g
}

/// The `sendcmd` script: on each frame where a window moves, its new corner,
/// sent half a frame before the frame's time.
fn sendcmd_script(framings: &[Framing], fps: f64) -> String {
    let frames = framings.iter().map(|f| f.xs.len()).max().unwrap_or(0);
    let mut s = String::new();
    for k in 1..frames {
        let mut line = String::new();
        for (i, f) in framings.iter().enumerate() {
            for (axis, v) in [("x", &f.xs), ("y", &f.ys)] {
                if let (Some(now), Some(before)) = (v.get(k), v.get(k - 1)) {
                    if now != before {
                        let sep = if line.is_empty() { "" } else { ", " };
                        let _ = write!(line, "{sep}crop@r{i} {axis} {now}");
                    }
                }
            }
        }
        if !line.is_empty() {
            let _ = writeln!(s, "{:.6} {line};", (k as f64 - 0.5) / fps);
        }
    }
    s
}

/// A path as a filter option value inside a filter graph: escaped once for
/// the option (`\`, `'`, `:`) and once for the graph (`\`, `'`, `[`, `]`,
/// `,`, `;`).
fn escape(path: &Path) -> String {
    let level = |s: &str, special: &[char]| {
        s.chars().fold(String::new(), |mut out, c| {
            if special.contains(&c) {
                out.push('\\');
            }
            out.push(c);
            out
        })
    };
    let once = level(&path.to_string_lossy(), &['\\', '\'', ':']);
    level(&once, &['\\', '\'', '[', ']', ',', ';'])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_only_where_a_window_moves() {
        let f = Framing {
            frame: (1280, 720),
            window: (404, 720),
            output: (404, 720),
            xs: vec![10, 10, 12, 12, 14],
            ys: vec![0; 5],
        };
        let s = sendcmd_script(&[f], 25.0);
        assert_eq!(s, "0.060000 crop@r0 x 12;\n0.140000 crop@r0 x 14;\n");
    }

    #[test]
    fn paths_are_escaped_twice() {
        assert_eq!(escape(Path::new("/tmp/a b/c.cmds")), "/tmp/a b/c.cmds");
        assert_eq!(escape(Path::new("/t:x,y")), "/t\\\\:x\\,y");
    }
}

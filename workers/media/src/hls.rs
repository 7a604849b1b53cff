//! The HLS ladder: every rendition from one decode of the source (`split`,
//! then `scale` per rung, all encoded by one ffmpeg run), keyframes forced at
//! the same times in every rendition so segments line up, and a master
//! playlist written from what was actually encoded.
//!
//! Each rendition is one fragmented MP4 (CMAF-style: H.264 + AAC, its init
//! segment at the start of the same file) addressed by byte ranges from its
//! media playlist (`-hls_flags single_file`, HLS version 7), so a ladder is
//! `master.m3u8` plus two files per rung however long the video is: few
//! artifacts for the job's events to carry. fMP4 rather than MPEG-TS: no
//! 188-byte packet overhead (several percent at low bitrates), the same
//! files play through Media Source Extensions without remuxing, and HEVC or
//! AV1 rungs could join later.

mod command;
mod params;
mod playlist;

use crate::encode::{ffmpeg, Progress, Source, STALL_TIMEOUT};
use crate::loudness::Loudness;
use crate::tool::{self, Deadlines, Supervised};
use crate::MediaError;
use std::path::Path;
use tokio_util::sync::CancellationToken;

pub use command::{ladder_args, ladder_graph};
pub use params::{video_kbps, HlsParams, Rung, MAX_RUNGS};
pub use playlist::Segment;

/// One rendition as encoded.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendition {
    pub rung: Rung,
    pub width: u32,
    pub height: u32,
    pub frame_rate: f64,
    /// The master playlist's `BANDWIDTH`: the peak segment bitrate, bit/s.
    pub bandwidth: u64,
    /// `AVERAGE-BANDWIDTH`: all segments' bytes over their duration, bit/s.
    pub average_bandwidth: u64,
    /// `CODECS`: `avc1.PPCCLL` (from the encoded SPS) and `mp4a.40.2` when
    /// there is audio.
    pub codecs: String,
    pub segments: Vec<Segment>,
}

/// A rendered ladder: the renditions and the files under the output folder.
#[derive(Debug, Clone, PartialEq)]
pub struct Ladder {
    pub renditions: Vec<Rendition>,
}

impl Ladder {
    /// The entry point, relative to the ladder's folder.
    pub const MASTER: &'static str = "master.m3u8";

    /// Every file of the ladder, relative to its folder: the master playlist
    /// first, then each rendition's playlist and media.
    pub fn files(&self) -> Vec<String> {
        let mut files = vec![Self::MASTER.to_owned()];
        for r in &self.renditions {
            files.push(format!("{}.m3u8", r.rung.name()));
            files.push(format!("{}.mp4", r.rung.name()));
        }
        files
    }
}

/// Renders `source` (a `width`×`height` video of `duration_s` seconds) as an
/// HLS ladder into the folder `out`, replacing it. Everything is written to
/// `<out>.part/` first and renamed into place on success, so `out` is whole or
/// absent; on failure or cancel the partial folder is removed.
///
/// The source's audio is normalised to `loudness` (a first pass measures it)
/// and carried in every rendition; a source without audio gives renditions
/// without audio. `on_progress` gets rising percentages from ffmpeg's own
/// progress, ending at 100.
#[allow(clippy::too_many_arguments)]
pub fn render_hls(
    source: &Source,
    (width, height): (u32, u32),
    duration_s: f64,
    params: &HlsParams,
    loudness: &Loudness,
    out: &Path,
    on_progress: &mut dyn FnMut(f64),
    cancel: &CancellationToken,
) -> Result<Ladder, MediaError> {
    params
        .validate()
        .map_err(|m| MediaError::InvalidParams(format!("hls: {m}")))?;
    if width == 0 || height == 0 || !(duration_s.is_finite() && duration_s > 0.0) {
        return Err(MediaError::InvalidParams(format!(
            "hls: the source ({width}x{height}, {duration_s} s) has no picture to render"
        )));
    }
    let rungs = params.rungs(width, height);
    let gain = if source.has_audio {
        let graph = crate::loudness::whole_source_graph();
        crate::loudness::second_pass(source, graph, loudness, cancel)?
    } else {
        None
    };
    let part = crate::encode::partial_path(out);
    let result = encode(
        source,
        &rungs,
        duration_s,
        params,
        gain.as_deref(),
        &part,
        on_progress,
        cancel,
    )
    .and_then(|()| describe(&rungs, source.has_audio, &part))
    .and_then(|ladder| {
        std::fs::write(
            part.join(Ladder::MASTER),
            playlist::master(&ladder.renditions),
        )
        .map_err(|e| MediaError::io(part.join(Ladder::MASTER), e))?;
        replace_dir(&part, out)?;
        Ok(ladder)
    });
    match &result {
        Ok(_) => on_progress(100.0),
        Err(_) => {
            let _ = std::fs::remove_dir_all(&part);
        }
    }
    result
}

/// The one ffmpeg run that decodes the source once and writes every rendition.
#[allow(clippy::too_many_arguments)]
fn encode(
    source: &Source,
    rungs: &[Rung],
    duration_s: f64,
    params: &HlsParams,
    gain: Option<&str>,
    part: &Path,
    on_progress: &mut dyn FnMut(f64),
    cancel: &CancellationToken,
) -> Result<(), MediaError> {
    let _ = std::fs::remove_dir_all(part);
    std::fs::create_dir_all(part).map_err(|e| MediaError::io(part, e))?;
    let mut command = ffmpeg();
    command.args(["-progress", "pipe:1", "-stats_period", "0.5"]);
    source
        .input(&mut command)
        .args(ladder_args(
            rungs,
            source.stream,
            source.has_audio,
            gain,
            params,
        ))
        .arg("-hls_segment_filename")
        .arg(tool::file_url(&part.join("%v.mp4")))
        .arg(tool::file_url(&part.join("%v.m3u8")));
    let mut progress = Progress::new(duration_s);
    on_progress(0.0);
    let deadlines = Deadlines {
        total: None,
        idle: Some(STALL_TIMEOUT),
    };
    let mut run = Supervised::spawn("ffmpeg", &source.path, command)?;
    let ended = run.wait(Some(cancel), deadlines, &mut |line| {
        if let Some(pct) = progress.line(line) {
            on_progress(pct);
        }
    })?;
    run.succeeded(ended).map(drop)
}

/// Reads back what ffmpeg wrote for each rung: its playlist's segments and
/// what ffprobe and the init segment say about its streams.
fn describe(rungs: &[Rung], has_audio: bool, dir: &Path) -> Result<Ladder, MediaError> {
    rungs
        .iter()
        .map(|&rung| {
            let list = dir.join(format!("{}.m3u8", rung.name()));
            let media = dir.join(format!("{}.mp4", rung.name()));
            let text = std::fs::read_to_string(&list).map_err(|e| MediaError::io(&list, e))?;
            let segments = playlist::segments(&text).ok_or_else(|| bad(&list, "no segments"))?;
            let (width, height, frame_rate) = playlist::video_stream(&media)?;
            let init = playlist::init_bytes(&text, &media)?;
            let avc = playlist::avc1(&init).ok_or_else(|| bad(&media, "no avcC box"))?;
            let codecs = if has_audio {
                format!("{avc},mp4a.40.2")
            } else {
                avc
            };
            let (bandwidth, average_bandwidth) = playlist::bandwidths(&segments);
            Ok(Rendition {
                rung,
                width,
                height,
                frame_rate,
                bandwidth,
                average_bandwidth,
                codecs,
                segments,
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .map(|renditions| Ladder { renditions })
}

fn bad(path: &Path, what: &str) -> MediaError {
    MediaError::Tool {
        tool: "ffmpeg",
        path: path.to_path_buf(),
        message: format!("hls: {what}"),
    }
}

/// Moves the finished folder `part` to `out`, replacing what was there.
fn replace_dir(part: &Path, out: &Path) -> Result<(), MediaError> {
    if out.exists() {
        std::fs::remove_dir_all(out).map_err(|e| MediaError::io(out, e))?;
    }
    std::fs::rename(part, out).map_err(|e| MediaError::io(out, e))
}

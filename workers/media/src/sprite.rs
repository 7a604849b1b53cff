//! Scrub previews: a sprite sheet of frames at a fixed interval
//! (`thumbnails.jpg`, one JPEG of `columns` × rows tiles) and the WebVTT file
//! that maps each interval of the video to its tile
//! (`thumbnails.jpg#xywh=x,y,w,h`), as video players' thumbnail tracks read.
//! A long video does not grow the sheet past `max_tiles`: the interval
//! widens instead.

use crate::encode::{ffmpeg, finish, partial_path, Source};
use crate::tool::{self, Deadlines, Supervised};
use crate::MediaError;
use serde::Deserialize;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// ffmpeg is killed when it has not finished the sheet in this long.
const SHEET_TIMEOUT: Duration = Duration::from_secs(1800);

/// The sprite sheet's parameters.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SpriteParams {
    /// Seconds of video per tile (default 2); widened when the video would
    /// need more than `max_tiles` tiles.
    pub interval_s: f64,
    /// A tile's width in pixels (default 160, even); its height follows the
    /// source's aspect ratio.
    pub width: u32,
    /// Tiles per row (default 10).
    pub columns: u32,
    /// The most tiles a sheet holds (default 100).
    pub max_tiles: u32,
}

impl Default for SpriteParams {
    fn default() -> Self {
        SpriteParams {
            interval_s: 2.0,
            width: 160,
            columns: 10,
            max_tiles: 100,
        }
    }
}

impl SpriteParams {
    pub(crate) fn validate(&self) -> Result<(), String> {
        if !(self.interval_s.is_finite() && (0.5..=600.0).contains(&self.interval_s)) {
            return Err(format!(
                "interval_s must be in [0.5, 600], got {}",
                self.interval_s
            ));
        }
        if !(32..=640).contains(&self.width) || !self.width.is_multiple_of(2) {
            return Err(format!(
                "width must be even and in [32, 640], got {}",
                self.width
            ));
        }
        if !(1..=30).contains(&self.columns) {
            return Err(format!("columns must be in [1, 30], got {}", self.columns));
        }
        if !(1..=400).contains(&self.max_tiles) {
            return Err(format!(
                "max_tiles must be in [1, 400], got {}",
                self.max_tiles
            ));
        }
        Ok(())
    }

    /// The sheet for a `width`×`height` video of `duration_s` seconds.
    pub fn plan(&self, (width, height): (u32, u32), duration_s: f64) -> Sheet {
        let interval_s = self.interval_s.max(duration_s / f64::from(self.max_tiles));
        let tiles = ((duration_s / interval_s - 1e-9).ceil() as u32).clamp(1, self.max_tiles);
        let columns = self.columns.min(tiles);
        let tile_h = (f64::from(self.width) * f64::from(height) / f64::from(width.max(1)) / 2.0)
            .round()
            .max(1.0) as u32
            * 2;
        Sheet {
            interval_s,
            duration_s,
            tiles,
            columns,
            rows: tiles.div_ceil(columns),
            tile_w: self.width,
            tile_h,
        }
    }
}

/// A sheet as planned: how many tiles, where each lies, which time it covers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sheet {
    /// Seconds per tile.
    pub interval_s: f64,
    pub duration_s: f64,
    pub tiles: u32,
    pub columns: u32,
    pub rows: u32,
    pub tile_w: u32,
    pub tile_h: u32,
}

impl Sheet {
    /// The sheet's size in pixels.
    pub fn size(&self) -> (u32, u32) {
        (self.columns * self.tile_w, self.rows * self.tile_h)
    }

    /// The WebVTT file: a cue per tile, contiguous from 0 to the duration,
    /// each naming its tile of `image` (a URI relative to the VTT file).
    pub fn vtt(&self, image: &str) -> String {
        let mut v = String::from("WEBVTT\n");
        for k in 0..self.tiles {
            let start = f64::from(k) * self.interval_s;
            let end = if k + 1 == self.tiles {
                self.duration_s
            } else {
                f64::from(k + 1) * self.interval_s
            };
            let (x, y) = (
                (k % self.columns) * self.tile_w,
                (k / self.columns) * self.tile_h,
            );
            let _ = write!(
                v,
                "\n{} --> {}\n{image}#xywh={x},{y},{},{}\n",
                timestamp(start),
                timestamp(end),
                self.tile_w,
                self.tile_h
            );
        }
        v
    }

    /// The filter that makes the sheet from the video: a frame at the start
    /// of each interval (`fps` with `round=up` gives tick k the last frame at
    /// or before k × interval), scaled to a tile, tiled `columns` × `rows`.
    pub fn graph(&self, stream: Option<u32>) -> String {
        format!(
            "[{}]fps=fps=1/{:.6}:round=up,trim=end_frame={},scale={}:{}:flags=bicubic,setsar=1,\
             tile={}x{},format=yuvj420p[s]",
            crate::source::stream_spec(stream, "0:"),
            self.interval_s,
            self.tiles,
            self.tile_w,
            self.tile_h,
            self.columns,
            self.rows
        )
    }
}

/// `HH:MM:SS.mmm`, as WebVTT wants.
fn timestamp(t: f64) -> String {
    let ms = (t.max(0.0) * 1000.0).round() as u64;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
}

/// Renders the sprite sheet of `source` (a `size` video of `duration_s`
/// seconds) to `jpg` and its WebVTT to `vtt`, which names the sheet by
/// `jpg`'s file name. Both are written beside as `.part` and renamed on
/// success; on failure or cancel neither is left.
pub fn render_sprite(
    source: &Source,
    size: (u32, u32),
    duration_s: f64,
    params: &SpriteParams,
    jpg: &Path,
    vtt: &Path,
    cancel: &CancellationToken,
) -> Result<Sheet, MediaError> {
    params
        .validate()
        .map_err(|m| MediaError::InvalidParams(format!("thumbnails: {m}")))?;
    if size.0 == 0 || size.1 == 0 || !(duration_s.is_finite() && duration_s > 0.0) {
        return Err(MediaError::InvalidParams(format!(
            "thumbnails: the source ({}x{}, {duration_s} s) has no picture",
            size.0, size.1
        )));
    }
    let sheet = params.plan(size, duration_s);
    let part = partial_path(jpg);
    let mut command = ffmpeg();
    source
        .input(&mut command)
        .arg("-filter_complex")
        .arg(sheet.graph(source.stream))
        .args([
            "-map",
            "[s]",
            "-frames:v",
            "1",
            "-c:v",
            "mjpeg",
            "-q:v",
            "4",
        ])
        .args(["-map_metadata", "-1", "-f", "image2", "-update", "1"])
        .arg(tool::file_url(&part));
    let deadlines = Deadlines {
        total: Some(SHEET_TIMEOUT),
        idle: None,
    };
    let mut run = Supervised::spawn("ffmpeg", &source.path, command)?;
    let ended = run.wait(Some(cancel), deadlines, &mut |_| {});
    finish(&run, ended, &part, jpg)?;
    let name = jpg
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let vtt_part = partial_path(vtt);
    let written = std::fs::write(&vtt_part, sheet.vtt(&name))
        .and_then(|()| std::fs::rename(&vtt_part, vtt))
        .map_err(|e| MediaError::io(vtt, e));
    if written.is_err() {
        let _ = std::fs::remove_file(&vtt_part);
        let _ = std::fs::remove_file(jpg);
    }
    written.map(|()| sheet)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation() {
        let ok: SpriteParams = serde_json::from_value(serde_json::json!({"columns": 5})).unwrap();
        assert!(ok.validate().is_ok());
        for bad in [
            serde_json::json!({"interval_s": 0}),
            serde_json::json!({"width": 161}),
            serde_json::json!({"width": 4000}),
            serde_json::json!({"columns": 0}),
            serde_json::json!({"max_tiles": 10000}),
        ] {
            let p: SpriteParams = serde_json::from_value(bad.clone()).unwrap();
            assert!(p.validate().is_err(), "{bad}");
        }
        assert!(serde_json::from_value::<SpriteParams>(serde_json::json!({"rows": 3})).is_err());
    }

    #[test]
    fn plan_and_cues() {
        let p = SpriteParams::default();
        let s = p.plan((1280, 720), 21.0);
        assert_eq!(
            (s.tiles, s.columns, s.rows, s.tile_w, s.tile_h),
            (11, 10, 2, 160, 90)
        );
        assert_eq!(s.size(), (1600, 180));
        let vtt = s.vtt("thumbnails.jpg");
        assert!(
            vtt.starts_with(
                "WEBVTT\n\n00:00:00.000 --> 00:00:02.000\nthumbnails.jpg#xywh=0,0,160,90\n"
            ),
            "{vtt}"
        );
        assert!(
            vtt.ends_with("00:00:20.000 --> 00:00:21.000\nthumbnails.jpg#xywh=0,90,160,90\n"),
            "{vtt}"
        );
        // Four hours: the interval widens, the sheet stays at max_tiles.
        let long = p.plan((1920, 1080), 4.0 * 3600.0);
        assert_eq!((long.tiles, long.rows), (100, 10));
        assert_eq!(long.interval_s, 144.0);
        assert_eq!(timestamp(3723.4567), "01:02:03.457");
        // Fewer tiles than a row: the sheet is one row of them.
        assert_eq!(p.plan((320, 240), 3.0).size(), (320, 120));
    }
}

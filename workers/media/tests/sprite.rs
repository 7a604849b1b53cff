//! The scrub-preview sprite sheet and its WebVTT against real sources: the
//! sheet's size is the tile grid, every tile holds a picture, the cues cover
//! the video contiguously and point inside the sheet, and a long video keeps
//! the sheet bounded.

mod render_support;

use render_support::ffprobe;
use sprocket_media::render::Source;
use sprocket_media::sprite::{render_sprite, Sheet, SpriteParams};
use std::path::Path;
use std::process::Command;
use tokio_util::sync::CancellationToken;

/// A `w`x`h` test pattern of `seconds` at `fps`.
fn source(dir: &Path, size: (u32, u32), fps: u32, seconds: u32) -> std::path::PathBuf {
    render_support::source_sized(dir, "src.mp4", size, fps, seconds, false)
}

/// `HH:MM:SS.mmm` in seconds.
fn seconds(t: &str) -> f64 {
    let parts: Vec<f64> = t.split(':').map(|p| p.parse().unwrap()).collect();
    assert_eq!(parts.len(), 3, "{t}");
    parts[0] * 3600.0 + parts[1] * 60.0 + parts[2]
}

/// The cues of a WebVTT file: (start, end, payload).
fn cues(vtt: &str) -> Vec<(f64, f64, String)> {
    let mut blocks = vtt.split("\n\n");
    assert!(blocks.next().unwrap().starts_with("WEBVTT"));
    blocks
        .filter(|b| !b.trim().is_empty())
        .map(|b| {
            let mut lines = b.lines();
            let (a, z) = lines.next().unwrap().split_once(" --> ").unwrap();
            (seconds(a), seconds(z), lines.collect::<Vec<_>>().join("\n"))
        })
        .collect()
}

/// The sheet as 8-bit grey pixels, from ffmpeg.
fn grey(jpg: &Path, (w, h): (u32, u32)) -> Vec<u8> {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(jpg)
        .args(["-f", "rawvideo", "-pix_fmt", "gray", "-"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(out.stdout.len(), (w * h) as usize);
    out.stdout
}

/// Renders the sheet and checks it against its cues; returns the sheet.
fn check(src: &Path, size: (u32, u32), duration: f64, params: &SpriteParams) -> Sheet {
    let dir = src.parent().unwrap();
    let (jpg, vtt) = (dir.join("thumbnails.jpg"), dir.join("thumbnails.vtt"));
    let sheet = render_sprite(
        &Source {
            path: src.to_path_buf(),
            stream: None,
            has_audio: false,
            longest_s: Source::DEFAULT_LONGEST_S,
        },
        size,
        duration,
        params,
        &jpg,
        &vtt,
        &CancellationToken::new(),
    )
    .unwrap();
    let probe = ffprobe(&jpg);
    let s = &probe["streams"][0];
    let (w, h) = (
        s["width"].as_u64().unwrap() as u32,
        s["height"].as_u64().unwrap() as u32,
    );
    assert_eq!(
        (w, h),
        (sheet.columns * sheet.tile_w, sheet.rows * sheet.tile_h),
        "columns x rows tiles"
    );
    assert_eq!(sheet.tile_w, params.width);
    assert_eq!(
        sheet.tile_h,
        params.width * size.1 / size.0,
        "the source's aspect"
    );

    let cues = cues(&std::fs::read_to_string(&vtt).unwrap());
    assert_eq!(cues.len() as u32, sheet.tiles);
    assert!(cues.len() as u32 <= params.max_tiles);
    assert_eq!(cues[0].0, 0.0);
    assert!((cues.last().unwrap().1 - duration).abs() < 0.001);
    let pixels = grey(&jpg, (w, h));
    let mut tiles_seen = std::collections::BTreeSet::new();
    for (i, (start, end, payload)) in cues.iter().enumerate() {
        assert!(end > start, "cue {i}");
        if i > 0 {
            assert_eq!(*start, cues[i - 1].1, "cue {i} follows the one before");
        }
        let xywh = payload
            .strip_prefix("thumbnails.jpg#xywh=")
            .unwrap_or_else(|| panic!("{payload}"));
        let v: Vec<u32> = xywh.split(',').map(|n| n.parse().unwrap()).collect();
        let (x, y, tw, th) = (v[0], v[1], v[2], v[3]);
        assert!(x + tw <= w && y + th <= h, "tile {xywh} inside {w}x{h}");
        assert!(tiles_seen.insert((x, y)), "each cue its own tile");
        // A picture, not the tile filter's black padding: testsrc2 is bright
        // and busy everywhere.
        let mut sum = 0u64;
        for row in y..y + th {
            let at = (row * w + x) as usize;
            sum += pixels[at..at + tw as usize]
                .iter()
                .map(|&p| u64::from(p))
                .sum::<u64>();
        }
        let mean = sum as f64 / f64::from(tw * th);
        assert!(mean > 40.0, "tile {i} at {xywh} is blank (mean {mean})");
    }
    sheet
}

#[test]
fn sheet_and_cues_cover_the_video() {
    let dir = tempfile::tempdir().unwrap();
    let src = source(dir.path(), (640, 360), 25, 21);
    let params = SpriteParams {
        columns: 4,
        ..Default::default()
    };
    let sheet = check(&src, (640, 360), 21.0, &params);
    assert_eq!((sheet.tiles, sheet.columns, sheet.rows), (11, 4, 3));
    assert_eq!(sheet.interval_s, 2.0);
}

#[test]
fn a_long_video_caps_the_tiles() {
    let dir = tempfile::tempdir().unwrap();
    // Half an hour at 2 fps: at a tile every 2 s it would need 900 tiles.
    let src = source(dir.path(), (320, 180), 2, 1800);
    let params = SpriteParams::default();
    let sheet = check(&src, (320, 180), 1800.0, &params);
    assert_eq!(sheet.tiles, params.max_tiles);
    assert_eq!((sheet.columns, sheet.rows), (10, 10));
    assert_eq!(sheet.interval_s, 18.0);
    assert_eq!(sheet.size(), (1600, 900), "bounded, however long the video");
}

//! `probe` against real files made with ffmpeg: good sources and every kind of
//! unusable input.

mod render_support;

use sprocket_media::probe::{probe, Limits};
use sprocket_media::MediaError;
use std::path::Path;

fn unusable(path: &Path, limits: &Limits) -> String {
    match probe(path, limits) {
        Err(e @ MediaError::Unusable(_)) => {
            assert!(!e.retryable());
            e.to_string()
        }
        other => panic!("{path:?}: expected Unusable, got {other:?}"),
    }
}

#[test]
fn probes_video_with_and_without_audio() {
    let dir = tempfile::tempdir().unwrap();
    let with = render_support::source(dir.path(), "with.mp4", 2, true);
    let info = probe(&with, &Limits::default()).unwrap();
    assert_eq!((info.width, info.height), (320, 240));
    assert_eq!(info.fps, 25.0);
    assert!((info.duration_s - 2.0).abs() < 0.1, "{}", info.duration_s);
    assert_eq!(info.video_codec, "h264");
    assert_eq!(info.audio_codec.as_deref(), Some("aac"));
    assert!(info.format.contains("mp4"), "{}", info.format);
    assert!(info.bit_rate.is_some_and(|b| b > 0));

    let without = render_support::source(dir.path(), "without.mkv", 2, false);
    let info = probe(&without, &Limits::default()).unwrap();
    assert_eq!((info.width, info.height, info.fps), (320, 240, 25.0));
    assert_eq!(info.audio_codec, None);
    assert!(info.format.contains("matroska"), "{}", info.format);
}

#[test]
fn empty_and_non_media_files_are_unusable() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.mp4");
    std::fs::write(&empty, b"").unwrap();
    assert!(unusable(&empty, &Limits::default()).contains("empty (0 bytes)"));

    let text = dir.path().join("notes.mp4");
    std::fs::write(&text, "These are my notes, not a video.\n".repeat(20)).unwrap();
    let why = unusable(&text, &Limits::default());
    assert!(why.contains("not a media file"), "{why}");
}

#[test]
fn truncated_mp4s_are_unusable() {
    let dir = tempfile::tempdir().unwrap();
    let whole = render_support::source(dir.path(), "whole.mp4", 2, true);
    let bytes = std::fs::read(&whole).unwrap();
    // ffmpeg writes the index (moov) last: cutting the file loses it.
    let cut = dir.path().join("cut.mp4");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let why = unusable(&cut, &Limits::default());
    assert!(why.contains("truncated") && why.contains("moov"), "{why}");

    // With the index first ffprobe reads the cut file fine; the box walk does not.
    let fast = dir.path().join("fast.mp4");
    render_support::ffmpeg(&[
        "-i",
        whole.to_str().unwrap(),
        "-c",
        "copy",
        "-movflags",
        "+faststart",
        fast.to_str().unwrap(),
    ]);
    let bytes = std::fs::read(&fast).unwrap();
    let cut_fast = dir.path().join("cut_fast.mp4");
    std::fs::write(&cut_fast, &bytes[..bytes.len() / 2]).unwrap();
    let why = unusable(&cut_fast, &Limits::default());
    assert!(why.contains("truncated") && why.contains("mdat"), "{why}");
    assert!(probe(&fast, &Limits::default()).is_ok());
}

#[test]
fn audio_only_and_cover_art_are_not_video() {
    let dir = tempfile::tempdir().unwrap();
    let tone = "sine=frequency=440:duration=1";
    let m4a = dir.path().join("tone.m4a");
    render_support::ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        tone,
        "-c:a",
        "aac",
        m4a.to_str().unwrap(),
    ]);
    let why = unusable(&m4a, &Limits::default());
    assert!(
        why.contains("audio only") && why.contains("no video"),
        "{why}"
    );

    let cover = dir.path().join("cover.m4a");
    render_support::ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        tone,
        "-f",
        "lavfi",
        "-i",
        "color=red:size=64x64:duration=0.04",
        "-map",
        "0",
        "-map",
        "1",
        "-c:a",
        "aac",
        "-c:v",
        "png",
        "-frames:v",
        "1",
        "-disposition:v:0",
        "attached_pic",
        cover.to_str().unwrap(),
    ]);
    let why = unusable(&cover, &Limits::default());
    assert!(
        why.contains("no video") && why.contains("cover art"),
        "{why}"
    );
}

#[test]
fn limits_are_enforced() {
    let dir = tempfile::tempdir().unwrap();
    let src = render_support::source(dir.path(), "src.mp4", 2, false);
    let size = std::fs::metadata(&src).unwrap().len();
    let limits = Limits::default();

    let why = unusable(
        &src,
        &Limits {
            max_width: 160,
            ..limits.clone()
        },
    );
    assert!(why.contains("320x240") && why.contains("limit"), "{why}");
    let why = unusable(
        &src,
        &Limits {
            max_height: 200,
            ..limits.clone()
        },
    );
    assert!(why.contains("320x240") && why.contains("limit"), "{why}");
    let why = unusable(
        &src,
        &Limits {
            max_duration_s: 1.5,
            ..limits.clone()
        },
    );
    assert!(why.contains("2.0 s long") && why.contains("limit"), "{why}");
    let why = unusable(
        &src,
        &Limits {
            max_bytes: size - 1,
            ..limits.clone()
        },
    );
    assert!(
        why.contains(&format!("{size} bytes")) && why.contains("limit"),
        "{why}"
    );
    // Exactly at the limits is fine.
    let info = probe(
        &src,
        &Limits {
            max_bytes: size,
            max_width: 320,
            max_height: 240,
            ..limits
        },
    )
    .unwrap();
    assert_eq!(info.width, 320);
}

#[test]
fn a_missing_file_is_an_io_error() {
    let err = probe(
        Path::new("/nonexistent/sprocket/source.mp4"),
        &Limits::default(),
    )
    .unwrap_err();
    assert!(matches!(err, MediaError::Io { .. }), "{err:?}");
}

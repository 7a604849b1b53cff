//! The render phase's ffmpeg runs against real sources: the highlight reel with
//! and without source audio, progress, the poster, failures and cancel.

mod render_support;

use render_support::{codecs, duration, ffprobe, processes_mentioning, source};
use sprocket_media::render::{render_highlight, render_poster};
use sprocket_media::MediaError;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

fn check_reel(audio: bool) {
    let dir = tempfile::tempdir().unwrap();
    let src = source(dir.path(), "src.mp4", 6, audio);
    let out = dir.path().join("reel.mp4");
    let segments = [(0.5, 2.0), (3.0, 4.2), (5.0, 6.0)];
    let mut seen = Vec::new();
    let cancel = CancellationToken::new();
    render_highlight(
        &src,
        None,
        &segments,
        audio,
        &out,
        &mut |p| seen.push(p),
        &cancel,
    )
    .unwrap();

    let probe = ffprobe(&out);
    assert_eq!(codecs(&probe, "video"), ["h264"]);
    assert_eq!(codecs(&probe, "audio"), ["aac"]);
    let video = probe["streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["codec_type"] == "video")
        .unwrap();
    assert_eq!(video["pix_fmt"], "yuv420p");
    let got = duration(&probe);
    assert!(
        (got - 3.7).abs() <= 0.2,
        "reel is {got} s, segments sum to 3.7 s"
    );
    assert!(!dir.path().join("reel.mp4.part").exists());

    assert_eq!(seen.first(), Some(&0.0));
    assert_eq!(seen.last(), Some(&100.0));
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "not rising: {seen:?}");
    assert!(seen.iter().all(|p| (0.0..=100.0).contains(p)));
}

#[test]
fn highlight_with_source_audio() {
    check_reel(true);
}

#[test]
fn highlight_without_source_audio_carries_silence() {
    check_reel(false);
}

#[test]
fn poster_is_a_jpeg_at_source_size() {
    let dir = tempfile::tempdir().unwrap();
    let src = source(dir.path(), "src.mp4", 3, false);
    let out = dir.path().join("poster.jpg");
    render_poster(&src, None, 1.5, &out, &CancellationToken::new()).unwrap();
    let bytes = std::fs::read(&out).unwrap();
    assert_eq!(&bytes[..3], &[0xFF, 0xD8, 0xFF]);
    let probe = ffprobe(&out);
    assert_eq!(codecs(&probe, "video"), ["mjpeg"]);
    let stream = &probe["streams"][0];
    assert_eq!(
        (stream["width"].as_u64(), stream["height"].as_u64()),
        (Some(320), Some(240))
    );

    // Past the end there is no frame: a tool error, and no file.
    let late = dir.path().join("late.jpg");
    let err = render_poster(&src, None, 30.0, &late, &CancellationToken::new()).unwrap_err();
    assert!(matches!(err, MediaError::Tool { .. }), "{err:?}");
    assert!(!late.exists());
}

#[test]
fn ffmpeg_failure_is_a_tool_error_with_its_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.mp4");
    std::fs::write(&bad, "not a video\n".repeat(10)).unwrap();
    let out = dir.path().join("reel.mp4");
    let err = render_highlight(
        &bad,
        None,
        &[(0.0, 1.0)],
        true,
        &out,
        &mut |_| {},
        &CancellationToken::new(),
    )
    .unwrap_err();
    match &err {
        MediaError::Tool { tool, message, .. } => {
            assert_eq!(*tool, "ffmpeg");
            assert!(
                message.contains("Invalid data") || message.contains("moov"),
                "{message}"
            );
        }
        other => panic!("expected Tool, got {other:?}"),
    }
    assert!(err.retryable());
    assert!(!out.exists() && !dir.path().join("reel.mp4.part").exists());
}

#[test]
fn bad_segments_are_invalid_params() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("reel.mp4");
    let src = dir.path().join("never-read.mp4");
    let cancel = CancellationToken::new();
    for segments in [
        vec![],
        vec![(2.0, 1.0)],
        vec![(0.0, 2.0), (1.0, 3.0)],
        vec![(f64::NAN, 1.0)],
    ] {
        let err =
            render_highlight(&src, None, &segments, false, &out, &mut |_| {}, &cancel).unwrap_err();
        assert!(
            matches!(err, MediaError::InvalidParams(_)),
            "{segments:?}: {err:?}"
        );
    }
}

#[test]
fn cancel_kills_ffmpeg_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let src = source(dir.path(), "long.mp4", 20, true);
    let out = dir.path().join("cancelled-reel.mp4");
    let cancel = CancellationToken::new();
    let mut raised_at = None;
    // Cancel as soon as ffmpeg reports real progress, i.e. while it is encoding.
    let result = render_highlight(
        &src,
        None,
        &[(0.0, 20.0)],
        true,
        &out,
        &mut |p| {
            if p > 0.0 && raised_at.is_none() {
                cancel.cancel();
                raised_at = Some(Instant::now());
            }
        },
        &cancel,
    );
    let raised_at = raised_at.expect("ffmpeg reported progress before finishing");
    assert!(matches!(result, Err(MediaError::Cancelled)), "{result:?}");
    assert!(
        raised_at.elapsed() < Duration::from_secs(2),
        "took {:?}",
        raised_at.elapsed()
    );
    assert!(!out.exists());
    assert!(!dir.path().join("cancelled-reel.mp4.part").exists());
    let left = processes_mentioning(out.to_str().unwrap());
    assert!(left.is_empty(), "ffmpeg still running: {left:?}");
}

//! The render phase's ffmpeg runs against real sources: the highlight reel with
//! and without source audio, progress, the poster, failures and cancel.

mod render_support;

use render_support::{codecs, duration, ffprobe, processes_mentioning, source};
use sprocket_media::loudness::Loudness;
use sprocket_media::render::{render_highlight, render_poster, Source};
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
        &Source {
            path: src.clone(),
            stream: None,
            has_audio: audio,
            longest_s: Source::DEFAULT_LONGEST_S,
        },
        &segments,
        &Loudness::default(),
        &out,
        &mut |p| seen.push(p),
        &cancel,
    )
    .unwrap();

    let probe = ffprobe(&out);
    assert_eq!(codecs(&probe, "video"), ["h264"]);
    // A source without audio gives a reel without audio.
    let want: &[&str] = if audio { &["aac"] } else { &[] };
    assert_eq!(codecs(&probe, "audio"), want);
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
    let src = Source {
        path: src,
        stream: None,
        has_audio: false,
        longest_s: Source::DEFAULT_LONGEST_S,
    };
    render_poster(&src, 1.5, &out, &CancellationToken::new()).unwrap();
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
    let err = render_poster(&src, 30.0, &late, &CancellationToken::new()).unwrap_err();
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
        &Source {
            path: bad.clone(),
            stream: None,
            has_audio: true,
            longest_s: Source::DEFAULT_LONGEST_S,
        },
        &[(0.0, 1.0)],
        &Loudness::default(),
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
        let err = render_highlight(
            &Source {
                path: src.clone(),
                stream: None,
                has_audio: false,
                longest_s: Source::DEFAULT_LONGEST_S,
            },
            &segments,
            &Loudness::default(),
            &out,
            &mut |_| {},
            &cancel,
        )
        .unwrap_err();
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
        &Source {
            path: src.clone(),
            stream: None,
            has_audio: true,
            longest_s: Source::DEFAULT_LONGEST_S,
        },
        &[(0.0, 20.0)],
        &Loudness::default(),
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

/// A source whose tone sits at `gain_db` below full scale, with a second of
/// near silence in the middle (so a reel of different cuts measures
/// differently from the whole).
fn tone_source(dir: &std::path::Path, name: &str, gain_db: f64) -> std::path::PathBuf {
    let path = dir.join(name);
    let audio = format!(
        "sine=frequency=330:sample_rate=48000:duration=8,volume={gain_db}dB,\
         volume='if(between(t,3,4),0.05,1)':eval=frame"
    );
    let status = std::process::Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg("testsrc2=size=320x240:rate=25:duration=8")
        .args(["-f", "lavfi", "-i", &audio])
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
        ])
        .args(["-c:a", "aac", "-b:a", "160k", "-shortest"])
        .arg(&path)
        .status()
        .unwrap();
    assert!(status.success());
    path
}

#[test]
fn reels_are_normalised_to_the_target_loudness() {
    use sprocket_media::loudness::ebur128;
    let dir = tempfile::tempdir().unwrap();
    let cancel = CancellationToken::new();
    let segments = [(0.5, 2.5), (3.2, 4.5), (5.0, 7.5)];
    for (source_db, loudness, target) in [
        (-30.0, Loudness::default(), -16.0),
        (12.0, Loudness::default(), -16.0),
        (-20.0, Loudness::EBU_R128, -23.0),
    ] {
        let src = tone_source(dir.path(), &format!("src{source_db}.mp4"), source_db);
        let before = ebur128(&src).unwrap();
        let out = dir.path().join(format!("reel{source_db}{target}.mp4"));
        render_highlight(
            &Source {
                path: src.clone(),
                stream: None,
                has_audio: true,
                longest_s: Source::DEFAULT_LONGEST_S,
            },
            &segments,
            &loudness,
            &out,
            &mut |_| {},
            &cancel,
        )
        .unwrap();
        let after = ebur128(&out).unwrap();
        eprintln!("loudness: source {before:?} -> reel {after:?} (target {target} LUFS)");
        assert!(
            (after.integrated_lufs - target).abs() <= 1.0,
            "source at {source_db} dB ({before:?}): reel measured {after:?}, target {target}"
        );
        assert!(after.true_peak_db <= -1.0 + 0.3, "{after:?}");
    }
    // Loud clicks over a tone: the gain to the target would put the clicks
    // far over the true-peak ceiling; they are limited and the loudness the
    // limiter takes is made up.
    let spiky = dir.path().join("spiky.mp4");
    let status = std::process::Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg("testsrc2=size=320x240:rate=25:duration=8")
        .args(["-f", "lavfi", "-i"])
        .arg("sine=frequency=330:sample_rate=48000:duration=8,volume=-6dB")
        .args(["-f", "lavfi", "-i"])
        .arg("aevalsrc='if(lt(mod(t,0.5),0.003),0.95*sin(2*PI*2000*t),0)':s=48000:d=8")
        .args(["-filter_complex", "[1:a][2:a]amix=inputs=2:normalize=0[a]"])
        .args([
            "-map",
            "0:v",
            "-map",
            "[a]",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
        ])
        .args(["-c:a", "aac", "-b:a", "160k", "-shortest"])
        .arg(&spiky)
        .status()
        .unwrap();
    assert!(status.success());
    let before = ebur128(&spiky).unwrap();
    let out = dir.path().join("spiky-reel.mp4");
    let source = Source {
        path: spiky.clone(),
        stream: None,
        has_audio: true,
        longest_s: Source::DEFAULT_LONGEST_S,
    };
    render_highlight(
        &source,
        &[(0.0, 7.5)],
        &Loudness::default(),
        &out,
        &mut |_| {},
        &cancel,
    )
    .unwrap();
    let after = ebur128(&out).unwrap();
    eprintln!("loudness: clicks {before:?} -> reel {after:?} (target -16 LUFS, -1 dBTP)");
    assert!(
        before.true_peak_db > -1.0 && before.integrated_lufs < -20.0,
        "{before:?}"
    );
    assert!((after.integrated_lufs + 16.0).abs() <= 1.0, "{after:?}");
    assert!(after.true_peak_db <= -1.0 + 0.5, "{after:?}");

    // Off: the reel keeps the source's level (the cut changes it a little).
    let src = tone_source(dir.path(), "off.mp4", -30.0);
    let out = dir.path().join("off-reel.mp4");
    let off = Loudness {
        target_lufs: None,
        ..Loudness::default()
    };
    render_highlight(
        &Source {
            path: src.clone(),
            stream: None,
            has_audio: true,
            longest_s: Source::DEFAULT_LONGEST_S,
        },
        &[(0.0, 2.5)],
        &off,
        &out,
        &mut |_| {},
        &cancel,
    )
    .unwrap();
    let (a, b) = (ebur128(&src).unwrap(), ebur128(&out).unwrap());
    assert!(
        (a.integrated_lufs - b.integrated_lufs).abs() < 2.0 && b.integrated_lufs < -25.0,
        "{a:?} {b:?}"
    );
}

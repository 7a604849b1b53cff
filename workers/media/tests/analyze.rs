//! The analyze pipeline on real videos, generated with ffmpeg from lavfi
//! sources with hard cuts at known frames.

use serde_json::json;
use sprocket_media::analyze::{analyze, AnalyzeParams};
use sprocket_media::faces::Mtcnn;
use sprocket_media::{Analysis, MediaError};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const FPS: u32 = 25;

/// Encodes `segments` (lavfi source, frames) back to back with hard cuts
/// into `dir/name` as 320x180 H.264 at 25 fps.
fn make_video(dir: &Path, name: &str, segments: &[(&str, u32)]) -> PathBuf {
    let path = dir.join(name);
    let mut command = Command::new("ffmpeg");
    command.args(["-v", "error", "-nostdin", "-y"]);
    let mut graph = String::new();
    for (i, (source, frames)) in segments.iter().enumerate() {
        let sep = if source.contains('=') { ':' } else { '=' };
        command.args(["-f", "lavfi", "-i"]);
        command.arg(format!("{source}{sep}s=320x180:r={FPS}"));
        graph += &format!("[{i}:v]trim=end_frame={frames},setpts=PTS-STARTPTS[s{i}];");
    }
    for i in 0..segments.len() {
        graph += &format!("[s{i}]");
    }
    graph += &format!("concat=n={}:v=1:a=0,format=yuv420p[out]", segments.len());
    command.args(["-filter_complex", &graph, "-map", "[out]"]);
    command.args(["-c:v", "libx264", "-preset", "veryfast", "-crf", "18"]);
    let status = command.arg(&path).status().expect("ffmpeg runs");
    assert!(status.success(), "ffmpeg could not make {name}");
    path
}

fn run(path: &Path, params: &AnalyzeParams) -> Result<Analysis, MediaError> {
    analyze(
        path,
        params,
        mtcnn(),
        &mut |_| {},
        &CancellationToken::new(),
    )
}

/// The analyze phase's face model (weights from `models/fetch.sh`).
fn mtcnn() -> &'static Mtcnn {
    Mtcnn::shared_default().expect("MTCNN weights")
}

fn cuts(analysis: &Analysis) -> Vec<u64> {
    analysis
        .shots
        .iter()
        .skip(1)
        .map(|s| s.start_frame)
        .collect()
}

/// Shots tile the analysed frames: first at 0, contiguous, last at `frames`.
fn assert_tiled(analysis: &Analysis) {
    let shots = &analysis.shots;
    assert!(!shots.is_empty());
    assert_eq!(shots[0].start_frame, 0);
    assert_eq!(shots.last().unwrap().end_frame, analysis.frames);
    for (i, shot) in shots.iter().enumerate() {
        assert_eq!(shot.index as usize, i);
        assert!(shot.start_frame < shot.end_frame);
        assert!((shot.start_s - shot.start_frame as f64 / analysis.fps).abs() < 1e-9);
        assert!((shot.end_s - shot.end_frame as f64 / analysis.fps).abs() < 1e-9);
        assert!((0.0..=1.0).contains(&shot.score), "{shot:?}");
        if i > 0 {
            assert_eq!(shots[i - 1].end_frame, shot.start_frame);
        }
    }
}

fn assert_cuts_near(found: &[u64], expected: &[u64]) {
    assert_eq!(
        found.len(),
        expected.len(),
        "cuts {found:?}, expected {expected:?}"
    );
    for (f, e) in found.iter().zip(expected) {
        assert!(f.abs_diff(*e) <= 1, "cuts {found:?}, expected {expected:?}");
    }
}

#[test]
fn finds_hard_cuts_at_known_frames() {
    let dir = tempfile::tempdir().unwrap();
    let video = make_video(
        dir.path(),
        "four.mp4",
        &[
            ("testsrc2", 40),
            ("smptebars", 55),
            ("mandelbrot", 55),
            ("color=c=red", 50),
        ],
    );
    let mut progress = Vec::new();
    let analysis = analyze(
        &video,
        &AnalyzeParams::default(),
        mtcnn(),
        &mut |p| progress.push(p),
        &CancellationToken::new(),
    )
    .unwrap();
    assert_eq!(analysis.frames, 200);
    assert_eq!(analysis.fps, 25.0);
    assert_eq!((analysis.width, analysis.height), (320, 180));
    assert!((analysis.duration_s - 8.0).abs() < 1e-9);
    assert_tiled(&analysis);
    assert_cuts_near(&cuts(&analysis), &[40, 95, 150]);
    // The default detector (see `analyze`'s module docs for why).
    assert_eq!(analysis.detector["name"], "adaptive");
    assert_eq!(analysis.detector["params"]["adaptive_threshold"], 3.0);
    assert_eq!(analysis.detector["params"]["flash_frames"], 3);
    assert_eq!(analysis.detector["decode"]["width"], 320);
    assert!(progress.windows(2).all(|w| w[0] <= w[1]), "{progress:?}");
    assert_eq!(progress.last(), Some(&100.0));
}

#[test]
fn a_video_without_cuts_is_one_shot() {
    let dir = tempfile::tempdir().unwrap();
    let video = make_video(dir.path(), "one.mp4", &[("testsrc2", 90)]);
    let analysis = run(&video, &AnalyzeParams::default()).unwrap();
    assert_eq!(analysis.frames, 90);
    assert_eq!(analysis.shots.len(), 1, "{:?}", analysis.shots);
    assert_tiled(&analysis);
}

#[test]
fn min_shot_len_suppresses_close_cuts() {
    let dir = tempfile::tempdir().unwrap();
    let video = make_video(
        dir.path(),
        "close.mp4",
        &[("testsrc2", 30), ("smptebars", 8), ("color=c=blue", 30)],
    );
    let default = run(&video, &AnalyzeParams::default()).unwrap();
    assert_cuts_near(&cuts(&default), &[30]);
    let short = AnalyzeParams {
        min_shot_len: 5,
        ..AnalyzeParams::default()
    };
    let analysis = run(&video, &short).unwrap();
    assert_cuts_near(&cuts(&analysis), &[30, 38]);
    assert_tiled(&analysis);
}

#[test]
fn quality_tells_black_white_static_and_detailed_apart() {
    let dir = tempfile::tempdir().unwrap();
    let video = make_video(
        dir.path(),
        "quality.mp4",
        &[
            ("color=c=black", 25),
            ("color=c=white", 25),
            ("color=c=red", 25),
            ("testsrc2", 25),
        ],
    );
    let analysis = run(&video, &AnalyzeParams::default()).unwrap();
    assert_cuts_near(&cuts(&analysis), &[25, 50, 75]);
    let [black, white, red, detailed] = &analysis.shots[..] else {
        panic!("four shots expected: {:?}", analysis.shots);
    };
    assert!(black.brightness < 20.0, "{black:?}");
    assert!(white.brightness > 235.0, "{white:?}");
    assert!(red.motion < 0.5, "{red:?}");
    assert!(detailed.motion > red.motion + 1.0, "{detailed:?}");
    assert!(
        red.sharpness < detailed.sharpness / 4.0,
        "{red:?} {detailed:?}"
    );
    for dull in [black, white, red] {
        assert!(dull.score < detailed.score, "{dull:?} vs {detailed:?}");
    }
    assert!(
        black.score < 0.05 && white.score < 0.05,
        "{black:?} {white:?}"
    );
}

#[test]
fn max_seconds_limits_the_frames_analysed() {
    let dir = tempfile::tempdir().unwrap();
    let video = make_video(dir.path(), "long.mp4", &[("testsrc2", 75)]);
    let params = AnalyzeParams {
        max_seconds: Some(1.0),
        ..AnalyzeParams::default()
    };
    let analysis = run(&video, &params).unwrap();
    assert_eq!(analysis.frames, 25);
    assert_tiled(&analysis);
}

#[test]
fn cancellation_stops_decoding_quickly() {
    let dir = tempfile::tempdir().unwrap();
    let video = make_video(dir.path(), "cancel.mp4", &[("testsrc2", 300)]);
    let cancel = CancellationToken::new();
    let mut cancelled_at = None;
    let mut calls = 0;
    let result = analyze(
        &video,
        &AnalyzeParams::default(),
        mtcnn(),
        &mut |_| {
            calls += 1;
            cancel.cancel();
            cancelled_at = Some(Instant::now());
        },
        &cancel,
    );
    assert!(matches!(result, Err(MediaError::Cancelled)), "{result:?}");
    assert_eq!(calls, 1, "stopped after the first batch");
    assert!(cancelled_at.unwrap().elapsed() < Duration::from_secs(2));

    let already = CancellationToken::new();
    already.cancel();
    let result = analyze(
        &video,
        &AnalyzeParams::default(),
        mtcnn(),
        &mut |_| {},
        &already,
    );
    assert!(matches!(result, Err(MediaError::Cancelled)), "{result:?}");
}

#[test]
fn params_are_validated() {
    let parse =
        |v: serde_json::Value| AnalyzeParams::from_params(v.as_object().expect("an object"));
    let defaults = parse(json!({})).unwrap();
    assert_eq!(defaults.threshold, 27.0);
    assert_eq!(defaults.min_shot_len, 15);
    assert_eq!(defaults.max_seconds, None);
    assert_eq!(defaults.analysis_width, 320);
    let custom = parse(json!({"threshold": 30.5, "max_seconds": 2.5})).unwrap();
    assert_eq!((custom.threshold, custom.max_seconds), (30.5, Some(2.5)));
    assert_eq!(custom.min_shot_len, 15);

    for bad in [
        json!({"treshold": 20}),
        json!({"threshold": -1.0}),
        json!({"threshold": "high"}),
        json!({"min_shot_len": 0}),
        json!({"min_shot_len": -3}),
        json!({"max_seconds": 0}),
        json!({"analysis_width": 321}),
        json!({"analysis_width": 8}),
    ] {
        let err = parse(bad.clone()).expect_err(&bad.to_string());
        assert!(
            matches!(err, MediaError::InvalidParams(_)),
            "{bad}: {err:?}"
        );
        assert!(!err.retryable());
    }
}

#[test]
fn inputs_that_are_not_video_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.mp4");
    std::fs::write(&text, b"these are not the frames you are looking for").unwrap();
    let err = run(&text, &AnalyzeParams::default()).unwrap_err();
    assert!(matches!(err, MediaError::Unusable(_)), "{err:?}");

    let missing = dir.path().join("missing.mp4");
    let err = run(&missing, &AnalyzeParams::default()).unwrap_err();
    assert!(matches!(err, MediaError::Io { .. }), "{err:?}");
}

#[test]
fn decoder_streams_bounded_planar_batches() {
    use sprocket_media::decode::{DecodeOptions, FrameDecoder};
    let dir = tempfile::tempdir().unwrap();
    let video = make_video(dir.path(), "red.mp4", &[("color=c=red", 40)]);
    let options = DecodeOptions {
        width: 160,
        batch_frames: 16,
        max_seconds: None,
        stream: None,
    };
    let mut decoder = FrameDecoder::open(&video, &options).unwrap();
    assert_eq!(decoder.size(), (160, 90));
    assert_eq!(decoder.fps(), 25.0);
    let mut batches = Vec::new();
    let mut progress = Vec::new();
    let cancel = CancellationToken::new();
    while let Some(batch) = decoder
        .next_batch(&mut |p| progress.push(p), &cancel)
        .unwrap()
    {
        assert_eq!(batch.data.len(), batch.len * 3 * 160 * 90);
        // Planar: the red plane of the first frame, then its green plane.
        let plane = 160 * 90;
        assert!(batch.data[..plane].iter().all(|&r| r > 240), "red plane");
        assert!(
            batch.data[plane..2 * plane].iter().all(|&g| g < 15),
            "green plane"
        );
        batches.push((batch.first_frame, batch.len));
    }
    assert_eq!(batches, [(0, 16), (16, 16), (32, 8)]);
    assert_eq!(decoder.frames(), 40);
    assert_eq!(progress.len(), 3);
    assert!((progress[2] - 100.0).abs() < 1e-9, "{progress:?}");
    assert!(decoder.next_batch(&mut |_| {}, &cancel).unwrap().is_none());
}

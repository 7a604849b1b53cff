//! Bad media: a cut-off MP4, a file with no video, a source over the configured
//! limits. Each fails its own job at ingest, once, with an error that names the
//! cause, while a good job submitted alongside succeeds.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sprocket_platform::config::Config;
use sprocket_tests::{ffmpeg, video, TestApp};

/// Submits every `(job id, file, words)` case and a good file alongside, then
/// checks that each case failed for good at ingest with `unusable_media` and a
/// message holding all its words, and that the good job succeeded.
async fn each_fails_and_the_good_one_succeeds(
    app: &TestApp,
    cases: &[(&str, PathBuf, &[&str])],
    good: &Path,
) {
    for (id, file, _) in cases {
        app.submit(file, "minimal", id).await;
    }
    app.submit(good, "minimal", "good-alongside").await;
    for (id, _, words) in cases {
        let job = app.wait_terminal(id, Duration::from_secs(90)).await;
        assert_eq!(job["status"], "failed", "{id}: {job:#}");
        assert_eq!(job["phase"], "ingest", "{id}: {job:#}");
        assert_eq!(job["error"]["code"], "unusable_media", "{id}: {job:#}");
        let message = job["error"]["message"].as_str().unwrap_or_default();
        for w in *words {
            assert!(message.contains(w), "{id}: {w:?} not in {message:?}");
        }
        assert_eq!(
            job["attempts"], 1,
            "{id}: bad media is not retried: {job:#}"
        );
    }
    let job = app
        .wait_terminal("good-alongside", Duration::from_secs(120))
        .await;
    assert_eq!(job["status"], "succeeded", "{job:#}");
}

/// Offset of the top-level box `kind` in an MP4.
fn box_offset(mp4: &[u8], kind: &[u8; 4]) -> usize {
    let mut at = 0;
    while at + 8 <= mp4.len() {
        let size = u32::from_be_bytes(mp4[at..at + 4].try_into().unwrap()) as usize;
        if &mp4[at + 4..at + 8] == kind {
            return at;
        }
        assert!(size >= 8, "not a plain MP4 at {at}");
        at += size;
    }
    panic!("no {} box", String::from_utf8_lossy(kind));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn truncated_mp4s_fail_with_the_cut_named_and_a_good_job_alongside_succeeds() {
    let app = TestApp::start().await;
    let dir = tempfile::tempdir().unwrap();
    let whole = dir.path().join("whole.mp4");
    video::with_cuts(&whole, &[20, 20], 10, true);
    // ffmpeg writes the index (moov) last; with +faststart it comes first.
    let fast = dir.path().join("fast.mp4");
    ffmpeg(&[
        "-i",
        whole.to_str().unwrap(),
        "-c",
        "copy",
        "-movflags",
        "+faststart",
        fast.to_str().unwrap(),
    ]);
    let bytes = std::fs::read(&whole).unwrap();
    let fast_bytes = std::fs::read(&fast).unwrap();
    let moov = box_offset(&bytes, b"moov");
    assert!(moov > bytes.len() / 2, "moov is not at the end");
    let cut = |name: &str, from: &[u8], len: usize| {
        let p = dir.path().join(name);
        std::fs::write(&p, &from[..len]).unwrap();
        p
    };
    let cases: [(&str, PathBuf, &[&str]); 4] = [
        (
            "cut-in-half",
            cut("half.mp4", &bytes, bytes.len() / 2),
            &["truncated", "moov atom", "missing"],
        ),
        (
            "moov-cut-off",
            cut("no-moov.mp4", &bytes, moov),
            &["truncated", "moov atom", "missing"],
        ),
        (
            "moov-cut-short",
            cut("short-moov.mp4", &bytes, bytes.len() - 200),
            &["truncated", "'moov' box needs"],
        ),
        (
            "faststart-cut-in-half",
            cut("fast-half.mp4", &fast_bytes, fast_bytes.len() / 2),
            &["truncated", "'mdat' box needs"],
        ),
    ];
    each_fails_and_the_good_one_succeeds(&app, &cases, &whole).await;
    app.dev.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn audio_only_files_fail_because_there_is_no_video_stream() {
    let app = TestApp::start().await;
    let dir = tempfile::tempdir().unwrap();
    let tone = |name: &str| {
        let p = dir.path().join(name);
        ffmpeg(&[
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:duration=2",
            "-c:a",
            "aac",
            p.to_str().unwrap(),
        ]);
        p
    };
    let good = dir.path().join("good.mp4");
    video::with_cuts(&good, &[20], 10, true);
    let no_video: &[&str] = &["audio only", "no video stream"];
    let cases = [
        ("tone-m4a", tone("tone.m4a"), no_video),
        ("tone-as-mp4", tone("tone.mp4"), no_video),
    ];
    each_fails_and_the_good_one_succeeds(&app, &cases, &good).await;
    app.dev.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sources_over_the_configured_size_and_duration_limits_fail_with_the_limit_named() {
    let mut cfg = Config::default();
    cfg.ingest.max_width = 320;
    cfg.ingest.max_height = 180;
    cfg.ingest.max_duration_s = 2.0;
    let app = TestApp::start_with(sprocket_core::Phase::ALL.to_vec(), cfg).await;
    let dir = tempfile::tempdir().unwrap();
    let make = |name: &str, frames: u32, size: (u32, u32)| {
        let p = dir.path().join(name);
        video::with_cuts_sized(&p, &[frames], 10, false, size).unwrap();
        p
    };
    let cases: [(&str, PathBuf, &[&str]); 3] = [
        (
            "too-wide",
            make("wide.mp4", 10, (640, 180)),
            &["640x180", "over the limit of 320x180"],
        ),
        (
            "too-tall",
            make("tall.mp4", 10, (320, 360)),
            &["320x360", "over the limit of 320x180"],
        ),
        (
            "too-long",
            make("long.mp4", 40, (320, 180)),
            &["4.0 s long", "over the limit of 2.0 s"],
        ),
    ];
    // At the limits exactly: accepted.
    let good = make("good.mp4", 20, (320, 180));
    each_fails_and_the_good_one_succeeds(&app, &cases, &good).await;
    app.dev.stop().await;
}

/// A file whose first video stream is a small, non-default one and whose
/// default stream comes second: the probe judges the default stream, and
/// analyze and render work on that same stream (the highlight has its size
/// and the shots its cuts), not on whichever stream is first.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn probe_analyze_and_render_use_the_same_video_stream() {
    let app = TestApp::start().await;
    let dir = tempfile::tempdir().unwrap();
    let main = dir.path().join("main.mp4");
    // 8 s at 10 fps with cuts at 3 s and 5.5 s.
    video::with_cuts_sized(&main, &[30, 25, 25], 10, true, (320, 180)).unwrap();
    let both = dir.path().join("two-streams.mkv");
    let both_s = both.to_str().unwrap();
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "color=c=gray:s=160x90:r=10:d=8",
        "-i",
        main.to_str().unwrap(),
        "-map",
        "0:v",
        "-map",
        "1:v",
        "-map",
        "1:a",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-c:a",
        "aac",
        "-disposition:v:0",
        "0",
        "-disposition:v:1",
        "default",
        both_s,
    ]);
    app.submit(&both, "highlight", "two-streams").await;
    let job = app
        .wait_terminal("two-streams", Duration::from_secs(180))
        .await;
    assert_eq!(job["status"], "succeeded", "{job:#}");
    assert_eq!(
        (&job["media"]["width"], &job["media"]["video_stream"]),
        (&serde_json::json!(320), &serde_json::json!(1)),
        "{job:#}"
    );
    let reel = dir.path().join("highlight.mp4");
    std::fs::write(
        &reel,
        app.bytes("/v1/jobs/two-streams/artifacts/highlight.mp4")
            .await,
    )
    .unwrap();
    let probed = sprocket_tests::ffprobe(&reel);
    let video = probed["streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["codec_type"] == "video")
        .expect("a video stream");
    assert_eq!(
        (&video["width"], &video["height"]),
        (&serde_json::json!(320), &serde_json::json!(180))
    );
    let analysis: serde_json::Value = serde_json::from_slice(
        &app.bytes("/v1/jobs/two-streams/artifacts/analysis.json")
            .await,
    )
    .unwrap();
    let shots = analysis["shots"].as_array().expect("shots");
    assert_eq!(
        shots.len(),
        3,
        "the default stream's three shots, not the gray stream's one: {analysis:#}"
    );
}

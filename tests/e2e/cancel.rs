//! Cancellation that stops the work: a running render's ffmpeg is killed and
//! its partial outputs removed; a queued job never starts; finished jobs refuse.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sprocket_core::Phase;
use sprocket_platform::config::Config;
use sprocket_server::services;
use sprocket_tests::{event_types, video, TestApp};

/// Processes whose command line mentions this job's scratch directories.
fn processes_of(job: &str) -> Vec<String> {
    let needle = format!("-{job}-");
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| std::fs::read(e.ok()?.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains("ffmpeg") && c.contains(&needle))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cancelling_a_running_render_kills_ffmpeg_and_removes_partial_outputs() {
    let app = TestApp::start().await;
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("long.mp4");
    video::with_cuts_sized(&src, &[300, 300, 300, 300], 25, true, (640, 360)).unwrap();
    let id = app.submit(&src, "highlight", "cancel-render").await;
    app.wait_for(&id, Duration::from_secs(120), |j| {
        j["phase"] == "render" && j["status"] == "running"
    })
    .await;
    // Wait until ffmpeg is really rendering this job.
    let start = Instant::now();
    while processes_of(&id).is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "render's ffmpeg never started"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let asked = Instant::now();
    let r = app
        .http
        .post(format!("{}/v1/jobs/{id}/cancel", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    while !processes_of(&id).is_empty() {
        assert!(
            asked.elapsed() < Duration::from_secs(5),
            "ffmpeg still runs: {:?}",
            processes_of(&id)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let stopped_in = asked.elapsed();
    let job = app.wait_terminal(&id, Duration::from_secs(30)).await;
    assert_eq!(job["status"], "cancelled", "{job:#}");
    eprintln!("ffmpeg stopped {stopped_in:?} after the cancel request");
    let (_, events) = app.get(&format!("/v1/jobs/{id}/events")).await;
    let t = event_types(&events);
    assert!(
        t.contains(&"JobCancelRequested".to_owned())
            && t.last().map(String::as_str) == Some("JobCancelled"),
        "{t:?}"
    );
    assert!(
        !t.contains(&"MediaRendered".to_owned()) && !t.contains(&"JobSucceeded".to_owned()),
        "{t:?}"
    );
    let outputs = app.data.path().join("store/jobs").join(&id);
    assert!(
        !outputs.join("highlight.mp4").exists(),
        "a partial highlight was left"
    );
    assert!(!outputs.join("poster.jpg").exists());
    // A cancelled job is finished: cancelling again is a conflict.
    let again = app
        .http
        .post(format!("{}/v1/jobs/{id}/cancel", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 409);
    app.dev.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_queued_job_cancelled_never_starts() {
    let app = TestApp::start_with(vec![], Config::default()).await;
    let (s, _) = app
        .post_job(json!({"job_id": "cancel-queued", "source": {"upload": "anything"}, "recipe": "minimal"}))
        .await;
    assert_eq!(s, 202);
    app.wait_for("cancel-queued", Duration::from_secs(5), |j| {
        j["status"] == "queued"
    })
    .await;
    let r = app
        .http
        .post(format!("{}/v1/jobs/cancel-queued/cancel", app.url))
        .json(&json!({"reason": "changed my mind"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    // Now an ingest worker comes up and reaches the submission.
    let worker = services::start_worker(app.dev.config.clone(), Phase::Ingest)
        .await
        .unwrap();
    let job = app
        .wait_terminal("cancel-queued", Duration::from_secs(60))
        .await;
    assert_eq!(job["status"], "cancelled", "{job:#}");
    let (_, events) = app.get("/v1/jobs/cancel-queued/events").await;
    let t = event_types(&events);
    assert!(
        !t.contains(&"PhaseStarted".to_owned()),
        "the job started: {t:?}"
    );
    let requested = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "JobCancelRequested")
        .unwrap();
    assert_eq!(requested["data"]["reason"], "changed my mind");
    worker.stop().await;
    app.dev.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cancel_answers_404_for_unknown_and_409_for_finished_jobs() {
    let app = TestApp::start().await;
    let r = app
        .http
        .post(format!("{}/v1/jobs/nope/cancel", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let src = app.inbox().join("done.mp4");
    video::with_cuts(&src, &[10], 10, false);
    app.post_job(json!({"job_id": "cancel-done", "source": {"path": src.to_str().unwrap()}, "recipe": "minimal"}))
        .await;
    let job = app
        .wait_terminal("cancel-done", Duration::from_secs(60))
        .await;
    assert_eq!(job["status"], "succeeded");
    let r = app
        .http
        .post(format!("{}/v1/jobs/cancel-done/cancel", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "job_finished");
    app.dev.stop().await;
}

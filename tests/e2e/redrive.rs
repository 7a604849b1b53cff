//! Redrive: a failed or dead-lettered job restarts from the phase that failed,
//! keeping its history.

use std::time::Duration;

use clap::Parser;
use serde_json::json;
use sprocket::cli::{self, Cli};
use sprocket_platform::config::Config;
use sprocket_tests::{event_types, video, TestApp};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failed_job_is_retried_from_the_phase_that_failed() {
    let app = TestApp::start().await;
    let src = app.inbox().join("arrives-late.mp4");
    app.post_job(json!({"job_id": "redrive-me", "source": {"path": src.to_str().unwrap()}, "recipe": "minimal"}))
        .await;
    let job = app
        .wait_terminal("redrive-me", Duration::from_secs(60))
        .await;
    assert_eq!(
        (job["status"].as_str(), job["phase"].as_str()),
        (Some("failed"), Some("ingest")),
        "{job:#}"
    );

    // The cause is fixed; the job is retried and completes.
    video::with_cuts(&src, &[15], 10, false);
    let r = app
        .http
        .post(format!("{}/v1/jobs/redrive-me/retry", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let job = app
        .wait_for("redrive-me", Duration::from_secs(90), |j| {
            j["status"] == "succeeded"
                || (j["status"] == "failed"
                    && j["attempts"].as_u64() > Some(0)
                    && j["error"]["code"] != "source_unreadable")
        })
        .await;
    assert_eq!(job["status"], "succeeded", "{job:#}");
    assert!(job["error"].is_null());
    let (_, events) = app.get("/v1/jobs/redrive-me/events").await;
    let t = event_types(&events);
    let at = |name: &str| {
        t.iter()
            .position(|x| x == name)
            .unwrap_or_else(|| panic!("{name} missing: {t:?}"))
    };
    assert!(
        at("JobFailed") < at("JobRedriven") && at("JobRedriven") < at("JobSucceeded"),
        "{t:?}"
    );

    // Succeeded, unknown: refused.
    let again = app
        .http
        .post(format!("{}/v1/jobs/redrive-me/retry", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 409);
    let unknown = app
        .http
        .post(format!("{}/v1/jobs/nope/retry", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    app.dev.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_exhausted_job_is_dead_lettered_then_redriven_from_the_dlq() {
    let mut cfg = Config::default();
    cfg.worker.retry_delay_ms = 100;
    let app = TestApp::start_with(sprocket_core::Phase::ALL.to_vec(), cfg).await;
    // The archive store becomes unwritable: a file where its directory was.
    let archive = std::fs::canonicalize(app.data.path())
        .unwrap()
        .join("archive");
    std::fs::remove_dir_all(&archive).unwrap();
    std::fs::write(&archive, b"not a directory").unwrap();

    let src = app.inbox().join("dl.mp4");
    video::with_cuts(&src, &[15], 10, false);
    app.post_job(json!({"job_id": "dead-lettered", "source": {"path": src.to_str().unwrap()}, "recipe": "minimal"}))
        .await;
    let job = app
        .wait_terminal("dead-lettered", Duration::from_secs(90))
        .await;
    assert_eq!(
        (job["status"].as_str(), job["phase"].as_str()),
        (Some("failed"), Some("archive")),
        "{job:#}"
    );
    assert_eq!(job["attempts"], 3, "{job:#}");
    // The job shows as failed as soon as JobFailed is projected; its
    // JobDeadLettered may come in the projector's next batch.
    app.settled(Duration::from_secs(60)).await;
    let (_, events) = app.get("/v1/jobs/dead-lettered/events").await;
    assert!(event_types(&events).contains(&"JobDeadLettered".to_owned()));

    let letters = cli::dlq::read_all(&app.dev.config).unwrap();
    let letter = letters
        .iter()
        .find(|d| d.job_id.as_deref() == Some("dead-lettered"))
        .expect("a dead letter");
    assert!(
        letter.reason.contains("attempts exhausted"),
        "{}",
        letter.reason
    );
    assert!(
        // The last attempt was read from the retry topic.
        letter.from.starts_with("sprocket.archive.retry/"),
        "{}",
        letter.from
    );

    // Writable again; `sprocket dlq redrive --all` brings the job home.
    std::fs::remove_file(&archive).unwrap();
    std::fs::create_dir_all(&archive).unwrap();
    let kafka = app.kafka();
    let redrive = Cli::parse_from([
        "sprocket",
        "dlq",
        "redrive",
        "--all",
        "--kafka",
        &kafka,
        "--api-key",
        &app.dev.api_key,
        "--api",
        &app.url,
    ]);
    cli::run(redrive).await.unwrap();
    let job = app
        .wait_for("dead-lettered", Duration::from_secs(90), |j| {
            j["status"] == "succeeded"
        })
        .await;
    assert!(
        job["artifacts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["name"] == "manifest.json"),
        "{job:#}"
    );
    app.dev.stop().await;
}

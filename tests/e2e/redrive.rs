//! Redrive: a failed or dead-lettered job restarts from the phase that failed,
//! keeping its history.

use std::time::Duration;

use clap::Parser;
use serde_json::json;
use sprocket::cli::{self, Cli};
use sprocket_core::Phase;
use sprocket_platform::config::{Config, Quota};
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

/// A retry makes a job active again, so it counts against its tenant's
/// quota of jobs queued or running as a new submission does: 429 with
/// `Retry-After`, for the tenant's own key and for an admin's alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_retry_counts_against_the_tenants_quota() {
    let mut cfg = Config::default();
    cfg.tenants.quotas.insert(
        "small".into(),
        Quota {
            max_active_jobs: 1,
            max_upload_bytes_per_day: 0,
        },
    );
    // Ingest only: a job that passes it waits for analyze, active.
    let app = TestApp::start_with(vec![Phase::Ingest], cfg).await;
    let (_, _, small) = app.key("small", &["jobs:read", "jobs:write"]).await;
    let submit = |id: &str, path: &std::path::Path| {
        let (url, body) = (
            format!("{}/v1/jobs", app.url),
            json!({"job_id": id, "source": {"path": path.to_str().unwrap()}, "recipe": "minimal"}),
        );
        let http = small.clone();
        async move { http.post(url).json(&body).send().await.unwrap().status() }
    };
    assert_eq!(
        submit("q-fails", &app.inbox().join("missing.mp4")).await,
        202
    );
    let job = app.wait_terminal("q-fails", Duration::from_secs(60)).await;
    assert_eq!(job["status"], "failed", "{job:#}");
    let clip = app.inbox().join("clip.mp4");
    video::with_cuts(&clip, &[10], 10, false);
    assert_eq!(submit("q-waits", &clip).await, 202);
    app.wait_for("q-waits", Duration::from_secs(60), |j| {
        j["phases"]["ingest"]["finished_at"].is_string()
    })
    .await;

    for (who, http) in [("the tenant", &small), ("an admin", &app.http)] {
        let r = http
            .post(format!("{}/v1/jobs/q-fails/retry", app.url))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 429, "{who}");
        assert!(r.headers().contains_key("retry-after"), "{who}");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "over_quota", "{who}: {body}");
    }
    let (_, job) = app.get("/v1/jobs/q-fails").await;
    assert_eq!(job["status"], "failed", "a refused retry changes nothing");
    app.dev.stop().await;
}

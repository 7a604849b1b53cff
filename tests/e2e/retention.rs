//! Retention on `sprocket dev` with second-scale rules and real media: the
//! janitor expires a finished job's working data, moves its archive to the
//! cold store (still downloadable there, the manifest's sha256 verifying),
//! then expires it (`410 Gone` naming when and the rule), recording each as
//! an event; a job still running keeps everything, and no rule is recorded
//! twice. Uploads: one no job names expires after `retention.uploads`, one a
//! finished job names goes with its working data, one a running job names
//! stays; submitting an expired one answers `410 Gone` naming the rule.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sprocket_core::retention::Keep;
use sprocket_core::Phase;
use sprocket_platform::config::Config;
use sprocket_tests::{event_types, sha256_hex, video, TestApp};

/// Files under `dir`, recursively (none when it does not exist).
fn files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files(&p));
        } else {
            out.push(p.display().to_string());
        }
    }
    out
}

/// Waits until `job`'s events include `kind`, and returns them.
async fn wait_event(app: &TestApp, job: &str, kind: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let (_, events) = app.get(&format!("/v1/jobs/{job}/events")).await;
        if event_types(&events).iter().any(|t| t == kind) {
            return events;
        }
        assert!(
            Instant::now() < deadline,
            "{job}: no {kind} within 90 s: {:?}",
            event_types(&events)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until `done` holds.
async fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not within 60 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_janitor_expires_tiers_and_records_and_spares_running_jobs() {
    let cold = tempfile::tempdir().unwrap();
    let mut cfg = Config::default();
    cfg.retention.work = Keep::parse("1s").unwrap();
    cfg.retention.cold_after = Keep::parse("3s").unwrap();
    cfg.retention.archive = Keep::parse("8s").unwrap();
    cfg.retention.interval = Keep::parse("1s").unwrap();
    cfg.retention.uploads = Keep::parse("2s").unwrap();
    cfg.archive.cold_url = Some(format!("file://{}", cold.path().display()));
    // No render worker: a job whose recipe renders stays running.
    let app = TestApp::start_with(vec![Phase::Ingest, Phase::Analyze, Phase::Archive], cfg).await;
    let src = app.inbox().join("r.mp4");
    video::with_cuts(&src, &[20, 20], 10, false);
    let done = json!({"name": "no-render", "steps": [
        {"phase": "ingest"}, {"phase": "analyze", "params": {"max_seconds": 1.0}}, {"phase": "archive"}
    ]});
    // Named by the job that finishes, by the one that runs, and by none.
    let mut uploads = vec![];
    for _ in 0..3 {
        uploads.push(
            app.upload(&src).await["upload"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let (s, _) = app
        .post_job(json!({"job_id": "ret-done", "source": {"upload": uploads[0]}, "recipe": done}))
        .await;
    assert_eq!(s, 202);
    let (s, _) = app
        .post_job(
            json!({"job_id": "ret-running", "source": {"upload": uploads[1]}, "recipe": "minimal"}),
        )
        .await;
    assert_eq!(s, 202);
    // A job that fails in ingest (the file is not a video).
    let broken = app.inbox().join("broken.mp4");
    std::fs::write(&broken, b"not a video at all").unwrap();
    let (s, _) = app
        .post_job(json!({"job_id": "ret-failed", "source": {"path": broken.to_str().unwrap()}, "recipe": "minimal"}))
        .await;
    assert_eq!(s, 202);
    let upload_file = |id: &str| app.data.path().join("store/uploads").join(id);
    let job = app.wait_terminal("ret-done", Duration::from_secs(90)).await;
    assert_eq!(job["status"], "succeeded", "{job:#}");
    let manifest: Value =
        serde_json::from_slice(&app.bytes("/v1/jobs/ret-done/artifacts/manifest.json").await)
            .unwrap();
    let work = app.data.path().join("store/jobs");
    let archive = app.data.path().join("archive/jobs/ret-done");

    // Working data: gone from the working store with the upload only it
    // named, still served from the archive.
    wait_event(&app, "ret-done", "JobDataExpired").await;
    assert_eq!(files(&work.join("ret-done")), Vec::<String>::new());
    wait_until("the finished job's upload is removed", || {
        !upload_file(&uploads[0]).exists()
    })
    .await;
    let analysis = app.bytes("/v1/jobs/ret-done/artifacts/analysis.json").await;
    assert!(!analysis.is_empty());

    // Tiered: the archive folder emptied into the cold store, downloads
    // still work, and what is served has the manifest's digest.
    wait_event(&app, "ret-done", "JobArchiveTiered").await;
    assert_eq!(files(&archive), Vec::<String>::new());
    assert!(!files(cold.path()).is_empty());
    for a in manifest["artifacts"].as_array().unwrap() {
        let name = a["name"].as_str().unwrap();
        let bytes = app
            .bytes(&format!("/v1/jobs/ret-done/artifacts/{name}"))
            .await;
        assert_eq!(sha256_hex(&bytes), a["sha256"].as_str().unwrap(), "{name}");
    }

    // Expired: 410 with when and by which rule; the cold copies are gone.
    let events = wait_event(&app, "ret-done", "JobArchiveExpired").await;
    let r = app
        .http
        .get(format!(
            "{}/v1/jobs/ret-done/artifacts/analysis.json",
            app.url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 410);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "expired", "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("archive"), "{message}");
    assert_eq!(files(cold.path()), Vec::<String>::new());
    // Each rule recorded once, however many sweeps saw the job.
    let types = event_types(&events);
    for kind in ["JobDataExpired", "JobArchiveTiered", "JobArchiveExpired"] {
        assert_eq!(types.iter().filter(|t| *t == kind).count(), 1, "{types:?}");
    }

    // The running job: many sweeps later, nothing of it touched or recorded.
    let (_, running) = app.get("/v1/jobs/ret-running").await;
    assert_eq!(running["status"], "running", "{running:#}");
    assert!(!files(&work.join("ret-running")).is_empty());
    let (_, events) = app.get("/v1/jobs/ret-running/events").await;
    let types = event_types(&events);
    assert!(
        !types
            .iter()
            .any(|t| t.starts_with("JobData") || t.starts_with("JobArchive")),
        "{types:?}"
    );

    // A failed job whose working data is gone cannot be retried.
    let failed = app
        .wait_terminal("ret-failed", Duration::from_secs(60))
        .await;
    assert_eq!(failed["status"], "failed", "{failed:#}");
    wait_event(&app, "ret-failed", "JobDataExpired").await;
    let r = app
        .http
        .post(format!("{}/v1/jobs/ret-failed/retry", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "data_expired", "{body}");

    // Uploads: the one no job named went after `retention.uploads`, the
    // running job's stays; an expired one cannot be submitted again.
    wait_until("the unused upload is removed", || {
        !upload_file(&uploads[2]).exists()
    })
    .await;
    assert!(
        upload_file(&uploads[1]).exists(),
        "the running job's upload"
    );
    for (upload, rule) in [
        (&uploads[0], "retention.work"),
        (&uploads[2], "retention.uploads"),
    ] {
        let (s, body) = app
            .post_job(json!({"source": {"upload": upload}, "recipe": "minimal"}))
            .await;
        assert_eq!(s, 410, "{body}");
        assert_eq!(body["error"]["code"], "upload_expired", "{body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(rule), "{message}");
    }

    // The janitor's metrics moved.
    let text = app
        .http
        .get(format!("{}/metrics", app.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for (name, label) in [
        ("sprocket_janitor_bytes_freed_total", "rule=\"work\""),
        ("sprocket_janitor_bytes_freed_total", "rule=\"archive\""),
        ("sprocket_janitor_bytes_freed_total", "rule=\"uploads\""),
        ("sprocket_janitor_objects_moved_total", ""),
    ] {
        let moved = text
            .lines()
            .filter(|l| l.starts_with(name) && l.contains(label))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .any(|v| v > 0.0);
        assert!(moved, "{name}{{{label}}} did not move:\n{text}");
    }
    app.dev.stop().await;
}

//! The metrics a job moves, read from `/metrics` as Prometheus scrapes it.

use std::time::Duration;

use serde_json::json;
use sprocket_platform::metrics;
use sprocket_tests::{kcat_produce, video, TestApp};

/// The value of the first sample of `name` whose labels contain every `label`.
fn sample(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with(name) && labels.iter().all(|x| l.contains(x)))
        .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
        .next()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_job_moves_every_metric() {
    let app = TestApp::start().await;
    let src = app.inbox().join("m.mp4");
    video::with_cuts(&src, &[20, 20], 10, false);
    let (s, _) = app
        .post_job(json!({"job_id": "metrics-ok", "source": {"path": src.to_str().unwrap()}, "recipe": "minimal"}))
        .await;
    assert_eq!(s, 202);
    let bad = app.inbox().join("bad.mp4");
    std::fs::write(&bad, "not a video").unwrap();
    app.post_job(json!({"job_id": "metrics-bad", "source": {"path": bad.to_str().unwrap()}}))
        .await;
    kcat_produce(&app.kafka(), "sprocket.ingest", "metrics-dlq", b"garbage");
    app.wait_terminal("metrics-ok", Duration::from_secs(90))
        .await;
    app.wait_terminal("metrics-bad", Duration::from_secs(90))
        .await;
    // Counters move as the workers commit, the lag gauge on its tick: wait
    // until every one is there, and report the last reading otherwise.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let text = loop {
        let resp = app
            .http
            .get(format!("{}/metrics", app.url))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert!(resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain"));
        let text = resp.text().await.unwrap();
        if missing(&text).is_none() || std::time::Instant::now() > deadline {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    if let Some(m) = missing(&text) {
        panic!("{m} did not move:\n{text}");
    }
    app.dev.stop().await;
}

/// The first expected metric that has not moved (or is absent), if any.
fn missing(text: &str) -> Option<String> {
    let mut missing = None;
    let mut moved = |name: &str, labels: &[&str]| {
        if missing.is_none() && !sample(text, name, labels).is_some_and(|v| v > 0.0) {
            missing = Some(format!("{name}{labels:?}"));
        }
    };
    moved(metrics::JOBS_SUBMITTED, &[]);
    moved(metrics::JOBS_FINISHED, &["status=\"succeeded\""]);
    moved(metrics::JOBS_FINISHED, &["status=\"failed\""]);
    for phase in ["ingest", "analyze", "render", "archive"] {
        moved(
            &format!("{}_count", metrics::PHASE_DURATION),
            &[&format!("phase=\"{phase}\""), "outcome=\"succeeded\""],
        );
    }
    moved(
        metrics::PHASE_FAILURES,
        &["phase=\"ingest\"", "class=\"permanent\""],
    );
    moved(metrics::DEAD_LETTERS, &["phase=\"ingest\""]);
    moved(metrics::TRANSACTIONS, &["outcome=\"committed\""]);
    moved(metrics::EVENTS_PROJECTED, &[]);
    moved(
        metrics::HTTP_REQUESTS,
        &["route=\"/v1/jobs\"", "status=\"202\""],
    );
    moved(
        &format!("{}_count", metrics::HTTP_DURATION),
        &["route=\"/v1/jobs/{id}\""],
    );
    moved("process_resident_memory_bytes", &[]);
    moved("process_cpu_seconds_total", &[]);
    // Gauges: present with their labels (their value may rightly be zero now).
    for (name, labels) in [
        (metrics::JOBS_IN_FLIGHT, vec!["phase=\"render\""]),
        (
            metrics::CONSUMER_LAG,
            vec!["topic=\"sprocket.ingest\"", "group=\"sprocket-ingest\""],
        ),
        (metrics::PROJECTION_LAG, vec![]),
    ] {
        if missing.is_none() && sample(text, name, &labels).is_none() {
            missing = Some(format!("{name}{labels:?} (gauge)"));
        }
    }
    missing
}

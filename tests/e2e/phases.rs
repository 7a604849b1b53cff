//! `GET /v1/phases`: backlog per phase as lag monitors and KEDA see it.

use std::time::Duration;

use serde_json::json;
use sprocket_platform::config::Config;
use sprocket_tests::TestApp;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_backlog_shows_as_lag_with_its_age_and_keda_plan() {
    // No ingest worker: submissions wait on sprocket.ingest.
    let app = TestApp::start_with(vec![], Config::default()).await;
    for i in 0..3 {
        let (s, _) = app
            .post_job(json!({"job_id": format!("waiting-{i}"), "source": {"upload": "none"}}))
            .await;
        assert_eq!(s, 202);
    }
    // Wait until the backlog is visible and its oldest item over a second old.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let (phases, ingest) = loop {
        let (s, body) = app.get("/v1/phases").await;
        assert_eq!(s, 200, "{body}");
        let phases = body["phases"].as_array().unwrap().clone();
        let ingest = phases
            .iter()
            .find(|p| p["phase"] == "ingest")
            .unwrap()
            .clone();
        let aged = ingest["oldest_waiting_age_s"]
            .as_f64()
            .is_some_and(|a| a >= 1.0);
        if (ingest["lag"] == 3 && aged) || std::time::Instant::now() > deadline {
            break (phases, ingest);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(phases.len(), 4);
    assert_eq!(ingest["topic"], "sprocket.ingest");
    assert_eq!(ingest["group"], "sprocket-ingest");
    assert_eq!(ingest["lag"], 3, "{ingest:#}");
    assert_eq!(ingest["partitions"].as_array().unwrap().len(), 3);
    assert!(
        ingest["oldest_waiting_age_s"].as_f64().unwrap() >= 1.0,
        "{ingest:#}"
    );
    // Never committed + earliest: the whole backlog counts; 3 items under
    // ingest's threshold of 20 ask for one replica.
    assert_eq!(ingest["scale"]["active"], true);
    assert_eq!(ingest["scale"]["replicas"], 1);
    let render = phases.iter().find(|p| p["phase"] == "render").unwrap();
    assert_eq!(
        (render["lag"].as_i64(), render["scale"]["replicas"].as_i64()),
        (Some(0), Some(0))
    );

    // A second reading reports throughput (nothing was committed: zero).
    let (_, again) = app.get("/v1/phases").await;
    let ingest = again["phases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["phase"] == "ingest")
        .unwrap()
        .clone();
    assert_eq!(ingest["throughput_per_s"].as_f64(), Some(0.0), "{ingest:#}");
    app.dev.stop().await;
}

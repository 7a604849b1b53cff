//! Submitting jobs: through the API and straight to Kafka by outside producers.

use std::time::{Duration, Instant};

use serde_json::json;
use sprocket_core::Phase;
use sprocket_platform::config::Config;
use sprocket_tests::{kcat, kcat_produce, video, TestApp};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_submission_is_queued_within_a_second_while_ingest_is_down() {
    let app = TestApp::start_with(vec![], Config::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("a.mp4");
    video::with_cuts(&src, &[10], 10, false);
    let up = app.upload(&src).await;
    let start = Instant::now();
    let (status, body) = app
        .post_job(json!({"job_id": "queued-1", "source": {"upload": up["upload"]}}))
        .await;
    assert_eq!((status, body["status"].as_str()), (202, Some("queued")));
    let job = app
        .wait_for("queued-1", Duration::from_secs(1), |j| {
            j["status"] == "queued"
        })
        .await;
    assert!(
        start.elapsed() <= Duration::from_secs(1),
        "took {:?}",
        start.elapsed()
    );
    assert_eq!(job["source"]["upload"], up["upload"]);
    let (_, list) = app.get("/v1/jobs?status=queued").await;
    assert_eq!(list["jobs"][0]["id"], "queued-1");
    app.dev.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn outside_producers_submit_with_kcat_in_bare_json_and_wire_format() {
    let app = TestApp::start_with(Phase::ALL.to_vec(), Config::default()).await;
    let src = app.inbox().join("outside.mp4");
    video::with_cuts(&src, &[20, 20], 10, false);
    let source = json!({"path": src.to_str().unwrap()});
    let broker = app.kafka();

    // Bare JSON: only job_id, type and data.
    let bare = json!({"job_id": "outside-bare", "type": "JobSubmitted", "data": {"source": source, "recipe": "minimal"}});
    kcat_produce(
        &broker,
        "sprocket.ingest",
        "outside-bare",
        bare.to_string().as_bytes(),
    );

    // Wire format: the schema id comes from the registry's REST API.
    let reg = app.dev.infra.registry_url();
    let latest: serde_json::Value = reqwest::get(format!(
        "{reg}/subjects/sprocket.JobSubmitted/versions/latest"
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let id = latest["id"].as_u64().expect("schema id") as u32;
    let doc = json!({"job_id": "outside-wire", "type": "JobSubmitted", "data": {"source": source, "recipe": "minimal", "labels": {"by": "kcat"}}});
    let mut wire = vec![0u8];
    wire.extend(id.to_be_bytes());
    wire.extend(doc.to_string().as_bytes());
    kcat_produce(&broker, "sprocket.ingest", "outside-wire", &wire);

    for job in ["outside-bare", "outside-wire"] {
        let j = app.wait_terminal(job, Duration::from_secs(90)).await;
        assert_eq!(j["status"], "succeeded", "{j:#}");
    }
    let (_, wire_job) = app.get("/v1/jobs/outside-wire").await;
    assert_eq!(wire_job["labels"]["by"], "kcat");

    // Kafka tooling sees the whole history on sprocket.events, keyed by job id, typed in headers.
    let out = kcat(
        &[
            "-C",
            "-b",
            &broker,
            "-t",
            "sprocket.events",
            "-e",
            "-q",
            "-f",
            "%k %h\n",
        ],
        None,
    );
    let text = String::from_utf8_lossy(&out);
    let types: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("outside-bare "))
        .filter_map(|l| l.split("event-type=").nth(1))
        .map(|t| t.split(',').next().unwrap())
        .collect();
    assert_eq!(types.first(), Some(&"JobSubmitted"), "{text}");
    assert_eq!(types.last(), Some(&"JobSucceeded"), "{types:?}");
    for t in [
        "PhaseStarted",
        "MediaIngested",
        "MediaAnalyzed",
        "MediaRendered",
        "MediaArchived",
    ] {
        assert!(types.contains(&t), "{t} missing: {types:?}");
    }
    app.dev.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn submitting_the_same_job_id_twice_is_idempotent() {
    let app = TestApp::start().await;
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("twice.mp4");
    video::with_cuts(&src, &[20], 10, false);
    let up = app.upload(&src).await;
    let body = json!({"job_id": "twice", "source": {"upload": up["upload"]}, "recipe": "minimal"});
    let (a, _) = app.post_job(body.clone()).await;
    let (b, _) = app.post_job(body.clone()).await;
    assert_eq!((a, b), (202, 202));
    app.wait_terminal("twice", Duration::from_secs(90)).await;
    let (c, again) = app.post_job(body).await;
    assert_eq!((c, again["status"].as_str()), (202, Some("succeeded")));
    // Everything the two submissions could ever cause is shown now.
    app.settled(Duration::from_secs(60)).await;
    let (_, events) = app.get("/v1/jobs/twice/events").await;
    let types: Vec<&str> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    for once in [
        "JobSubmitted",
        "MediaIngested",
        "MediaArchived",
        "JobSucceeded",
    ] {
        assert_eq!(
            types.iter().filter(|t| **t == once).count(),
            1,
            "{once}: {types:?}"
        );
    }
    app.dev.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn object_store_sources_are_ingested_with_their_digest() {
    let app = TestApp::start().await;
    let src = app.inbox().join("object.mp4");
    video::with_cuts(&src, &[15, 15], 10, false);
    let uri = format!("file://{}", src.display());
    let (s, body) = app
        .post_job(json!({"job_id": "from-object", "source": {"object": uri}, "recipe": "minimal"}))
        .await;
    assert_eq!(s, 202, "{body}");
    let job = app
        .wait_terminal("from-object", Duration::from_secs(90))
        .await;
    assert_eq!(job["status"], "succeeded", "{job:#}");
    let source = job["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "source")
        .unwrap()
        .clone();
    let bytes = std::fs::read(&src).unwrap();
    assert_eq!(source["bytes"].as_u64(), Some(bytes.len() as u64));
    let digest = sprocket_tests::sha256_hex(&bytes);
    assert_eq!(source["sha256"].as_str(), Some(digest.as_str()));
    assert_eq!(job["media"]["width"], 320);
    app.dev.stop().await;
}

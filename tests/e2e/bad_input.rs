//! Bad input gets a clear answer and loses nothing.

use std::time::Duration;

use serde_json::json;
use sprocket_tests::{kcat, kcat_produce, video, TestApp};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_api_answers_bad_requests_with_json_errors() {
    let app = TestApp::start_with(vec![], Default::default()).await;
    let post = |body: String| {
        let http = app.http.clone();
        let url = format!("{}/v1/jobs", app.url);
        async move {
            let r = http
                .post(url)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            (
                r.status().as_u16(),
                r.json::<serde_json::Value>().await.unwrap(),
            )
        }
    };
    for (body, status, code) in [
        (
            r#"{"source": {"upload": "u"}, "job_id": "bad id!"}"#,
            400,
            "invalid_job_id",
        ),
        (
            r#"{"source": {"upload": "u"}, "recipe": "nope"}"#,
            422,
            "unknown_recipe",
        ),
        (
            r#"{"source": {"upload": "u"}, "colour": "red"}"#,
            400,
            "invalid_request",
        ),
        (r#"{"source": {"upload": "u""#, 400, "invalid_request"),
        (r#"{"source": {"ftp": "x"}}"#, 400, "invalid_request"),
        (
            r#"{"source": {"path": "relative/a.mp4"}}"#,
            422,
            "invalid_source",
        ),
    ]
    .map(|(b, s, c)| (b.to_owned(), s, c))
    .into_iter()
    .chain(over_the_limits())
    {
        let (s, v) = post(body.clone()).await;
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (status, Some(code)),
            "{body}: {v}"
        );
        assert!(v["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
    }
    // JSON only when it says so: a form post across sites is refused.
    for content_type in ["text/plain", "application/x-www-form-urlencoded"] {
        let r = app
            .http
            .post(format!("{}/v1/jobs", app.url))
            .header("content-type", content_type)
            .body(r#"{"source": {"upload": "u"}}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 415, "{content_type}");
    }
    let (s, v) = app.get("/v1/jobs/nope").await;
    assert_eq!((s, v["error"]["code"].as_str()), (404, Some("not_found")));
    let (s, _) = app.get("/v1/jobs?status=bogus").await;
    assert_eq!(s, 400);
    app.dev.stop().await;
}

/// Submissions over a bound: 400 for what they ask, 413 for their size.
fn over_the_limits() -> Vec<(String, u16, &'static str)> {
    let inline = |params: serde_json::Value| {
        json!({"source": {"upload": "u"}, "recipe": {"name": "x", "steps": [{"phase": "ingest", "params": params}]}})
            .to_string()
    };
    let labels: serde_json::Map<_, _> = (0..65).map(|i| (format!("k{i}"), json!("v"))).collect();
    vec![
        (inline(json!({"timeout_s": 1e20})), 400, "over_limit"),
        (
            inline(json!({"retry": {"max_attempts": 1000}})),
            400,
            "over_limit",
        ),
        (
            json!({"source": {"upload": "u"}, "labels": labels}).to_string(),
            400,
            "over_limit",
        ),
        (
            json!({"source": {"upload": "u"}, "labels": {"big": "x".repeat(70_000)}}).to_string(),
            413,
            "payload_too_large",
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unusable_media_fails_its_job_with_a_readable_cause() {
    let app = TestApp::start().await;
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.mp4");
    std::fs::write(&text, "this is not a video\n".repeat(50)).unwrap();
    let empty = dir.path().join("empty.mp4");
    std::fs::write(&empty, b"").unwrap();
    let outside = dir.path().join("outside.mp4");
    video::with_cuts(&outside, &[10], 10, false);

    app.submit(&text, "highlight", "text-as-mp4").await;
    app.submit(&empty, "highlight", "zero-bytes").await;
    let (s, _) = app
        .post_job(json!({"job_id": "escape", "source": {"path": outside.to_str().unwrap()}}))
        .await;
    assert_eq!(s, 202);
    for (id, code) in [
        ("text-as-mp4", "unusable_media"),
        ("zero-bytes", "unusable_media"),
        ("escape", "path_not_allowed"),
    ] {
        let job = app.wait_terminal(id, Duration::from_secs(60)).await;
        assert_eq!(job["status"], "failed", "{job:#}");
        assert_eq!(job["error"]["code"], code, "{job:#}");
        assert!(
            job["error"]["message"].as_str().unwrap().len() > 10,
            "{job:#}"
        );
        assert_eq!(
            job["attempts"], 1,
            "permanent failures are not retried: {job:#}"
        );
    }
    app.dev.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn undecodable_messages_go_to_the_dead_letter_topic_and_the_partition_moves_on() {
    let app = TestApp::start().await;
    let broker = app.kafka();
    let key = "same-key";
    kcat_produce(&broker, "sprocket.ingest", key, b"this is not json");
    kcat_produce(
        &broker,
        "sprocket.ingest",
        key,
        &[0, 0, 0, 0x7f, 0xff, b'{', b'}'],
    );
    kcat_produce(
        &broker,
        "sprocket.ingest",
        key,
        br#"{"job_id":"same-key","type":"NoSuchType","data":{}}"#,
    );

    // Too many labels, written straight to the intake: the job fails and the
    // submission is dead-lettered with the reason.
    let labels: serde_json::Map<_, _> = (0..65).map(|i| (format!("k{i}"), json!("v"))).collect();
    let over = json!({"job_id": "too-many-labels", "type": "JobSubmitted", "data": {"source": {"upload": "u"}, "recipe": "minimal", "labels": labels}});
    kcat_produce(
        &broker,
        "sprocket.ingest",
        "too-many-labels",
        over.to_string().as_bytes(),
    );

    // A good job on the same partition (same key) still completes.
    let src = app.inbox().join("after.mp4");
    video::with_cuts(&src, &[20], 10, false);
    let good = json!({"job_id": key, "type": "JobSubmitted", "data": {"source": {"path": src.to_str().unwrap()}, "recipe": "minimal"}});
    kcat_produce(&broker, "sprocket.ingest", key, good.to_string().as_bytes());
    let job = app.wait_terminal(key, Duration::from_secs(90)).await;
    assert_eq!(job["status"], "succeeded", "{job:#}");
    let job = app
        .wait_terminal("too-many-labels", Duration::from_secs(90))
        .await;
    assert_eq!(
        (job["status"].as_str(), job["error"]["code"].as_str()),
        (Some("failed"), Some("over_limit")),
        "{job:#}"
    );

    let out = kcat(
        &[
            "-C",
            "-b",
            &broker,
            "-t",
            "sprocket.ingest.dlq",
            "-e",
            "-q",
            "-f",
            "%h\n",
        ],
        None,
    );
    let text = String::from_utf8_lossy(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    let over: Vec<_> = lines
        .iter()
        .filter(|l| l.contains("dlq-reason=over a limit: 65 labels"))
        .collect();
    assert_eq!(over.len(), 1, "{text}");
    for l in &lines {
        assert!(
            l.contains("dlq-reason=undecodable message") || over.contains(&l),
            "{l}"
        );
        assert!(l.contains("dlq-topic=sprocket.ingest"), "{l}");
        assert!(l.contains("dlq-offset="), "{l}");
    }
    app.dev.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_upload_over_the_limit_is_refused_with_413_and_nothing_is_stored() {
    let mut cfg = sprocket_platform::config::Config::default();
    cfg.api.max_upload_bytes = 64 * 1024;
    let app = TestApp::start_with(vec![], cfg).await;
    let r = app
        .http
        .post(format!("{}/v1/uploads", app.url))
        .body(vec![7u8; 200 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "upload_too_large");
    let uploads = app.data.path().join("store/uploads");
    let stored = std::fs::read_dir(&uploads).map(|d| d.count()).unwrap_or(0);
    assert_eq!(stored, 0, "an over-limit upload left {stored} object(s)");
    // Under the limit is fine.
    let ok = app
        .http
        .post(format!("{}/v1/uploads", app.url))
        .body(vec![7u8; 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 201);
    app.dev.stop().await;
}

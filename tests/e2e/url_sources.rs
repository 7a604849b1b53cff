//! URL sources as a submitter meets them: fetched from where the
//! configuration allows, and refused everywhere else with one answer that
//! neither says why nor repeats the URL's secrets.

use std::time::Duration;

use serde_json::json;
use sprocket_core::Phase;
use sprocket_platform::config::Config;
use sprocket_tests::{http, video, TestApp};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn url_sources_are_fetched_only_from_allowed_addresses() {
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("clip.mp4");
    video::with_cuts(&clip, &[10], 10, false);
    let body = std::fs::read(&clip).unwrap();
    let serve_clip = move |ip: &str| {
        let body = body.clone();
        http::serve(ip, move |_| {
            http::reply("200 OK", &[("Content-Type", "video/mp4")], &body)
        })
    };
    let internal = serve_clip("127.0.0.2");
    let allowed = {
        let to = format!("http://{internal}/clip.mp4");
        let clip = serve_clip("127.0.0.1");
        http::serve("127.0.0.1", move |path| match path {
            "/moved" => http::reply("302 Found", &[("Location", &to)], b""),
            _ => http::reply(
                "307 Temporary Redirect",
                &[("Location", &format!("http://{clip}/clip.mp4"))],
                b"",
            ),
        })
    };
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();

    let mut cfg = Config::default();
    cfg.ingest.url_allow_private = vec!["127.0.0.1/32".parse().unwrap()];
    // Unreachable sources are retried like any transient failure; one
    // attempt is enough to read the answer.
    cfg.worker.max_attempts = 1;
    let app = TestApp::start_with(Phase::ALL.to_vec(), cfg).await;
    let jobs = [
        ("allowed", format!("http://{allowed}/clip.mp4")),
        (
            "internal",
            format!("http://viewer:hunter2@{internal}/clip.mp4?X-Amz-Signature=s3cr3t"),
        ),
        ("redirected", format!("http://{allowed}/moved")),
        (
            "metadata",
            "http://169.254.169.254/latest/meta-data/".into(),
        ),
        ("closed-port", format!("http://{closed}/clip.mp4")),
    ];
    for (id, url) in &jobs {
        let (s, body) = app
            .post_job(json!({"job_id": id, "source": {"url": url}, "recipe": "minimal"}))
            .await;
        assert_eq!(s, 202, "{body}");
    }

    let job = app.wait_terminal("allowed", Duration::from_secs(60)).await;
    assert_eq!(job["status"], "succeeded", "through a redirect: {job:#}");
    let mut answers = Vec::new();
    for (id, _) in &jobs[1..] {
        let job = app.wait_terminal(id, Duration::from_secs(60)).await;
        assert_eq!(job["status"], "failed", "{job:#}");
        assert_eq!(job["error"]["code"], "source_unreachable", "{job:#}");
        answers.push(job["error"].clone());
        let (_, events) = app.get(&format!("/v1/jobs/{id}/events")).await;
        // The whole history and the job itself, the submission included,
        // keep no credentials or query string of the URL.
        let (_, shown) = app.get(&format!("/v1/jobs/{id}")).await;
        let all = format!("{events} {shown}");
        for secret in ["hunter2", "s3cr3t", "X-Amz-Signature"] {
            assert!(!all.contains(secret), "{secret} in {id}'s record: {all}");
        }
        // The failure does not even say which address was refused.
        let failure: Vec<_> = events["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["type"] != "JobSubmitted")
            .collect();
        let failure = serde_json::to_string(&failure).unwrap();
        assert!(failure.contains("source_unreachable"), "{failure}");
        for secret in ["hunter2", "s3cr3t", "X-Amz-Signature", "127.0.0.2"] {
            assert!(
                !failure.contains(secret),
                "{secret} in {id}'s failure: {failure}"
            );
        }
    }
    assert!(
        answers.windows(2).all(|w| w[0] == w[1]),
        "refused, redirected, metadata and closed port answer alike: {answers:#?}"
    );
    app.dev.stop().await;
}

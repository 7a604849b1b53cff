//! A job's events live over Server-Sent Events, read by an outside client
//! (sseclient-py, from `.venv-api`): the history, then each event as it is
//! recorded, resumable with `Last-Event-ID` without gaps or repeats, closed
//! after the terminal event; keep-alives while idle; `sprocket watch`.

use std::path::Path;
use std::time::Duration;

use futures::StreamExt;
use serde_json::Value;
use sprocket_core::Phase;
use sprocket_platform::config::Config;
use sprocket_tests::procs::sprocket_bin;
use sprocket_tests::{video, TestApp};

/// Runs the outside client: the events it printed, and whether the server
/// closed the stream (rather than the client hanging up).
async fn client(url: &str, key: &str, last: Option<&str>, stop_after: usize) -> (Vec<Value>, bool) {
    client_ready(url, key, last, stop_after, None).await
}

/// [`client`], creating `ready` once the server has answered (from then on
/// the stream sends everything recorded).
async fn client_ready(
    url: &str,
    key: &str,
    last: Option<&str>,
    stop_after: usize,
    ready: Option<&Path>,
) -> (Vec<Value>, bool) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = root.join("../.venv-api/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run `bash .ci/setup`",
        python.display()
    );
    let out = tokio::process::Command::new(python)
        .arg(root.join("e2e/clients/sse.py"))
        .args([url, key, last.unwrap_or(""), &stop_after.to_string()])
        .args(ready)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(120), out)
        .await
        .expect("the SSE client finishes")
        .expect("the SSE client runs");
    assert!(
        out.status.success(),
        "sse.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    let ended = lines.last().is_some_and(|l| l["end"] == true);
    (
        lines
            .into_iter()
            .filter(|l| l.get("end").is_none())
            .collect(),
        ended,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_job_streams_live_and_resumes_without_gaps_or_repeats() {
    let app = TestApp::start().await;
    let src = app.inbox().join("s.mp4");
    video::with_cuts(&src, &[20, 20], 10, true);
    let id = app.submit(&src, "minimal", "streamed").await;
    let url = format!("{}/v1/jobs/{id}/events/stream", app.url);
    // The job is under way: the first events, then the client hangs up.
    let (first, ended) = loop {
        if app.get(&format!("/v1/jobs/{id}")).await.0 == 200 {
            break client(&url, &app.dev.api_key, None, 3).await;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(!ended);
    assert_eq!(ids(&first), [1, 2, 3]);
    // Resumed after the third: the rest, up to the terminal event, then closed.
    let (rest, ended) = client(&url, &app.dev.api_key, Some("3"), 0).await;
    assert!(ended, "the stream closes after the terminal event");
    let all: Vec<Value> = first.into_iter().chain(rest).collect();
    assert_eq!(
        ids(&all),
        (1..=all.len() as i64).collect::<Vec<_>>(),
        "no gap, no repeat"
    );
    assert_eq!(all.last().unwrap()["type"], "JobSucceeded");
    // What the stream sent is the job's history, in order.
    let (_, history) = app.get(&format!("/v1/jobs/{id}/events")).await;
    let recorded: Vec<&str> = history["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_id"].as_str().unwrap())
        .collect();
    let streamed: Vec<&str> = all
        .iter()
        .map(|e| e["event_id"].as_str().unwrap())
        .collect();
    assert_eq!(streamed, recorded);
    // A finished job's stream is its history, closed at once.
    let (again, ended) = client(&url, &app.dev.api_key, None, 0).await;
    assert!(ended && again.len() == all.len());
    // A made-up resumption point is refused.
    let bad = app
        .http
        .get(&url)
        .header("last-event-id", "minus one")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);

    // `sprocket watch`: exit 0 for a job that succeeded, non-zero otherwise.
    let watch = |job: &str| {
        std::process::Command::new(sprocket_bin())
            .args(["watch", job, "--api", &app.url])
            .env("SPROCKET_API_KEY", &app.dev.api_key)
            .output()
            .expect("sprocket watch runs")
    };
    let out = watch(&id);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("job {id} succeeded")));
    let broken = app.inbox().join("broken.mp4");
    std::fs::write(&broken, b"not a video").unwrap();
    let failed = app.submit(&broken, "minimal", "streamed-broken").await;
    let out = watch(&failed);
    assert!(
        !out.status.success(),
        "a failed job: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("failed"));
    app.dev.stop().await;
}

fn ids(events: &[Value]) -> Vec<i64> {
    events
        .iter()
        .map(|e| e["id"].as_str().unwrap().parse().unwrap())
        .collect()
}

/// An idle stream (a job queued with no worker to take it) sends keep-alive
/// comments, and another tenant's job cannot be streamed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_idle_stream_keeps_alive_and_other_tenants_get_404() {
    let mut cfg = Config::default();
    cfg.api.sse_keep_alive_ms = 200;
    let app = TestApp::start_with(Vec::<Phase>::new(), cfg).await;
    let src = app.inbox().join("q.mp4");
    video::with_cuts(&src, &[10], 10, false);
    let id = app.submit(&src, "minimal", "idle").await;
    app.wait_for(&id, Duration::from_secs(5), |j| j["status"] == "queued")
        .await;
    let resp = app
        .http
        .get(format!("{}/v1/jobs/{id}/events/stream", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let mut body = resp.bytes_stream();
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !text.contains("\n\n:") && tokio::time::Instant::now() < deadline {
        match tokio::time::timeout_at(deadline, body.next()).await {
            Ok(Some(Ok(chunk))) => text.push_str(&String::from_utf8_lossy(&chunk)),
            _ => break,
        }
    }
    assert!(text.starts_with("id: 1\ndata: "), "{text}");
    assert!(
        text.contains("\n\n:"),
        "a keep-alive comment after the history: {text:?}"
    );

    let (_, _, other) = app.key("other", &["jobs:read"]).await;
    let r = other
        .get(format!("{}/v1/jobs/{id}/events/stream", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    app.dev.stop().await;
}

/// Every event of the caller's tenant, in the order recorded: another
/// tenant's never; resumable by ordinal; filtered by label; from now on
/// without `Last-Event-ID`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tenant_streams_its_own_events_only() {
    let app = TestApp::start().await;
    let both = ["jobs:read", "jobs:write"];
    let (_, acme, _) = app.key("acme", &both).await;
    let (_, globex, _) = app.key("globex", &both).await;
    let (acme, globex) = (&acme, &globex);
    let src = app.inbox().join("t.mp4");
    video::with_cuts(&src, &[20], 10, false);
    for (key, id, team) in [
        (acme, "acme-red", "red"),
        (globex, "globex-red", "red"),
        (acme, "acme-blue", "blue"),
    ] {
        let http = sprocket_tests::api::client(Some(key));
        let up = sprocket_tests::api::upload(&http, &app.url, &src).await;
        let (status, body) = sprocket_tests::api::post_json(
            &http,
            &format!("{}/v1/jobs", app.url),
            &serde_json::json!({"job_id": id, "source": {"upload": up["upload"]}, "recipe": "minimal", "labels": {"team": team}}),
        )
        .await;
        assert_eq!(status, 202, "{body}");
    }
    for id in ["acme-red", "globex-red", "acme-blue"] {
        app.wait_terminal(id, Duration::from_secs(90)).await;
    }
    let history = |id: &str| {
        let app = &app;
        let id = id.to_owned();
        async move {
            let (_, h) = app.get(&format!("/v1/jobs/{id}/events")).await;
            h["events"].as_array().unwrap().len()
        }
    };
    let acme_events = history("acme-red").await + history("acme-blue").await;
    let url = format!("{}/v1/events/stream", app.url);

    // From the first recorded event: acme's events only, ordinals rising.
    let (all, _) = client(&url, acme, Some("0"), acme_events).await;
    assert_eq!(all.len(), acme_events);
    assert!(
        all.iter()
            .all(|e| e["job_id"].as_str().unwrap().starts_with("acme-")),
        "{all:#?}"
    );
    let ordinals = ids(&all);
    assert!(ordinals.windows(2).all(|w| w[0] < w[1]), "{ordinals:?}");
    // Resumed after the third: the rest, the same, no gap, no repeat.
    let third = ordinals[2].to_string();
    let (rest, _) = client(&url, acme, Some(&third), acme_events - 3).await;
    assert_eq!(rest, all[3..]);
    // Only the red team's.
    let red = format!("{url}?label=team=red");
    let (reds, _) = client(&red, acme, Some("0"), history("acme-red").await).await;
    assert!(reds.iter().all(|e| e["job_id"] == "acme-red"), "{reds:#?}");
    // Bad filters are refused.
    for q in ["?label=team", "?status=sleeping", "?colour=red"] {
        let r = app.http.get(format!("{url}{q}")).send().await.unwrap();
        assert_eq!(r.status(), 400, "{q}");
    }

    // Without Last-Event-ID the stream starts now: a job submitted while
    // it is open shows up, nothing from before does.
    let (url2, key) = (url.clone(), acme.clone());
    let ready = app.data.path().join("sse-ready");
    let marker = ready.clone();
    let waiting =
        tokio::spawn(async move { client_ready(&url2, &key, None, 1, Some(&marker)).await });
    let asked = std::time::Instant::now();
    while !ready.exists() {
        assert!(
            asked.elapsed() < Duration::from_secs(30) && !waiting.is_finished(),
            "the SSE client did not connect"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let http = sprocket_tests::api::client(Some(acme));
    let up = sprocket_tests::api::upload(&http, &app.url, &src).await;
    let (status, _) = sprocket_tests::api::post_json(
        &http,
        &format!("{}/v1/jobs", app.url),
        &serde_json::json!({"job_id": "acme-later", "source": {"upload": up["upload"]}, "recipe": "minimal"}),
    )
    .await;
    assert_eq!(status, 202);
    let (first, _) = waiting.await.unwrap();
    assert_eq!(first[0]["job_id"], "acme-later", "{first:#?}");
    app.dev.stop().await;
}

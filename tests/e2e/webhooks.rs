//! Webhooks, received by an outside receiver (tests/support/
//! webhook_receiver.py) that checks the documented signature itself: every
//! event of the tenant's job arrives signed, once delivered; a failing
//! destination is retried through Kafka and recorded attempt by attempt;
//! one that never answers is a dead letter (in the API and on
//! `sprocket.webhooks.dlq`, read with kcat); other tenants' webhooks get
//! nothing; bad requests are refused.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sprocket_platform::config::Config;
use sprocket_tests::webhooks::Receiver;
use sprocket_tests::{api, video, TestApp};

async fn make(app: &TestApp, http: &reqwest::Client, body: Value) -> (u16, Value) {
    api::post_json(http, &format!("{}/v1/webhooks", app.url), &body).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn events_are_delivered_signed_retried_and_dead_lettered() {
    let mut cfg = Config::default();
    cfg.webhooks.allow_private = vec!["127.0.0.1/32".parse().unwrap()];
    cfg.webhooks.retry_delay_ms = 200;
    cfg.webhooks.retry_max_delay_ms = 1_000;
    cfg.webhooks.max_age_s = 4;
    let app = TestApp::start_with(sprocket_core::Phase::ALL.to_vec(), cfg).await;
    let rx = Receiver::start().await;
    let rw = ["jobs:read", "jobs:write"];
    let (_, _, acme) = app.key("acme", &rw).await;
    let (_, _, globex) = app.key("globex", &rw).await;

    // Bad requests are refused, with the reason.
    for (body, code) in [
        (
            json!({"url": "ftp://example.com/x", "events": ["*"]}),
            "invalid_url",
        ),
        (
            json!({"url": "http://10.1.2.3/hook", "events": ["*"]}),
            "invalid_url",
        ),
        (
            json!({"url": "http://[::1]/hook", "events": ["*"]}),
            "invalid_url",
        ),
        (json!({"url": "not a url", "events": ["*"]}), "invalid_url"),
        (
            json!({"url": format!("{}/ok", rx.url), "events": []}),
            "invalid_events",
        ),
        (
            json!({"url": format!("{}/ok", rx.url), "events": ["Nope"]}),
            "invalid_events",
        ),
        (
            json!({"url": format!("{}/ok", rx.url), "events": ["WorkItem"]}),
            "invalid_events",
        ),
        (
            json!({"url": format!("{}/ok", rx.url), "events": ["*"], "secret": "short"}),
            "invalid_secret",
        ),
        (
            json!({"url": format!("{}/ok", rx.url), "events": ["*"], "colour": "red"}),
            "invalid_request",
        ),
    ] {
        let (status, answer) = make(&app, &acme, body.clone()).await;
        assert_eq!(
            (status, answer["error"]["code"].as_str()),
            (400, Some(code)),
            "{body}: {answer}"
        );
    }
    let (_, _, reader) = app.key("acme", &["jobs:read"]).await;
    let (status, _) = make(
        &app,
        &reader,
        json!({"url": format!("{}/ok", rx.url), "events": ["*"]}),
    )
    .await;
    assert_eq!(status, 403, "making a webhook needs jobs:write");
    let (status, _) = make(
        &app,
        &api::client(None),
        json!({"url": format!("{}/ok", rx.url), "events": ["*"]}),
    )
    .await;
    assert_eq!(status, 401);

    // acme: every event to a flaky destination with its own secret, and the
    // outcome to one that is down; globex: everything, to a third path.
    let flaky_secret = "a-secret-of-acme-for-flaky";
    let (status, flaky) = make(
        &app,
        &acme,
        json!({"url": format!("{}/flaky", rx.url), "events": ["*"], "secret": flaky_secret}),
    )
    .await;
    assert_eq!(status, 201, "{flaky}");
    assert_eq!(flaky["secret"], flaky_secret);
    assert_eq!(flaky["tenant"], "acme");
    let (status, down) = make(
        &app,
        &acme,
        json!({"url": format!("{}/down", rx.url), "events": ["JobSucceeded", "JobFailed"]}),
    )
    .await;
    assert_eq!(status, 201, "{down}");
    let down_secret = down["secret"].as_str().unwrap();
    assert!(
        down_secret.starts_with("whsec_") && down_secret.len() == 70,
        "{down}"
    );
    let (status, other) = make(
        &app,
        &globex,
        json!({"url": format!("{}/globex", rx.url), "events": ["*"]}),
    )
    .await;
    assert_eq!(status, 201, "{other}");
    rx.set_secrets(&BTreeMap::from([
        ("/flaky", flaky_secret),
        ("/down", down_secret),
        ("/globex", other["secret"].as_str().unwrap()),
    ]));
    // A tenant lists its own webhooks, without secrets.
    let (_, listed) = api::get(&acme, &format!("{}/v1/webhooks", app.url)).await;
    let ids: BTreeSet<&str> = listed["webhooks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        BTreeSet::from([flaky["id"].as_str().unwrap(), down["id"].as_str().unwrap()]),
        "{listed}"
    );
    assert!(!listed.to_string().contains(flaky_secret), "{listed}");

    // An acme job runs to the end.
    let src = app.inbox().join("hooked.mp4");
    video::with_cuts(&src, &[20], 10, false);
    let up = api::upload(&acme, &app.url, &src).await;
    let (status, body) = api::post_json(
        &acme,
        &format!("{}/v1/jobs", app.url),
        &json!({"job_id": "hooked", "source": {"upload": up["upload"]}, "recipe": "minimal"}),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let job = app.wait_terminal("hooked", Duration::from_secs(120)).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let (_, history) = app.get("/v1/jobs/hooked/events").await;
    let events: BTreeMap<String, String> = history["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["event_id"].as_str().unwrap().to_owned(),
                e["type"].as_str().unwrap().to_owned(),
            )
        })
        .collect();

    // Every event reaches /flaky, each on its third attempt after two 500s,
    // every attempt signed and carrying the event as its body.
    let got = rx
        .wait("/flaky", "every event delivered", |got| {
            let delivered: BTreeSet<&str> = got
                .iter()
                .filter(|r| r["answered"] == 204)
                .map(|r| r["event_id"].as_str().unwrap())
                .collect();
            events.keys().all(|e| delivered.contains(e.as_str()))
        })
        .await;
    for r in &got {
        assert_eq!(r["verified"], true, "the signature verifies: {r}");
        assert_eq!(r["content_type"], "application/json");
        assert_eq!(r["body"]["event_id"], r["event_id"], "{r}");
        assert_eq!(r["body"]["job_id"], "hooked", "{r}");
        assert_eq!(r["body"]["type"], r["event_type"], "{r}");
        assert_eq!(
            events.get(r["event_id"].as_str().unwrap()),
            r["event_type"].as_str().map(str::to_owned).as_ref()
        );
    }
    for id in events.keys() {
        let attempts: Vec<&str> = got
            .iter()
            .filter(|r| r["event_id"] == id.as_str())
            .map(|r| r["attempt"].as_str().unwrap())
            .collect();
        assert!(attempts.starts_with(&["1", "2", "3"]), "{id}: {attempts:?}");
    }
    // The attempts are recorded: two failed with 500, then delivered.
    let deliveries = format!(
        "{}/v1/webhooks/{}/deliveries?limit=500",
        app.url,
        flaky["id"].as_str().unwrap()
    );
    let (status, recorded) = api::get(&acme, &deliveries).await;
    assert_eq!(status, 200, "{recorded}");
    let succeeded_id = events.iter().find(|(_, t)| *t == "JobSucceeded").unwrap().0;
    let mut of_success: Vec<(u64, String, Option<u64>)> = recorded["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["event_id"] == succeeded_id.as_str())
        .map(|d| {
            (
                d["attempt"].as_u64().unwrap(),
                d["outcome"].as_str().unwrap().to_owned(),
                d["status"].as_u64(),
            )
        })
        .collect();
    of_success.sort();
    assert_eq!(
        &of_success[..3],
        &[
            (1, "failed".into(), Some(500)),
            (2, "failed".into(), Some(500)),
            (3, "delivered".into(), Some(204))
        ],
        "{recorded:#}"
    );

    // /down wants only the outcome: it is tried until the delivery is four
    // seconds old, then it is a dead letter.
    let down_url = format!(
        "{}/v1/webhooks/{}/deliveries?dead=true",
        app.url,
        down["id"].as_str().unwrap()
    );
    let start = Instant::now();
    let dead = loop {
        let (_, d) = api::get(&acme, &down_url).await;
        if !d["deliveries"].as_array().unwrap().is_empty() {
            break d;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no dead letter for /down: {d}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(
        dead["deliveries"][0]["event_type"], "JobSucceeded",
        "{dead}"
    );
    assert_eq!(dead["deliveries"][0]["status"], 503, "{dead}");
    let on_down = rx.on("/down");
    assert!(on_down.len() >= 3, "retried before giving up: {on_down:#?}");
    assert!(
        on_down
            .iter()
            .all(|r| r["event_type"] == "JobSucceeded" && r["verified"] == true),
        "{on_down:#?}"
    );
    let dlq = sprocket_tests::kcat_consume(&app.kafka(), "sprocket.webhooks.dlq", "%k %h\n");
    assert!(
        dlq.lines()
            .any(|l| l.starts_with(down["id"].as_str().unwrap()) && l.contains("reason=")),
        "the dead letter is on sprocket.webhooks.dlq with its reason: {dlq}"
    );

    // The sender counts its attempts by outcome.
    let metrics = String::from_utf8(app.bytes("/metrics").await).unwrap();
    for outcome in ["delivered", "failed", "dead"] {
        let line = format!("sprocket_webhook_deliveries_total{{outcome=\"{outcome}\"}} ");
        let count: u64 = metrics
            .lines()
            .find_map(|l| l.strip_prefix(&line))
            .unwrap_or_else(|| panic!("{line} missing"))
            .parse()
            .unwrap();
        assert!(count > 0, "{line}{count}");
    }

    // globex's webhook heard nothing of acme's job, once every event is
    // fanned out and every delivery made.
    let topics = app.topics();
    let within = Duration::from_secs(60);
    app.group_caught_up(&topics.named("webhooks"), &topics.events(), within)
        .await;
    app.group_caught_up(&topics.named("webhook-sender"), &topics.webhooks(), within)
        .await;
    assert!(
        rx.on("/globex")
            .iter()
            .all(|r| r["body"]["job_id"] != "hooked"),
        "{:#?}",
        rx.on("/globex")
    );

    // Deleting: another tenant cannot; the owner can, once.
    let one = format!("{}/v1/webhooks/{}", app.url, flaky["id"].as_str().unwrap());
    let status = |r: reqwest::Response| r.status().as_u16();
    assert_eq!(status(globex.delete(&one).send().await.unwrap()), 404);
    assert_eq!(status(acme.delete(&one).send().await.unwrap()), 204);
    assert_eq!(status(acme.delete(&one).send().await.unwrap()), 404);
    let (_, listed) = api::get(&acme, &format!("{}/v1/webhooks", app.url)).await;
    assert_eq!(listed["webhooks"].as_array().unwrap().len(), 1, "{listed}");
    app.dev.stop().await;
}

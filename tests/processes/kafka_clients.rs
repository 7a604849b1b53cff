//! Kafka's own command-line tools as Sprocket's users and judges, on a real
//! KRaft cluster: a job submitted with `kafka-console-producer` (bare JSON)
//! and its whole history read back with `kafka-console-consumer
//! --isolation-level read_committed`; the topics as `kafka-configs` describes
//! them; a retry that really goes through `sprocket.ingest.retry`; a render
//! longer than `transaction.timeout.ms` that still commits once; lag as
//! `kafka-consumer-groups` sees it, compared with `sprocket lag`,
//! `GET /v1/phases` and `sprocket scale-plan` while a backlog waits and after
//! it drains — when every partition of every phase and retry topic must read
//! lag 0, or KEDA never scales a phase to zero.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sprocket_tests::{http, video};

use crate::lag_views::{assert_views_agree, drained};
use crate::stack::{Stack, StackOptions, PHASES};

/// A short transaction timeout: the 20 s render below outlasts it many times.
/// The flaky source server listens on loopback, which URL sources may only
/// be fetched from when its address is allowed.
const CONFIG: &str = r#"
[kafka.properties]
"transaction.timeout.ms" = "1500"

[ingest]
url_allow_private = ["127.0.0.1/32"]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_tools_drive_sprocket_and_agree_with_it() {
    let _one_at_a_time = crate::ONE_AT_A_TIME.lock().await;
    let t0 = Instant::now();
    let step = |what: &str| eprintln!("[kafka-clients] {what} at {:.1?}", t0.elapsed());
    let mut stack = Stack::start_with(StackOptions {
        config_toml: Some(CONFIG.into()),
        ..StackOptions::default()
    })
    .await;
    step("deployment up on a real cluster");

    topics_as_configured(&mut stack).await;
    step("topics as kafka-configs describes them; a second run and a mismatch");

    let long = stack.media_dir().join("long.mp4");
    // 20 s at 25 fps, 640x360 with sound: a render of several seconds.
    video::with_cuts_sized(&long, &[125, 125, 125, 125], 25, true, (640, 360))
        .expect("making the long clip");
    let id = "console-1";
    submit_with_console_producer(&stack, &long, id).await;
    let job = stack.wait_terminal(id, Duration::from_secs(180)).await;
    assert_eq!(job["status"], "succeeded", "{job:#}");
    let history = history_with_console_consumer(&stack, id);
    check_history(&history, id);
    render_outlasted_the_transaction_timeout(&history, 1500);
    step("submitted with kafka-console-producer, history read with kafka-console-consumer");

    retry_through_the_retry_topic(&mut stack).await;
    step("an ingest retry went through sprocket.ingest.retry");

    crate::fencing::a_lanes_zombie_is_fenced_by_kafka(&stack).await;
    step("a lane's zombie producer fenced by Kafka, its write never read_committed");

    // A render backlog: the views must agree while it waits.
    let clip = stack.media_dir().join("clip.mp4");
    video::with_cuts(&clip, &[50, 50], 25, true);
    stack.kill("worker-render");
    let ids: Vec<String> = (0..3).map(|i| format!("backlog-{i}")).collect();
    for i in &ids {
        stack.submit(&clip, i, "highlight").await;
    }
    for i in &ids {
        stack
            .wait_for(i, Duration::from_secs(120), |j| {
                j["phases"]["analyze"]["finished_at"].is_string()
            })
            .await;
    }
    let backlog = assert_views_agree(&mut stack).await;
    let render: i64 = backlog["render"].iter().filter_map(|r| r.lag).sum();
    assert!(
        render >= ids.len() as i64,
        "the render backlog shows: {backlog:?}"
    );
    step(&format!(
        "render backlog of {render} offsets: the views agree"
    ));

    stack.start_worker("render");
    for i in &ids {
        let job = stack.wait_terminal(i, Duration::from_secs(120)).await;
        assert_eq!(job["status"], "succeeded", "{job:#}");
    }
    let rows = drained(&mut stack, Duration::from_secs(30)).await;
    for phase in PHASES {
        let topics: Vec<&str> = rows[phase].iter().map(|r| r.topic.as_str()).collect();
        for t in [
            format!("sprocket.{phase}"),
            format!("sprocket.{phase}.retry"),
        ] {
            assert!(
                topics.contains(&t.as_str()),
                "kafka-consumer-groups shows no {t} for sprocket-{phase}: {:?}",
                rows[phase]
            );
        }
    }
    assert_views_agree(&mut stack).await;
    step("drained: lag 0 on every phase and retry partition, and the views agree");
    stack.assert_running();
}

/// `kafka-configs --describe` shows each topic's configs, a second
/// `sprocket topics create` changes nothing, and a topic made another way is
/// reported and fails the command.
async fn topics_as_configured(stack: &mut Stack) {
    let cluster = stack.cluster();
    let events = cluster.topic_configs("sprocket.events");
    assert!(events.contains("retention.ms=-1"), "{events}");
    assert!(events.contains("retention.bytes=-1"), "{events}");
    let cancels = cluster.topic_configs("sprocket.cancellations");
    assert!(cancels.contains("cleanup.policy=compact"), "{cancels}");
    let topics = cluster.describe_topic("sprocket.render");
    assert!(topics.contains("PartitionCount: 3"), "{topics}");

    let again = stack.run_ok(&["topics", "create"]).await;
    assert!(
        again
            .trim_end()
            .ends_with("0 created, 17 already as configured, 0 differing"),
        "a second run changes nothing:\n{again}"
    );

    let cluster = stack.cluster();
    cluster.tool_ok(
        "kafka-topics",
        &[
            "--bootstrap-server",
            &cluster.bootstrap,
            "--create",
            "--topic",
            "other.events",
            "--partitions",
            "1",
            "--config",
            "retention.ms=3600000",
        ],
    );
    let other = stack
        .run_env(
            &["topics", "create"],
            &[("SPROCKET__KAFKA__TOPIC_PREFIX", "other.")],
        )
        .await;
    assert!(
        !other.success(),
        "a differing topic fails the command\n{other}"
    );
    for said in [
        "other.events: EXISTS UNLIKE ITS CONFIGURATION",
        "1 partitions (configured: 3)",
        "retention.ms=3600000 (wanted: -1)",
    ] {
        assert!(other.stdout.contains(said), "not said: {said:?}\n{other}");
    }
    assert!(other.stderr.contains("other.events"), "{other}");
}

/// Uploads `clip` and writes the job's submission to `sprocket.ingest` with
/// `kafka-console-producer`, as bare JSON keyed by the job id.
async fn submit_with_console_producer(stack: &Stack, clip: &std::path::Path, id: &str) {
    let upload = stack.upload(clip).await;
    let submission = json!({
        "job_id": id,
        "type": "JobSubmitted",
        "data": {"source": {"upload": upload}, "recipe": "highlight", "labels": {"via": "console"}},
    });
    let line = format!("{id}|{submission}\n");
    let cluster = stack.cluster();
    let out = sprocket_tests::kafka::tool(
        "kafka-console-producer",
        &[
            "--bootstrap-server",
            &cluster.bootstrap,
            "--topic",
            "sprocket.ingest",
            "--reader-property",
            "parse.key=true",
            "--reader-property",
            "key.separator=|",
        ],
        Some(line.as_bytes()),
    );
    assert!(
        out.status.success(),
        "kafka-console-producer failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

const KEY_SEP: &str = "<<sprocket-key>>";
const RECORD_SEP: &str = "<<sprocket-record>>";

/// The job's events on `sprocket.events`, in order, as
/// `kafka-console-consumer --isolation-level read_committed` prints them.
fn history_with_console_consumer(stack: &Stack, id: &str) -> Vec<Value> {
    let cluster = stack.cluster();
    let out = cluster.tool(
        "kafka-console-consumer",
        &[
            "--bootstrap-server",
            &cluster.bootstrap,
            "--topic",
            "sprocket.events",
            "--from-beginning",
            "--isolation-level",
            "read_committed",
            "--timeout-ms",
            "6000",
            "--formatter-property",
            "print.key=true",
            "--formatter-property",
            &format!("key.separator={KEY_SEP}"),
            "--formatter-property",
            &format!("line.separator={RECORD_SEP}"),
        ],
    );
    let mut events = Vec::new();
    for record in split(&out.stdout, RECORD_SEP.as_bytes()) {
        let mut parts = split(record, KEY_SEP.as_bytes()).into_iter();
        let (Some(key), Some(value)) = (parts.next(), parts.next()) else {
            continue;
        };
        if key != id.as_bytes() {
            continue;
        }
        // The Confluent wire format: magic byte 0 and a 4-byte schema id.
        let json = match value.first() {
            Some(0) => &value[5..],
            _ => value,
        };
        events.push(serde_json::from_slice::<Value>(json).unwrap_or_else(|e| {
            panic!(
                "{id}: a record that is not JSON: {e}: {}",
                String::from_utf8_lossy(json)
            )
        }));
    }
    assert!(
        !events.is_empty(),
        "kafka-console-consumer printed nothing of {id}; stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    events
}

fn split<'a>(bytes: &'a [u8], sep: &[u8]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while let Some(at) = rest.windows(sep.len()).position(|w| w == sep) {
        out.push(&rest[..at]);
        rest = &rest[at + sep.len()..];
    }
    if !rest.is_empty() {
        out.push(rest);
    }
    out
}

/// The whole history, exactly once each: submitted first, every phase's
/// completion once, succeeded last.
fn check_history(events: &[Value], id: &str) {
    let types: Vec<&str> = events
        .iter()
        .map(|e| e["type"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(types.first(), Some(&"JobSubmitted"), "{types:?}");
    assert_eq!(
        events[0]["data"]["labels"]["via"], "console",
        "{:#}",
        events[0]
    );
    assert_eq!(types.last(), Some(&"JobSucceeded"), "{types:?}");
    for (phase, done) in crate::proofs::COMPLETIONS {
        let n = types.iter().filter(|t| **t == done).count();
        assert_eq!(n, 1, "{id}: {done} ({phase}) in {types:?}");
    }
}

/// The render took longer than the transaction timeout, and committed once.
fn render_outlasted_the_transaction_timeout(events: &[Value], timeout_ms: i64) {
    let at = |kind: &str| {
        events
            .iter()
            .filter(|e| {
                e["type"] == kind && (e["data"]["phase"] == "render" || kind == "MediaRendered")
            })
            .map(|e| {
                chrono::DateTime::parse_from_rfc3339(e["occurred_at"].as_str().unwrap_or(""))
                    .expect("occurred_at")
                    .timestamp_millis()
            })
            .collect::<Vec<_>>()
    };
    let (started, rendered) = (at("PhaseStarted"), at("MediaRendered"));
    assert_eq!(rendered.len(), 1, "rendered once");
    let took = rendered[0] - started.iter().max().expect("render started");
    eprintln!("[kafka-clients] render took {took} ms; transaction.timeout.ms {timeout_ms}");
    assert!(
        took > timeout_ms,
        "the render ({took} ms) must outlast transaction.timeout.ms ({timeout_ms}) for this check to mean anything"
    );
}

/// A job whose source URL answers 503 once: ingest fails retryably, the next
/// attempt waits on `sprocket.ingest.retry`, and succeeds.
async fn retry_through_the_retry_topic(stack: &mut Stack) {
    let clip = stack.media_dir().join("flaky.mp4");
    video::with_cuts(&clip, &[40, 40], 25, false);
    let (url, hits) = flaky_server(std::fs::read(&clip).expect("clip bytes"));
    let id = "retried-1";
    let (status, body) = stack
        .post_json(
            "/v1/jobs",
            &json!({"job_id": id, "source": {"url": url}, "recipe": "minimal"}),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let job = stack.wait_terminal(id, Duration::from_secs(120)).await;
    assert_eq!(job["status"], "succeeded", "{job:#}");
    assert!(
        hits.load(Ordering::SeqCst) >= 2,
        "the source was fetched again"
    );
    let events = stack.get_ok(&format!("/v1/jobs/{id}/events")).await;
    assert!(
        events["events"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|e| e["type"] == "PhaseRetryScheduled" && e["data"]["phase"] == "ingest"),
        "{events:#}"
    );
    let cluster = stack.cluster();
    let end = cluster.tool_ok(
        "kafka-get-offsets",
        &[
            "--bootstrap-server",
            &cluster.bootstrap,
            "--topic",
            "sprocket.ingest.retry",
        ],
    );
    let held: i64 = end
        .lines()
        .filter_map(|l| l.rsplit(':').next()?.trim().parse::<i64>().ok())
        .sum();
    assert!(
        held > 0,
        "nothing was written to sprocket.ingest.retry: {end}"
    );
}

/// Serves `body` over HTTP on loopback, answering the first request 503.
fn flaky_server(body: Vec<u8>) -> (String, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    let addr = http::serve("127.0.0.1", move |_| {
        if counted.fetch_add(1, Ordering::SeqCst) == 0 {
            http::reply("503 Service Unavailable", &[], b"")
        } else {
            http::reply("200 OK", &[("Content-Type", "video/mp4")], &body)
        }
    });
    (format!("http://{addr}/clip.mp4"), hits)
}

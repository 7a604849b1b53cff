//! Undecodable events on the topics Sprocket consumes, produced with kcat as an
//! outside producer would: on a work or retry topic they land on that phase's
//! dead letter topic with the reason in headers; on `sprocket.events` the
//! projector skips them. Either way the partition carries on.

use std::time::{Duration, Instant};

use serde_json::json;
use sprocket_core::{Phase, Topics};
use sprocket_tests::{event_types, kcat_consume, kcat_produce, video, TestApp};

/// The bad payloads for job key `key`: (what, payload, what the reason must say).
fn bad_payloads(key: &str) -> Vec<(&'static str, Vec<u8>, &'static str)> {
    // Confluent wire format with schema id 0x7fff, which the registry never issued.
    let mut unknown_id = vec![0, 0, 0, 0x7f, 0xff];
    unknown_id.extend(
        json!({"job_id": key, "type": "JobSubmitted", "data": {}})
            .to_string()
            .as_bytes(),
    );
    vec![
        (
            "unknown schema id",
            unknown_id,
            "schema id 32767 is not known to the schema registry",
        ),
        (
            "invalid JSON",
            format!(r#"{{"job_id": "{key}", "type": "#).into_bytes(),
            "payload is not valid JSON",
        ),
        (
            "unknown event type",
            json!({"job_id": key, "type": "NoSuchType", "data": {}})
                .to_string()
                .into_bytes(),
            r#"unknown event type "NoSuchType""#,
        ),
    ]
}

/// The value of header `name` in a kcat `%h` line (`a=1,b=2`), up to the next
/// header; `next` names the header that follows it.
fn header<'a>(line: &'a str, name: &str, next: &str) -> &'a str {
    let from = line
        .find(&format!("{name}="))
        .unwrap_or_else(|| panic!("no {name} in {line}"))
        + name.len()
        + 1;
    let rest = &line[from..];
    rest.find(&format!(",{next}="))
        .map_or(rest, |end| &rest[..end])
}

/// Submits a job with id `key` from a path source with the minimal recipe and
/// waits for it to succeed.
async fn a_real_job_succeeds(app: &TestApp, key: &str) {
    let src = app.inbox().join(format!("{key}.mp4"));
    video::with_cuts(&src, &[20], 10, false);
    let (s, body) = app
        .post_job(
            json!({"job_id": key, "source": {"path": src.to_str().unwrap()}, "recipe": "minimal"}),
        )
        .await;
    assert_eq!(s, 202, "{body}");
    let job = app.wait_terminal(key, Duration::from_secs(120)).await;
    assert_eq!(job["status"], "succeeded", "{job:#}");
}

/// `(partition, offset)` of each message keyed `key` on `topic`.
fn positions(broker: &str, topic: &str, key: &str) -> Vec<(i32, i64)> {
    kcat_consume(broker, topic, "%k %p %o\n")
        .lines()
        .filter_map(|l| l.strip_prefix(&format!("{key} ")))
        .map(|l| {
            let (p, o) = l.split_once(' ').unwrap();
            (p.parse().unwrap(), o.parse().unwrap())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_events_on_every_work_and_retry_topic_are_dead_lettered_and_the_partition_moves_on() {
    let app = TestApp::start().await;
    let broker = app.kafka();
    let topics = Topics::new("sprocket.");
    let key = "bad-events";
    let bad = bad_payloads(key);
    // (topic, its phase): every work topic past the intake, and every retry topic.
    let mut table: Vec<(String, Phase)> = [Phase::Analyze, Phase::Render, Phase::Archive]
        .map(|p| (topics.phase(p), p))
        .to_vec();
    table.extend(Phase::ALL.map(|p| (topics.retry(p), p)));
    for (topic, _) in &table {
        for (_, payload, _) in &bad {
            kcat_produce(&broker, topic, key, payload);
        }
    }
    // A real job with the same key (so the same partitions) comes after them.
    a_real_job_succeeds(&app, key).await;

    for (topic, phase) in &table {
        let dlq = topics.dlq(*phase);
        let bad_at = positions(&broker, topic, key);
        assert!(bad_at.len() >= bad.len(), "{topic}: {bad_at:?}");
        let start = Instant::now();
        let lines = loop {
            let text = kcat_consume(&broker, &dlq, "%k %S %h\n");
            let lines: Vec<String> = text
                .lines()
                .filter(|l| header(l, "dlq-topic", "dlq-partition") == topic.as_str())
                .map(str::to_owned)
                .collect();
            if lines.len() >= bad.len() || start.elapsed() > Duration::from_secs(60) {
                break lines;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        assert_eq!(lines.len(), bad.len(), "{topic} → {dlq}: {lines:#?}");
        // In the order produced, each with its payload kept and its cause named.
        for ((what, payload, cause), (line, (partition, offset))) in
            bad.iter().zip(lines.iter().zip(&bad_at))
        {
            let reason = header(line, "dlq-reason", "dlq-topic");
            assert!(
                reason.starts_with("undecodable message: ") && reason.contains(cause),
                "{topic}, {what}: {reason}"
            );
            assert!(
                line.starts_with(&format!("{key} {} ", payload.len())),
                "{topic}, {what}: the payload is not kept as it was: {line}"
            );
            assert_eq!(
                header(line, "dlq-partition", "dlq-offset"),
                partition.to_string()
            );
            assert_eq!(
                header(line, "dlq-offset", "producer"),
                offset.to_string(),
                "{topic}, {what}"
            );
        }
        // On a work topic the good job's item came after the bad ones, on their
        // partition: that partition did not stall.
        if !topic.ends_with(".retry") {
            let (partition, last_bad) = bad_at[bad.len() - 1];
            assert!(
                bad_at[bad.len()..]
                    .iter()
                    .any(|(p, o)| *p == partition && *o > last_bad),
                "{topic}: no later item of the real job on partition {partition}: {bad_at:?}"
            );
        }
    }
    app.dev.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_events_on_the_events_topic_are_skipped_and_the_projector_carries_on() {
    let app = TestApp::start().await;
    let broker = app.kafka();
    let events = Topics::new("sprocket.").events();
    let key = "bad-history";
    let bad = bad_payloads(key);
    for (_, payload, _) in &bad {
        kcat_produce(&broker, &events, key, payload);
    }
    // The real job's events follow the bad ones on the same partition, and the
    // projection still shows every one of them.
    a_real_job_succeeds(&app, key).await;
    let at = positions(&broker, &events, key);
    let (partition, last_bad) = at[bad.len() - 1];
    assert!(
        at[bad.len()..]
            .iter()
            .all(|(p, o)| *p == partition && *o > last_bad),
        "{at:?}"
    );
    let (_, history) = app.get(&format!("/v1/jobs/{key}/events")).await;
    let types = event_types(&history);
    assert_eq!(
        types.first().map(String::as_str),
        Some("JobSubmitted"),
        "{types:?}"
    );
    assert_eq!(
        types.last().map(String::as_str),
        Some("JobSucceeded"),
        "{types:?}"
    );
    assert!(
        !types.iter().any(|t| t == "NoSuchType" || t.is_empty()),
        "{types:?}"
    );
    app.dev.stop().await;
}

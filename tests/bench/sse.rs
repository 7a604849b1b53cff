//! `cargo bench -p sprocket-tests --bench sse`: how far the live event
//! stream (`GET /v1/events/stream`) runs behind `sprocket.events`, on
//! embedded defaults (`sprocket dev` in process: the embedded broker,
//! SQLite, the projector's default batching and the stream's poll).
//!
//! One read_committed consumer on `sprocket.events` notes when each event
//! becomes readable there; one Server-Sent Events client notes when the
//! same event (by `event_id`) arrives on the stream. Jobs of the `minimal`
//! recipe are submitted one after another at a steady pace, so events come
//! both alone and in bursts. The report gives the distribution of the
//! difference per event, and ends with one line:
//! `sse: p50 <ms> ms, p95 <ms> ms, max <ms> ms behind sprocket.events over <n> events (target 1000 ms)`.
//! What it means: `tests/bench/SSE.md`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde_json::{json, Value};
use sprocket_platform::config::Config;
use sprocket_server::dev::{Dev, DevOptions};

/// Jobs submitted, and the pause between two submissions.
const JOBS: usize = 30;
const PACE: Duration = Duration::from_millis(700);

type Seen = Arc<Mutex<HashMap<String, Instant>>>;

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() -> anyhow::Result<()> {
    let data = tempfile::tempdir()?;
    let opts = DevOptions {
        data_dir: data.path().to_owned(),
        api_addr: "127.0.0.1:0".into(),
        kafka_addr: "127.0.0.1:0".into(),
        registry_addr: "127.0.0.1:0".into(),
        workers: sprocket_core::Phase::ALL.to_vec(),
        kafka: None,
        registry: None,
    };
    let dev = Dev::start(&opts, Config::default()).await?;
    let url = dev.api_url();
    let http = sprocket_tests::api::client(Some(&dev.api_key));

    let on_kafka: Seen = Default::default();
    let on_stream: Seen = Default::default();
    let kafka = tokio::spawn(read_kafka(dev.infra.bootstrap_servers(), on_kafka.clone()));
    let stream = tokio::spawn(read_stream(
        format!("{url}/v1/events/stream"),
        dev.api_key.clone(),
        on_stream.clone(),
    ));
    // Both readers are at the end before anything is written.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let clip = data.path().join("inbox/clip.mp4");
    sprocket_tests::video::with_cuts(&clip, &[10, 10], 10, false);
    let started = Instant::now();
    let mut ids = Vec::new();
    for i in 0..JOBS {
        let up = sprocket_tests::api::upload(&http, &url, &clip).await;
        let id = format!("sse-{i}");
        let (status, body) = sprocket_tests::api::post_json(
            &http,
            &format!("{url}/v1/jobs"),
            &json!({"job_id": id, "source": {"upload": up["upload"]}, "recipe": "minimal"}),
        )
        .await;
        anyhow::ensure!(status == 202, "submitting: {status} {body}");
        ids.push(id);
        tokio::time::sleep(PACE).await;
    }
    for id in &ids {
        loop {
            let (_, job) = sprocket_tests::api::get(&http, &format!("{url}/v1/jobs/{id}")).await;
            if sprocket_tests::api::is_terminal(&job) {
                break;
            }
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(600),
                "{id} never ended"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    // The last events reach the stream.
    tokio::time::sleep(Duration::from_secs(3)).await;
    kafka.abort();
    stream.abort();

    let k = on_kafka.lock().unwrap().clone();
    let s = on_stream.lock().unwrap().clone();
    let mut behind: Vec<f64> = k
        .iter()
        .filter_map(|(id, at)| {
            s.get(id)
                .map(|got| got.saturating_duration_since(*at).as_secs_f64() * 1000.0)
        })
        .collect();
    let missing = k.keys().filter(|id| !s.contains_key(*id)).count();
    behind.sort_by(f64::total_cmp);
    anyhow::ensure!(!behind.is_empty(), "no event was seen on both");
    let q = |p: f64| behind[((behind.len() - 1) as f64 * p).round() as usize];
    println!("# Live events behind sprocket.events (embedded defaults)\n");
    println!("{JOBS} `minimal` jobs submitted {PACE:?} apart; {} events on sprocket.events, {} on the stream, {missing} of Kafka's never on the stream.\n", k.len(), s.len());
    println!("| percentile | behind (ms) |\n|---|---|");
    for (name, p) in [
        ("p50", 0.5),
        ("p90", 0.9),
        ("p95", 0.95),
        ("p99", 0.99),
        ("max", 1.0),
    ] {
        println!("| {name} | {:.0} |", q(p));
    }
    println!();
    dev.stop().await;
    anyhow::ensure!(missing == 0, "{missing} events never reached the stream");
    println!(
        "sse: p50 {:.0} ms, p95 {:.0} ms, max {:.0} ms behind sprocket.events over {} events (target 1000 ms)",
        q(0.5),
        q(0.95),
        q(1.0),
        behind.len()
    );
    Ok(())
}

/// Notes when each event id becomes readable (read_committed) on
/// sprocket.events, reading from the end on.
async fn read_kafka(bootstrap: String, seen: Seen) {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("group.id", "sse-bench")
        .set("isolation.level", "read_committed")
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "10")
        .create()
        .expect("a consumer");
    let topic = "sprocket.events";
    let md = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("metadata");
    let mut tpl = TopicPartitionList::new();
    for p in md.topics()[0].partitions() {
        tpl.add_partition_offset(topic, p.id(), Offset::End)
            .unwrap();
    }
    consumer.assign(&tpl).expect("assigned");
    loop {
        let Ok(m) = consumer.recv().await else {
            continue;
        };
        let now = Instant::now();
        let payload = m.payload().unwrap_or_default();
        // The Confluent wire format: a zero byte and a 4-byte schema id first.
        let json = if payload.first() == Some(&0) && payload.len() > 5 {
            &payload[5..]
        } else {
            payload
        };
        if let Ok(v) = serde_json::from_slice::<Value>(json) {
            if let Some(id) = v["event_id"].as_str() {
                seen.lock().unwrap().entry(id.to_owned()).or_insert(now);
            }
        }
    }
}

/// Notes when each event id arrives on the tenant's event stream.
async fn read_stream(url: String, key: String, seen: Seen) {
    let resp = reqwest::Client::new()
        .get(&url)
        .bearer_auth(key)
        .send()
        .await
        .expect("the stream opens");
    let mut body = resp.bytes_stream();
    let mut line = Vec::new();
    while let Some(Ok(chunk)) = body.next().await {
        let now = Instant::now();
        for &b in chunk.iter() {
            if b != b'\n' {
                line.push(b);
                continue;
            }
            if let Some(data) = line.strip_prefix(b"data:") {
                if let Ok(v) = serde_json::from_slice::<Value>(data) {
                    if let Some(id) = v["event_id"].as_str() {
                        seen.lock().unwrap().entry(id.to_owned()).or_insert(now);
                    }
                }
            }
            line.clear();
        }
    }
}

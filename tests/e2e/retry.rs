//! Retries that do not block: a retryable failure schedules the next attempt on
//! `sprocket.<phase>.retry` with backoff, and the partition moves on meanwhile.
//! Phase time limits stop the work and count as retryable failures.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::ClientConfig;
use serde_json::json;
use sprocket_core::event::{Artifact, MediaAnalyzed};
use sprocket_core::{Envelope, EventBody, Phase, WorkItem};
use sprocket_platform::bus::Bus;
use sprocket_platform::config::Config;
use sprocket_workers::{run_worker, Cx, Done, PhaseWork, Stepper, Stores, WorkError};

use crate::runtime::{item, produce, setup};

/// Analyze work that fails retryably the first `fail_times` label's attempts.
#[derive(Default)]
struct Flaky {
    tries: Mutex<HashMap<String, u32>>,
}

#[async_trait]
impl PhaseWork for Flaky {
    fn phase(&self) -> Phase {
        Phase::Analyze
    }

    async fn run(&self, item: &WorkItem, _cx: &Cx) -> Result<Done, WorkError> {
        let fail: u32 = item
            .labels
            .get("fail_times")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let sleep: u64 = item
            .labels
            .get("sleep_ms")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        tokio::time::sleep(Duration::from_millis(sleep)).await;
        let n = {
            let mut t = self.tries.lock().unwrap();
            let n = t.entry(item.job_id.to_string()).or_default();
            *n += 1;
            *n
        };
        if n <= fail {
            return Err(WorkError::internal(
                Phase::Analyze,
                format!("transient failure {n}"),
            ));
        }
        let analysis = Artifact {
            name: "analysis.json".into(),
            key: format!("{}analysis.json", item.prefix()),
            bytes: 0,
            sha256: String::new(),
            content_type: "application/json".into(),
        };
        Ok(Done {
            event: EventBody::MediaAnalyzed(MediaAnalyzed {
                analysis: analysis.clone(),
                frames: 0,
                fps: 25.0,
                shots: 0,
                summary: None,
                thumbnails: vec![],
            }),
            artifacts: vec![analysis],
            media: None,
        })
    }
}

fn labelled(job: &str, labels: &[(&str, &str)], step: serde_json::Value) -> Envelope {
    let mut env = item(job, 0);
    if let EventBody::WorkItem(w) = &mut env.body {
        for (k, v) in labels {
            w.labels.insert((*k).into(), (*v).into());
        }
        if let Some(s) = w
            .recipe
            .steps
            .iter_mut()
            .find(|s| s.phase == Phase::Analyze)
        {
            s.params = step.as_object().cloned().unwrap_or_default();
        }
    }
    env
}

/// Reads committed events until `done` says the history is complete.
async fn history(cfg: &Config, bus: &Bus, done: impl Fn(&[Envelope]) -> bool) -> Vec<Envelope> {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &cfg.kafka.brokers)
        .set("group.id", format!("observer-{}", uuid::Uuid::now_v7()))
        .set("isolation.level", "read_committed")
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&[&bus.topics.events()]).unwrap();
    let mut seen = Vec::new();
    while !done(&seen) {
        let m = tokio::time::timeout(Duration::from_secs(90), consumer.recv())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "history incomplete: {:?}",
                    seen.iter()
                        .map(|e: &Envelope| (e.job_id.to_string(), e.kind().0))
                        .collect::<Vec<_>>()
                )
            })
            .unwrap();
        seen.push(
            bus.codec
                .decode(m.payload().unwrap(), || unreachable!())
                .await
                .unwrap(),
        );
    }
    seen
}

fn of<'a>(events: &'a [Envelope], job: &str, kind: &str) -> Vec<&'a Envelope> {
    events
        .iter()
        .filter(|e| e.job_id.as_str() == job && e.kind().0 == kind)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn retries_wait_on_the_retry_topic_while_the_partition_moves_on() {
    let (_infra, bus, cfg) = setup(&[]).await;
    let worker = run_worker(
        Stepper::new(
            Arc::new(Flaky::default()),
            bus.clone(),
            Stores::open(&cfg).unwrap(),
            cfg.clone(),
        )
        .unwrap(),
    )
    .unwrap();
    let retry = json!({"retry": {"max_attempts": 4, "initial_delay_ms": 1500, "multiplier": 2.0}});
    produce(&bus, &labelled("flaky", &[("fail_times", "2")], retry), 0).await;
    produce(&bus, &labelled("behind", &[], json!({})), 0).await;
    let events = history(&cfg, &bus, |e| {
        of(e, "flaky", "MediaAnalyzed").len() == 1 && of(e, "behind", "MediaAnalyzed").len() == 1
    })
    .await;
    let pos = |job: &str, kind: &str| {
        events
            .iter()
            .position(|e| e.job_id.as_str() == job && e.kind().0 == kind)
            .unwrap()
    };
    assert!(
        pos("behind", "MediaAnalyzed") < pos("flaky", "MediaAnalyzed"),
        "the job behind waited for the retries"
    );

    let scheduled = of(&events, "flaky", "PhaseRetryScheduled");
    assert_eq!(scheduled.len(), 2);
    let delays: Vec<u64> = scheduled
        .iter()
        .map(|e| match &e.body {
            EventBody::PhaseRetryScheduled(r) => {
                assert_eq!(r.cause.code, "internal");
                r.delay_ms
            }
            _ => unreachable!(),
        })
        .collect();
    assert!(
        (750..=1500).contains(&delays[0]) && (1500..=3000).contains(&delays[1]),
        "backoff with jitter: {delays:?}"
    );
    assert_eq!(
        scheduled.iter().map(|e| e.attempt).collect::<Vec<_>>(),
        [1, 2]
    );
    assert_eq!(of(&events, "flaky", "MediaAnalyzed")[0].attempt, 3);
    assert_eq!(of(&events, "flaky", "PhaseFailed").len(), 2);
    assert!(of(&events, "flaky", "JobFailed").is_empty());
    let retried = sprocket_platform::metrics::metrics()
        .retries
        .with_label_values(&["analyze"])
        .get();
    assert!(
        retried >= 2,
        "sprocket_retries_total{{phase=analyze}} = {retried}"
    );
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn going_over_the_time_limit_stops_the_work_as_a_retryable_failure() {
    let (_infra, bus, cfg) = setup(&[]).await;
    let worker = run_worker(
        Stepper::new(
            Arc::new(Flaky::default()),
            bus.clone(),
            Stores::open(&cfg).unwrap(),
            cfg.clone(),
        )
        .unwrap(),
    )
    .unwrap();
    let step = json!({"timeout_s": 1, "retry": {"max_attempts": 2, "initial_delay_ms": 100}});
    produce(
        &bus,
        &labelled("slowpoke", &[("sleep_ms", "10000")], step),
        1,
    )
    .await;
    let events = history(&cfg, &bus, |e| {
        !of(e, "slowpoke", "JobDeadLettered").is_empty()
    })
    .await;
    let failures = of(&events, "slowpoke", "PhaseFailed");
    assert_eq!(failures.len(), 2, "two attempts, both over the limit");
    for f in failures {
        let EventBody::PhaseFailed(p) = &f.body else {
            unreachable!()
        };
        assert!(p.retryable && p.error.code == "timeout", "{p:?}");
    }
    assert_eq!(of(&events, "slowpoke", "PhaseRetryScheduled").len(), 1);
    assert_eq!(of(&events, "slowpoke", "JobFailed").len(), 1);
    worker.stop().await;
}

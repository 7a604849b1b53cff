//! Watching a stack from outside, as a user would: a `read_committed` consumer
//! of `sprocket.events` and the four phase topics, so an event counts once its
//! transaction committed. Events are read lightly (envelope fields and
//! `data.phase`, no schema validation), so watching costs this process little
//! of the CPU the workers need.

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use serde::Deserialize;
use sprocket_core::Phase;
use sprocket_platform::bus::Bus;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::broker::PARTITIONS;
use crate::stats::{now_ms, STALL};

/// Where a record sits: topic, partition, offset.
pub type Position = (String, i32, i64);

/// A record the observer read.
#[derive(Debug, Clone)]
pub struct Seen {
    /// The record's key: the job id.
    pub job: String,
    pub what: What,
    pub position: Position,
    /// The record's CreateTime (ms): when the producer enqueued it.
    pub created_ms: f64,
    /// When this observer read it (ms).
    pub arrived_ms: f64,
}

#[derive(Debug, Clone)]
pub enum What {
    /// A work item on a phase topic (not decoded).
    Item(Phase),
    /// An event on `sprocket.events`.
    Event {
        kind: String,
        /// `data.phase`, where the event has one.
        phase: Option<Phase>,
        occurred_ms: f64,
    },
}

#[derive(Deserialize)]
struct Light {
    #[serde(rename = "type")]
    kind: String,
    occurred_at: chrono::DateTime<chrono::Utc>,
    #[serde(default)]
    data: Option<LightData>,
}

#[derive(Deserialize)]
struct LightData {
    #[serde(default)]
    phase: Option<String>,
}

pub struct Observer {
    rx: mpsc::UnboundedReceiver<anyhow::Result<Seen>>,
    task: JoinHandle<()>,
}

impl Observer {
    /// Subscribes in a group of its own and returns once it owns every
    /// partition, so nothing submitted afterwards is missed.
    pub async fn start(bus: &Bus) -> anyhow::Result<Observer> {
        let group = format!("{}-observer", bus.topics.named("bench"));
        let consumer = Arc::new(bus.consumer(&group)?);
        let mut topics = vec![bus.topics.events()];
        topics.extend(Phase::ALL.map(|p| bus.topics.phase(p)));
        let names: Vec<&str> = topics.iter().map(String::as_str).collect();
        consumer.subscribe(&names)?;
        let (tx, rx) = mpsc::unbounded_channel();
        let events = bus.topics.events();
        let phases = Phase::ALL.map(|p| (bus.topics.phase(p), p));
        let polled = consumer.clone();
        let task = tokio::spawn(async move {
            let consumer = polled;
            loop {
                let seen = match consumer.recv().await {
                    Ok(m) => read(&m, &events, &phases),
                    Err(e) => {
                        eprintln!("observer: consumer error: {e}");
                        continue;
                    }
                };
                if tx.send(seen).is_err() {
                    return;
                }
            }
        });
        let obs = Observer { rx, task };
        wait_assigned(&consumer, topics.len() * PARTITIONS as usize).await?;
        Ok(obs)
    }

    /// The next record, or an error when none comes within [`STALL`].
    pub async fn next(&mut self) -> anyhow::Result<Seen> {
        match tokio::time::timeout(STALL, self.rx.recv()).await {
            Ok(Some(seen)) => seen,
            Ok(None) => bail!("the observer stopped"),
            Err(_) => bail!("nothing arrived for {STALL:?}"),
        }
    }
}

impl Observer {
    /// Stops reading; returns once the consumer is closed.
    pub async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

fn read<M: Message>(m: &M, events: &str, phases: &[(String, Phase); 4]) -> anyhow::Result<Seen> {
    let arrived_ms = now_ms();
    let job = String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned();
    let position = (m.topic().to_owned(), m.partition(), m.offset());
    let created_ms = m.timestamp().to_millis().unwrap_or(0) as f64;
    let what = if m.topic() == events {
        let payload = m.payload().unwrap_or_default();
        // The Confluent wire format: a zero byte and a 4-byte schema id first.
        let json = if payload.first() == Some(&0) && payload.len() >= 5 {
            &payload[5..]
        } else {
            payload
        };
        let e: Light = serde_json::from_slice(json)
            .with_context(|| format!("reading an event at {position:?}"))?;
        What::Event {
            kind: e.kind,
            phase: e
                .data
                .and_then(|d| d.phase)
                .and_then(|p| Phase::from_str(&p).ok()),
            occurred_ms: e.occurred_at.timestamp_micros() as f64 / 1000.0,
        }
    } else {
        let phase = phases
            .iter()
            .find(|(t, _)| t == m.topic())
            .map(|(_, p)| *p)
            .context("a record of an unknown topic")?;
        What::Item(phase)
    };
    Ok(Seen {
        job,
        what,
        position,
        created_ms,
        arrived_ms,
    })
}

/// Waits until `consumer` (polled elsewhere) owns `partitions` partitions in
/// all, so no message produced afterwards waits for a rebalance.
pub async fn wait_assigned(consumer: &StreamConsumer, partitions: usize) -> anyhow::Result<()> {
    let within = Duration::from_secs(60);
    let start = Instant::now();
    while start.elapsed() < within {
        if consumer.assignment().is_ok_and(|a| a.count() >= partitions) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("not assigned {partitions} partitions in {within:?}")
}

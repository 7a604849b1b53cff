//! The baseline: a plain rdkafka consume → produce chain on the same embedded
//! broker. A source produces to `hop0`; four relays each read one topic in their
//! own group and produce every message to the next (`hop0` → … → `hop4`); a sink
//! reads `hop4`. Relays are built like Sprocket's runtime — one consumer per hop,
//! one lane per partition handling its messages in order, Sprocket's client
//! settings — with none of its codec, schema validation or media work.
//!
//! Every stage appends wall-clock stamps to the payload: `sent` just before it
//! produces, `recv` when a lane takes the message up, so hop `k` lasted
//! `recv[k] - sent[k]`.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::{json, Value};
use sprocket::dev::Infra;
use sprocket_platform::bus::Bus;
use tokio::sync::mpsc;
use tokio::task::{block_in_place, JoinHandle};

use crate::stats::{now_ms, Samples};

/// Topics a message crosses: source → relay 0 … relay 3 → sink.
pub const HOPS: usize = 5;
/// Padding that brings a message to about 1 KB of JSON.
const PAD: usize = 860;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mode {
    /// Produce, await the acknowledgement, commit the offset (at-least-once).
    AtLeastOnce,
    /// One transaction per message: produce, `send_offsets_to_transaction`, commit;
    /// consumers `read_committed` (Sprocket's worker protocol).
    ExactlyOnce,
}

impl Mode {
    pub fn label(self) -> &'static str {
        match self {
            Mode::AtLeastOnce => "at-least-once",
            Mode::ExactlyOnce => "exactly-once (txn per message)",
        }
    }
}

#[derive(Debug)]
pub struct ChainRun {
    pub mode: Mode,
    pub messages: usize,
    /// First message produced by the source → last one read by the sink.
    pub wall_s: f64,
    /// Per topic crossed, `hop0` … `hop4`.
    pub hops: Vec<Samples>,
    pub e2e: Samples,
}

impl ChainRun {
    pub fn msgs_per_s(&self) -> f64 {
        self.messages as f64 / self.wall_s
    }

    /// Records produced per second over the whole chain (source and relays).
    pub fn records_per_s(&self) -> f64 {
        (self.messages * HOPS) as f64 / self.wall_s
    }
}

/// Pushes `n` messages through a fresh chain named `tag`: all at once (`burst`),
/// or each only after the previous one reached the sink.
pub async fn run(
    infra: &Infra,
    bus: &Bus,
    tag: &str,
    mode: Mode,
    n: usize,
    burst: bool,
    partitions: i32,
) -> anyhow::Result<ChainRun> {
    let topic = |k: usize| format!("bench.{tag}.hop{k}");
    for k in 0..HOPS {
        let broker = infra.broker.as_ref().expect("the bench embeds its broker");
        broker.create_topic(&topic(k), partitions)?;
    }
    let mut tasks: Vec<JoinHandle<anyhow::Result<()>>> = Vec::new();
    let mut consumers = Vec::new();
    for k in 0..HOPS - 1 {
        let c = subscribe(bus, &format!("bench-{tag}-relay{k}"), &topic(k))?;
        consumers.push(c.clone());
        let mut producers = HashMap::new();
        for p in 0..partitions {
            let producer = match mode {
                Mode::AtLeastOnce => bus.producer()?,
                Mode::ExactlyOnce => {
                    bus.transactional_producer(&format!("bench-{tag}-relay{k}-p{p}"))?
                }
            };
            producers.insert(p, producer);
        }
        let relay = Relay {
            mode,
            to: topic(k + 1),
        };
        tasks.push(tokio::spawn(relay.run(c, producers)));
    }
    let sink = subscribe(bus, &format!("bench-{tag}-sink"), &topic(HOPS - 1))?;
    consumers.push(sink.clone());
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Vec<f64>>();
    tasks.push(tokio::spawn(sink_loop(sink, done_tx)));
    wait_assigned(&consumers, partitions).await?;

    let source = bus.producer()?;
    let timeout = Duration::from_secs(60 + if burst { n / 10 } else { 3 * n } as u64);
    let start_ms = now_ms();
    let started = Instant::now();
    let mut arrived: Vec<Vec<f64>> = Vec::with_capacity(n);
    let result: anyhow::Result<()> = async {
        if burst {
            let first = topic(0);
            let sends = (0..n).map(|i| produce(&source, &first, i));
            for r in futures::future::join_all(sends).await {
                r?;
            }
        }
        while arrived.len() < n {
            if !burst {
                produce(&source, &topic(0), arrived.len()).await?;
            }
            let left = timeout.saturating_sub(started.elapsed());
            match tokio::time::timeout(left, done_rx.recv()).await {
                Ok(Some(stamps)) => arrived.push(stamps),
                Ok(None) => bail!("the chain stopped"),
                Err(_) => bail!("{tag}: {} of {n} arrived in {timeout:?}", arrived.len()),
            }
        }
        Ok(())
    }
    .await;
    for t in &tasks {
        t.abort();
    }
    for t in tasks {
        if let Ok(Err(e)) = t.await {
            return Err(e.context(format!("{tag}: a relay failed")));
        }
    }
    result?;

    let mut hops = vec![Samples::default(); HOPS];
    let mut e2e = Samples::default();
    let mut last = start_ms;
    for s in &arrived {
        if s.len() != 2 * HOPS {
            bail!(
                "{tag}: a message carries {} stamps, not {}",
                s.len(),
                2 * HOPS
            );
        }
        for (k, h) in hops.iter_mut().enumerate() {
            h.push(s[2 * k + 1] - s[2 * k]);
        }
        e2e.push(s[2 * HOPS - 1] - s[0]);
        last = last.max(s[2 * HOPS - 1]);
    }
    Ok(ChainRun {
        mode,
        messages: n,
        wall_s: (last - start_ms) / 1000.0,
        hops,
        e2e,
    })
}

fn subscribe(bus: &Bus, group: &str, topic: &str) -> anyhow::Result<Arc<StreamConsumer>> {
    let c = bus.consumer(group)?;
    c.subscribe(&[topic])
        .with_context(|| format!("subscribing to {topic}"))?;
    Ok(Arc::new(c))
}

/// Waits until every consumer owns all partitions of its topic, so no message
/// waits for a rebalance.
async fn wait_assigned(consumers: &[Arc<StreamConsumer>], partitions: i32) -> anyhow::Result<()> {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(60) {
        let all = consumers.iter().all(|c| {
            c.assignment()
                .is_ok_and(|a| a.count() == partitions as usize)
        });
        if all {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("the chain's consumers were not assigned their partitions in 60 s")
}

/// The source's message `i`, keyed like a job, stamped as sent.
async fn produce(p: &FutureProducer, topic: &str, i: usize) -> anyhow::Result<()> {
    let key = format!("bench-job-{i:05}");
    let body = json!({"job_id": key, "seq": i, "stamps": [now_ms()], "pad": "x".repeat(PAD)});
    send(p, topic, &key, &body).await
}

async fn send(p: &FutureProducer, topic: &str, key: &str, body: &Value) -> anyhow::Result<()> {
    let payload = serde_json::to_vec(body)?;
    let rec = FutureRecord::to(topic).key(key).payload(&payload);
    p.send(rec, Duration::from_secs(30))
        .await
        .map_err(|(e, _)| e)
        .with_context(|| format!("producing to {topic}"))?;
    Ok(())
}

/// The payload of `msg` with one more stamp appended.
fn stamped(msg: &OwnedMessage) -> anyhow::Result<Value> {
    let mut body: Value = serde_json::from_slice(msg.payload().unwrap_or_default())?;
    let stamps = body["stamps"].as_array_mut().context("stamps")?;
    stamps.push(json!(now_ms()));
    Ok(body)
}

async fn sink_loop(
    consumer: Arc<StreamConsumer>,
    done: mpsc::UnboundedSender<Vec<f64>>,
) -> anyhow::Result<()> {
    loop {
        let msg = match consumer.recv().await {
            Ok(m) => m.detach(),
            Err(e) => {
                eprintln!("chain sink: consumer error: {e}");
                continue;
            }
        };
        let body = stamped(&msg)?;
        let stamps = body["stamps"]
            .as_array()
            .context("stamps")?
            .iter()
            .filter_map(Value::as_f64)
            .collect();
        let _ = done.send(stamps);
    }
}

#[derive(Clone)]
struct Relay {
    mode: Mode,
    to: String,
}

impl Relay {
    /// Routes each partition's messages to its lane, in order.
    /// `producers` holds one ready producer per partition (transactions initialised).
    async fn run(
        self,
        consumer: Arc<StreamConsumer>,
        mut producers: HashMap<i32, FutureProducer>,
    ) -> anyhow::Result<()> {
        let mut lanes: HashMap<i32, mpsc::UnboundedSender<OwnedMessage>> = HashMap::new();
        let mut tasks = tokio::task::JoinSet::new();
        loop {
            tokio::select! {
                Some(Ok(Err(e))) = tasks.join_next() => return Err(e),
                msg = consumer.recv() => {
                    let msg = match msg {
                        Ok(m) => m.detach(),
                        Err(e) => {
                            eprintln!("chain relay: consumer error: {e}");
                            continue;
                        }
                    };
                    let lane = match lanes.entry(msg.partition()) {
                        Entry::Occupied(e) => e.into_mut(),
                        Entry::Vacant(e) => {
                            let producer = producers
                                .remove(e.key())
                                .context("a producer per partition")?;
                            let (tx, rx) = mpsc::unbounded_channel();
                            tasks.spawn(self.clone().lane(consumer.clone(), producer, rx));
                            e.insert(tx)
                        }
                    };
                    let _ = lane.send(msg);
                }
            }
        }
    }

    async fn lane(
        self,
        consumer: Arc<StreamConsumer>,
        producer: FutureProducer,
        mut rx: mpsc::UnboundedReceiver<OwnedMessage>,
    ) -> anyhow::Result<()> {
        while let Some(msg) = rx.recv().await {
            let mut body = stamped(&msg)?;
            let key = String::from_utf8_lossy(msg.key().unwrap_or_default()).into_owned();
            let mut offsets = TopicPartitionList::new();
            offsets.add_partition_offset(
                msg.topic(),
                msg.partition(),
                Offset::Offset(msg.offset() + 1),
            )?;
            body["stamps"]
                .as_array_mut()
                .context("stamps")?
                .push(json!(now_ms()));
            match self.mode {
                Mode::AtLeastOnce => {
                    send(&producer, &self.to, &key, &body).await?;
                    consumer.commit(&offsets, CommitMode::Async)?;
                }
                Mode::ExactlyOnce => {
                    // The transactional calls block until the broker answers, and
                    // the embedded broker's relay runs on this runtime: keep them
                    // off the async worker threads, or 12 lanes blocking 4 threads
                    // wait for answers no thread is left to relay.
                    let t = Duration::from_secs(30);
                    block_in_place(|| producer.begin_transaction())?;
                    send(&producer, &self.to, &key, &body).await?;
                    let meta = consumer.group_metadata().context("group metadata")?;
                    block_in_place(|| {
                        producer.send_offsets_to_transaction(&offsets, &meta, t)?;
                        producer.commit_transaction(t)
                    })?;
                }
            }
        }
        Ok(())
    }
}

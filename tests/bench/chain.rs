//! The baseline: a plain rdkafka transactional chain on the same broker as the
//! runtime. A source produces to `hop0`; four relays ([`Relay`]) each read one
//! topic in their own group and write every message to the next (`hop0` → …
//! → `hop4`) exactly once; a sink reads `hop4` `read_committed`. So a message
//! crosses four transactional hand-offs, as a Sprocket job does (ingest →
//! analyze → render → archive → `JobSucceeded`).
//!
//! Like the runtime's workers, a chain runs from before its warm-up until the
//! sitting ends, so no measured run pays for starting clients.
//!
//! Every stage appends wall-clock stamps to the payload: `sent` just before
//! its transaction begins (the source: before it produces), `recv` when a lane
//! takes the message up, so hop `k` lasted `recv[k] - sent[k]`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::{json, Value};
use sprocket_platform::bus::Bus;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::broker::{Broker, PARTITIONS};
use crate::cpu::Cpu;
use crate::observe::wait_assigned;
use crate::relay::{stamped, Relay, TxnTimes};
use crate::rows::Batch;
use crate::stats::{now_ms, Samples, STALL};

/// Topics a message crosses: source → relay 0 … relay 3 → sink.
pub const HOPS: usize = 5;
/// Padding that brings a message to about 1 KB of JSON, near a work item's size.
const PAD: usize = 860;

/// What one batch of messages measured: its [`Batch`] (hops `hop0` … `hop4`,
/// end to end source → sink) and the relays' transactions.
#[derive(Debug)]
pub struct ChainRun {
    pub batch: Batch,
    pub txn: TxnTimes,
}

/// A running chain: its relays and sink, and the source's producer, kept
/// from the warm-up through every measured run as the runtime's workers are.
pub struct Chain {
    name: String,
    source: FutureProducer,
    times: Arc<Mutex<TxnTimes>>,
    /// Each message the sink read: its number and its stamps.
    done: mpsc::UnboundedReceiver<(usize, Vec<f64>)>,
    tasks: Vec<JoinHandle<anyhow::Result<()>>>,
}

impl Chain {
    /// Makes the topics of a chain named `tag` and starts its relays, whose
    /// lanes commit up to `max_batch` messages per transaction, and its sink;
    /// returns once every consumer owns its partitions.
    pub async fn start(
        broker: &Broker,
        bus: &Bus,
        tag: &str,
        max_batch: usize,
    ) -> anyhow::Result<Chain> {
        let name = bus.topics.named(&format!("chain-{tag}"));
        let topics: Vec<String> = (0..HOPS).map(|k| hop(&name, k)).collect();
        broker.topics(bus, &topics).await?;
        let times = Arc::new(Mutex::new(TxnTimes::default()));
        let mut tasks: Vec<JoinHandle<anyhow::Result<()>>> = Vec::new();
        let mut consumers = Vec::new();
        for k in 0..HOPS - 1 {
            let group = format!("{name}-relay{k}");
            let c = subscribe(bus, &group, &topics[k])?;
            consumers.push(c.clone());
            let mut producers = HashMap::new();
            for p in 0..PARTITIONS {
                producers.insert(p, bus.transactional_producer(&format!("{group}-p{p}"))?);
            }
            let relay = Relay {
                to: topics[k + 1].clone(),
                max_batch,
                times: times.clone(),
            };
            tasks.push(tokio::spawn(relay.run(c, producers)));
        }
        let sink = subscribe(bus, &format!("{name}-sink"), &topics[HOPS - 1])?;
        consumers.push(sink.clone());
        let (done_tx, done) = mpsc::unbounded_channel();
        tasks.push(tokio::spawn(sink_loop(sink, done_tx)));
        for c in &consumers {
            wait_assigned(c, PARTITIONS as usize).await?;
        }
        Ok(Chain {
            name,
            source: bus.producer()?,
            times,
            done,
            tasks,
        })
    }

    /// Pushes `n` messages through: all at once (`burst`), or each only after
    /// the previous one reached the sink.
    pub async fn run(
        &mut self,
        broker: &Broker,
        n: usize,
        burst: bool,
    ) -> anyhow::Result<ChainRun> {
        let first = hop(&self.name, 0);
        let cpu = Cpu::start(broker);
        let start_ms = now_ms();
        let mut arrived: Vec<Vec<f64>> = Vec::with_capacity(n);
        let mut seen = vec![false; n];
        if burst {
            let sends = (0..n).map(|i| produce(&self.source, &first, i));
            for r in futures::future::join_all(sends).await {
                r?;
            }
        }
        while arrived.len() < n {
            if !burst {
                produce(&self.source, &first, arrived.len()).await?;
            }
            match tokio::time::timeout(STALL, self.done.recv()).await {
                Ok(Some((seq, stamps))) => {
                    // Exactly once: a message read twice (or one of another
                    // run) means the numbers would be wrong.
                    if seen.get(seq).is_none_or(|s| *s) {
                        bail!("{}: message {seq} arrived twice or unasked", self.name);
                    }
                    seen[seq] = true;
                    arrived.push(stamps);
                }
                Ok(None) => return Err(self.failure().await),
                Err(_) => bail!(
                    "{}: {} of {n} arrived, then nothing for {STALL:?}",
                    self.name,
                    arrived.len()
                ),
            }
        }
        let cpu = cpu.stop();
        let mut hops = vec![Samples::default(); HOPS];
        let mut e2e = Samples::default();
        let mut last = start_ms;
        for s in &arrived {
            if s.len() != 2 * HOPS {
                bail!("a message carries {} stamps, not {}", s.len(), 2 * HOPS);
            }
            for (k, h) in hops.iter_mut().enumerate() {
                h.push(s[2 * k + 1] - s[2 * k]);
            }
            e2e.push(s[2 * HOPS - 1] - s[0]);
            last = last.max(s[2 * HOPS - 1]);
        }
        let txn = std::mem::take(&mut *self.times.lock().unwrap_or_else(|e| e.into_inner()));
        Ok(ChainRun {
            batch: Batch {
                items: n,
                wall_s: (last - start_ms) / 1000.0,
                hops,
                e2e,
                cpu,
            },
            txn,
        })
    }

    /// Why the chain stopped: the first relay or sink that failed.
    async fn failure(&mut self) -> anyhow::Error {
        for t in self.tasks.drain(..) {
            if let Ok(Err(e)) = t.await {
                return e.context(format!("{}: a relay failed", self.name));
            }
        }
        anyhow::anyhow!("{}: the chain stopped", self.name)
    }
}

impl Chain {
    /// Stops the relays and the sink; returns once their clients are closed.
    pub async fn stop(self) {
        for t in &self.tasks {
            t.abort();
        }
        futures::future::join_all(self.tasks).await;
    }
}

fn hop(name: &str, k: usize) -> String {
    format!("{name}.hop{k}")
}

fn subscribe(bus: &Bus, group: &str, topic: &str) -> anyhow::Result<Arc<StreamConsumer>> {
    let c = bus.consumer(group)?;
    c.subscribe(&[topic])
        .with_context(|| format!("subscribing to {topic}"))?;
    Ok(Arc::new(c))
}

/// The source's message `i`, keyed like a job, stamped as sent.
async fn produce(p: &FutureProducer, topic: &str, i: usize) -> anyhow::Result<()> {
    let key = format!("bench-job-{i:05}");
    let body = json!({"job_id": key, "seq": i, "stamps": [now_ms()], "pad": "x".repeat(PAD)});
    let payload = serde_json::to_vec(&body)?;
    let rec = FutureRecord::to(topic).key(&key).payload(&payload);
    p.send(rec, Duration::from_secs(30))
        .await
        .map_err(|(e, _)| e)
        .with_context(|| format!("producing to {topic}"))?;
    Ok(())
}

async fn sink_loop(
    consumer: Arc<StreamConsumer>,
    done: mpsc::UnboundedSender<(usize, Vec<f64>)>,
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
        let seq = body["seq"].as_u64().context("seq")? as usize;
        let _ = done.send((seq, stamps));
    }
}

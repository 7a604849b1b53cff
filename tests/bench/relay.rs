//! A relay of the baseline chain: one topic in, the next out, exactly once.
//! Built like Sprocket's runtime — one consumer, one lane per partition with
//! a transactional producer of its own, the same client settings (`Bus`) and
//! the same transaction (records enqueued, `send_offsets_to_transaction`,
//! commit, which flushes) — with none of its codec, events or work.
//!
//! A lane batches what it holds: it takes the next message and whatever else
//! of its partition is already waiting, up to `max_batch`, and commits them in
//! one transaction (`max_batch = 1`: a transaction per message, as Sprocket).
//! Like Sprocket's `commit.rs`, it awaits the records' delivery before
//! `send_offsets_to_transaction`: records still in flight at the commit would
//! cost about 100 ms (rust-rdkafka's `commit_transaction` first flushes by
//! polling the producer from the calling thread in 100 ms steps, while a
//! `FutureProducer`'s own thread takes the delivery reports).

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio::task::block_in_place;

use crate::stats::{now_ms, Lap, Samples};

/// How long each step of the relays' transactions took (ms), and how many
/// messages each carried.
#[derive(Debug, Default, Clone)]
pub struct TxnTimes {
    pub begin: Samples,
    /// Enqueueing the batch's records.
    pub produce: Samples,
    /// Awaiting their delivery.
    pub deliver: Samples,
    pub send_offsets: Samples,
    pub commit: Samples,
    pub batch: Samples,
}

impl TxnTimes {
    pub fn add(&mut self, other: &TxnTimes) {
        self.begin.extend(&other.begin);
        self.produce.extend(&other.produce);
        self.deliver.extend(&other.deliver);
        self.send_offsets.extend(&other.send_offsets);
        self.commit.extend(&other.commit);
        self.batch.extend(&other.batch);
    }
}

#[derive(Clone)]
pub struct Relay {
    pub to: String,
    /// The most messages in one transaction.
    pub max_batch: usize,
    pub times: Arc<Mutex<TxnTimes>>,
}

/// The payload of `msg` with one more stamp appended (now).
pub fn stamped(msg: &OwnedMessage) -> anyhow::Result<Value> {
    let mut body: Value = serde_json::from_slice(msg.payload().unwrap_or_default())?;
    body["stamps"]
        .as_array_mut()
        .context("stamps")?
        .push(json!(now_ms()));
    Ok(body)
}

impl Relay {
    /// Routes each partition's messages to its lane, in order. `producers`
    /// holds one ready producer per partition (transactions initialised).
    pub async fn run(
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
        while let Some(first) = rx.recv().await {
            let mut batch = vec![first];
            while batch.len() < self.max_batch {
                match rx.try_recv() {
                    Ok(m) => batch.push(m),
                    Err(_) => break,
                }
            }
            let mut out = Vec::with_capacity(batch.len());
            for msg in &batch {
                let key = String::from_utf8_lossy(msg.key().unwrap_or_default()).into_owned();
                out.push((key, stamped(msg)?));
            }
            let last = batch.last().expect("a batch holds a message");
            let mut offsets = TopicPartitionList::new();
            offsets.add_partition_offset(
                last.topic(),
                last.partition(),
                Offset::Offset(last.offset() + 1),
            )?;
            let sent = json!(now_ms());
            let payloads = out
                .into_iter()
                .map(|(key, mut body)| {
                    body["stamps"]
                        .as_array_mut()
                        .context("stamps")?
                        .push(sent.clone());
                    Ok((key, serde_json::to_vec(&body)?))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let meta = consumer.group_metadata().context("group metadata")?;
            // The transactional calls block until the broker answers, and the
            // embedded broker's relay runs on this runtime: keep them off the
            // async worker threads, or lanes blocking every thread wait for
            // answers no thread is left to relay.
            let t = Duration::from_secs(30);
            let mut clock = Lap::start();
            let (begin, deliveries) = block_in_place(|| -> anyhow::Result<_> {
                producer.begin_transaction()?;
                let begin = clock.lap();
                let mut deliveries = Vec::with_capacity(payloads.len());
                for (key, payload) in &payloads {
                    let rec = FutureRecord::to(&self.to).key(key).payload(payload);
                    deliveries.push(
                        producer
                            .send_result(rec)
                            .map_err(|(e, _)| e)
                            .with_context(|| format!("producing to {}", self.to))?,
                    );
                }
                Ok((begin, deliveries))
            })?;
            let produce = clock.lap();
            for d in futures::future::join_all(deliveries).await {
                d.context("delivery cancelled")?
                    .map_err(|(e, _)| e)
                    .with_context(|| format!("delivering to {}", self.to))?;
            }
            let deliver = clock.lap();
            let [send_offsets, commit] = block_in_place(|| -> anyhow::Result<_> {
                producer.send_offsets_to_transaction(&offsets, &meta, t)?;
                let send_offsets = clock.lap();
                producer.commit_transaction(t)?;
                Ok([send_offsets, clock.lap()])
            })?;
            let mut times = self.times.lock().unwrap_or_else(|e| e.into_inner());
            times.begin.push(begin);
            times.produce.push(produce);
            times.deliver.push(deliver);
            times.send_offsets.push(send_offsets);
            times.commit.push(commit);
            times.batch.push(batch.len() as f64);
        }
        Ok(())
    }
}

//! The load: job histories produced to Kafka at a steady rate of jobs per
//! second, encoded by the real `Bus`, each message stamped when it was handed
//! to the producer.
//!
//! A job's life is [`SLOTS`] messages [`SPACING`] apart: its submission on the
//! intake (as `POST /v1/jobs` produces it), then its 14 events on
//! `sprocket.events` — `JobSubmitted`, per phase `PhaseStarted`,
//! `PhaseProgress` and its `Media*` completion, then `JobSucceeded`. Jobs start
//! `1 / rate` apart, so at any moment about `rate × 3 s` jobs are in flight and
//! consecutive events belong to different jobs, as they do in production.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail};
use futures::stream::{FuturesUnordered, StreamExt};
use rdkafka::producer::{DeliveryFuture, FutureProducer};
use sprocket_core::{Envelope, EventBody, Phase};
use sprocket_platform::bus::Bus;
use tokio::sync::mpsc;

use crate::history::History;
use crate::stats::now_ms;

/// Time between two messages of one job.
pub const SPACING: Duration = Duration::from_millis(200);

/// Messages per job: the intake submission and 14 events.
pub const SLOTS: usize = 15;

/// How often the producer looks for messages that are due.
const TICK: Duration = Duration::from_millis(2);

/// A steady load.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    pub jobs_per_s: f64,
    pub seconds: f64,
}

impl Load {
    pub fn jobs(&self) -> usize {
        (self.jobs_per_s * self.seconds).round() as usize
    }
}

/// Which topic a message went to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Topic {
    Intake,
    Events,
}

/// One produced message: where it landed, when it was handed to the
/// producer and when the broker's acknowledgement came back (ms since the
/// epoch).
#[derive(Debug, Clone, Copy)]
pub struct Sent {
    pub topic: Topic,
    pub partition: i32,
    pub offset: i64,
    pub at: f64,
    pub acked: f64,
}

/// What a run produced, and how well it kept to the schedule.
pub struct Produced {
    pub sent: Vec<Sent>,
    /// The most a message was handed over after it was due (ms): the
    /// producer's own lateness, which the lags do not include.
    pub behind_ms: f64,
}

/// A job's 14 events: the contract tests' successful history with one
/// progress report per phase.
pub fn history(job: &str) -> Vec<Envelope> {
    let mut h = History::successful(job, 0);
    let mut reported: HashSet<Phase> = HashSet::new();
    h.events.retain(|e| match &e.body {
        EventBody::PhaseProgress(p) => reported.insert(p.phase),
        _ => true,
    });
    h.events
}

/// Produces `load` with job ids `<run>-<n>`; returns once every message is
/// acknowledged.
pub async fn produce(
    bus: &Bus,
    producer: &FutureProducer,
    run: &str,
    load: Load,
) -> anyhow::Result<Produced> {
    let jobs = load.jobs();
    let topics = [
        (Topic::Intake, bus.topics.phase(Phase::Ingest)),
        (Topic::Events, bus.topics.events()),
    ];
    let (tx, rx) = mpsc::unbounded_channel();
    let acks = tokio::spawn(acknowledged(rx));
    // Per slot, the next job whose message in that slot is still to be sent.
    let mut next = [0usize; SLOTS];
    let mut live: HashMap<usize, Vec<Envelope>> = HashMap::new();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let start = Instant::now();
    let mut behind: f64 = 0.0;
    while next[SLOTS - 1] < jobs {
        tick.tick().await;
        let now = start.elapsed().as_secs_f64();
        for (slot, next) in next.iter_mut().enumerate() {
            // Job j's message in `slot` is due at j / rate + slot × SPACING.
            let since = now - slot as f64 * SPACING.as_secs_f64();
            let due = if since < 0.0 {
                0
            } else {
                ((since * load.jobs_per_s).floor() as usize + 1).min(jobs)
            };
            while *next < due {
                let j = *next;
                *next += 1;
                let due_s = j as f64 / load.jobs_per_s + slot as f64 * SPACING.as_secs_f64();
                behind = behind.max(start.elapsed().as_secs_f64() - due_s);
                let events = live
                    .entry(j)
                    .or_insert_with(|| history(&format!("{run}-{j:06}")));
                let (topic, name) = if slot == 0 { &topics[0] } else { &topics[1] };
                let mut env = events[slot.saturating_sub(1)].clone();
                env.occurred_at = chrono::Utc::now();
                let record = bus.record(name, &env).await?;
                let at = now_ms();
                let delivery = producer
                    .send_result(record.future())
                    .map_err(|(e, _)| anyhow!("producing to {name}: {e}"))?;
                tx.send((*topic, at, delivery))
                    .map_err(|_| anyhow!("the acknowledgement task ended"))?;
                if slot == SLOTS - 1 {
                    live.remove(&j);
                }
            }
        }
    }
    drop(tx);
    Ok(Produced {
        sent: acks.await??,
        behind_ms: behind * 1000.0,
    })
}

/// Awaits every delivery, noting when each came back.
async fn acknowledged(
    mut rx: mpsc::UnboundedReceiver<(Topic, f64, DeliveryFuture)>,
) -> anyhow::Result<Vec<Sent>> {
    let mut sent = Vec::new();
    let mut pending = FuturesUnordered::new();
    let mut open = true;
    while open || !pending.is_empty() {
        tokio::select! {
            next = rx.recv(), if open => match next {
                Some((topic, at, delivery)) => {
                    pending.push(async move { (topic, at, delivery.await) });
                }
                None => open = false,
            },
            Some((topic, at, delivered)) = pending.next(), if !pending.is_empty() => {
                let acked = now_ms();
                match delivered {
                    Ok(Ok(d)) => sent.push(Sent {
                        topic,
                        partition: d.partition,
                        offset: d.offset,
                        at,
                        acked,
                    }),
                    Ok(Err((e, _))) => bail!("a message was not delivered: {e}"),
                    Err(_) => bail!("the producer went away"),
                }
            }
        }
    }
    Ok(sent)
}

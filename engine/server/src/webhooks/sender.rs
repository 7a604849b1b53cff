//! The sender: `sprocket.webhooks` → signed POSTs, the next attempt or the
//! dead letter back to Kafka, every attempt recorded.
//!
//! Deliveries are read ahead and held in memory until due (a retry due in
//! an hour does not hold up one due now behind it on the same partition),
//! up to [`MAX_HELD`]. A delivery's offset counts as done once its outcome
//! is durable: delivered and recorded, or its next attempt (or its dead
//! letter) acknowledged by Kafka. Offsets are committed per partition up to
//! the first delivery not done, so a crash repeats attempts, never drops one.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::producer::FutureProducer;
use rdkafka::{Offset, TopicPartitionList};
use sprocket_platform::bus::{Bus, BusError};
use sprocket_platform::config::WebhooksConfig;
use sprocket_platform::outbound::{FetchError, Fetcher};
use sprocket_projections::{Delivery, DeliveryOutcome, Projections, Webhook};
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::fanout::record;
use super::sign::{signature, EVENT_ID_HEADER, SIGNATURE_HEADER};
use super::Due;
use crate::error::ServerError;

/// Most deliveries read and not yet done; reading pauses above it.
const MAX_HELD: usize = 10_000;

/// The header of a dead letter on `sprocket.webhooks.dlq` saying why.
const REASON_HEADER: &str = "reason";

type Position = (i32, i64);

pub(super) struct Sender {
    bus: Bus,
    consumer: StreamConsumer,
    producer: FutureProducer,
    projections: Projections,
    fetcher: Fetcher,
    cfg: WebhooksConfig,
}

/// What is read and not yet done, per partition.
#[derive(Default)]
struct Ledger {
    /// Offsets read and not done.
    open: HashMap<i32, BTreeSet<i64>>,
    /// The next offset after the highest read.
    read_to: HashMap<i32, i64>,
    /// The offset last committed.
    committed: HashMap<i32, i64>,
}

impl Ledger {
    fn read(&mut self, (p, o): Position) {
        self.open.entry(p).or_default().insert(o);
        let next = self.read_to.entry(p).or_insert(o + 1);
        *next = (*next).max(o + 1);
    }

    /// Marks `(p, o)` done: the offset to commit for `p` if it moved.
    fn done(&mut self, (p, o): Position) -> Option<i64> {
        let open = self.open.entry(p).or_default();
        open.remove(&o);
        let to = open
            .first()
            .copied()
            .unwrap_or_else(|| self.read_to.get(&p).copied().unwrap_or(o + 1));
        (self.committed.get(&p) != Some(&to)).then(|| {
            self.committed.insert(p, to);
            to
        })
    }
}

impl Sender {
    pub(super) fn new(
        bus: Bus,
        projections: Projections,
        cfg: WebhooksConfig,
    ) -> Result<Sender, ServerError> {
        let consumer = bus.consumer(&bus.topics.named("webhook-sender"))?;
        consumer
            .subscribe(&[&bus.topics.webhooks()])
            .map_err(BusError::kafka("subscribing to the webhook deliveries"))?;
        let fetcher = Fetcher::new(&cfg.outbound()).map_err(ServerError::WebhookClient)?;
        Ok(Sender {
            producer: bus.producer()?,
            bus,
            consumer,
            projections,
            fetcher,
            cfg,
        })
    }

    pub(super) async fn run(self, mut stop: watch::Receiver<bool>) {
        let name = format!("webhooks sender {}", uuid::Uuid::now_v7());
        let heartbeat = sprocket_platform::liveness::register(&name);
        let this = Arc::new(self);
        let mut ledger = Ledger::default();
        let mut waiting: BinaryHeap<Reverse<(chrono::DateTime<Utc>, Position)>> = BinaryHeap::new();
        let mut held: HashMap<Position, Due> = HashMap::new();
        let mut sending: JoinSet<Option<Position>> = JoinSet::new();
        let max = this.cfg.max_in_flight;
        loop {
            heartbeat.beat();
            let wait = waiting
                .peek()
                .map(|Reverse((at, _))| (*at - Utc::now()).to_std().unwrap_or_default())
                .unwrap_or(Duration::from_secs(1))
                .min(Duration::from_secs(1));
            tokio::select! {
                _ = stop.changed() => break,
                m = this.consumer.recv(), if held.len() < MAX_HELD => {
                    let m = match m {
                        Ok(m) => m,
                        Err(e) => {
                            tracing::warn!(error = %e, "webhooks: consumer error");
                            continue;
                        }
                    };
                    let at = (m.partition(), m.offset());
                    ledger.read(at);
                    match serde_json::from_slice::<Due>(m.payload().unwrap_or_default()) {
                        Ok(due) => {
                            waiting.push(Reverse((due.due_at, at)));
                            held.insert(at, due);
                        }
                        Err(e) => {
                            // Not one of ours: kept on the dead letter topic with the reason.
                            let reason = format!("not a webhook delivery: {e}");
                            tracing::warn!(partition = at.0, offset = at.1, %reason, "webhooks: dead-lettering a message");
                            let dead = sprocket_platform::bus::Record {
                                topic: this.bus.topics.webhooks_dlq(),
                                key: String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned(),
                                payload: m.payload().unwrap_or_default().to_vec(),
                                headers: vec![(REASON_HEADER.into(), reason)],
                            };
                            let (this, stop) = (this.clone(), stop.clone());
                            sending.spawn(async move {
                                this.until_done(stop, || this.bus.send(&this.producer, &dead)).await.map(|_| at)
                            });
                        }
                    }
                }
                _ = tokio::time::sleep(wait), if sending.len() < max => {
                    while sending.len() < max {
                        match waiting.peek() {
                            Some(Reverse((at, _))) if *at <= Utc::now() => {}
                            _ => break,
                        }
                        let Reverse((_, at)) = waiting.pop().expect("peeked");
                        let due = held.remove(&at).expect("held with its place");
                        let (this, stop) = (this.clone(), stop.clone());
                        sending.spawn(async move { this.attempt(due, stop).await.then_some(at) });
                    }
                }
                Some(done) = sending.join_next() => {
                    if let Ok(Some(at)) = done {
                        if let Some(to) = ledger.done(at) {
                            this.commit(at.0, to);
                        }
                    }
                }
            }
        }
        sending.shutdown().await;
        sprocket_platform::liveness::forget(&name);
        sprocket_platform::bus::close_detached(
            "webhooks sender",
            this,
            sprocket_platform::bus::CLOSE_WITHIN,
        )
        .await;
    }

    fn commit(&self, partition: i32, offset: i64) {
        let mut tpl = TopicPartitionList::new();
        let topic = self.bus.topics.webhooks();
        if tpl
            .add_partition_offset(&topic, partition, Offset::Offset(offset))
            .is_ok()
        {
            if let Err(e) = self.consumer.commit(&tpl, CommitMode::Async) {
                tracing::warn!(error = %e, partition, offset, "webhooks: commit failed");
            }
        }
    }

    /// One attempt of `due`, with its outcome made durable; whether it was
    /// (rather than stopped first).
    async fn attempt(&self, due: Due, stop: watch::Receiver<bool>) -> bool {
        let id = due.webhook_id.clone();
        let p = self.projections.clone();
        let Some(hook) = self
            .until_done(stop.clone(), || {
                let (p, id) = (p.clone(), id.clone());
                async move {
                    tokio::task::spawn_blocking(move || p.webhook(&id, None))
                        .await
                        .expect("webhook query")
                }
            })
            .await
        else {
            return false;
        };
        let Some(hook) = hook else {
            sprocket_platform::metrics::metrics()
                .webhook_deliveries
                .with_label_values(&[DeliveryOutcome::Dropped.as_str()])
                .inc();
            return self
                .record(&due, DeliveryOutcome::Dropped, None, None, stop)
                .await;
        };
        let sent = self.post(&hook, &due).await;
        let (outcome, status, error) = match sent {
            Ok(status) => (DeliveryOutcome::Delivered, Some(status.as_u16()), None),
            Err(e) => {
                let status = match &e {
                    FetchError::Status(s) => Some(s.as_u16()),
                    _ => None,
                };
                let error = e.to_string();
                let next_at = Utc::now() + self.cfg.retry_delay(due.attempt);
                let age = (next_at - due.first_due_at).to_std().unwrap_or_default();
                let (topic, next, outcome) = if age > Duration::from_secs(self.cfg.max_age_s) {
                    (
                        self.bus.topics.webhooks_dlq(),
                        due.clone(),
                        DeliveryOutcome::Dead,
                    )
                } else {
                    let next = Due {
                        attempt: due.attempt + 1,
                        due_at: next_at,
                        ..due.clone()
                    };
                    (self.bus.topics.webhooks(), next, DeliveryOutcome::Failed)
                };
                let mut rec = record(&topic, &next);
                if outcome == DeliveryOutcome::Dead {
                    rec.headers.push((
                        REASON_HEADER.into(),
                        format!(
                            "attempt {} failed ({error}) and the delivery is {}s old",
                            due.attempt, self.cfg.max_age_s
                        ),
                    ));
                }
                if self
                    .until_done(stop.clone(), || self.bus.send(&self.producer, &rec))
                    .await
                    .is_none()
                {
                    return false;
                }
                (outcome, status, Some(error))
            }
        };
        tracing::debug!(webhook_id = %due.webhook_id, event_id = %due.event_id, attempt = due.attempt,
            ?outcome, ?status, "webhook delivery");
        sprocket_platform::metrics::metrics()
            .webhook_deliveries
            .with_label_values(&[outcome.as_str()])
            .inc();
        self.record(&due, outcome, status, error, stop).await
    }

    /// POSTs the event, signed with the webhook's secret.
    async fn post(&self, hook: &Webhook, due: &Due) -> Result<reqwest::StatusCode, FetchError> {
        use reqwest::header::{HeaderMap, HeaderValue, CONTENT_TYPE, USER_AGENT};
        let body = serde_json::to_vec(&due.event).expect("JSON serializes");
        let sig = signature(&hook.secret, Utc::now().timestamp(), &body);
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(USER_AGENT, HeaderValue::from_static("Sprocket-Webhooks/1"));
        for (name, value) in [
            (SIGNATURE_HEADER, sig),
            (EVENT_ID_HEADER, due.event_id.clone()),
            ("X-Sprocket-Event-Type", due.event_type.clone()),
            ("X-Sprocket-Attempt", due.attempt.to_string()),
        ] {
            if let Ok(v) = HeaderValue::from_str(&value) {
                headers.insert(name, v);
            }
        }
        self.fetcher.post(&hook.url, headers, body.into()).await
    }

    async fn record(
        &self,
        due: &Due,
        outcome: DeliveryOutcome,
        status: Option<u16>,
        error: Option<String>,
        stop: watch::Receiver<bool>,
    ) -> bool {
        let d = Delivery {
            webhook_id: due.webhook_id.clone(),
            event_id: due.event_id.clone(),
            job_id: due.job_id.clone(),
            event_type: due.event_type.clone(),
            attempt: due.attempt,
            outcome,
            status,
            error,
            at: sprocket_projections::timestamp(Utc::now()),
        };
        let p = self.projections.clone();
        self.until_done(stop, || {
            let (p, d) = (p.clone(), d.clone());
            async move {
                tokio::task::spawn_blocking(move || p.record_delivery(&d))
                    .await
                    .expect("record task")
            }
        })
        .await
        .is_some()
    }

    /// Runs `op` until it succeeds, backing off between tries; `None` when
    /// stopped first.
    async fn until_done<T, E: std::fmt::Display, F: std::future::Future<Output = Result<T, E>>>(
        &self,
        mut stop: watch::Receiver<bool>,
        op: impl Fn() -> F,
    ) -> Option<T> {
        let mut delay = Duration::from_millis(200);
        loop {
            match op().await {
                Ok(v) => return Some(v),
                Err(e) => tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64,
                    "webhooks: Kafka or the database refused; retrying"),
            }
            tokio::select! {
                _ = stop.changed() => return None,
                _ = tokio::time::sleep(delay) => {}
            }
            delay = (delay * 2).min(Duration::from_secs(5));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Ledger;

    #[test]
    fn commits_stop_at_the_first_open_delivery() {
        let mut l = Ledger::default();
        for o in 10..14 {
            l.read((0, o));
        }
        l.read((1, 3));
        // 11 done first: 10 is still open, so nothing moves.
        assert_eq!(l.done((0, 11)), Some(10));
        assert_eq!(l.done((0, 12)), None);
        assert_eq!(l.done((0, 10)), Some(13));
        assert_eq!(l.done((0, 13)), Some(14));
        assert_eq!(l.done((1, 3)), Some(4));
    }
}

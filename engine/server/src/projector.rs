//! The projector: folds `sprocket.events` (and submissions on the intake
//! `sprocket.ingest`, so a job is visible as queued before any ingest worker has
//! seen it) into the projection tables. Offsets live in the same database
//! transaction as the rows; nothing is committed to Kafka.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use sprocket_core::{Envelope, EventBody};
use sprocket_platform::bus::{Bus, BusError};
use sprocket_platform::liveness;
use sprocket_projections::{Position, Projections};
use tokio::sync::{mpsc, watch};

/// How long an idle round waits for a message before beating again.
const IDLE_ROUND: Duration = Duration::from_secs(1);

/// How the projector gathers messages into one database transaction: a batch
/// closes at `max_events`, or `linger` after its first message, whichever
/// comes first. Messages already decoded are always taken without waiting
/// (they are decoded while the previous transaction commits), so under load
/// batches grow by themselves, and a lone event waits at most `linger`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Batching {
    /// Most messages folded in one transaction.
    pub max_events: usize,
    /// How long a batch may wait for more messages after its first.
    pub linger: Duration,
}

impl Default for Batching {
    fn default() -> Self {
        Batching {
            max_events: 500,
            linger: Duration::from_millis(2),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProjectorError {
    #[error(transparent)]
    Bus(#[from] BusError),
    #[error("projections: {0}")]
    Projections(#[from] sprocket_projections::ProjectionError),
}

pub struct Projector {
    bus: Bus,
    projections: Projections,
    consumer: StreamConsumer,
    topics: Vec<String>,
    batching: Batching,
    /// The tenant of a submission on the intake that names none.
    default_tenant: String,
}

impl Projector {
    /// Connects; with `rebuild`, empties the projections first so the topics are
    /// replayed from the beginning.
    pub async fn new(
        bus: Bus,
        projections: Projections,
        rebuild: bool,
    ) -> Result<Projector, ProjectorError> {
        let p = projections.clone();
        tokio::task::spawn_blocking(move || {
            p.migrate()?;
            if rebuild {
                p.reset()?;
            }
            Ok::<_, sprocket_projections::ProjectionError>(())
        })
        .await
        .expect("migration task")?;
        let consumer = bus.consumer(&bus.topics.named("projector"))?;
        let topics = vec![
            bus.topics.events(),
            bus.topics.phase(sprocket_core::Phase::Ingest),
        ];
        let projector = Projector {
            bus,
            projections,
            consumer,
            topics,
            batching: Batching::default(),
            default_tenant: sprocket_platform::config::TenantsConfig::default().default,
        };
        projector.assign().await?;
        Ok(projector)
    }
    /// Records submissions that name no tenant as `tenant`'s
    /// (`tenants.default`; "default" unless set).
    pub fn with_default_tenant(mut self, tenant: &str) -> Projector {
        self.default_tenant = tenant.to_owned();
        self
    }

    /// Gathers batches this way instead of [`Batching::default`]
    /// (`max_events` of at least 1).
    pub fn with_batching(mut self, batching: Batching) -> Projector {
        self.batching = Batching {
            max_events: batching.max_events.max(1),
            ..batching
        };
        self
    }

    /// Assigns every partition of the projected topics at the stored offsets.
    async fn assign(&self) -> Result<(), ProjectorError> {
        let p = self.projections.clone();
        let stored = tokio::task::spawn_blocking(move || p.offsets())
            .await
            .expect("offsets task")?;
        let stored: HashMap<(String, i32), i64> = stored
            .into_iter()
            .map(|p| ((p.topic, p.partition), p.offset))
            .collect();
        let mut tpl = TopicPartitionList::new();
        for t in &self.topics {
            for partition in 0..self.bus.partition_count(&self.consumer, t)? {
                let offset = match stored.get(&(t.clone(), partition)) {
                    Some(o) => Offset::Offset(*o),
                    None => Offset::Beginning,
                };
                tpl.add_partition_offset(t, partition, offset)
                    .map_err(BusError::kafka("assigning"))?;
            }
        }
        self.consumer
            .assign(&tpl)
            .map_err(BusError::kafka("assigning the projector's partitions"))?;
        Ok(())
    }

    /// Folds until `stop` turns true. Messages are received and decoded while
    /// the previous batch commits, so the database and the decoding overlap.
    /// Each round beats the process's liveness ([`liveness`]), idle rounds
    /// included (they end after a second).
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let name = format!("projector {}", uuid::Uuid::now_v7());
        let heartbeat = liveness::register(&name);
        let (decoded, mut ready) = mpsc::channel(self.batching.max_events * 2);
        let write = async {
            loop {
                heartbeat.beat();
                let batch = tokio::select! {
                    _ = stop.changed() => break,
                    b = self.next_batch(&mut ready) => b,
                };
                if batch.is_empty() {
                    continue;
                }
                self.apply_until_done(batch.into(), &mut stop, &heartbeat)
                    .await;
            }
        };
        // Ends only when `write` does (it holds the receiver): on `stop`.
        // Messages decoded but not yet applied are dropped with it; their
        // offsets were not stored, so a restart reads them again.
        tokio::select! {
            _ = self.read(decoded) => {}
            _ = write => {}
        }
        liveness::forget(&name);
        sprocket_platform::bus::close_detached(
            "projector",
            self,
            sprocket_platform::bus::CLOSE_WITHIN,
        )
        .await;
    }

    /// Receives and decodes messages in order into `decoded`.
    async fn read(&self, decoded: mpsc::Sender<(Position, Envelope)>) {
        loop {
            match self.consumer.recv().await {
                Ok(m) => {
                    if let Some(item) = self.decode(&m).await {
                        if decoded.send(item).await.is_err() {
                            return;
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "projector: consumer error"),
            }
        }
    }

    /// Waits up to a second for a decoded message, then gathers more as
    /// [`Batching`] says: what is already decoded is taken without waiting.
    async fn next_batch(
        &self,
        ready: &mut mpsc::Receiver<(Position, Envelope)>,
    ) -> Vec<(Position, Envelope)> {
        let max = self.batching.max_events;
        let mut batch = Vec::new();
        match tokio::time::timeout(IDLE_ROUND, ready.recv_many(&mut batch, max)).await {
            Ok(n) if n > 0 => {}
            _ => return batch,
        }
        let close = tokio::time::Instant::now() + self.batching.linger;
        while batch.len() < max {
            let room = max - batch.len();
            let more = tokio::time::timeout_at(close, ready.recv_many(&mut batch, room));
            if !matches!(more.await, Ok(n) if n > 0) {
                break;
            }
        }
        batch
    }

    /// Decodes one message. What can never be decoded is skipped with a warning;
    /// while the schema registry is unreachable the message is retried instead, so
    /// a good event is not lost from the projections (`run` stops the wait).
    async fn decode<M: Message>(&self, m: &M) -> Option<(Position, Envelope)> {
        let env = match self.bus.decode_patiently(m).await {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(topic = m.topic(), partition = m.partition(), offset = m.offset(), error = %e,
                    "projector: skipping an undecodable message");
                return None;
            }
        };
        // On the intake only submissions matter; other items there are work, not facts.
        if m.topic() != self.bus.topics.events() && !matches!(env.body, EventBody::JobSubmitted(_))
        {
            return None;
        }
        let pos = Position {
            topic: m.topic().to_owned(),
            partition: m.partition(),
            offset: m.offset(),
        };
        // The projections (and so the API) never hold a source's credentials;
        // a submission is its tenant's, the default one's when it names none
        // (as the ingest worker records it).
        Some((
            pos,
            env.for_the_record()
                .with_default_tenant(&self.default_tenant),
        ))
    }

    /// Applies a batch, retrying with backoff while the database is unavailable.
    /// A batch refused for good (an event that can never be stored) is applied
    /// event by event, so only the poisoned event is skipped, with a warning.
    async fn apply_until_done(
        &self,
        batch: Arc<[(Position, Envelope)]>,
        stop: &mut watch::Receiver<bool>,
        heartbeat: &liveness::Heartbeat,
    ) {
        let mut delay = Duration::from_millis(100);
        loop {
            // Waiting out the database is progress too: a restart would not help.
            heartbeat.beat();
            match self.apply(batch.clone()).await {
                Ok(()) => return,
                Err(e) if !e.retryable() => {
                    for one in batch.iter() {
                        if let Err(e) = self.apply(Arc::new([one.clone()])).await {
                            tracing::error!(topic = %one.0.topic, partition = one.0.partition, offset = one.0.offset,
                                job_id = %one.1.job_id, error = %e, "projector: skipping an event that cannot be projected");
                        }
                    }
                    return;
                }
                Err(e) => {
                    tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "projection failed; retrying");
                    tokio::select! {
                        _ = stop.changed() => return,
                        _ = tokio::time::sleep(delay) => {}
                    }
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    /// Projects a batch in one transaction (shared, so a retry copies nothing).
    async fn apply(
        &self,
        batch: Arc<[(Position, Envelope)]>,
    ) -> Result<(), sprocket_projections::ProjectionError> {
        let newest = batch.iter().map(|(_, e)| e.occurred_at).max();
        let p = self.projections.clone();
        let canonical = self.bus.topics.events();
        let started = std::time::Instant::now();
        let applied = tokio::task::spawn_blocking(move || p.apply_canonical(&batch, &canonical))
            .await
            .expect("apply task")?;
        tracing::debug!(
            events = applied.events,
            skipped = applied.skipped,
            transaction_ms = started.elapsed().as_secs_f64() * 1000.0,
            "projected"
        );
        let m = sprocket_platform::metrics::metrics();
        m.events_projected.inc_by(applied.events as u64);
        if let Some(newest) = newest {
            let age = (chrono::Utc::now() - newest).num_milliseconds().max(0) as f64 / 1000.0;
            m.projection_lag.set(age);
        }
        Ok(())
    }
}

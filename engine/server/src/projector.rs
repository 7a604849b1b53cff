//! The projector: folds `sprocket.events` (and submissions on the intake
//! `sprocket.ingest`, so a job is visible as queued before any ingest worker has
//! seen it) into the projection tables. Offsets live in the same database
//! transaction as the rows; nothing is committed to Kafka.

use std::collections::HashMap;
use std::time::Duration;

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use sprocket_core::{Envelope, EventBody};
use sprocket_platform::bus::{Bus, BusError};
use sprocket_platform::liveness;
use sprocket_projections::{Position, Projections};
use tokio::sync::watch;

/// Largest batch folded in one database transaction.
const BATCH: usize = 500;

/// How long an idle round waits for a message before beating again.
const IDLE_ROUND: Duration = Duration::from_secs(1);

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
        };
        projector.assign().await?;
        Ok(projector)
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

    /// Folds until `stop` turns true. Each round beats the process's liveness
    /// ([`liveness`]), idle rounds included (they end after a second).
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let name = format!("projector {}", uuid::Uuid::now_v7());
        let heartbeat = liveness::register(&name);
        loop {
            heartbeat.beat();
            let batch = tokio::select! {
                _ = stop.changed() => break,
                b = self.next_batch() => b,
            };
            if batch.is_empty() {
                continue;
            }
            self.apply_until_done(batch, &mut stop, &heartbeat).await;
        }
        liveness::forget(&name);
    }

    /// Waits up to a second for a message, then takes what else is ready (up
    /// to BATCH). Only the wait for the first message may be cut short: once
    /// one is taken, the batch is finished, so nothing read is dropped.
    async fn next_batch(&self) -> Vec<(Position, Envelope)> {
        let mut batch = Vec::new();
        let Ok(first) = tokio::time::timeout(IDLE_ROUND, self.consumer.recv()).await else {
            return batch;
        };
        let mut msg = Some(first);
        while let Some(m) = msg.take() {
            match m {
                Ok(m) => {
                    if let Some(item) = self.decode(&m).await {
                        batch.push(item);
                    }
                }
                Err(e) => tracing::warn!(error = %e, "projector: consumer error"),
            }
            if batch.len() >= BATCH {
                break;
            }
            msg = tokio::time::timeout(Duration::from_millis(20), self.consumer.recv())
                .await
                .ok();
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
        Some((pos, env))
    }

    /// Applies a batch, retrying with backoff while the database is unavailable.
    /// A batch refused for good (an event that can never be stored) is applied
    /// event by event, so only the poisoned event is skipped, with a warning.
    async fn apply_until_done(
        &self,
        batch: Vec<(Position, Envelope)>,
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
                    for one in batch {
                        if let Err(e) = self.apply(vec![one.clone()]).await {
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

    async fn apply(
        &self,
        batch: Vec<(Position, Envelope)>,
    ) -> Result<(), sprocket_projections::ProjectionError> {
        let newest = batch.iter().map(|(_, e)| e.occurred_at).max();
        let p = self.projections.clone();
        let canonical = self.bus.topics.events();
        let applied = tokio::task::spawn_blocking(move || p.apply_canonical(&batch, &canonical))
            .await
            .expect("apply task")?;
        tracing::debug!(
            events = applied.events,
            skipped = applied.skipped,
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

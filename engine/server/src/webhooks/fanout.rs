//! The fan-out: `sprocket.events` → one [`Due`] per event and webhook that
//! wants it, on `sprocket.webhooks`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::producer::FutureProducer;
use sprocket_core::{Envelope, EventBody};
use sprocket_platform::bus::{Bus, Record};
use sprocket_platform::config::Config;
use sprocket_projections::{ProjectionError, Projections, Webhook};
use tokio::sync::watch;

use super::Due;
use crate::error::ServerError;

/// How often the fan-out says it is still waiting for the projections to
/// record a job (the projector records a submission within a second or so;
/// while it is down the fan-out waits, and its events wait on Kafka).
const WAITING_SAYS: Duration = Duration::from_secs(30);

pub(super) struct FanOut {
    bus: Bus,
    consumer: StreamConsumer,
    producer: FutureProducer,
    projections: Projections,
    /// Each tenant's live webhooks as last read, kept for [`CACHE_FOR`].
    hooks: Mutex<HashMap<String, Read>>,
    default_tenant: String,
}

/// A tenant's live webhooks, and when they were read.
type Read = (Instant, Arc<[Webhook]>);

/// How long a tenant's webhooks, once read, are used without reading them
/// again: a new or deleted webhook takes effect within it.
const CACHE_FOR: Duration = Duration::from_secs(1);

impl FanOut {
    pub(super) fn new(
        bus: Bus,
        projections: Projections,
        cfg: &Config,
    ) -> Result<FanOut, ServerError> {
        let consumer = bus.consumer(&bus.topics.named("webhooks"))?;
        consumer.subscribe(&[&bus.topics.events()]).map_err(
            sprocket_platform::bus::BusError::kafka("subscribing to the events"),
        )?;
        Ok(FanOut {
            producer: bus.producer()?,
            bus,
            consumer,
            projections,
            hooks: Mutex::default(),
            default_tenant: cfg.tenants.default.clone(),
        })
    }

    pub(super) async fn run(self, mut stop: watch::Receiver<bool>) {
        let name = format!("webhooks fan-out {}", uuid::Uuid::now_v7());
        let heartbeat = sprocket_platform::liveness::register(&name);
        loop {
            heartbeat.beat();
            let m = tokio::select! {
                _ = stop.changed() => break,
                m = self.consumer.recv() => m,
                _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
            };
            let m = match m {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(error = %e, "webhooks: consumer error");
                    continue;
                }
            };
            let done = tokio::select! {
                _ = stop.changed() => false,
                d = self.fan_out(&m) => d,
            };
            if !done {
                break;
            }
            if let Err(e) = self.consumer.commit_message(&m, CommitMode::Async) {
                tracing::warn!(error = %e, offset = m.offset(), "webhooks: commit failed");
            }
        }
        sprocket_platform::liveness::forget(&name);
        sprocket_platform::bus::close_detached(
            "webhooks fan-out",
            self,
            sprocket_platform::bus::CLOSE_WITHIN,
        )
        .await;
    }

    /// Writes the event's deliveries, retrying until Kafka and the database
    /// take them; whether it got there (rather than being stopped).
    async fn fan_out(&self, m: &BorrowedMessage<'_>) -> bool {
        let env = match self.bus.decode_patiently(m).await {
            Ok(e) => e.for_the_record(),
            Err(e) => {
                tracing::warn!(partition = m.partition(), offset = m.offset(), error = %e,
                    "webhooks: skipping an undecodable event");
                return true;
            }
        };
        let tenant = self.tenant_of(&env).await;
        let mut delay = Duration::from_millis(200);
        loop {
            match self.write(&env, &tenant).await {
                Ok(()) => return true,
                Err(e) => {
                    tracing::warn!(event_id = %env.event_id, error = %e, retry_in_ms = delay.as_millis() as u64,
                        "webhooks: could not queue deliveries; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    /// One [`Due`] per webhook of `tenant` that wants the event.
    async fn write(&self, env: &Envelope, tenant: &str) -> Result<(), ServerError> {
        let kind = env.kind().0;
        let hooks = self.hooks_of(tenant).await?;
        let event = serde_json::to_value(env).expect("an envelope serializes");
        let now = chrono::Utc::now();
        for hook in hooks.iter().filter(|h| h.wants(kind)) {
            let due = Due {
                webhook_id: hook.id.clone(),
                event_id: env.event_id.clone(),
                job_id: env.job_id.to_string(),
                event_type: kind.to_owned(),
                event: event.clone(),
                attempt: 1,
                first_due_at: now,
                due_at: now,
            };
            self.bus
                .send(&self.producer, &record(&self.bus.topics.webhooks(), &due))
                .await?;
        }
        Ok(())
    }

    /// The live webhooks of `tenant`.
    async fn hooks_of(&self, tenant: &str) -> Result<Arc<[Webhook]>, ProjectionError> {
        let cached = self
            .hooks
            .lock()
            .expect("webhook cache")
            .get(tenant)
            .cloned();
        if let Some((_, hooks)) = cached.filter(|(at, _)| at.elapsed() < CACHE_FOR) {
            return Ok(hooks);
        }
        let (p, t) = (self.projections.clone(), tenant.to_owned());
        let hooks: Arc<[Webhook]> = tokio::task::spawn_blocking(move || p.webhooks(Some(&t)))
            .await
            .expect("webhooks query")?
            .into();
        self.hooks
            .lock()
            .expect("webhook cache")
            .insert(tenant.to_owned(), (Instant::now(), hooks.clone()));
        Ok(hooks)
    }

    /// A submission names its tenant (the default one when it names none);
    /// any other event's job is looked up in the projections, waiting for
    /// them while they have not recorded it yet: an event is never skipped
    /// for want of its tenant.
    async fn tenant_of(&self, env: &Envelope) -> String {
        if let EventBody::JobSubmitted(s) = &env.body {
            return s
                .tenant
                .clone()
                .unwrap_or_else(|| self.default_tenant.clone());
        }
        let mut said = tokio::time::Instant::now();
        loop {
            let p = self.projections.clone();
            let id = env.job_id.clone();
            match tokio::task::spawn_blocking(move || p.job(&id))
                .await
                .expect("job query")
            {
                Ok(Some(job)) => return job.tenant.unwrap_or_else(|| self.default_tenant.clone()),
                Ok(None) if said.elapsed() > WAITING_SAYS => {
                    tracing::warn!(job_id = %env.job_id, event_id = %env.event_id,
                        "webhooks: the projections have not recorded the job yet (is the projector running?); waiting");
                    said = tokio::time::Instant::now();
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "webhooks: cannot read the projections; retrying")
                }
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

/// `due` as a record for `topic`, keyed by its webhook.
pub(super) fn record(topic: &str, due: &Due) -> Record {
    Record {
        topic: topic.to_owned(),
        key: due.webhook_id.clone(),
        payload: serde_json::to_vec(due).expect("a delivery serializes"),
        headers: vec![("content-type".into(), "application/json".into())],
    }
}

//! One message in, its outcome out: the whole decision of a worker for one
//! message, without committing anything. The runtime commits the outcome in a
//! Kafka transaction; tests call [`Stepper::step`] directly.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::message::Message;
use rdkafka::producer::FutureProducer;
use sprocket_core::event::{
    JobFailed, PhaseProgress, PhaseRetryScheduled, PhaseStarted, Submitted,
};
use sprocket_core::{Envelope, EventBody, Phase, WorkItem};
use sprocket_platform::bus::Bus;
use sprocket_platform::config::Config;
use sprocket_platform::store;
use tokio::sync::mpsc;

use sprocket_core::retry::{RetryPolicy, Runtime};

use crate::cancel::CancelWatch;
pub use crate::outcome::{DeadLetter, Outcome, Retry};
use crate::standin::StandIn;
use crate::{Cx, PhaseWork, Stores, WorkError};

/// Runs one phase's work for one message at a time.
pub struct Stepper {
    pub phase: Phase,
    pub work: Arc<dyn PhaseWork>,
    pub bus: Bus,
    pub stores: Stores,
    pub config: Arc<Config>,
    /// Publishes live facts (acceptance, `PhaseStarted`, `PhaseProgress`).
    live: FutureProducer,
    /// Cancellations this worker knows of (fed from `sprocket.cancellations`).
    pub cancels: CancelWatch,
    /// The workarounds a stand-in broker needs; `None` on Apache Kafka.
    pub stand_in: Option<Arc<dyn StandIn>>,
}

impl Stepper {
    pub fn new(
        work: Arc<dyn PhaseWork>,
        bus: Bus,
        stores: Stores,
        config: Arc<Config>,
    ) -> Result<Stepper, WorkError> {
        let phase = work.phase();
        let live = bus
            .producer()
            .map_err(|source| WorkError::Bus { phase, source })?;
        Ok(Stepper {
            phase,
            work,
            bus,
            stores,
            config,
            live,
            cancels: CancelWatch::default(),
            stand_in: None,
        })
    }

    /// Runs with a stand-in broker's workarounds ([`StandIn`]).
    pub fn with_stand_in(mut self, stand_in: Arc<dyn StandIn>) -> Stepper {
        self.stand_in = Some(stand_in);
        self
    }

    /// Decides the outcome of one message. Never fails: what can never be decoded
    /// is dead-lettered (while the schema registry is unreachable the lane waits
    /// instead), what fails is recorded as failed.
    pub async fn step<M: Message>(&self, msg: &M, cancel: Arc<AtomicBool>) -> Outcome {
        let payload = msg.payload().unwrap_or_default();
        let env = match self.bus.decode_patiently(msg).await {
            Ok(env) => env,
            Err(e) => {
                return Outcome {
                    dead_letter: Some(DeadLetter {
                        reason: format!("undecodable message: {e}"),
                        key: msg.key().map(|k| String::from_utf8_lossy(k).into_owned()),
                        payload: payload.to_vec(),
                    }),
                    ..Outcome::default()
                }
            }
        };
        let item = match &env.body {
            EventBody::JobSubmitted(s) if self.phase == Phase::Ingest => {
                match self.accept(&env, s).await {
                    Ok(Some(item)) => item,
                    Ok(None) => return Outcome::default(),
                    Err(failed) => return failed,
                }
            }
            EventBody::WorkItem(item) if item.phase == self.phase => (**item).clone(),
            other => {
                return Outcome {
                    dead_letter: Some(DeadLetter {
                        reason: format!(
                            "{} is not a work item for the {} phase",
                            other.kind().0,
                            self.phase
                        ),
                        key: Some(env.job_id.to_string()),
                        payload: payload.to_vec(),
                    }),
                    ..Outcome::default()
                }
            }
        };
        if self.cancels.is_cancelled(&item.job_id) {
            tracing::info!(job_id = %item.job_id, phase = %self.phase, "cancelled before it started");
            return self.cancelled(&item, env.attempt).await;
        }
        self.work_on(item, env.attempt, payload, cancel).await
    }

    /// Accepts a submission: resolves its recipe and claims the job id. `Ok(None)`
    /// for a resubmission of a job id that another submission already claimed.
    async fn accept(&self, env: &Envelope, s: &Submitted) -> Result<Option<WorkItem>, Outcome> {
        let recipe = match s
            .recipe
            .resolve()
            .and_then(|r| s.source.validate().map(|_| r))
        {
            Ok(r) => r,
            Err(e) => {
                let error = sprocket_core::ErrorInfo::from(&e);
                return Err(Outcome {
                    events: vec![
                        env.clone(),
                        self.event(
                            env,
                            1,
                            EventBody::JobFailed(JobFailed { phase: None, error }),
                        ),
                    ],
                    ..Outcome::default()
                });
            }
        };
        let claim = format!("{}submission", sprocket_core::work::job_prefix(&env.job_id));
        match store::get_bytes(&self.stores.work, &claim).await {
            Ok(owner) if owner.as_ref() != env.event_id.as_bytes() => {
                tracing::info!(job_id = %env.job_id, "resubmission of a known job id: nothing to do");
                return Ok(None);
            }
            Ok(_) => {}
            Err(store::StoreError::NotFound { .. }) => {
                if let Err(e) =
                    store::put_bytes(&self.stores.work, &claim, env.event_id.clone().into_bytes())
                        .await
                {
                    tracing::warn!(job_id = %env.job_id, error = %e, "cannot record the job's claim");
                }
            }
            Err(e) => {
                tracing::warn!(job_id = %env.job_id, error = %e, "cannot read the job's claim")
            }
        }
        sprocket_platform::metrics::metrics().jobs_submitted.inc();
        // Acceptance is a live fact: the same event id is republished on redelivery.
        self.publish_live(env).await;
        Ok(Some(WorkItem {
            job_id: env.job_id.clone(),
            phase: Phase::Ingest,
            recipe,
            source: s.source.clone(),
            labels: s.labels.clone(),
            submitted_at: env.occurred_at,
            artifacts: Default::default(),
            media: None,
            phases: Default::default(),
        }))
    }

    /// The runtime policy of this item's phase: the configured defaults, the
    /// phase's own defaults, then the recipe step's overrides.
    fn runtime(&self, item: &WorkItem) -> Result<Runtime, sprocket_core::CoreError> {
        let w = &self.config.worker;
        let global = Runtime {
            retry: RetryPolicy {
                max_attempts: w.max_attempts,
                initial_delay_ms: w.retry_delay_ms,
                multiplier: w.retry_multiplier,
                max_delay_ms: w.retry_max_delay_ms,
            },
            timeout_s: w.timeout_s,
        };
        let phase = w.phases.get(&self.phase).cloned().unwrap_or_default();
        let phase_default = Runtime::from_params(&phase, &global)?;
        Runtime::from_params(&item.step_params(), &phase_default)
    }

    /// One attempt at the item's phase. A retryable failure with attempts left
    /// schedules the next attempt on the phase's retry topic, so the partition
    /// moves on while the item waits.
    async fn work_on(
        &self,
        item: WorkItem,
        attempt: u32,
        payload: &[u8],
        cancel: Arc<AtomicBool>,
    ) -> Outcome {
        let phase = self.phase;
        let attempt = attempt.max(1);
        let rt = match self.runtime(&item) {
            Ok(rt) => rt,
            Err(source) => {
                return self.failed_for_good(
                    &item,
                    attempt,
                    &WorkError::Core { phase, source },
                    payload,
                )
            }
        };
        let started_at = chrono::Utc::now();
        let started = self.item_event(
            &item,
            attempt,
            EventBody::PhaseStarted(PhaseStarted {
                phase,
                worker: self.bus.producer_name.clone(),
            }),
        );
        self.publish_live(&started).await;
        let result = self
            .run_once(
                &item,
                attempt,
                cancel.clone(),
                Duration::from_secs_f64(rt.timeout_s),
            )
            .await;
        if self.cancels.is_cancelled(&item.job_id) {
            tracing::info!(job_id = %item.job_id, %phase, "work stopped: the job was cancelled");
            return self.cancelled(&item, attempt).await;
        }
        let e = match result {
            Ok(done) => return self.completed(&item, attempt, started_at, done),
            Err(e) => e,
        };
        let m = sprocket_platform::metrics::metrics();
        let class = if e.retryable() {
            "retryable"
        } else {
            "permanent"
        };
        m.phase_failures
            .with_label_values(&[phase.as_str(), class])
            .inc();
        if !(e.retryable() && attempt < rt.retry.max_attempts) {
            return self.failed_for_good(&item, attempt, &e, payload);
        }
        m.retries.with_label_values(&[phase.as_str()]).inc();
        let delay_ms = rt.retry.delay_ms(attempt + 1, rand::random::<f64>());
        tracing::warn!(job_id = %item.job_id, %phase, attempt, delay_ms, error = %e, "retryable failure; retry scheduled");
        let scheduled = self.item_event(
            &item,
            attempt,
            EventBody::PhaseRetryScheduled(PhaseRetryScheduled {
                phase,
                delay_ms,
                cause: e.info(),
            }),
        );
        let again = self.item_event(
            &item,
            attempt + 1,
            EventBody::WorkItem(Box::new(item.clone())),
        );
        Outcome {
            events: vec![self.failed(&item, attempt, &e), scheduled],
            retry: Some(Retry {
                item: again,
                due_at_ms: chrono::Utc::now().timestamp_millis() + delay_ms as i64,
            }),
            ..Outcome::default()
        }
    }

    async fn run_once(
        &self,
        item: &WorkItem,
        attempt: u32,
        cancel: Arc<AtomicBool>,
        limit: Duration,
    ) -> Result<crate::Done, WorkError> {
        let phase = self.phase;
        let base = self
            .config
            .worker
            .scratch_dir
            .clone()
            .unwrap_or_else(std::env::temp_dir);
        std::fs::create_dir_all(&base).map_err(|e| WorkError::internal(phase, e))?;
        let scratch = tempfile::Builder::new()
            .prefix(&format!("sprocket-{phase}-{}-", item.job_id))
            .tempdir_in(&base)
            .map_err(|e| WorkError::internal(phase, e))?;
        let (tx, mut rx) = mpsc::unbounded_channel::<f64>();
        let cx = Cx::new(
            self.stores.clone(),
            self.config.clone(),
            scratch.path().to_owned(),
            cancel.clone(),
            tx,
        );
        let reporter = async {
            while let Some(percent) = rx.recv().await {
                let e = self.item_event(
                    item,
                    attempt,
                    EventBody::PhaseProgress(PhaseProgress {
                        phase,
                        percent,
                        detail: None,
                    }),
                );
                self.publish_live(&e).await;
            }
        };
        let work = async {
            let r = self.work.run(item, &cx).await;
            drop(cx);
            r
        };
        let _registered = self.cancels.register(&item.job_id, cancel.clone());
        let stopped = async {
            while !cancel.load(std::sync::atomic::Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        };
        // Cancellation drops the work at once; media work also sees the flag and
        // kills its ffmpeg child.
        let result = tokio::select! {
            (r, ()) = async { tokio::join!(work, reporter) } => r,
            () = stopped => Err(WorkError::Media { phase, source: sprocket_media::MediaError::Cancelled }),
            () = tokio::time::sleep(limit) => Err(WorkError::TimedOut { phase, after: limit }),
        };
        if matches!(result, Err(WorkError::TimedOut { .. })) {
            // Over the time limit: the flag makes media work kill its ffmpeg child.
            cancel.store(true, std::sync::atomic::Ordering::SeqCst);
        }
        result
    }

    pub(crate) fn item_event(&self, item: &WorkItem, attempt: u32, body: EventBody) -> Envelope {
        Envelope::new(
            item.job_id.clone(),
            self.bus.producer_name.clone(),
            attempt,
            body,
        )
    }

    fn event(&self, env: &Envelope, attempt: u32, body: EventBody) -> Envelope {
        Envelope::new(
            env.job_id.clone(),
            self.bus.producer_name.clone(),
            attempt,
            body,
        )
    }

    async fn publish_live(&self, env: &Envelope) {
        let topic = self.bus.topics.events();
        let sent = match self.bus.record(&topic, env).await {
            Ok(rec) => self.bus.send(&self.live, &rec).await.map(|_| ()),
            Err(e) => Err(e),
        };
        if let Err(e) = sent {
            tracing::warn!(job_id = %env.job_id, kind = env.kind().0, error = %e, "live event not published");
        }
    }
}

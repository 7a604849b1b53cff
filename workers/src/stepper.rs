//! One message in, its outcome out: the I/O around the pure [`Step`] —
//! decoding, claiming a submitted job id, publishing live facts, and running
//! the phase's work under its time limit and cancellation token. Nothing is
//! committed here; the lane commits the outcome.

use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use rdkafka::message::OwnedMessage;
use sprocket_core::event::{PhaseProgress, PhaseStarted};
use sprocket_core::machine::Claim;
use sprocket_core::stored::Pin;
use sprocket_core::{Envelope, EventBody, Phase, WorkItem};
use sprocket_platform::bus::Bus;
use sprocket_platform::config::Config;
use sprocket_platform::recipes::RecipeBook;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::cancel::CancelWatch;
use crate::context::Scratch;
use crate::outcome::Outcome;
use crate::ports::kafka::{KafkaLive, StoreClaims};
use crate::ports::Ports;
use crate::standin::StandIn;
use crate::step::{PhaseResult, Step};
use crate::{Cx, PhaseWork, Stores, WorkError};

/// Runs one phase's work for one message at a time.
pub struct Stepper {
    pub phase: Phase,
    pub step: Step,
    pub work: Arc<dyn PhaseWork>,
    pub stores: Stores,
    pub config: Arc<Config>,
    pub ports: Ports,
    /// The Kafka connection the runtime consumes and commits through; `None`
    /// for a stepper on fakes ([`Stepper::with_ports`]).
    pub bus: Option<Bus>,
    /// Cancellations this worker knows of (fed from `sprocket.cancellations`).
    pub cancels: CancelWatch,
    /// The workarounds a stand-in broker needs; `None` on Apache Kafka.
    pub stand_in: Option<Arc<dyn StandIn>>,
    /// The stored recipes, for the ingest phase's submissions naming one
    /// (followed on Kafka; `None` on fakes, where only built-in and inline
    /// recipes resolve).
    pub recipes: Option<RecipeBook>,
}

impl Stepper {
    /// A stepper on Kafka: the bus's codec and producers, claims in the work store.
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
        let ports = Ports {
            codec: Arc::new(bus.clone()),
            claims: Arc::new(StoreClaims(stores.work.clone())),
            live: Arc::new(KafkaLive::new(bus.clone(), live)),
        };
        let mut stepper = Stepper::with_ports(
            work,
            ports,
            stores,
            config,
            bus.topics.clone(),
            bus.producer_name.clone(),
        )?;
        if phase == Phase::Ingest {
            stepper.recipes =
                Some(RecipeBook::follow(&bus).map_err(|source| WorkError::Bus { phase, source })?);
        }
        stepper.bus = Some(bus);
        Ok(stepper)
    }

    /// A stepper on the given ports, writing as `producer` to `topics`.
    pub fn with_ports(
        work: Arc<dyn PhaseWork>,
        ports: Ports,
        stores: Stores,
        config: Arc<Config>,
        topics: sprocket_core::Topics,
        producer: String,
    ) -> Result<Stepper, WorkError> {
        let phase = work.phase();
        let step = Step::new(phase, producer, topics, &config)
            .map_err(|source| WorkError::Core { phase, source })?;
        Ok(Stepper {
            phase,
            step,
            work,
            stores,
            config,
            ports,
            bus: None,
            cancels: CancelWatch::default(),
            stand_in: None,
            recipes: None,
        })
    }

    /// Runs with a stand-in broker's workarounds ([`StandIn`]).
    pub fn with_stand_in(mut self, stand_in: Arc<dyn StandIn>) -> Stepper {
        self.stand_in = Some(stand_in);
        self
    }

    /// The outcome of one message. Never fails: what can never be decoded is
    /// dead-lettered (while the schema registry is unreachable the lane waits
    /// instead), what fails is recorded as failed. `cancel` stops the work.
    pub async fn handle(&self, msg: &OwnedMessage, cancel: CancellationToken) -> Outcome {
        let env = match self.ports.codec.decode(msg).await {
            Ok(env) => env,
            Err(e) => return self.step.undecodable(e),
        };
        let submission = matches!(env.body, EventBody::JobSubmitted(_));
        let env = if submission && self.phase == Phase::Ingest {
            self.pinned(env, &cancel).await
        } else {
            env
        };
        let claim = if submission && self.phase == Phase::Ingest {
            self.ports.claims.claim(&env.job_id, &env.event_id).await
        } else {
            Claim::Ours
        };
        let item = match self.step.plan(&env, claim) {
            Ok(item) => item,
            Err(outcome) => {
                if *outcome == Outcome::Skipped {
                    tracing::info!(job_id = %env.job_id, "resubmission of a known job id: nothing to do");
                }
                return *outcome;
            }
        };
        if submission {
            sprocket_platform::metrics::metrics().jobs_submitted.inc();
            // Acceptance is a live fact: the same event id is republished on
            // redelivery. The record keeps no credentials of the source.
            self.ports
                .live
                .publish_durably(self.step.recorded(&env))
                .await;
        }
        let result = self.run(&item, env.attempt.max(1), cancel).await;
        if matches!(result, PhaseResult::Cancelled) {
            crate::phases::remove_outputs(self.phase, &item, &self.stores).await;
        }
        self.step.step(&env, result, chrono::Utc::now())
    }

    /// A submission with a stored recipe's name pinned to the version the
    /// job runs ([`RecipeBook::pin`]), so that its acceptance records that
    /// recipe inline with its version. While Kafka cannot say how far the
    /// stored recipes go, the lane waits (as for a schema registry outage)
    /// rather than refuse a recipe that may exist; until `cancel`.
    async fn pinned(&self, env: Envelope, cancel: &CancellationToken) -> Envelope {
        let (Some(book), EventBody::JobSubmitted(s)) = (&self.recipes, &env.body) else {
            return env;
        };
        let mut delay = Duration::from_millis(200);
        loop {
            match book.pin(s).await {
                Ok(Pin::Pinned(s)) => {
                    return Envelope {
                        body: EventBody::JobSubmitted(s),
                        ..env
                    }
                }
                Ok(Pin::Unchanged | Pin::Unknown) => return env,
                Err(e) => {
                    tracing::warn!(job_id = %env.job_id, error = %e, retry_in_ms = delay.as_millis() as u64,
                        "cannot read the stored recipes yet; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = cancel.cancelled() => return env,
                    }
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    /// One attempt at the item's phase, unless the job is cancelled.
    async fn run(&self, item: &WorkItem, attempt: u32, cancel: CancellationToken) -> PhaseResult {
        let (phase, job) = (self.phase, &item.job_id);
        if self.cancels.is_cancelled(job) {
            tracing::info!(job_id = %job, %phase, "cancelled before it started");
            return PhaseResult::Cancelled;
        }
        let rt = match self.step.runtime(item) {
            Ok(rt) => rt,
            Err(source) => return PhaseResult::Failed(WorkError::Core { phase, source }),
        };
        let started_at = chrono::Utc::now();
        let started = PhaseStarted {
            phase,
            worker: self.step.producer.clone(),
        };
        self.ports.live.publish(self.step.event(
            job,
            attempt,
            EventBody::PhaseStarted(started),
            started_at,
        ));
        // A limit too large for a `Duration` is no limit.
        let limit = Duration::try_from_secs_f64(rt.timeout_s).unwrap_or(Duration::MAX);
        let result = self.run_once(item, attempt, cancel, limit).await;
        if self.cancels.is_cancelled(job) {
            tracing::info!(job_id = %job, %phase, "work stopped: the job was cancelled");
            return PhaseResult::Cancelled;
        }
        match result {
            Ok(done) => PhaseResult::Done {
                done: Box::new(done),
                started_at,
            },
            Err(e) => {
                tracing::warn!(job_id = %job, %phase, attempt, error = %e, retryable = e.retryable(), "phase failed");
                PhaseResult::Failed(e)
            }
        }
    }

    async fn run_once(
        &self,
        item: &WorkItem,
        attempt: u32,
        cancel: CancellationToken,
        limit: Duration,
    ) -> Result<crate::Done, WorkError> {
        let phase = self.phase;
        let base = self
            .config
            .worker
            .scratch_dir
            .clone()
            .unwrap_or_else(std::env::temp_dir);
        let scratch = Scratch::new(base, format!("sprocket-{phase}-{}-", item.job_id));
        let (tx, mut rx) = mpsc::unbounded_channel::<f64>();
        let cx = Cx::new(
            self.stores.clone(),
            self.config.clone(),
            scratch,
            cancel.clone(),
            tx,
        );
        let reporter = async {
            while let Some(percent) = rx.recv().await {
                let body = EventBody::PhaseProgress(PhaseProgress {
                    phase,
                    percent,
                    detail: None,
                });
                let e = self
                    .step
                    .event(&item.job_id, attempt, body, chrono::Utc::now());
                self.ports.live.publish(e);
            }
        };
        // A panic in the phase's code fails this attempt (retryably, as an
        // internal error) rather than the lane that runs it.
        let work = async {
            let r = std::panic::AssertUnwindSafe(self.work.run(item, &cx))
                .catch_unwind()
                .await
                .unwrap_or_else(|panic| {
                    Err(WorkError::Internal {
                        phase,
                        message: format!("the phase's code panicked: {}", panic_text(&*panic)),
                    })
                });
            drop(cx);
            r
        };
        let _registered = self.cancels.register(&item.job_id, cancel.clone());
        // Cancellation drops the work at once; media work also sees the token
        // and kills its ffmpeg child.
        let result = tokio::select! {
            (r, ()) = async { tokio::join!(work, reporter) } => r,
            () = cancel.cancelled() => Err(WorkError::Media { phase, source: sprocket_media::MediaError::Cancelled }),
            () = tokio::time::sleep(limit) => Err(WorkError::TimedOut { phase, after: limit }),
        };
        if matches!(result, Err(WorkError::TimedOut { .. })) {
            // Over the time limit: the token makes media work kill its ffmpeg child.
            cancel.cancel();
        }
        result
    }
}

/// What a panic said, when it said it with a string.
fn panic_text(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}

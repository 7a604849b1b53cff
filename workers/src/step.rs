//! The pure step: from a message and its phase's result to the message's
//! [`Outcome`]. No I/O and no clock of its own (`now` is an argument): the
//! decisions are the core's ([`sprocket_core::machine`]), this only turns them
//! into the events the outcome records.

use chrono::{DateTime, Utc};
use sprocket_core::event::{
    Empty, JobCancelled, JobDeadLettered, JobFailed, PhaseFailed, PhaseRetryScheduled,
};
use sprocket_core::machine::{self, Action, Attempt, Claim, Completion};
use sprocket_core::retry::{RetryPolicy, Runtime};
use sprocket_core::{Bounds, CoreError, Envelope, EventBody, JobId, Phase, Topics, WorkItem};
use sprocket_platform::config::Config;

use crate::outcome::{DeadLettered, Outcome};
use crate::WorkError;

/// How a phase's run of a work item ended.
#[derive(Debug)]
pub enum PhaseResult {
    Done {
        done: Box<Completion>,
        started_at: DateTime<Utc>,
    },
    Failed(WorkError),
    /// The job was cancelled (before or while it ran).
    Cancelled,
}

/// The pure part of a phase's worker.
#[derive(Debug, Clone)]
pub struct Step {
    pub phase: Phase,
    /// Who writes the events (`sprocket-worker-<phase>@host`).
    pub producer: String,
    pub topics: Topics,
    /// The configured runtime policy with the phase's own defaults applied.
    defaults: Runtime,
    /// What a submission may ask for.
    bounds: Bounds,
    /// The tenant of a submission that names none (`tenants.default`).
    default_tenant: String,
}

impl Step {
    /// The step of `phase`, with the retry policy and time limit of
    /// `config.worker` (its `phases.<phase>` overrides applied) and the
    /// submission bounds of `config.limits`.
    pub fn new(
        phase: Phase,
        producer: impl Into<String>,
        topics: Topics,
        config: &Config,
    ) -> Result<Step, CoreError> {
        let worker = &config.worker;
        let global = Runtime {
            retry: RetryPolicy {
                max_attempts: worker.max_attempts,
                initial_delay_ms: worker.retry_delay_ms,
                multiplier: worker.retry_multiplier,
                max_delay_ms: worker.retry_max_delay_ms,
            },
            timeout_s: worker.timeout_s,
        };
        let own = worker.phases.get(&phase).cloned().unwrap_or_default();
        Ok(Step {
            phase,
            producer: producer.into(),
            topics,
            defaults: Runtime::from_params(&own, &global)?,
            bounds: config.limits.bounds(),
            default_tenant: config.tenants.default.clone(),
        })
    }

    /// The runtime policy of an item: the defaults, then its recipe step's overrides.
    pub fn runtime(&self, item: &WorkItem) -> Result<Runtime, CoreError> {
        Runtime::from_params(&item.step_params(), &self.defaults)
    }

    /// What an input message asks of this phase: the work item to run, or how
    /// the message ends without running anything. `claim` says, for a
    /// submission, whether it claimed its job id.
    pub fn plan(&self, input: &Envelope, claim: Claim) -> Result<WorkItem, Box<Outcome>> {
        let action = match &input.body {
            EventBody::JobSubmitted(_) if self.phase == Phase::Ingest => {
                machine::accept(input, claim, &self.bounds)
            }
            EventBody::WorkItem(item) if item.phase == self.phase => {
                return Ok(WorkItem::clone(item))
            }
            _ => machine::misrouted(self.phase, input),
        };
        match action {
            Action::Dispatch(item) if item.phase == self.phase => Ok(*item),
            other => Err(Box::new(self.outcome(input, None, other, Utc::now()))),
        }
    }

    /// A submission as the events topic records it: without the source's
    /// credentials, and with the default tenant when it names none.
    pub fn recorded(&self, submission: &Envelope) -> Envelope {
        submission
            .clone()
            .for_the_record()
            .with_default_tenant(&self.default_tenant)
    }

    /// A message that could not be decoded.
    pub fn undecodable(&self, error: impl std::fmt::Display) -> Outcome {
        match machine::undecodable(error) {
            Action::DeadLetter { reason } => Outcome::DeadLettered { reason },
            other => Outcome::DeadLettered {
                reason: format!("undecodable message, decided as {other:?}"),
            },
        }
    }

    /// The outcome of `input` whose phase ended with `result` at `now`.
    pub fn step(&self, input: &Envelope, result: PhaseResult, now: DateTime<Utc>) -> Outcome {
        let item = match self.plan(input, Claim::Ours) {
            Ok(item) => item,
            Err(outcome) => return *outcome,
        };
        let attempt = input.attempt.max(1);
        let policy = self
            .runtime(&item)
            .map_or(self.defaults.retry.clone(), |r| r.retry);
        let (started_at, completed, result) = match result {
            PhaseResult::Done { done, started_at } => {
                let completed = done.event.clone();
                (started_at, Some(completed), Attempt::Completed(done))
            }
            PhaseResult::Failed(e) => (
                now,
                None,
                Attempt::Failed {
                    error: e.info(),
                    retryable: e.retryable(),
                },
            ),
            PhaseResult::Cancelled => (now, None, Attempt::Cancelled),
        };
        let action = machine::after_attempt(&item, attempt, started_at, now, result, &policy);
        let completed = completed.map(|body| self.event(&item.job_id, attempt, body, now));
        match (action, completed) {
            (Action::Dispatch(next), Some(completed)) => Outcome::Advanced {
                completed,
                next: self.event(&item.job_id, 1, EventBody::WorkItem(next), now),
            },
            (Action::Succeed, Some(completed)) => Outcome::Succeeded {
                completed,
                succeeded: self.event(
                    &item.job_id,
                    attempt,
                    EventBody::JobSucceeded(Empty {}),
                    now,
                ),
            },
            (
                Action::Retry {
                    item: again,
                    attempt: next,
                    delay_ms,
                    cause,
                },
                _,
            ) => Outcome::Retrying {
                failed: self.phase_failed(&item.job_id, attempt, cause.clone(), true, now),
                scheduled: self.event(
                    &item.job_id,
                    attempt,
                    EventBody::PhaseRetryScheduled(PhaseRetryScheduled {
                        phase: self.phase,
                        delay_ms,
                        cause,
                    }),
                    now,
                ),
                again: self.event(&item.job_id, next, EventBody::WorkItem(again), now),
                due_at_ms: now.timestamp_millis().saturating_add(delay_ms as i64),
            },
            (other, _) => self.outcome(input, Some(attempt), other, now),
        }
    }

    /// The outcome of `input` when what it decided writes a record of
    /// `bytes`, over the `limit` Kafka takes.
    pub fn too_large(
        &self,
        input: &Envelope,
        bytes: usize,
        limit: usize,
        now: DateTime<Utc>,
    ) -> Outcome {
        let what = format!(
            "the {} phase's outcome has a record of {bytes} bytes, over the limit of {limit}",
            self.phase
        );
        let action = machine::too_large(self.phase, what);
        self.outcome(input, Some(input.attempt.max(1)), action, now)
    }

    /// The outcome of a decision that needs no completion: a failure, a
    /// cancellation, a rejection, a duplicate or a dead letter.
    fn outcome(
        &self,
        input: &Envelope,
        attempt: Option<u32>,
        action: Action,
        now: DateTime<Utc>,
    ) -> Outcome {
        let job = &input.job_id;
        let at = attempt.unwrap_or(1);
        match action {
            Action::IgnoreDuplicate => Outcome::Skipped,
            Action::DeadLetter { reason } => Outcome::DeadLettered { reason },
            Action::Fail {
                phase: None,
                error,
                dead_letter,
            } => Outcome::Rejected {
                dead_letter,
                submission: self.recorded(input),
                job_failed: self.event(
                    job,
                    1,
                    EventBody::JobFailed(JobFailed { phase: None, error }),
                    now,
                ),
            },
            Action::Fail {
                phase: Some(phase),
                error,
                dead_letter,
            } => Outcome::Failed {
                failed: self.phase_failed(job, at, error.clone(), dead_letter.is_some(), now),
                job_failed: self.event(
                    job,
                    at,
                    EventBody::JobFailed(JobFailed {
                        phase: Some(phase),
                        error,
                    }),
                    now,
                ),
                dead_lettered: dead_letter.map(|reason| DeadLettered {
                    event: self.event(
                        job,
                        at,
                        EventBody::JobDeadLettered(JobDeadLettered {
                            phase,
                            topic: self.topics.dlq(phase),
                            reason: reason.clone(),
                        }),
                        now,
                    ),
                    reason,
                }),
            },
            Action::Cancel { phase } => Outcome::Cancelled {
                cancelled: self.event(
                    job,
                    at,
                    EventBody::JobCancelled(JobCancelled { phase }),
                    now,
                ),
            },
            // Not a decision a message's step can come to: kept, with the reason.
            other => Outcome::DeadLettered {
                reason: format!("no outcome for the decision {other:?}"),
            },
        }
    }

    fn phase_failed(
        &self,
        job: &JobId,
        attempt: u32,
        error: sprocket_core::ErrorInfo,
        retryable: bool,
        now: DateTime<Utc>,
    ) -> Envelope {
        self.event(
            job,
            attempt,
            EventBody::PhaseFailed(PhaseFailed {
                phase: self.phase,
                error,
                retryable,
            }),
            now,
        )
    }

    /// An event of this worker about `job`, stamped `now`.
    pub fn event(
        &self,
        job: &JobId,
        attempt: u32,
        body: EventBody,
        now: DateTime<Utc>,
    ) -> Envelope {
        let mut env = Envelope::new(job.clone(), self.producer.clone(), attempt, body);
        env.occurred_at = now;
        env
    }
}

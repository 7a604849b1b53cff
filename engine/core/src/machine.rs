//! What must happen next: every decision of the job state machine, as plain data.
//!
//! The core is the only decision-maker. Workers, the API and the projector ask
//! it what follows from what they saw (a submission, a phase attempt's result,
//! a redrive or cancel request) and execute the [`Action`] it returns; replay
//! (the projector's fold, [`Job::apply`](crate::Job::apply)) computes the same
//! actions and ignores them.

use chrono::{DateTime, Utc};

use crate::event::{Artifact, MediaInfo};
use crate::retry::RetryPolicy;
use crate::{Bounds, CoreError};
use crate::{
    Envelope, ErrorInfo, EventBody, Job, JobId, JobStatus, Phase, PhaseTimes, Recipe, WorkItem,
};

/// One thing an adapter must do.
#[must_use = "an action is a decision someone must execute"]
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Hand the job to a phase's workers: produce this item to its phase topic.
    Dispatch(Box<WorkItem>),
    /// Run the item's phase again after `delay_ms`: the item, as attempt
    /// `attempt`, to the phase's retry topic, with `PhaseRetryScheduled`.
    Retry {
        item: Box<WorkItem>,
        attempt: u32,
        delay_ms: u64,
        cause: ErrorInfo,
    },
    /// The message cannot be handled at all: to the dead letter topic, with the reason.
    DeadLetter { reason: String },
    /// The recipe's last phase completed: record `JobSucceeded`.
    Succeed,
    /// The job fails for good: record `JobFailed` with the error. With
    /// `dead_letter`, the phase's retries were exhausted: the item also goes to
    /// the dead letter topic and `JobDeadLettered` is recorded, with that reason.
    Fail {
        phase: Option<Phase>,
        error: ErrorInfo,
        dead_letter: Option<String>,
    },
    /// The job is cancelled: record `JobCancelled` (the phase's partial
    /// outputs are removed).
    Cancel { phase: Option<Phase> },
    /// Stop the work running for this phase (a cancellation arrived).
    Abort(Phase),
    /// Start a failed job again: record `JobRedriven`, then dispatch the item.
    Redrive(Box<WorkItem>),
    /// A job id submitted again: nothing to do, the first submission won.
    IgnoreDuplicate,
}

/// What a phase's completed attempt hands on.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    /// The completion event (`MediaIngested`, `MediaAnalyzed`, …).
    pub event: EventBody,
    /// Outputs to carry in the work item to the later phases.
    pub artifacts: Vec<Artifact>,
    /// Probe results, from ingest.
    pub media: Option<MediaInfo>,
}

/// How one attempt at a phase ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Attempt {
    Completed(Box<Completion>),
    Failed { error: ErrorInfo, retryable: bool },
    Cancelled,
}

/// Whether this submission is the one that claimed its job id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// First seen (or seen again: a redelivery of the same event).
    Ours,
    /// Another submission of the same job id came first.
    Theirs,
}

/// Why a command on a job is refused: a stable code and a readable reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Refusal {
    pub code: &'static str,
    pub message: String,
}

/// After `done` completes, where the routing slip sends the job: its next
/// phase, or nowhere (the job succeeded).
pub fn advance(recipe: &Recipe, done: Phase) -> Option<Phase> {
    recipe.next_after(done)
}

/// A submission arrives: the job's first work item, the job's failure (a
/// recipe or source that is not valid), or nothing (a duplicate).
pub fn accept(submission: &Envelope, claim: Claim, bounds: &Bounds) -> Action {
    let EventBody::JobSubmitted(s) = &submission.body else {
        return Action::DeadLetter {
            reason: format!("{} is not a submission", submission.kind().0),
        };
    };
    if claim == Claim::Theirs {
        return Action::IgnoreDuplicate;
    }
    match bounds.submission(s) {
        Ok(recipe) => Action::Dispatch(Box::new(WorkItem {
            job_id: submission.job_id.clone(),
            phase: recipe.steps.first().map_or(Phase::Ingest, |s| s.phase),
            recipe,
            source: s.source.clone(),
            labels: s.labels.clone(),
            submitted_at: submission.occurred_at,
            artifacts: Default::default(),
            media: None,
            phases: Default::default(),
        })),
        // A submission over a limit also goes to the dead letter topic with
        // the reason: someone is producing what the API would have refused.
        Err(e) => Action::Fail {
            phase: None,
            dead_letter: matches!(e, CoreError::OverLimit(_)).then(|| e.to_string()),
            error: ErrorInfo::from(&e),
        },
    }
}

/// An outcome of `phase` that would write a record larger than Kafka
/// takes: permanent (trying again writes the same record), so the job
/// fails and its item goes to the dead letter topic with the reason.
pub fn too_large(phase: Phase, what: String) -> Action {
    Action::Fail {
        phase: Some(phase),
        error: ErrorInfo::new("record_too_large", what.clone()),
        dead_letter: Some(what),
    }
}

/// A message on `phase`'s topic that is not work for it.
pub fn misrouted(phase: Phase, message: &Envelope) -> Action {
    Action::DeadLetter {
        reason: format!(
            "{} is not a work item for the {phase} phase",
            message.kind().0
        ),
    }
}

/// A message that cannot be decoded at all.
pub fn undecodable(error: impl std::fmt::Display) -> Action {
    Action::DeadLetter {
        reason: format!("undecodable message: {error}"),
    }
}

/// The decision after attempt `attempt` at `item`'s phase, which ran from
/// `started_at` to `now` and ended with `result`, under `policy`.
///
/// A retry's delay is spread by a jitter derived from the job, phase and
/// attempt, so the decision is the same however often it is made (a redone
/// attempt schedules its retry for the same delay).
pub fn after_attempt(
    item: &WorkItem,
    attempt: u32,
    started_at: DateTime<Utc>,
    now: DateTime<Utc>,
    result: Attempt,
    policy: &RetryPolicy,
) -> Action {
    let phase = item.phase;
    match result {
        Attempt::Completed(done) => match advance(&item.recipe, phase) {
            Some(next) => {
                let times = PhaseTimes {
                    started_at: Some(started_at),
                    finished_at: Some(now),
                    attempts: attempt,
                };
                let mut fwd = item.forward(next, times, done.artifacts);
                if done.media.is_some() {
                    fwd.media = done.media;
                }
                Action::Dispatch(Box::new(fwd))
            }
            None => Action::Succeed,
        },
        Attempt::Failed { error, retryable } if retryable && attempt < policy.max_attempts => {
            Action::Retry {
                item: Box::new(item.clone()),
                attempt: attempt + 1,
                delay_ms: policy.delay_ms(attempt + 1, jitter(&item.job_id, phase, attempt)),
                cause: error,
            }
        }
        Attempt::Failed { error, retryable } => Action::Fail {
            phase: Some(phase),
            dead_letter: retryable
                .then(|| format!("attempts exhausted ({attempt}): {}", error.message)),
            error,
        },
        Attempt::Cancelled => Action::Cancel { phase: Some(phase) },
    }
}

/// A stable number in [0, 1) for a job's phase attempt.
fn jitter(job: &JobId, phase: Phase, attempt: u32) -> f64 {
    // FNV-1a: stable across processes and versions, unlike `DefaultHasher`.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let bytes = job.as_str().bytes().chain(phase.as_str().bytes());
    for b in bytes.chain(attempt.to_le_bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// A request to retry a failed job: restart it from the phase that failed,
/// keeping what the phases before it produced.
pub fn redrive(job: &Job) -> Result<Action, Refusal> {
    let refuse = |message: String| Refusal {
        code: "not_retryable",
        message,
    };
    if job.status != JobStatus::Failed {
        return Err(refuse(format!(
            "job {} is {}; only failed jobs can be retried",
            job.id, job.status
        )));
    }
    if job.retired_by.contains(crate::retention::rule::WORK) {
        return Err(Refusal {
            code: "data_expired",
            message: format!(
                "job {}'s working data was removed under {}; submit it again",
                job.id,
                crate::retention::rule::WORK
            ),
        });
    }
    if job.resolved_recipe().is_none() {
        return Err(refuse(format!(
            "job {} has no valid recipe to run again",
            job.id
        )));
    }
    let item = job.phase.and_then(|p| job.work_item(p)).ok_or_else(|| {
        refuse(format!(
            "job {} failed before any phase ran; submit it again",
            job.id
        ))
    })?;
    Ok(Action::Redrive(Box::new(item)))
}

/// A request to cancel a job: only a queued or running job can be cancelled.
pub fn request_cancel(job: &Job) -> Result<(), Refusal> {
    if job.status.is_terminal() {
        return Err(Refusal {
            code: "job_finished",
            message: format!(
                "job {} is {}; only queued or running jobs can be cancelled",
                job.id, job.status
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_slip_routes_to_the_next_phase_then_succeeds() {
        let r = Recipe::builtin("highlight").unwrap();
        assert_eq!(advance(&r, Phase::Ingest), Some(Phase::Analyze));
        assert_eq!(advance(&r, Phase::Render), Some(Phase::Archive));
        assert_eq!(advance(&r, Phase::Archive), None);
    }

    #[test]
    fn jitter_is_stable_and_spread() {
        let job = JobId::parse("job-1").unwrap();
        let a = jitter(&job, Phase::Render, 1);
        assert_eq!(a, jitter(&job, Phase::Render, 1));
        assert!((0.0..1.0).contains(&a));
        assert_ne!(a, jitter(&job, Phase::Render, 2));
    }
}

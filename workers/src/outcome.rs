//! A message's outcome: what committing it writes. Each variant is one way a
//! message can end, holding exactly the events that ending records, so no
//! combination that means nothing (a retry and a dead letter, a next item
//! and a failure) can be built.

use sprocket_core::{Envelope, Phase, Topics};

/// What committing a message means.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Nothing to write: a job id submitted again (the first submission won).
    Skipped,
    /// The phase completed and the routing slip goes on: the completion event,
    /// and the next phase's work item.
    Advanced { completed: Envelope, next: Envelope },
    /// The recipe's last phase completed.
    Succeeded {
        completed: Envelope,
        succeeded: Envelope,
    },
    /// A retryable failure with attempts left: `PhaseFailed`,
    /// `PhaseRetryScheduled`, and the item's next attempt for the retry topic,
    /// due at `due_at_ms` (Unix ms).
    Retrying {
        failed: Envelope,
        scheduled: Envelope,
        again: Envelope,
        due_at_ms: i64,
    },
    /// The job failed for good: `PhaseFailed`, `JobFailed`, and, when its
    /// retries were exhausted, `JobDeadLettered` with the message to the dead
    /// letter topic.
    Failed {
        failed: Envelope,
        job_failed: Envelope,
        dead_lettered: Option<DeadLettered>,
    },
    /// A submission that cannot run (its recipe or source is not valid): the
    /// submission itself and `JobFailed`; one over a limit also goes to the
    /// dead letter topic with the reason.
    Rejected {
        submission: Envelope,
        job_failed: Envelope,
        dead_letter: Option<String>,
    },
    /// The job was cancelled: `JobCancelled`.
    Cancelled { cancelled: Envelope },
    /// The message cannot be handled at all: to the dead letter topic.
    DeadLettered { reason: String },
}

/// The dead letter of a job whose retries ran out: its event, and the reason
/// the dead letter record carries.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLettered {
    pub event: Envelope,
    pub reason: String,
}

/// One record an outcome writes, before encoding.
#[derive(Debug, Clone, PartialEq)]
pub enum Write<'a> {
    /// An envelope to `topic`.
    Event { topic: String, env: &'a Envelope },
    /// A retry, to the phase's retry topic, due at `due_at_ms`.
    Retry {
        topic: String,
        env: &'a Envelope,
        due_at_ms: i64,
    },
    /// The consumed message itself, to the phase's dead letter topic.
    DeadLetter { topic: String, reason: &'a str },
}

impl Outcome {
    /// The outcome as a bounded metric label.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Skipped => "skipped",
            Outcome::Advanced { .. } | Outcome::Succeeded { .. } => "succeeded",
            Outcome::Retrying { .. } => "retried",
            Outcome::Failed {
                dead_lettered: Some(_),
                ..
            }
            | Outcome::DeadLettered { .. } => "dead_lettered",
            Outcome::Failed { .. } | Outcome::Rejected { .. } => "failed",
            Outcome::Cancelled { .. } => "cancelled",
        }
    }

    /// How the job finished, if this outcome finishes it.
    pub fn finishes(&self) -> Option<&'static str> {
        match self {
            Outcome::Succeeded { .. } => Some("succeeded"),
            Outcome::Failed { .. } | Outcome::Rejected { .. } => Some("failed"),
            Outcome::Cancelled { .. } => Some("cancelled"),
            _ => None,
        }
    }

    /// Whether it sends something to the dead letter topic.
    pub fn dead_letters(&self) -> bool {
        self.dead_letter_reason().is_some()
    }

    fn dead_letter_reason(&self) -> Option<&str> {
        match self {
            Outcome::DeadLettered { reason }
            | Outcome::Rejected {
                dead_letter: Some(reason),
                ..
            } => Some(reason),
            Outcome::Failed {
                dead_lettered: Some(d),
                ..
            } => Some(&d.reason),
            _ => None,
        }
    }

    /// The records committing this outcome of a message on `phase`'s topics
    /// writes, in order: events first, then the next item, retry or dead letter.
    pub fn writes(&self, phase: Phase, topics: &Topics) -> Vec<Write<'_>> {
        let event = |env| Write::Event {
            topic: topics.events(),
            env,
        };
        let mut out = match self {
            Outcome::Skipped | Outcome::DeadLettered { .. } => vec![],
            Outcome::Advanced { completed, next } => {
                let to = match &next.body {
                    sprocket_core::EventBody::WorkItem(item) => item.phase,
                    _ => phase,
                };
                vec![
                    event(completed),
                    Write::Event {
                        topic: topics.phase(to),
                        env: next,
                    },
                ]
            }
            Outcome::Succeeded {
                completed,
                succeeded,
            } => vec![event(completed), event(succeeded)],
            Outcome::Retrying {
                failed,
                scheduled,
                again,
                due_at_ms,
            } => vec![
                event(failed),
                event(scheduled),
                Write::Retry {
                    topic: topics.retry(phase),
                    env: again,
                    due_at_ms: *due_at_ms,
                },
            ],
            Outcome::Failed {
                failed,
                job_failed,
                dead_lettered,
            } => {
                let mut v = vec![event(failed), event(job_failed)];
                v.extend(dead_lettered.as_ref().map(|d| event(&d.event)));
                v
            }
            Outcome::Rejected {
                submission,
                job_failed,
                ..
            } => vec![event(submission), event(job_failed)],
            Outcome::Cancelled { cancelled } => vec![event(cancelled)],
        };
        if let Some(reason) = self.dead_letter_reason() {
            out.push(Write::DeadLetter {
                topic: topics.dlq(phase),
                reason,
            });
        }
        out
    }
}

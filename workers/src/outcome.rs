//! A message's outcome — what committing it means — and how each kind of
//! ending (completed, failed for good, cancelled) is built.

use sprocket_core::event::{Empty, JobCancelled, JobDeadLettered, JobFailed, PhaseFailed};
use sprocket_core::machine::{advance, Action};
use sprocket_core::{Envelope, EventBody, PhaseTimes, WorkItem};

use crate::step::Stepper;
use crate::WorkError;

/// What committing a message means.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Events for `sprocket.events`, in order.
    pub events: Vec<Envelope>,
    /// The work item for the next phase, if the routing slip has one.
    pub next: Option<Envelope>,
    /// The message itself, to the phase's dead letter topic, with the reason.
    pub dead_letter: Option<DeadLetter>,
    /// The item's next attempt, to the phase's retry topic.
    pub retry: Option<Retry>,
}

/// A scheduled attempt: the work item (its envelope's `attempt` is the next one)
/// and when it is due.
#[derive(Debug, Clone)]
pub struct Retry {
    pub item: Envelope,
    pub due_at_ms: i64,
}

#[derive(Debug, Clone)]
pub struct DeadLetter {
    pub reason: String,
    pub key: Option<String>,
    pub payload: Vec<u8>,
}

impl Outcome {
    /// The outcome as a bounded metric label.
    pub fn label(&self) -> &'static str {
        let failed = self
            .events
            .iter()
            .any(|e| matches!(e.body, EventBody::JobFailed(_)));
        if self.dead_letter.is_some() {
            "dead_lettered"
        } else if self.retry.is_some() {
            "retried"
        } else if failed {
            "failed"
        } else if self.events.is_empty() && self.next.is_none() {
            "skipped"
        } else {
            "succeeded"
        }
    }
}

impl Stepper {
    /// The phase's work is done: its completion, and the next phase's item or
    /// the job's success.
    pub(crate) fn completed(
        &self,
        item: &WorkItem,
        attempt: u32,
        started_at: chrono::DateTime<chrono::Utc>,
        done: crate::Done,
    ) -> Outcome {
        let times = PhaseTimes {
            started_at: Some(started_at),
            finished_at: Some(chrono::Utc::now()),
            attempts: attempt,
        };
        let mut events = vec![self.item_event(item, attempt, done.event.clone())];
        let mut next = None;
        match advance(&item.recipe, self.phase) {
            Action::Dispatch(to) => {
                let mut fwd = item.forward(to, times, done.artifacts);
                if done.media.is_some() {
                    fwd.media = done.media;
                }
                next = Some(self.item_event(item, 1, EventBody::WorkItem(Box::new(fwd))));
            }
            _ => events.push(self.item_event(item, attempt, EventBody::JobSucceeded(Empty {}))),
        }
        Outcome {
            events,
            next,
            ..Outcome::default()
        }
    }

    /// The job fails; a retryable error that ran out of attempts also sends the
    /// item to the dead letter topic and records `JobDeadLettered`.
    pub(crate) fn failed_for_good(
        &self,
        item: &WorkItem,
        attempt: u32,
        e: &WorkError,
        payload: &[u8],
    ) -> Outcome {
        let phase = self.phase;
        tracing::warn!(job_id = %item.job_id, %phase, attempt, error = %e, "phase failed");
        let info = e.info();
        let mut events = vec![
            self.failed(item, attempt, e),
            self.item_event(
                item,
                attempt,
                EventBody::JobFailed(JobFailed {
                    phase: Some(phase),
                    error: info.clone(),
                }),
            ),
        ];
        let mut dead_letter = None;
        if e.retryable() {
            let reason = format!("attempts exhausted ({attempt}): {}", info.message);
            events.push(self.item_event(
                item,
                attempt,
                EventBody::JobDeadLettered(JobDeadLettered {
                    phase,
                    topic: self.bus.topics.dlq(phase),
                    reason: reason.clone(),
                }),
            ));
            dead_letter = Some(DeadLetter {
                reason,
                key: Some(item.job_id.to_string()),
                payload: payload.to_vec(),
            });
        }
        Outcome {
            events,
            dead_letter,
            ..Outcome::default()
        }
    }

    /// The outcome of a cancelled item: its partial outputs removed, `JobCancelled`.
    pub(crate) async fn cancelled(&self, item: &WorkItem, attempt: u32) -> Outcome {
        crate::phases::remove_outputs(self.phase, item, &self.stores).await;
        Outcome {
            events: vec![self.item_event(
                item,
                attempt,
                EventBody::JobCancelled(JobCancelled {
                    phase: Some(self.phase),
                }),
            )],
            ..Outcome::default()
        }
    }

    pub(crate) fn failed(&self, item: &WorkItem, attempt: u32, e: &WorkError) -> Envelope {
        self.item_event(
            item,
            attempt,
            EventBody::PhaseFailed(PhaseFailed {
                phase: self.phase,
                error: e.info(),
                retryable: e.retryable(),
            }),
        )
    }
}

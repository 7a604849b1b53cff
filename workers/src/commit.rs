//! Committing a lane's finished messages: every outcome's records (events,
//! next work items, retries, dead letters) and the offset after the last
//! message, in one transaction.

use std::time::Duration;

use rdkafka::message::{Message, OwnedMessage};
use sprocket_core::Phase;
use sprocket_platform::bus::{
    BusError, Record, HEADER_DLQ_OFFSET, HEADER_DLQ_PARTITION, HEADER_DLQ_REASON, HEADER_DLQ_TOPIC,
    HEADER_PRODUCER, HEADER_RETRY_AT,
};
use sprocket_platform::metrics::metrics;

use crate::lane::{LaneShared, LaneState, Revoked};
use crate::outcome::{Outcome, Write};
use crate::ports::LaneId;

/// A message whose outcome is decided and waits to be committed.
#[derive(Debug)]
pub(crate) struct Finished {
    pub(crate) msg: OwnedMessage,
    pub(crate) outcome: Outcome,
}

/// Why a batch was not committed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CommitError {
    /// The partition was revoked first: its new owner redoes the messages.
    #[error("the partition was revoked")]
    Revoked,
    /// Fenced, fatal, or still failing after the retries.
    #[error("{topic}/{partition} offsets {first}..={last}: {source}")]
    Bus {
        topic: String,
        partition: i32,
        first: i64,
        last: i64,
        #[source]
        source: BusError,
    },
}

impl From<Revoked> for CommitError {
    fn from(_: Revoked) -> Self {
        CommitError::Revoked
    }
}

/// Commits a batch (in offset order, no gaps) with the offset after its last
/// message in one transaction, retrying transient failures; gives up when the
/// partition is revoked, or when the producer is fenced or fatal.
pub(crate) async fn commit(
    shared: &LaneShared,
    state: &LaneState,
    lane: &LaneId,
    batch: &mut [Finished],
) -> Result<(), CommitError> {
    let (Some(first), Some(last)) = (batch.first(), batch.last()) else {
        return Ok(());
    };
    let (first, last) = (first.msg.offset(), last.msg.offset());
    let next = last + 1;
    let at = |source| CommitError::Bus {
        topic: lane.0.clone(),
        partition: lane.1,
        first,
        last,
        source,
    };
    let records: std::sync::Arc<[Record]> = records(shared, batch).await.map_err(at)?.into();
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let written = state.committing(|| shared.tx.commit(lane, &records, next))?;
        match written {
            Ok(()) => {
                count_committed(shared.stepper.phase, batch);
                return Ok(());
            }
            Err(e) => {
                metrics().transactions.with_label_values(&["aborted"]).inc();
                if !e.retryable() || attempt >= 5 {
                    return Err(at(e));
                }
                tracing::warn!(topic = %lane.0, partition = lane.1, attempt, error = %e, "transaction failed; retrying");
                tokio::time::sleep(Duration::from_millis(200 * attempt as u64)).await;
            }
        }
    }
}

/// Counts what committed outcomes mean for the jobs and the phase.
fn count_committed(phase: Phase, batch: &[Finished]) {
    let m = metrics();
    let p = phase.as_str();
    m.transactions.with_label_values(&["committed"]).inc();
    for f in batch {
        let o = &f.outcome;
        if o.dead_letters() {
            m.dead_letters.with_label_values(&[p]).inc();
        }
        if let Some(how) = o.finishes() {
            m.jobs_finished.with_label_values(&[how]).inc();
        }
        match o {
            Outcome::Retrying { .. } => {
                m.retries.with_label_values(&[p]).inc();
                m.phase_failures.with_label_values(&[p, "retryable"]).inc();
            }
            Outcome::Failed { dead_lettered, .. } => {
                let class = if dead_lettered.is_some() {
                    "retryable"
                } else {
                    "permanent"
                };
                m.phase_failures.with_label_values(&[p, class]).inc();
            }
            _ => {}
        }
    }
}

/// The batch's records, encoded, in order. An outcome with a record larger
/// than `limits.max_record_bytes` is decided again as too large for Kafka
/// (the job fails for good, its item is dead-lettered): committing it
/// would fail every time.
async fn records(shared: &LaneShared, batch: &mut [Finished]) -> Result<Vec<Record>, BusError> {
    let limit = shared.stepper.config.limits.max_record_bytes;
    let mut out = Vec::new();
    for f in batch {
        let mut own = encode(shared, f).await?;
        let largest = own.iter().map(Record::size).max().unwrap_or(0);
        if largest > limit {
            let stepper = &shared.stepper;
            f.outcome = match stepper.ports.codec.decode(&f.msg).await {
                Ok(input) => {
                    tracing::warn!(job_id = %input.job_id, phase = %stepper.phase, bytes = largest, limit, "an outcome too large for Kafka: the job fails");
                    stepper
                        .step
                        .too_large(&input, largest, limit, chrono::Utc::now())
                }
                Err(e) => stepper.step.undecodable(e),
            };
            own = encode(shared, f).await?;
        }
        out.extend(own);
    }
    Ok(out)
}

/// One finished message's records, encoded, in order.
async fn encode(shared: &LaneShared, f: &Finished) -> Result<Vec<Record>, BusError> {
    let step = &shared.stepper.step;
    let codec = &shared.stepper.ports.codec;
    let mut out = Vec::new();
    for w in f.outcome.writes(step.phase, &step.topics) {
        out.push(match w {
            Write::Event { topic, env } => codec.encode(&topic, env).await?,
            Write::Retry {
                topic,
                env,
                due_at_ms,
            } => {
                let mut r = codec.encode(&topic, env).await?;
                r.headers
                    .push((HEADER_RETRY_AT.into(), due_at_ms.to_string()));
                r
            }
            Write::DeadLetter { topic, reason } => dead_letter(&f.msg, topic, reason, step),
        });
    }
    Ok(out)
}

/// The consumed message itself, with where it came from and why.
fn dead_letter(
    msg: &OwnedMessage,
    topic: String,
    reason: &str,
    step: &crate::step::Step,
) -> Record {
    Record {
        topic,
        key: msg
            .key()
            .map(|k| String::from_utf8_lossy(k).into_owned())
            .unwrap_or_default(),
        payload: msg.payload().unwrap_or_default().to_vec(),
        headers: vec![
            (HEADER_DLQ_REASON.into(), reason.to_owned()),
            (HEADER_DLQ_TOPIC.into(), msg.topic().to_owned()),
            (HEADER_DLQ_PARTITION.into(), msg.partition().to_string()),
            (HEADER_DLQ_OFFSET.into(), msg.offset().to_string()),
            (HEADER_PRODUCER.into(), step.producer.clone()),
        ],
    }
}

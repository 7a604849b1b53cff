//! Committing a message's outcome: its events, the next work item, a retry or
//! a dead letter, and the consumed offset, in one Kafka transaction.

use std::time::Duration;

use rdkafka::consumer::Consumer;
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::producer::{FutureProducer, Producer};
use rdkafka::{Offset, TopicPartitionList};
use sprocket_platform::bus::{
    BusError, Record, HEADER_DLQ_OFFSET, HEADER_DLQ_PARTITION, HEADER_DLQ_REASON, HEADER_DLQ_TOPIC,
    HEADER_PRODUCER, HEADER_RETRY_AT,
};
use sprocket_platform::metrics::metrics;

use crate::lane::{LaneShared, LaneState, Revoked};
use crate::rebalance::WorkerConsumer;
use crate::step::{Outcome, Stepper};

/// Why an outcome was not committed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CommitError {
    /// The partition was revoked first: its new owner redoes the message.
    #[error("the partition was revoked")]
    Revoked,
    /// Fenced, fatal, or still failing after the retries.
    #[error(transparent)]
    Bus(#[from] BusError),
}

impl From<Revoked> for CommitError {
    fn from(_: Revoked) -> Self {
        CommitError::Revoked
    }
}

/// Commits one outcome with the consumed offset in one transaction, retrying
/// transient failures; gives up when the partition is revoked, or when the
/// producer is fenced or fatal.
pub(crate) async fn commit(
    shared: &LaneShared,
    state: &LaneState,
    producer: &mut Option<FutureProducer>,
    txn_id: &str,
    msg: &OwnedMessage,
    outcome: &Outcome,
) -> Result<(), CommitError> {
    let stepper = &shared.stepper;
    let consumer = &shared.consumer;
    let records = records(stepper, msg, outcome).await?;
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        if producer.is_none() {
            *producer = Some(stepper.bus.transactional_producer(txn_id)?);
        }
        let p = producer.as_ref().expect("just created");
        let written = state.committing(|| {
            let r = transaction(consumer, p, msg, &records);
            match &r {
                Ok(()) => {
                    if let Some(s) = &stepper.stand_in {
                        s.committed(consumer, msg.topic(), msg.partition(), msg.offset() + 1);
                    }
                }
                Err(_) => {
                    let _ = p.abort_transaction(Duration::from_secs(10));
                }
            }
            r
        })?;
        match written {
            Ok(()) => {
                count_committed(stepper, outcome);
                return Ok(());
            }
            Err(e) => {
                metrics().transactions.with_label_values(&["aborted"]).inc();
                if !e.retryable() || attempt >= 5 {
                    return Err(e.into());
                }
                tracing::warn!(txn_id, attempt, error = %e, "transaction failed; retrying");
                *producer = None;
                tokio::time::sleep(Duration::from_millis(200 * attempt as u64)).await;
            }
        }
    }
}

/// Counts what a committed outcome means for the job and the phase.
fn count_committed(stepper: &Stepper, outcome: &Outcome) {
    let m = metrics();
    m.transactions.with_label_values(&["committed"]).inc();
    if outcome.dead_letter.is_some() {
        m.dead_letters
            .with_label_values(&[stepper.phase.as_str()])
            .inc();
    }
    for e in &outcome.events {
        match e.body {
            sprocket_core::EventBody::JobSucceeded(_) => {
                m.jobs_finished.with_label_values(&["succeeded"]).inc()
            }
            sprocket_core::EventBody::JobFailed(_) => {
                m.jobs_finished.with_label_values(&["failed"]).inc()
            }
            sprocket_core::EventBody::JobCancelled(_) => {
                m.jobs_finished.with_label_values(&["cancelled"]).inc()
            }
            _ => {}
        }
    }
}

/// One transaction, blocking until the broker answers: the records are
/// produced and their acknowledgements awaited, then the consumed offset is
/// added and the transaction committed. It runs whole, on this thread, under
/// the lane's gate.
///
/// Awaiting the acknowledgements before the commit matters: with records
/// outstanding, rust-rdkafka's `commit_transaction` first flushes by polling
/// in 100 ms steps while the producer's own thread takes the delivery
/// reports, so each commit waited about 100 ms (the engine bench: a no-op
/// job's unloaded hand-offs 103 ms each, 7 ms with deliveries awaited).
fn transaction(
    consumer: &WorkerConsumer,
    p: &FutureProducer,
    msg: &OwnedMessage,
    records: &[Record],
) -> Result<(), BusError> {
    let t = Duration::from_secs(30);
    p.begin_transaction()
        .map_err(BusError::kafka("begin_transaction"))?;
    let produced = |topic: &str, e| BusError::Kafka {
        context: format!("producing to {topic}"),
        source: e,
    };
    let mut deliveries = Vec::with_capacity(records.len());
    for r in records {
        let d = p
            .send_result(r.future())
            .map_err(|(e, _)| produced(&r.topic, e))?;
        deliveries.push((r, d));
    }
    for (r, d) in deliveries {
        // Completed by the producer's own polling thread, not by this runtime.
        match futures::executor::block_on(d) {
            Ok(Ok(_)) => {}
            Ok(Err((e, _))) => return Err(produced(&r.topic, e)),
            Err(_) => return Err(produced(&r.topic, rdkafka::error::KafkaError::Canceled)),
        }
    }
    let mut offsets = TopicPartitionList::new();
    offsets
        .add_partition_offset(
            msg.topic(),
            msg.partition(),
            Offset::Offset(msg.offset() + 1),
        )
        .map_err(BusError::kafka("offsets"))?;
    let meta = consumer.group_metadata().ok_or_else(|| BusError::Kafka {
        context: "no consumer group metadata".into(),
        source: rdkafka::error::KafkaError::NoMessageReceived,
    })?;
    p.send_offsets_to_transaction(&offsets, &meta, t)
        .map_err(BusError::kafka("send_offsets_to_transaction"))?;
    p.commit_transaction(t)
        .map_err(BusError::kafka("commit_transaction"))
}

async fn records(
    stepper: &Stepper,
    msg: &OwnedMessage,
    outcome: &Outcome,
) -> Result<Vec<Record>, BusError> {
    let topics = &stepper.bus.topics;
    let mut out = Vec::new();
    for e in &outcome.events {
        out.push(stepper.bus.record(&topics.events(), e).await?);
    }
    if let Some(next) = &outcome.next {
        if let sprocket_core::EventBody::WorkItem(item) = &next.body {
            out.push(stepper.bus.record(&topics.phase(item.phase), next).await?);
        }
    }
    if let Some(retry) = &outcome.retry {
        let mut r = stepper
            .bus
            .record(&topics.retry(stepper.phase), &retry.item)
            .await?;
        r.headers
            .push((HEADER_RETRY_AT.into(), retry.due_at_ms.to_string()));
        out.push(r);
    }
    if let Some(dl) = &outcome.dead_letter {
        out.push(Record {
            topic: topics.dlq(stepper.phase),
            key: dl.key.clone().unwrap_or_default(),
            payload: dl.payload.clone(),
            headers: vec![
                (HEADER_DLQ_REASON.into(), dl.reason.clone()),
                (HEADER_DLQ_TOPIC.into(), msg.topic().to_owned()),
                (HEADER_DLQ_PARTITION.into(), msg.partition().to_string()),
                (HEADER_DLQ_OFFSET.into(), msg.offset().to_string()),
                (HEADER_PRODUCER.into(), stepper.bus.producer_name.clone()),
            ],
        });
    }
    Ok(out)
}

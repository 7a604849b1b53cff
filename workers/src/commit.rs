//! Committing a message's outcome: its events, the next work item, a retry or
//! a dead letter, and the consumed offset, in one Kafka transaction.

use std::time::Duration;

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::producer::{FutureProducer, Producer};
use rdkafka::{Offset, TopicPartitionList};
use sprocket_platform::bus::{
    BusError, Record, HEADER_DLQ_OFFSET, HEADER_DLQ_PARTITION, HEADER_DLQ_REASON, HEADER_DLQ_TOPIC,
    HEADER_PRODUCER, HEADER_RETRY_AT,
};
use sprocket_platform::metrics::metrics;

use crate::step::{Outcome, Stepper};

/// Commits one outcome with the consumed offset in one transaction, retrying
/// transient failures; gives up only when the producer is fenced or fatal.
pub(crate) async fn commit(
    stepper: &Stepper,
    consumer: &StreamConsumer,
    producer: &mut Option<FutureProducer>,
    txn_id: &str,
    msg: &OwnedMessage,
    outcome: &Outcome,
) -> Result<(), BusError> {
    let records = records(stepper, msg, outcome).await?;
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        if producer.is_none() {
            *producer = Some(stepper.bus.transactional_producer(txn_id)?);
        }
        let p = producer.as_ref().expect("just created");
        match transaction(stepper, consumer, p, msg, &records).await {
            Ok(()) => {
                count_committed(stepper, outcome);
                commit_position(consumer, msg);
                return Ok(());
            }
            Err(e) => {
                metrics().transactions.with_label_values(&["aborted"]).inc();
                let _ = blocking(|| p.abort_transaction(Duration::from_secs(10)));
                if !e.retryable() || attempt >= 5 {
                    return Err(e);
                }
                tracing::warn!(txn_id, attempt, error = %e, "transaction failed; retrying");
                *producer = None;
                tokio::time::sleep(Duration::from_millis(200 * attempt as u64)).await;
            }
        }
    }
}

/// librdkafka's transaction calls block until the broker answers: run them so
/// they never hold an async worker thread (which could starve the very tasks —
/// the embedded broker's relay, other lanes — the answer depends on).
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

/// Also records the consumed position through the consumer, after the
/// transaction committed it. Real Kafka already has it from the transaction (this
/// writes the same offset again); librdkafka's mock cluster — the embedded broker
/// of `sprocket dev` and the tests — answers transactional offset commits
/// without storing them, and without this a partition's next owner would start
/// from its beginning.
fn commit_position(consumer: &StreamConsumer, msg: &OwnedMessage) {
    let mut tpl = TopicPartitionList::new();
    let next = Offset::Offset(msg.offset() + 1);
    if tpl
        .add_partition_offset(msg.topic(), msg.partition(), next)
        .is_ok()
    {
        let sync = rdkafka::consumer::CommitMode::Sync;
        if let Err(e) = blocking(|| consumer.commit(&tpl, sync)) {
            tracing::debug!(topic = msg.topic(), partition = msg.partition(), error = %e, "position commit");
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

async fn transaction(
    stepper: &Stepper,
    consumer: &StreamConsumer,
    p: &FutureProducer,
    msg: &OwnedMessage,
    records: &[Record],
) -> Result<(), BusError> {
    let t = Duration::from_secs(30);
    blocking(|| p.begin_transaction()).map_err(BusError::kafka("begin_transaction"))?;
    for r in records {
        stepper.bus.send(p, r).await?;
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
    blocking(|| p.send_offsets_to_transaction(&offsets, &meta, t))
        .map_err(BusError::kafka("send_offsets_to_transaction"))?;
    blocking(|| p.commit_transaction(t)).map_err(BusError::kafka("commit_transaction"))
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

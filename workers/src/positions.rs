//! The group's positions and the lag gauge.
//!
//! Scale to zero: every transactional write leaves a commit marker at the
//! offset after it, so a group that committed "last item + 1" would show a
//! lag of 1 for ever and KEDA would never scale the phase to zero. The poll
//! loop calls [`commit_idle_positions`] once a second: each partition whose
//! lane has nothing pending gets the consumer's position committed
//! (librdkafka moves it past markers). Partitions that never held a message
//! get their start committed ([`commit_empty`]), so Kafka's own tools show 0
//! there rather than "-".

use std::collections::HashMap;
use std::time::Duration;

use rdkafka::consumer::{CommitMode, Consumer, ConsumerContext, StreamConsumer};
use rdkafka::{Offset, TopicPartitionList};
use sprocket_platform::metrics::metrics;

use crate::rebalance::{Lanes, WorkerConsumer};

/// Commits the consumer's position for every owned partition with nothing
/// pending whose position moved past what was committed: only transaction
/// markers lie between (every message returned before was committed by its
/// lane), so this loses nothing and brings the group's lag to 0.
pub(crate) fn commit_idle_positions(
    topic: &str,
    consumer: &WorkerConsumer,
    lanes: &Lanes,
    idle_committed: &mut HashMap<(String, i32), i64>,
) {
    for key in consumer.context().take_failed_commits() {
        idle_committed.remove(&key);
    }
    let Ok(positions) = consumer.position() else {
        return;
    };
    let mut tpl = TopicPartitionList::new();
    {
        let map = lanes.lock();
        for e in positions.elements() {
            let Some(at) = e.offset().to_raw().filter(|o| *o >= 0) else {
                continue;
            };
            let key = (e.topic().to_owned(), e.partition());
            let lane = map.get(&key);
            if lane.is_some_and(|l| l.state.pending() > 0 || l.state.is_revoked()) {
                continue;
            }
            let known = lane
                .map(|l| l.state.committed())
                .max(idle_committed.get(&key).copied())
                .unwrap_or(-1);
            let moved = at > known || (lane.is_none() && !idle_committed.contains_key(&key));
            if moved
                && tpl
                    .add_partition_offset(&key.0, key.1, Offset::Offset(at))
                    .is_ok()
            {
                idle_committed.insert(key, at);
            }
        }
    }
    // Forget this consumer's partitions that it no longer owns.
    idle_committed.retain(|(t, p), _| t != topic || positions.find_partition(t, *p).is_some());
    if tpl.count() > 0 {
        if let Err(e) = consumer.commit(&tpl, CommitMode::Async) {
            tracing::debug!(error = %e, "committing idle positions");
        }
    }
}

/// Commits the start of owned partitions that have never held a message and
/// have no committed offset, so Kafka's tools show them at lag 0 rather than
/// "-". Only where no message has reached a lane since the reading (then
/// nothing can have been committed there).
pub(crate) fn commit_empty(
    consumer: &WorkerConsumer,
    lanes: &Lanes,
    idle_committed: &mut HashMap<(String, i32), i64>,
    empty: &[(String, i32, i64)],
) {
    let Ok(owned) = consumer.assignment() else {
        return;
    };
    let mut tpl = TopicPartitionList::new();
    {
        let map = lanes.lock();
        for (topic, partition, start) in empty {
            if owned.find_partition(topic, *partition).is_none() {
                continue;
            }
            let key = (topic.clone(), *partition);
            if map.contains_key(&key) || idle_committed.contains_key(&key) {
                continue;
            }
            if tpl
                .add_partition_offset(&key.0, key.1, Offset::Offset(*start))
                .is_ok()
            {
                idle_committed.insert(key, *start);
            }
        }
    }
    if tpl.count() > 0 {
        if let Err(e) = consumer.commit(&tpl, CommitMode::Async) {
            tracing::debug!(error = %e, "committing the start of empty partitions");
        }
    }
}

/// Publishes the consumer lag of every owned partition: its end minus our
/// position. Returns the owned partitions that are empty and have neither a
/// position nor a committed offset, with their start offset.
pub fn record_lag<C: ConsumerContext>(
    consumer: &StreamConsumer<C>,
    group: &str,
) -> Vec<(String, i32, i64)> {
    let mut empty = Vec::new();
    let (Ok(assigned), Ok(positions)) = (consumer.assignment(), consumer.position()) else {
        return empty;
    };
    let valid = |o: Offset| o.to_raw().filter(|o| *o >= 0);
    let at = |tpl: &TopicPartitionList, topic: &str, partition: i32| {
        tpl.find_partition(topic, partition)
            .and_then(|p| valid(p.offset()))
    };
    // Before a partition's first fetch there is no position: fall back to the
    // group's committed offsets, asked for once for all partitions.
    let committed = assigned
        .elements()
        .iter()
        .any(|tp| at(&positions, tp.topic(), tp.partition()).is_none())
        .then(|| {
            consumer
                .committed_offsets(assigned.clone(), Duration::from_secs(2))
                .ok()
        })
        .flatten();
    for tp in assigned.elements() {
        let Ok((low, high)) =
            consumer.fetch_watermarks(tp.topic(), tp.partition(), Duration::from_secs(2))
        else {
            continue;
        };
        let known = at(&positions, tp.topic(), tp.partition()).or_else(|| {
            committed
                .as_ref()
                .and_then(|c| at(c, tp.topic(), tp.partition()))
        });
        if known.is_none() && low == high && committed.is_some() {
            empty.push((tp.topic().to_owned(), tp.partition(), low));
        }
        metrics()
            .consumer_lag
            .with_label_values(&[tp.topic(), &tp.partition().to_string(), group])
            .set((high - known.unwrap_or(0)).max(0));
    }
    empty
}

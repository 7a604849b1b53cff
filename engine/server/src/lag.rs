//! Consumer lag per phase, read from Kafka the way lag monitors (and
//! `kafka-consumer-groups --describe`) read it: each partition's end offset
//! (the high watermark) against the phase group's committed offset, for the
//! phase topic and its retry topic (KEDA's two triggers per phase); the
//! group's members, and the age of the oldest message still waiting.
//!
//! On Apache Kafka, offsets count transaction markers too: an item written
//! in a transaction takes its own offset and its commit marker's, so a
//! waiting item shows as a lag of 2 (and a drained partition as 0, once the
//! workers commit their position past the last marker).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde::Serialize;
use sprocket_core::{Phase, Topics};

use crate::scale::{self, PartitionOffsets, Plan, ScaledObject, TopicReading};

const TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, Clone, Serialize)]
pub struct PartitionView {
    pub partition: i32,
    pub end_offset: i64,
    /// `None`: the group never committed on this partition.
    pub committed_offset: Option<i64>,
    pub lag: i64,
}

/// One topic a phase's group consumes.
#[derive(Debug, Clone, Serialize)]
pub struct TopicView {
    pub topic: String,
    /// Σ end − committed (from the partition's start where never committed).
    pub lag: i64,
    pub partitions: Vec<PartitionView>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PhaseView {
    pub phase: Phase,
    /// The phase topic (`sprocket.<phase>`).
    pub topic: String,
    pub group: String,
    /// Offsets waiting on the phase topic and its retry topic together.
    pub lag: i64,
    /// The phase topic's partitions.
    pub partitions: Vec<PartitionView>,
    /// The retry topic (`sprocket.<phase>.retry`).
    pub retry: TopicView,
    /// Worker processes in the phase's consumer group, counted by client id
    /// (each runs a consumer per topic; `None` if the broker did not say).
    pub members: Option<usize>,
    /// Age of the oldest waiting message, seconds.
    pub oldest_waiting_age_s: Option<f64>,
    /// Offsets committed per second on the phase topic since the previous probe.
    pub throughput_per_s: Option<f64>,
    /// What KEDA's Kafka scaler and the HPA would ask for with Sprocket's
    /// ScaledObject (both triggers), starting from the group's members.
    pub scale: Plan,
}

/// One reading of every phase, kept for the next: throughput and
/// `excludePersistentLag` compare with it.
struct Reading {
    at: Instant,
    offsets: HashMap<String, Vec<PartitionOffsets>>,
}

/// Reads lag for every phase; keeps the previous reading.
pub struct LagProbe {
    base: ClientConfig,
    topics: Topics,
    groups: HashMap<Phase, BaseConsumer>,
    peek: BaseConsumer,
    last: Mutex<Option<Reading>>,
}

impl LagProbe {
    pub fn new(base: ClientConfig, topics: Topics) -> Result<LagProbe, rdkafka::error::KafkaError> {
        let mut groups = HashMap::new();
        for phase in Phase::ALL {
            // Never subscribes: it only asks the group coordinator for offsets.
            let c: BaseConsumer = base
                .clone()
                .set("group.id", topics.group(phase))
                .set("enable.auto.commit", "false")
                .create()?;
            groups.insert(phase, c);
        }
        let peek: BaseConsumer = base
            .clone()
            .set("group.id", topics.named("lag-probe"))
            .set("enable.auto.commit", "false")
            .set("isolation.level", "read_committed")
            .create()?;
        Ok(LagProbe {
            base,
            topics,
            groups,
            peek,
            last: Mutex::new(None),
        })
    }

    pub fn client_config(&self) -> &ClientConfig {
        &self.base
    }

    /// Blocking: one reading of every phase.
    pub fn read(&self) -> Result<Vec<PhaseView>, rdkafka::error::KafkaError> {
        let now = Instant::now();
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let previous = last.as_ref();
        let mut views = Vec::new();
        let mut offsets = HashMap::new();
        for phase in Phase::ALL {
            let (view, read) = self.read_phase(phase, previous)?;
            if let Some(before) = previous {
                let secs = now.duration_since(before.at).as_secs_f64();
                let sum =
                    |o: &[PartitionOffsets]| o.iter().filter_map(|p| p.committed).sum::<i64>();
                if let (Some(then), true) = (before.offsets.get(&view.topic), secs > 0.0) {
                    let delta = sum(&read[&view.topic]) - sum(then);
                    views.push(PhaseView {
                        throughput_per_s: Some(delta.max(0) as f64 / secs),
                        ..view
                    });
                    offsets.extend(read);
                    continue;
                }
            }
            views.push(view);
            offsets.extend(read);
        }
        *last = Some(Reading { at: now, offsets });
        Ok(views)
    }

    fn read_phase(
        &self,
        phase: Phase,
        previous: Option<&Reading>,
    ) -> Result<(PhaseView, HashMap<String, Vec<PartitionOffsets>>), rdkafka::error::KafkaError>
    {
        let consumer = &self.groups[&phase];
        let group = self.topics.group(phase);
        let (main, main_offsets, main_oldest) =
            self.read_topic(consumer, &self.topics.phase(phase))?;
        let (retry, retry_offsets, retry_oldest) =
            self.read_topic(consumer, &self.topics.retry(phase))?;
        // A worker process runs one consumer per topic, all with its client id.
        let members = consumer
            .fetch_group_list(Some(&group), TIMEOUT)
            .ok()
            .and_then(|l| {
                l.groups().first().map(|g| {
                    let ids: std::collections::BTreeSet<&str> =
                        g.members().iter().map(|m| m.client_id()).collect();
                    ids.len()
                })
            });
        let before = |topic: &str| -> &[PartitionOffsets] {
            previous
                .and_then(|p| p.offsets.get(topic))
                .map_or(&[], Vec::as_slice)
        };
        // The group's members stand for the running replicas (one consumer
        // per worker process).
        let scale = scale::plan(
            &ScaledObject::for_phase(&self.topics, phase, main.partitions.len() as i64),
            &[
                TopicReading {
                    topic: &main.topic,
                    partitions: &main_offsets,
                    previous: before(&main.topic),
                },
                TopicReading {
                    topic: &retry.topic,
                    partitions: &retry_offsets,
                    previous: before(&retry.topic),
                },
            ],
            members.unwrap_or(0) as i64,
        )
        .expect("Sprocket's own ScaledObjects pass KEDA's checks (scale.rs tests)");
        let read = HashMap::from([
            (main.topic.clone(), main_offsets),
            (retry.topic.clone(), retry_offsets),
        ]);
        let oldest = match (main_oldest, retry_oldest) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        let view = PhaseView {
            phase,
            topic: main.topic,
            group,
            lag: main.lag + retry.lag,
            partitions: main.partitions,
            retry,
            members,
            oldest_waiting_age_s: oldest,
            throughput_per_s: None,
            scale,
        };
        Ok((view, read))
    }

    /// One topic's partitions against the group's committed offsets, and the
    /// age of its oldest waiting message.
    fn read_topic(
        &self,
        consumer: &BaseConsumer,
        topic: &str,
    ) -> Result<(TopicView, Vec<PartitionOffsets>, Option<f64>), rdkafka::error::KafkaError> {
        let partitions = topic_offsets(consumer, topic)?;
        let mut oldest: Option<f64> = None;
        for p in partitions.iter().filter(|p| p.lag > 0) {
            let from = p.committed_offset.unwrap_or(p.end_offset - p.lag);
            if let Some(age) = self.age_at(topic, p.partition, from) {
                oldest = Some(oldest.map_or(age, |o: f64| o.max(age)));
            }
        }
        let offsets = partitions
            .iter()
            .map(|p| PartitionOffsets {
                end: p.end_offset,
                committed: p.committed_offset,
            })
            .collect();
        let view = TopicView {
            topic: topic.to_owned(),
            lag: partitions.iter().map(|p| p.lag).sum(),
            partitions,
        };
        Ok((view, offsets, oldest))
    }

    /// Age of the message at `offset`, from its timestamp.
    fn age_at(&self, topic: &str, partition: i32, offset: i64) -> Option<f64> {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, partition, Offset::Offset(offset))
            .ok()?;
        self.peek.assign(&tpl).ok()?;
        let deadline = Instant::now() + Duration::from_secs(1);
        while Instant::now() < deadline {
            if let Some(Ok(m)) = self.peek.poll(Duration::from_millis(200)) {
                let ts = m.timestamp().to_millis()?;
                let now = chrono::Utc::now().timestamp_millis();
                return Some((now - ts).max(0) as f64 / 1000.0);
            }
        }
        None
    }
}

/// Blocking: `topic`'s partitions against the committed offsets of
/// `consumer`'s group (it need not have joined): each one's end offset (the
/// high watermark), committed offset, and lag (counted from the partition's
/// start where the group never committed).
pub fn topic_offsets(
    consumer: &BaseConsumer,
    topic: &str,
) -> Result<Vec<PartitionView>, rdkafka::error::KafkaError> {
    let md = consumer.fetch_metadata(Some(topic), TIMEOUT)?;
    let count = md
        .topics()
        .first()
        .map(|t| t.partitions().len())
        .unwrap_or(0) as i32;
    let mut tpl = TopicPartitionList::new();
    for p in 0..count {
        tpl.add_partition(topic, p);
    }
    let committed = consumer.committed_offsets(tpl, TIMEOUT)?;
    let mut partitions = Vec::new();
    for p in 0..count {
        let (low, end) = consumer.fetch_watermarks(topic, p, TIMEOUT)?;
        let c = committed
            .find_partition(topic, p)
            .and_then(|e| e.offset().to_raw())
            .filter(|o| *o >= 0);
        partitions.push(PartitionView {
            partition: p,
            end_offset: end,
            committed_offset: c,
            lag: (end - c.unwrap_or(low)).max(0),
        });
    }
    Ok(partitions)
}

//! Consumer lag per phase, read from Kafka the way lag monitors read it: each
//! partition's end offset against the phase group's committed offset, the
//! group's members, and the age of the oldest message still waiting.

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

#[derive(Debug, Clone, Serialize)]
pub struct PhaseView {
    pub phase: Phase,
    pub topic: String,
    pub group: String,
    /// Messages waiting (Σ end − committed).
    pub lag: i64,
    pub partitions: Vec<PartitionView>,
    /// Members of the phase's consumer group (`None` if the broker did not say).
    pub members: Option<usize>,
    /// Age of the oldest waiting message, seconds.
    pub oldest_waiting_age_s: Option<f64>,
    /// Messages committed per second since the previous probe.
    pub throughput_per_s: Option<f64>,
    /// What KEDA's Kafka scaler would ask for with Sprocket's default trigger.
    pub scale: Plan,
}

/// Reads lag for every phase; keeps the previous reading for throughput.
pub struct LagProbe {
    base: ClientConfig,
    topics: Topics,
    groups: HashMap<Phase, BaseConsumer>,
    peek: BaseConsumer,
    last: Mutex<Option<(Instant, HashMap<Phase, i64>)>>,
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
        let mut views = Vec::new();
        for phase in Phase::ALL {
            views.push(self.read_phase(phase)?);
        }
        let committed: HashMap<Phase, i64> = views
            .iter()
            .map(|v| {
                (
                    v.phase,
                    v.partitions.iter().filter_map(|p| p.committed_offset).sum(),
                )
            })
            .collect();
        let mut last = self.last.lock().expect("lag probe lock");
        if let Some((then, before)) = last.as_ref() {
            let secs = now.duration_since(*then).as_secs_f64();
            for v in &mut views {
                if secs > 0.0 {
                    let delta = committed[&v.phase] - before.get(&v.phase).copied().unwrap_or(0);
                    v.throughput_per_s = Some(delta.max(0) as f64 / secs);
                }
            }
        }
        *last = Some((now, committed));
        Ok(views)
    }

    fn read_phase(&self, phase: Phase) -> Result<PhaseView, rdkafka::error::KafkaError> {
        let consumer = &self.groups[&phase];
        let topic = self.topics.phase(phase);
        let group = self.topics.group(phase);
        let md = consumer.fetch_metadata(Some(&topic), TIMEOUT)?;
        let count = md
            .topics()
            .first()
            .map(|t| t.partitions().len())
            .unwrap_or(0) as i32;
        let mut tpl = TopicPartitionList::new();
        for p in 0..count {
            tpl.add_partition(&topic, p);
        }
        let committed = consumer.committed_offsets(tpl, TIMEOUT)?;
        let mut partitions = Vec::new();
        let mut offsets = Vec::new();
        let mut oldest: Option<f64> = None;
        for p in 0..count {
            let (low, end) = consumer.fetch_watermarks(&topic, p, TIMEOUT)?;
            let c = committed
                .find_partition(&topic, p)
                .and_then(|e| e.offset().to_raw())
                .filter(|o| *o >= 0);
            let lag = (end - c.unwrap_or(low)).max(0);
            if lag > 0 {
                if let Some(age) = self.age_at(&topic, p, c.unwrap_or(low)) {
                    oldest = Some(oldest.map_or(age, |o: f64| o.max(age)));
                }
            }
            offsets.push(PartitionOffsets { end, committed: c });
            partitions.push(PartitionView {
                partition: p,
                end_offset: end,
                committed_offset: c,
                lag,
            });
        }
        let members = consumer
            .fetch_group_list(Some(&group), TIMEOUT)
            .ok()
            .and_then(|l| l.groups().first().map(|g| g.members().len()));
        // The group's members stand for the running replicas (one consumer per
        // worker process). Only the phase topic is read here: the retry
        // trigger shows under `unread`, and no previous reading is kept, so
        // excludePersistentLag (off in Sprocket's triggers) could not act.
        let scale = scale::plan(
            &ScaledObject::for_phase(&self.topics, phase, count as i64),
            &[TopicReading::new(&topic, &offsets)],
            members.unwrap_or(0) as i64,
        )
        .expect("Sprocket's own ScaledObjects pass KEDA's checks (scale.rs tests)");
        Ok(PhaseView {
            phase,
            topic,
            group,
            lag: partitions.iter().map(|p| p.lag).sum(),
            partitions,
            members,
            oldest_waiting_age_s: oldest,
            throughput_per_s: None,
            scale,
        })
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

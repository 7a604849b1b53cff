//! A topic read from its beginning the way Kafka tooling reads it
//! (`read_committed`, no group offsets), every record kept with its position.

use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use serde_json::Value;

/// One record: its partition and its JSON value (Confluent framing removed).
#[derive(Debug, Clone)]
pub struct Record {
    pub partition: i32,
    pub value: Value,
}

impl Record {
    pub fn kind(&self) -> &str {
        self.value["type"].as_str().unwrap_or_default()
    }

    pub fn job(&self) -> &str {
        self.value["job_id"].as_str().unwrap_or_default()
    }

    pub fn producer(&self) -> &str {
        self.value["producer"].as_str().unwrap_or_default()
    }

    /// `data.phase`, for the events that name one.
    pub fn phase(&self) -> &str {
        self.value["data"]["phase"].as_str().unwrap_or_default()
    }

    /// `occurred_at`, in milliseconds since the epoch.
    pub fn at_ms(&self) -> i64 {
        let at = self.value["occurred_at"].as_str().unwrap_or_default();
        chrono::DateTime::parse_from_rfc3339(at)
            .unwrap_or_else(|e| panic!("occurred_at {at:?}: {e}"))
            .timestamp_millis()
    }
}

pub struct TopicLog {
    consumer: StreamConsumer,
    topic: String,
    partitions: i32,
    pub records: Vec<Record>,
}

impl TopicLog {
    pub fn open(kafka: &str, topic: &str) -> TopicLog {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", kafka);
        Self::open_with(config, topic)
    }

    /// Like [`open`](Self::open), as a client configured by `config`
    /// (bootstrap servers, and SASL or TLS properties on a secured cluster).
    pub fn open_with(mut config: ClientConfig, topic: &str) -> TopicLog {
        let consumer: StreamConsumer = config
            .set(
                "group.id",
                format!("scale-out-reader-{}", uuid::Uuid::now_v7()),
            )
            .set("isolation.level", "read_committed")
            .set("enable.auto.commit", "false")
            .set("fetch.wait.max.ms", "50")
            .create()
            .expect("a reading consumer");
        let md = consumer
            .fetch_metadata(Some(topic), Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("metadata of {topic}: {e}"));
        let partitions = md.topics().first().map_or(0, |t| t.partitions().len()) as i32;
        assert!(partitions > 0, "{topic} has no partitions");
        let mut tpl = TopicPartitionList::new();
        for p in 0..partitions {
            tpl.add_partition_offset(topic, p, Offset::Beginning)
                .expect("partition list");
        }
        consumer.assign(&tpl).expect("assigning the topic");
        TopicLog {
            consumer,
            topic: topic.to_owned(),
            partitions,
            records: Vec::new(),
        }
    }

    pub fn partitions(&self) -> i32 {
        self.partitions
    }

    /// Reads what arrives within `d`; returns how many records came.
    pub async fn read_for(&mut self, d: Duration) -> usize {
        let deadline = tokio::time::Instant::now() + d;
        let mut n = 0;
        while let Ok(m) = tokio::time::timeout_at(deadline, self.consumer.recv()).await {
            let m = m.unwrap_or_else(|e| panic!("reading {}: {e}", self.topic));
            let payload = m.payload().unwrap_or_default();
            // Confluent wire format: magic byte 0, a 4-byte schema id, then JSON.
            let json = match payload.first() {
                Some(0) if payload.len() > 5 => &payload[5..],
                _ => payload,
            };
            let value: Value = serde_json::from_slice(json).unwrap_or_else(|e| {
                panic!(
                    "{} @{}:{} is not JSON: {e}",
                    self.topic,
                    m.partition(),
                    m.offset()
                )
            });
            self.records.push(Record {
                partition: m.partition(),
                value,
            });
            n += 1;
        }
        n
    }

    /// Reads until `done` holds for what was read, panicking after `timeout`.
    pub async fn read_until(
        &mut self,
        what: &str,
        timeout: Duration,
        done: impl Fn(&[Record]) -> bool,
    ) {
        let start = Instant::now();
        while !done(&self.records) {
            if start.elapsed() >= timeout {
                let last: Vec<String> = self.records[self.records.len().saturating_sub(30)..]
                    .iter()
                    .map(|r| {
                        format!(
                            "{} {} {} {} @{}",
                            r.at_ms(),
                            r.job(),
                            r.kind(),
                            r.phase(),
                            r.producer()
                        )
                    })
                    .collect();
                panic!(
                    "{what}: not seen on {} within {timeout:?}; the last records:\n{}",
                    self.topic,
                    last.join("\n")
                );
            }
            self.read_for(Duration::from_millis(100)).await;
        }
    }

    /// Reads up to the end of every partition as it is now.
    pub async fn catch_up(&mut self) {
        let ends: Vec<i64> = (0..self.partitions)
            .map(|p| {
                tokio::task::block_in_place(|| {
                    self.consumer
                        .fetch_watermarks(&self.topic, p, Duration::from_secs(5))
                })
                .unwrap_or_else(|e| panic!("watermarks of {}/{p}: {e}", self.topic))
                .1
            })
            .collect();
        let start = Instant::now();
        loop {
            self.read_for(Duration::from_millis(200)).await;
            let positions = self.consumer.position().expect("positions");
            let behind: Vec<i32> = (0..self.partitions)
                .filter(|&p| {
                    let at = positions
                        .find_partition(&self.topic, p)
                        .and_then(|e| e.offset().to_raw())
                        .filter(|o| *o >= 0)
                        .unwrap_or(0);
                    at < ends[p as usize]
                })
                .collect();
            if behind.is_empty() {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "{}: partitions {behind:?} not read to their ends {ends:?}",
                self.topic
            );
        }
    }

    /// The records of type `kind` (and of `phase`, unless empty) for `job`.
    pub fn of(&self, job: &str, kind: &str, phase: &str) -> Vec<&Record> {
        self.records
            .iter()
            .filter(|r| r.job() == job && r.kind() == kind)
            .filter(|r| phase.is_empty() || r.phase() == phase)
            .collect()
    }
}

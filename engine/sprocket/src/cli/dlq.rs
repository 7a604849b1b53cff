//! `sprocket dlq list` and `sprocket dlq redrive`: the dead letter topics, read
//! from Kafka like any Kafka tool would, and redriven through the API.

use std::collections::BTreeSet;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use sprocket_core::{Phase, Topics};
use sprocket_platform::bus::{
    header, HEADER_DLQ_OFFSET, HEADER_DLQ_PARTITION, HEADER_DLQ_REASON, HEADER_DLQ_TOPIC,
};
use sprocket_platform::config::Config;

/// One dead letter.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    pub phase: Phase,
    pub job_id: Option<String>,
    pub reason: String,
    pub from: String,
    pub at: chrono::DateTime<chrono::Utc>,
}

/// Every message on the phases' dead letter topics, oldest first per topic.
pub fn read_all(cfg: &Config) -> anyhow::Result<Vec<DeadLetter>> {
    let topics = Topics::new(cfg.kafka.topic_prefix.clone());
    // Assigned, never committing: the group (under the topic prefix, so an
    // ACL can name it) only identifies the reader.
    let consumer: BaseConsumer = sprocket_platform::bus::client_config(cfg)
        .set("group.id", topics.named("dlq-reader"))
        .set("enable.auto.commit", "false")
        .create()?;
    let timeout = Duration::from_secs(5);
    let mut out = Vec::new();
    for phase in Phase::ALL {
        let topic = topics.dlq(phase);
        let md = consumer.fetch_metadata(Some(&topic), timeout)?;
        let count = md
            .topics()
            .first()
            .map(|t| t.partitions().len())
            .unwrap_or(0) as i32;
        for p in 0..count {
            let (low, high) = consumer.fetch_watermarks(&topic, p, timeout)?;
            if high <= low {
                continue;
            }
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition_offset(&topic, p, Offset::Offset(low))?;
            consumer.assign(&tpl)?;
            let mut next = low;
            while next < high {
                let Some(m) = consumer.poll(timeout) else {
                    anyhow::bail!("reading {topic}/{p} timed out at offset {next}");
                };
                let m = m?;
                next = m.offset() + 1;
                let from = format!(
                    "{}/{}@{}",
                    header(&m, HEADER_DLQ_TOPIC).unwrap_or_default(),
                    header(&m, HEADER_DLQ_PARTITION).unwrap_or_default(),
                    header(&m, HEADER_DLQ_OFFSET).unwrap_or_default()
                );
                out.push(DeadLetter {
                    phase,
                    job_id: m
                        .key()
                        .map(|k| String::from_utf8_lossy(k).into_owned())
                        .filter(|k| !k.is_empty()),
                    reason: header(&m, HEADER_DLQ_REASON).unwrap_or_default(),
                    from,
                    at: m
                        .timestamp()
                        .to_millis()
                        .and_then(chrono::DateTime::from_timestamp_millis)
                        .unwrap_or_default(),
                });
            }
        }
    }
    Ok(out)
}

pub fn list(cfg: &Config) -> anyhow::Result<()> {
    let letters = read_all(cfg)?;
    if letters.is_empty() {
        println!("no dead letters");
    }
    for d in letters {
        println!(
            "{}  {:<8} {:<34} from {:<28} {}",
            d.at.format("%Y-%m-%d %H:%M:%S"),
            d.phase.as_str(),
            d.job_id.as_deref().unwrap_or("(no key)"),
            d.from,
            d.reason
        );
    }
    Ok(())
}

/// Redrives the dead-lettered jobs named (or all of them) through the API.
pub async fn redrive(
    cfg: &Config,
    api: &super::client::Api,
    id: Option<&str>,
    all: bool,
) -> anyhow::Result<()> {
    anyhow::ensure!(id.is_some() != all, "name one job id, or --all");
    let jobs: BTreeSet<String> = read_all(cfg)?
        .into_iter()
        .filter_map(|d| d.job_id)
        .filter(|j| id.is_none_or(|want| want == j))
        .collect();
    if let Some(want) = id {
        anyhow::ensure!(jobs.contains(want), "job {want} has no dead letter");
    }
    let mut failed = 0;
    for job in &jobs {
        match super::client::retry(api, job).await {
            Ok(()) => {}
            Err(e) => {
                failed += 1;
                eprintln!("{job}: {e}");
            }
        }
    }
    anyhow::ensure!(failed == 0, "{failed} of {} redrives refused", jobs.len());
    Ok(())
}

//! Operator commands over `GET /v1/phases`: `sprocket lag` and `sprocket scale-plan`.

use super::client::Api;
use anyhow::Context;
use serde_json::Value;
use sprocket_core::{Phase, Topics};

use sprocket_server::scale::{
    self, OffsetResetPolicy, PartitionOffsets, ScaledObject, TopicReading,
};

/// Trigger settings to try instead of Sprocket's own (`ScaledObject::for_phase`);
/// each applies to both of a phase's triggers (its topic and its retry topic).
/// KEDA's checks apply: a lagThreshold ≤ 0 or a negative activationLagThreshold
/// is refused.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct TriggerFlags {
    /// lagThreshold for every phase (default: render 1, analyze 2, ingest/archive 20).
    #[arg(long)]
    pub lag_threshold: Option<i64>,
    /// activationLagThreshold (default 0).
    #[arg(long)]
    pub activation_lag_threshold: Option<i64>,
    /// allowIdleConsumers (default false). KEDA refuses it beside
    /// limitToPartitionsWithLag, which Sprocket sets: add
    /// `--limit-to-partitions-with-lag=false`.
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub allow_idle_consumers: Option<bool>,
    /// limitToPartitionsWithLag (default true).
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub limit_to_partitions_with_lag: Option<bool>,
    /// scaleToZeroOnInvalidOffset (default false).
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub scale_to_zero_on_invalid_offset: Option<bool>,
    /// excludePersistentLag (default false): takes two readings
    /// `--polling-interval` apart and leaves out partitions whose committed
    /// offset did not move between them.
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub exclude_persistent_lag: Option<bool>,
    /// Seconds between the two readings of `--exclude-persistent-lag`
    /// (KEDA's default pollingInterval).
    #[arg(long, default_value_t = 15)]
    pub polling_interval: u64,
    /// latest or earliest (default earliest).
    #[arg(long)]
    pub offset_reset_policy: Option<String>,
    /// minReplicaCount (default 0).
    #[arg(long)]
    pub min_replicas: Option<i64>,
    /// maxReplicaCount (default: the partition count).
    #[arg(long)]
    pub max_replicas: Option<i64>,
    /// The replicas running now (default: the members of the phase's group).
    #[arg(long)]
    pub current_replicas: Option<i64>,
}

impl TriggerFlags {
    fn scaled_object(
        &self,
        phase: Phase,
        prefix: &str,
        partitions: i64,
    ) -> anyhow::Result<ScaledObject> {
        let mut so = ScaledObject::for_phase(&Topics::new(prefix), phase, partitions);
        let policy = match self.offset_reset_policy.as_deref() {
            None => None,
            Some("latest") => Some(OffsetResetPolicy::Latest),
            Some("earliest") => Some(OffsetResetPolicy::Earliest),
            Some(other) => anyhow::bail!("offsetResetPolicy {other:?}: use latest or earliest"),
        };
        for t in &mut so.triggers {
            let set = |field: &mut bool, flag: Option<bool>| *field = flag.unwrap_or(*field);
            t.lag_threshold = self.lag_threshold.unwrap_or(t.lag_threshold);
            t.activation_lag_threshold = self
                .activation_lag_threshold
                .unwrap_or(t.activation_lag_threshold);
            t.offset_reset_policy = policy.unwrap_or(t.offset_reset_policy);
            set(&mut t.allow_idle_consumers, self.allow_idle_consumers);
            set(
                &mut t.limit_to_partitions_with_lag,
                self.limit_to_partitions_with_lag,
            );
            set(
                &mut t.scale_to_zero_on_invalid_offset,
                self.scale_to_zero_on_invalid_offset,
            );
            set(&mut t.exclude_persistent_lag, self.exclude_persistent_lag);
        }
        so.min_replica_count = self.min_replicas.unwrap_or(so.min_replica_count);
        so.max_replica_count = self.max_replicas.unwrap_or(so.max_replica_count);
        so.validate()?;
        Ok(so)
    }
}

async fn phases(api: &Api) -> anyhow::Result<Vec<Value>> {
    let resp = api
        .http
        .get(format!("{}/v1/phases", api.url))
        .send()
        .await
        .with_context(|| format!("reaching {}", api.url))?;
    let status = resp.status();
    let body: Value = resp.json().await?;
    anyhow::ensure!(
        status.is_success(),
        "{status}: {}",
        body["error"]["message"]
    );
    Ok(body["phases"].as_array().cloned().unwrap_or_default())
}

fn opt(v: &Value, digits: usize) -> String {
    v.as_f64()
        .map_or_else(|| "-".into(), |x| format!("{x:.digits$}"))
}

pub async fn lag(api: &Api) -> anyhow::Result<()> {
    println!(
        "{:<8} {:>7} {:>9} {:>8} {:>11} {:>11} {:>9}",
        "phase", "lag", "in-flight", "members", "oldest (s)", "msgs/s", "replicas"
    );
    for p in phases(api).await? {
        println!(
            "{:<8} {:>7} {:>9} {:>8} {:>11} {:>11} {:>9}",
            p["phase"].as_str().unwrap_or(""),
            p["lag"],
            p["in_flight"],
            p["members"].as_u64().map_or("-".into(), |m| m.to_string()),
            opt(&p["oldest_waiting_age_s"], 1),
            opt(&p["throughput_per_s"], 2),
            p["scale"]["replicas"]
        );
    }
    Ok(())
}

/// A topic's partitions as `GET /v1/phases` reports them (`partitions` of a
/// phase, or of its `retry`).
fn offsets(topic: &Value) -> Vec<PartitionOffsets> {
    topic["partitions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|x| PartitionOffsets {
            end: x["end_offset"].as_i64().unwrap_or(0),
            committed: x["committed_offset"].as_i64(),
        })
        .collect()
}

pub async fn scale_plan(api: &Api, flags: &TriggerFlags) -> anyhow::Result<()> {
    let mut previous: Vec<Value> = Vec::new();
    if flags.exclude_persistent_lag == Some(true) {
        previous = phases(api).await?;
        eprintln!(
            "excludePersistentLag: second reading in {} s",
            flags.polling_interval
        );
        tokio::time::sleep(std::time::Duration::from_secs(flags.polling_interval)).await;
    }
    println!(
        "{:<8} {:<24} {:>10} {:>9} {:>8} {:>7} {:>7} {:>8} {:>9}",
        "phase",
        "topic",
        "partitions",
        "threshold",
        "lag",
        "metric",
        "active",
        "current",
        "replicas"
    );
    for p in phases(api).await? {
        let phase: Phase = p["phase"]
            .as_str()
            .unwrap_or_default()
            .parse()
            .map_err(anyhow::Error::msg)?;
        let topic = p["topic"].as_str().unwrap_or_default();
        // The reported topic is `<prefix><phase>`: the prefix names the triggers.
        let prefix = topic.strip_suffix(phase.as_str()).unwrap_or("sprocket.");
        let retry_topic = p["retry"]["topic"].as_str().unwrap_or_default();
        let parts = offsets(&p);
        let retry_parts = offsets(&p["retry"]);
        let earlier = previous.iter().find(|q| q["phase"] == p["phase"]);
        let before = earlier.map(offsets).unwrap_or_default();
        let retry_before = earlier.map(|q| offsets(&q["retry"])).unwrap_or_default();
        let so = flags.scaled_object(phase, prefix, parts.len() as i64)?;
        let readings = [
            TopicReading {
                topic,
                partitions: &parts,
                previous: &before,
            },
            TopicReading {
                topic: retry_topic,
                partitions: &retry_parts,
                previous: &retry_before,
            },
        ];
        let current = flags
            .current_replicas
            .unwrap_or_else(|| p["members"].as_i64().unwrap_or(0));
        let plan = scale::plan(&so, &readings, current)?;
        for t in &so.triggers {
            let read = plan.triggers.iter().find(|r| r.topic == t.topic);
            let cell = |f: &dyn Fn(&scale::TriggerPlan) -> String| read.map_or("-".into(), f);
            println!(
                "{:<8} {:<24} {:>10} {:>9} {:>8} {:>7} {:>7} {:>8} {:>9}",
                phase.as_str(),
                t.topic,
                read.map_or("not read".into(), |_| {
                    let n = if t.topic == retry_topic {
                        &retry_parts
                    } else {
                        &parts
                    };
                    n.len().to_string()
                }),
                t.lag_threshold,
                cell(&|r| r.total_lag_with_persistent.to_string()),
                cell(&|r| r.metric.to_string()),
                cell(&|r| r.active.to_string()),
                plan.current_replicas,
                plan.replicas
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Args {
        #[command(flatten)]
        flags: TriggerFlags,
    }

    fn object(args: &[&str]) -> anyhow::Result<ScaledObject> {
        let a = Args::try_parse_from(std::iter::once("scale-plan").chain(args.iter().copied()))?;
        a.flags.scaled_object(Phase::Render, "sprocket.", 6)
    }

    #[test]
    fn no_flags_keep_sprockets_own_settings() {
        let own = ScaledObject::for_phase(&Topics::default(), Phase::Render, 6);
        assert_eq!(object(&[]).unwrap(), own);
    }

    #[test]
    fn flags_set_and_unset_trigger_settings() {
        let so = object(&[
            "--limit-to-partitions-with-lag=false",
            "--allow-idle-consumers",
            "--exclude-persistent-lag",
            "--lag-threshold",
            "4",
            "--offset-reset-policy",
            "latest",
            "--min-replicas",
            "1",
        ])
        .unwrap();
        assert_eq!(so.min_replica_count, 1);
        for t in &so.triggers {
            assert!(!t.limit_to_partitions_with_lag && t.allow_idle_consumers);
            assert!(t.exclude_persistent_lag);
            assert_eq!(
                (t.lag_threshold, t.offset_reset_policy),
                (4, OffsetResetPolicy::Latest)
            );
        }
    }

    #[test]
    fn what_keda_refuses_is_refused() {
        let e = object(&["--lag-threshold", "0"]).unwrap_err().to_string();
        assert!(e.contains("lagThreshold must be a positive number"), "{e}");
        let e = object(&["--activation-lag-threshold=-1"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("activationLagThreshold"), "{e}");
        // Sprocket's triggers limit to partitions with lag: idle consumers too is refused.
        let e = object(&["--allow-idle-consumers"]).unwrap_err().to_string();
        assert!(e.contains("cannot be set together"), "{e}");
        assert!(object(&["--offset-reset-policy", "newest"]).is_err());
    }
}

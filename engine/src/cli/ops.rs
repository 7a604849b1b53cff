//! Operator commands over `GET /v1/phases`: `sprocket lag` and `sprocket scale-plan`.

use anyhow::Context;
use serde_json::Value;
use sprocket_core::Phase;

use crate::scale::{self, OffsetResetPolicy, PartitionOffsets, Trigger};

/// Trigger settings to try instead of Sprocket's per-phase defaults.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct TriggerFlags {
    /// lagThreshold for every phase (default: render 1, analyze 2, ingest/archive 10).
    #[arg(long)]
    pub lag_threshold: Option<i64>,
    #[arg(long)]
    pub activation_lag_threshold: Option<i64>,
    #[arg(long)]
    pub allow_idle_consumers: bool,
    #[arg(long)]
    pub limit_to_partitions_with_lag: bool,
    #[arg(long)]
    pub scale_to_zero_on_invalid_offset: bool,
    /// latest or earliest (default earliest).
    #[arg(long)]
    pub offset_reset_policy: Option<String>,
    #[arg(long)]
    pub min_replicas: Option<i64>,
    /// Default: the partition count.
    #[arg(long)]
    pub max_replicas: Option<i64>,
}

impl TriggerFlags {
    fn trigger(&self, phase: Phase, partitions: i64) -> anyhow::Result<Trigger> {
        let mut t = Trigger::for_phase(phase, partitions);
        if let Some(v) = self.lag_threshold {
            anyhow::ensure!(v > 0, "lagThreshold must be positive");
            t.lag_threshold = v;
        }
        if let Some(v) = self.activation_lag_threshold {
            t.activation_lag_threshold = v;
        }
        t.allow_idle_consumers = self.allow_idle_consumers;
        t.limit_to_partitions_with_lag = self.limit_to_partitions_with_lag;
        anyhow::ensure!(
            !(t.allow_idle_consumers && t.limit_to_partitions_with_lag),
            "allowIdleConsumers and limitToPartitionsWithLag cannot be set together (KEDA refuses it)"
        );
        t.scale_to_zero_on_invalid_offset = self.scale_to_zero_on_invalid_offset;
        if let Some(p) = &self.offset_reset_policy {
            t.offset_reset_policy = match p.as_str() {
                "latest" => OffsetResetPolicy::Latest,
                "earliest" => OffsetResetPolicy::Earliest,
                other => anyhow::bail!("offsetResetPolicy {other:?}: use latest or earliest"),
            };
        }
        if let Some(v) = self.min_replicas {
            t.min_replica_count = v;
        }
        if let Some(v) = self.max_replicas {
            t.max_replica_count = v;
        }
        Ok(t)
    }
}

async fn phases(api: &str) -> anyhow::Result<Vec<Value>> {
    let resp = reqwest::get(format!("{api}/v1/phases"))
        .await
        .with_context(|| format!("reaching {api}"))?;
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

pub async fn lag(api: &str) -> anyhow::Result<()> {
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

pub async fn scale_plan(api: &str, flags: &TriggerFlags) -> anyhow::Result<()> {
    println!(
        "{:<8} {:>10} {:>9} {:>8} {:>7} {:>7} {:>9}",
        "phase", "partitions", "threshold", "lag", "metric", "active", "replicas"
    );
    for p in phases(api).await? {
        let phase: Phase = p["phase"]
            .as_str()
            .unwrap_or_default()
            .parse()
            .map_err(anyhow::Error::msg)?;
        let parts: Vec<PartitionOffsets> = p["partitions"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|x| PartitionOffsets {
                end: x["end_offset"].as_i64().unwrap_or(0),
                committed: x["committed_offset"].as_i64(),
            })
            .collect();
        let t = flags.trigger(phase, parts.len() as i64)?;
        let plan = scale::plan(&parts, &t);
        println!(
            "{:<8} {:>10} {:>9} {:>8} {:>7} {:>7} {:>9}",
            phase.as_str(),
            parts.len(),
            t.lag_threshold,
            plan.total_lag,
            plan.metric,
            plan.active,
            plan.replicas
        );
    }
    Ok(())
}

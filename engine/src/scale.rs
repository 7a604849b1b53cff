//! The replica count a phase's Deployment ends up with under KEDA's `kafka`
//! scaler and the HorizontalPodAutoscaler KEDA drives, computed by their rules
//! from one reading of the offsets. Pure: the caller supplies the offsets, the
//! previous reading and the current replica count.
//!
//! **Per trigger (KEDA's Kafka scaler, `metricType: AverageValue`):**
//!
//! 1. Per partition, lag = end offset − committed offset. A partition whose group
//!    never committed counts per `offsetResetPolicy`: `latest` → 1, `earliest` →
//!    its whole end offset; 0 either way with `scaleToZeroOnInvalidOffset`.
//! 2. With `excludePersistentLag`, a partition whose committed offset is the one
//!    seen at the previous reading (so it has not moved since) counts 0 towards
//!    the metric, though its lag still counts for activation. The first reading,
//!    and a partition never committed, have nothing to compare and count in full.
//! 3. Unless idle consumers are allowed, the metric is capped so that metric /
//!    lagThreshold never exceeds the partition count — or, with
//!    `limitToPartitionsWithLag`, the partitions whose counted lag is > 0. KEDA
//!    caps with integer division: if metric / threshold > bound, metric = bound ×
//!    threshold (so 25 over a threshold of 10 on 2 partitions is not capped).
//! 4. The trigger is active when its lag, persistent lag included and before the
//!    cap, exceeds `activationLagThreshold`.
//!
//! **Per ScaledObject (KEDA's scale loop, then the HPA):**
//!
//! 5. Active when any trigger is. With `minReplicaCount` 0, inactive means zero
//!    replicas (after `cooldownPeriod`), and an active object at zero is first
//!    scaled to one by KEDA. With `minReplicaCount` ≥ 1 KEDA keeps at least that
//!    many and hands every metric to the HPA: activation does not matter.
//! 6. The HPA proposes a count per metric from the current count c (an
//!    `AverageValue` target t = lagThreshold, metric m): usage ratio = (m / c) / t;
//!    within 10 % of 1 (0.9 ≤ ratio ≤ 1.1) it keeps c, otherwise it asks for
//!    ceil(m / t). With several triggers it takes the largest proposal, then
//!    clamps to [max(minReplicaCount, 1), maxReplicaCount].
//!
//! The plan is where one reading leads once KEDA and the HPA have acted on it.
//! Time is not modelled: `pollingInterval`, `cooldownPeriod`, the HPA's sync
//! period and its `behavior` (stabilization windows, rate limits such as the
//! ScaledObjects' one pod a minute scale-down) only pace the way there.
//!
//! **One source of truth.** [`ScaledObject::for_phase`] holds Sprocket's
//! settings; `infra/base/workers/<phase>.yaml` repeats them because kustomize
//! cannot compute them. `tests/infra` reads every overlay's ScaledObjects with
//! [`Trigger::from_metadata`] (KEDA's defaults and checks) and fails on any
//! difference from `for_phase` with that overlay's topic prefix and partition
//! count: topics, consumer groups, thresholds, flags, replica bounds.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sprocket_core::{Phase, Topics};

/// The HPA's default tolerance (`--horizontal-pod-autoscaler-tolerance`).
pub const HPA_TOLERANCE_PERCENT: i64 = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OffsetResetPolicy {
    Latest,
    Earliest,
}

/// One `kafka` trigger of a ScaledObject; fields named as its metadata keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Trigger {
    pub topic: String,
    pub consumer_group: String,
    pub lag_threshold: i64,
    pub activation_lag_threshold: i64,
    pub offset_reset_policy: OffsetResetPolicy,
    pub allow_idle_consumers: bool,
    pub limit_to_partitions_with_lag: bool,
    pub scale_to_zero_on_invalid_offset: bool,
    pub exclude_persistent_lag: bool,
}

/// What a ScaledObject says about scaling: its replica bounds and triggers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScaledObject {
    pub min_replica_count: i64,
    pub max_replica_count: i64,
    pub triggers: Vec<Trigger>,
}

/// A setting KEDA (or the HPA under it) refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScaleError {
    #[error("trigger on {topic:?}: lagThreshold must be a positive number, not {value}")]
    LagThreshold { topic: String, value: i64 },
    #[error(
        "trigger on {topic:?}: activationLagThreshold must be a non-negative number, not {value}"
    )]
    ActivationLagThreshold { topic: String, value: i64 },
    #[error("trigger on {topic:?}: allowIdleConsumers and limitToPartitionsWithLag cannot be set together")]
    IdleAndLimit { topic: String },
    #[error("a kafka trigger needs {key}")]
    Missing { key: &'static str },
    #[error("{key}: {value:?} is not {expected}")]
    Value {
        key: &'static str,
        value: String,
        expected: &'static str,
    },
    #[error("minReplicaCount {min} must not exceed maxReplicaCount {max}, and maxReplicaCount must be at least 1")]
    ReplicaBounds { min: i64, max: i64 },
}

impl Trigger {
    /// KEDA's checks on one trigger's settings.
    pub fn validate(&self) -> Result<(), ScaleError> {
        let topic = || self.topic.clone();
        if self.topic.is_empty() {
            return Err(ScaleError::Missing { key: "topic" });
        }
        if self.consumer_group.is_empty() {
            return Err(ScaleError::Missing {
                key: "consumerGroup",
            });
        }
        if self.lag_threshold <= 0 {
            return Err(ScaleError::LagThreshold {
                topic: topic(),
                value: self.lag_threshold,
            });
        }
        if self.activation_lag_threshold < 0 {
            return Err(ScaleError::ActivationLagThreshold {
                topic: topic(),
                value: self.activation_lag_threshold,
            });
        }
        if self.allow_idle_consumers && self.limit_to_partitions_with_lag {
            return Err(ScaleError::IdleAndLimit { topic: topic() });
        }
        Ok(())
    }

    /// Reads a `kafka` trigger's metadata as KEDA does: its defaults for absent
    /// keys (lagThreshold 10, activationLagThreshold 0, offsetResetPolicy
    /// latest, every flag false), its errors for bad values. Keys that do not
    /// bear on the replica count (bootstrap servers, TLS, SASL) are ignored.
    pub fn from_metadata(m: &BTreeMap<String, String>) -> Result<Trigger, ScaleError> {
        let text = |key: &'static str| m.get(key).map(|v| v.trim().to_string());
        let int = |key: &'static str, default: i64| match text(key) {
            None => Ok(default),
            Some(v) => v.parse::<i64>().map_err(|_| ScaleError::Value {
                key,
                value: v,
                expected: "an integer",
            }),
        };
        // Go's strconv.ParseBool, which KEDA uses.
        let flag = |key: &'static str| match text(key).as_deref() {
            None => Ok(false),
            Some("1" | "t" | "T" | "true" | "TRUE" | "True") => Ok(true),
            Some("0" | "f" | "F" | "false" | "FALSE" | "False") => Ok(false),
            Some(v) => Err(ScaleError::Value {
                key,
                value: v.into(),
                expected: "a boolean",
            }),
        };
        let offset_reset_policy = match text("offsetResetPolicy").as_deref() {
            None | Some("latest") => OffsetResetPolicy::Latest,
            Some("earliest") => OffsetResetPolicy::Earliest,
            Some(v) => {
                return Err(ScaleError::Value {
                    key: "offsetResetPolicy",
                    value: v.into(),
                    expected: "latest or earliest",
                })
            }
        };
        let t = Trigger {
            topic: text("topic").unwrap_or_default(),
            consumer_group: text("consumerGroup").unwrap_or_default(),
            lag_threshold: int("lagThreshold", 10)?,
            activation_lag_threshold: int("activationLagThreshold", 0)?,
            offset_reset_policy,
            allow_idle_consumers: flag("allowIdleConsumers")?,
            limit_to_partitions_with_lag: flag("limitToPartitionsWithLag")?,
            scale_to_zero_on_invalid_offset: flag("scaleToZeroOnInvalidOffset")?,
            exclude_persistent_lag: flag("excludePersistentLag")?,
        };
        t.validate()?;
        Ok(t)
    }

    /// The trigger as ScaledObject metadata, every key written out.
    pub fn metadata(&self) -> BTreeMap<&'static str, String> {
        let policy = match self.offset_reset_policy {
            OffsetResetPolicy::Latest => "latest",
            OffsetResetPolicy::Earliest => "earliest",
        };
        BTreeMap::from([
            ("topic", self.topic.clone()),
            ("consumerGroup", self.consumer_group.clone()),
            ("lagThreshold", self.lag_threshold.to_string()),
            (
                "activationLagThreshold",
                self.activation_lag_threshold.to_string(),
            ),
            ("offsetResetPolicy", policy.to_string()),
            ("allowIdleConsumers", self.allow_idle_consumers.to_string()),
            (
                "limitToPartitionsWithLag",
                self.limit_to_partitions_with_lag.to_string(),
            ),
            (
                "scaleToZeroOnInvalidOffset",
                self.scale_to_zero_on_invalid_offset.to_string(),
            ),
            (
                "excludePersistentLag",
                self.exclude_persistent_lag.to_string(),
            ),
        ])
    }
}

impl ScaledObject {
    /// Sprocket's ScaledObject for a phase's workers, and the only place its
    /// settings live (the module doc says how infra/ is held to it).
    ///
    /// - Two triggers, one consumer group: the phase topic and its retry topic,
    ///   so retries waiting while the phase sits at zero wake it.
    /// - lagThreshold: one waiting render is worth a replica (minutes of
    ///   ffmpeg), two analyses (every frame through the models); ingest and
    ///   archive items are cheap (20).
    /// - activationLagThreshold 0: any waiting item wakes a phase at zero; more
    ///   would strand a small backlog.
    /// - limitToPartitionsWithLag, no idle consumers, maxReplicaCount = the
    ///   partition count: a replica beyond the partitions with work sits idle.
    /// - offsetResetPolicy earliest: the workers' own `auto.offset.reset`, so a
    ///   partition never committed counts in full.
    /// - excludePersistentLag off: an item in flight holds its partition's
    ///   committed offset still for as long as it takes (a render for minutes,
    ///   a retry until it is due), and leaving that lag out would scale in the
    ///   very pod doing the work.
    pub fn for_phase(topics: &Topics, phase: Phase, partitions: i64) -> ScaledObject {
        let lag_threshold = match phase {
            Phase::Render => 1,
            Phase::Analyze => 2,
            Phase::Ingest | Phase::Archive => 20,
        };
        let trigger = |topic: String| Trigger {
            topic,
            consumer_group: topics.group(phase),
            lag_threshold,
            activation_lag_threshold: 0,
            offset_reset_policy: OffsetResetPolicy::Earliest,
            allow_idle_consumers: false,
            limit_to_partitions_with_lag: true,
            scale_to_zero_on_invalid_offset: false,
            exclude_persistent_lag: false,
        };
        ScaledObject {
            min_replica_count: 0,
            max_replica_count: partitions.max(1),
            triggers: vec![trigger(topics.phase(phase)), trigger(topics.retry(phase))],
        }
    }

    /// KEDA's checks on the replica bounds and every trigger.
    pub fn validate(&self) -> Result<(), ScaleError> {
        let (min, max) = (self.min_replica_count, self.max_replica_count);
        if min < 0 || max < 1 || min > max {
            return Err(ScaleError::ReplicaBounds { min, max });
        }
        self.triggers.iter().try_for_each(Trigger::validate)
    }
}

/// One partition's offsets; `committed` is `None` when the group never committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionOffsets {
    pub end: i64,
    pub committed: Option<i64>,
}

/// One reading of a topic's partitions (index = partition), with the previous
/// reading of the same partitions for `excludePersistentLag` (empty: none).
#[derive(Debug, Clone, Copy)]
pub struct TopicReading<'a> {
    pub topic: &'a str,
    pub partitions: &'a [PartitionOffsets],
    pub previous: &'a [PartitionOffsets],
}

impl<'a> TopicReading<'a> {
    /// A reading with no previous one to compare with.
    pub fn new(topic: &'a str, partitions: &'a [PartitionOffsets]) -> Self {
        TopicReading {
            topic,
            partitions,
            previous: &[],
        }
    }
}

/// What one trigger reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TriggerPlan {
    pub topic: String,
    /// Σ lag counted for the metric (persistent lag left out), before the cap.
    pub total_lag: i64,
    /// Σ lag with persistent lag: what activation compares.
    pub total_lag_with_persistent: i64,
    pub partitions_with_lag: i64,
    /// The metric KEDA reports (after the cap).
    pub metric: i64,
    pub active: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// The replica count the plan started from.
    pub current_replicas: i64,
    /// Any trigger active.
    pub active: bool,
    /// Where KEDA and the HPA take the Deployment on this reading.
    pub replicas: i64,
    /// The triggers that had a reading, in the ScaledObject's order.
    pub triggers: Vec<TriggerPlan>,
    /// Topics of triggers without a reading, left out of the plan.
    pub unread: Vec<String>,
}

/// KEDA's lag for one partition.
pub fn partition_lag(p: &PartitionOffsets, t: &Trigger) -> i64 {
    match p.committed {
        Some(c) => (p.end - c).max(0),
        None if t.scale_to_zero_on_invalid_offset => 0,
        None => match t.offset_reset_policy {
            OffsetResetPolicy::Latest => 1,
            OffsetResetPolicy::Earliest => p.end.max(0),
        },
    }
}

/// What KEDA's Kafka scaler reports for one trigger on this reading.
pub fn trigger_plan(t: &Trigger, r: &TopicReading) -> TriggerPlan {
    let mut total_lag = 0;
    let mut total_lag_with_persistent = 0;
    let mut partitions_with_lag = 0;
    for (i, p) in r.partitions.iter().enumerate() {
        let lag = partition_lag(p, t);
        let unmoved =
            p.committed.is_some() && r.previous.get(i).and_then(|q| q.committed) == p.committed;
        let counted = if t.exclude_persistent_lag && unmoved {
            0
        } else {
            lag
        };
        total_lag_with_persistent += lag;
        total_lag += counted;
        partitions_with_lag += i64::from(counted > 0);
    }
    let mut metric = total_lag;
    if !t.allow_idle_consumers || t.limit_to_partitions_with_lag {
        let bound = if t.limit_to_partitions_with_lag {
            partitions_with_lag
        } else {
            r.partitions.len() as i64
        };
        if metric / t.lag_threshold > bound {
            metric = bound * t.lag_threshold;
        }
    }
    TriggerPlan {
        topic: r.topic.to_string(),
        total_lag,
        total_lag_with_persistent,
        partitions_with_lag,
        metric,
        active: total_lag_with_persistent > t.activation_lag_threshold,
    }
}

/// The HPA's proposal for one `AverageValue` metric from `current` replicas.
pub fn hpa_proposal(current: i64, metric: i64, target: i64) -> i64 {
    // |1 − (metric / current) / target| ≤ 10 %, in integers.
    let capacity = i128::from(current) * i128::from(target);
    let off = (capacity - i128::from(metric)).abs();
    if current > 0 && 100 * off <= i128::from(HPA_TOLERANCE_PERCENT) * capacity {
        current
    } else {
        (metric.max(0) + target - 1) / target
    }
}

/// The replicas KEDA and the HPA settle on for `so` given these readings (one
/// per trigger topic; a trigger without one is listed in `unread` and left
/// out) and the replicas running now (0 when scaled to zero).
pub fn plan(
    so: &ScaledObject,
    readings: &[TopicReading],
    current_replicas: i64,
) -> Result<Plan, ScaleError> {
    so.validate()?;
    let mut triggers = Vec::new();
    let mut unread = Vec::new();
    let mut targets = Vec::new();
    for t in &so.triggers {
        match readings.iter().find(|r| r.topic == t.topic) {
            Some(r) => {
                triggers.push(trigger_plan(t, r));
                targets.push(t.lag_threshold);
            }
            None => unread.push(t.topic.clone()),
        }
    }
    let active = triggers.iter().any(|t| t.active);
    let current = current_replicas.max(0);
    // KEDA's part: below minReplicaCount, to zero, and from zero.
    let from = if so.min_replica_count >= 1 {
        current.max(so.min_replica_count)
    } else if !active {
        0
    } else {
        current.max(1)
    };
    // The HPA's part, only while there are replicas.
    let replicas = if from == 0 {
        0
    } else {
        triggers
            .iter()
            .zip(&targets)
            .map(|(t, target)| hpa_proposal(from, t.metric, *target))
            .max()
            .unwrap_or(from)
            .clamp(so.min_replica_count.max(1), so.max_replica_count)
    };
    Ok(Plan {
        current_replicas: current,
        active,
        replicas,
        triggers,
        unread,
    })
}

#[cfg(test)]
mod tests;

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

use serde::{Deserialize, Serialize};

mod settings;

pub use settings::{OffsetResetPolicy, ScaleError, ScaledObject, Trigger};

/// The HPA's default tolerance (`--horizontal-pod-autoscaler-tolerance`).
pub const HPA_TOLERANCE_PERCENT: i64 = 10;

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

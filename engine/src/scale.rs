//! The replica count KEDA's Kafka scaler would ask for, computed the way KEDA
//! computes it (its `kafka` trigger with `metricType: AverageValue`):
//!
//! 1. Per partition, lag = end offset − committed offset. A partition whose group
//!    never committed counts per `offsetResetPolicy`: `latest` → 1 (0 with
//!    `scaleToZeroOnInvalidOffset`), `earliest` → its whole end offset (0 with
//!    `scaleToZeroOnInvalidOffset`).
//! 2. Total lag = Σ lag. Unless idle consumers are allowed, the total is capped so
//!    that total / lagThreshold never exceeds the partition count — or, with
//!    `limitToPartitionsWithLag`, the number of partitions with lag > 0. KEDA caps
//!    with integer division: if total / threshold > bound, total = bound × threshold.
//! 3. The trigger is active when the uncapped total lag > `activationLagThreshold`.
//! 4. The HPA asks for ceil(total / lagThreshold) replicas; inactive with
//!    `minReplicaCount` 0 means zero replicas. The result is clamped to
//!    [minReplicaCount, maxReplicaCount].
//!
//! Pure: the caller supplies the offsets.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OffsetResetPolicy {
    Latest,
    Earliest,
}

/// The trigger's settings, named as in a ScaledObject.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Trigger {
    pub lag_threshold: i64,
    pub activation_lag_threshold: i64,
    pub offset_reset_policy: OffsetResetPolicy,
    pub allow_idle_consumers: bool,
    pub limit_to_partitions_with_lag: bool,
    pub scale_to_zero_on_invalid_offset: bool,
    pub min_replica_count: i64,
    pub max_replica_count: i64,
}

impl Trigger {
    /// Sprocket's defaults per phase: one waiting render or analysis is worth a
    /// replica; ingest and archive items are cheap.
    pub fn for_phase(phase: sprocket_core::Phase, partitions: i64) -> Trigger {
        use sprocket_core::Phase::*;
        let lag_threshold = match phase {
            Render => 1,
            Analyze => 2,
            Ingest | Archive => 10,
        };
        Trigger {
            lag_threshold,
            activation_lag_threshold: 0,
            offset_reset_policy: OffsetResetPolicy::Earliest,
            allow_idle_consumers: false,
            limit_to_partitions_with_lag: false,
            scale_to_zero_on_invalid_offset: false,
            min_replica_count: 0,
            max_replica_count: partitions.max(1),
        }
    }
}

/// One partition's offsets; `committed` is `None` when the group never committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionOffsets {
    pub end: i64,
    pub committed: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    /// Σ lag as KEDA counts it, before the cap.
    pub total_lag: i64,
    /// The metric KEDA reports (after the cap).
    pub metric: i64,
    pub active: bool,
    pub partitions_with_lag: i64,
    pub replicas: i64,
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

/// The replicas KEDA would ask for given these offsets.
pub fn plan(partitions: &[PartitionOffsets], t: &Trigger) -> Plan {
    let threshold = t.lag_threshold.max(1);
    let lags: Vec<i64> = partitions.iter().map(|p| partition_lag(p, t)).collect();
    let total_lag: i64 = lags.iter().sum();
    let partitions_with_lag = lags.iter().filter(|l| **l > 0).count() as i64;
    let mut metric = total_lag;
    if !t.allow_idle_consumers || t.limit_to_partitions_with_lag {
        let bound = if t.limit_to_partitions_with_lag {
            partitions_with_lag
        } else {
            partitions.len() as i64
        };
        if metric / threshold > bound {
            metric = bound * threshold;
        }
    }
    let active = total_lag > t.activation_lag_threshold;
    let wanted = if active {
        ((metric + threshold - 1) / threshold).max(1)
    } else {
        0
    };
    let replicas = wanted.clamp(
        t.min_replica_count,
        t.max_replica_count.max(t.min_replica_count),
    );
    Plan {
        total_lag,
        metric,
        active,
        partitions_with_lag,
        replicas,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trig(threshold: i64) -> Trigger {
        Trigger {
            lag_threshold: threshold,
            activation_lag_threshold: 0,
            offset_reset_policy: OffsetResetPolicy::Latest,
            allow_idle_consumers: false,
            limit_to_partitions_with_lag: false,
            scale_to_zero_on_invalid_offset: false,
            min_replica_count: 0,
            max_replica_count: 100,
        }
    }

    fn p(end: i64, committed: Option<i64>) -> PartitionOffsets {
        PartitionOffsets { end, committed }
    }

    #[test]
    fn keda_rules_table() {
        struct Case {
            name: &'static str,
            parts: Vec<PartitionOffsets>,
            trigger: Trigger,
            total: i64,
            metric: i64,
            active: bool,
            replicas: i64,
        }
        let with = |f: &dyn Fn(&mut Trigger), t: i64| {
            let mut x = trig(t);
            f(&mut x);
            x
        };
        let cases = vec![
            Case {
                name: "idle group scales to zero",
                parts: vec![p(5, Some(5)), p(3, Some(3))],
                trigger: trig(10),
                total: 0,
                metric: 0,
                active: false,
                replicas: 0,
            },
            Case {
                name: "ceil of lag over threshold",
                parts: vec![p(15, Some(0)), p(0, Some(0))],
                trigger: trig(10),
                total: 15,
                metric: 15,
                active: true,
                replicas: 2,
            },
            // KEDA's cap divides as integers: 25 / 10 = 2 is not above 2 partitions,
            // so the metric stays 25 and the HPA asks for 3; maxReplicaCount
            // (the partition count in Sprocket's ScaledObjects) is what holds it.
            Case {
                name: "integer-division cap lets ceil pass the partition count",
                parts: vec![p(25, Some(0)), p(0, Some(0))],
                trigger: trig(10),
                total: 25,
                metric: 25,
                active: true,
                replicas: 3,
            },
            Case {
                name: "capped at partition count",
                parts: vec![p(100, Some(0)), p(100, Some(0))],
                trigger: trig(10),
                total: 200,
                metric: 20,
                active: true,
                replicas: 2,
            },
            Case {
                name: "idle consumers allowed: no cap",
                parts: vec![p(100, Some(0)), p(100, Some(0))],
                trigger: with(&|t| t.allow_idle_consumers = true, 10),
                total: 200,
                metric: 200,
                active: true,
                replicas: 20,
            },
            Case {
                name: "limit to partitions with lag",
                parts: vec![p(50, Some(0)), p(7, Some(7)), p(9, Some(9))],
                trigger: with(&|t| t.limit_to_partitions_with_lag = true, 10),
                total: 50,
                metric: 10,
                active: true,
                replicas: 1,
            },
            Case {
                name: "one partition caps at one threshold",
                parts: vec![p(29, Some(0))],
                trigger: trig(10),
                total: 29,
                metric: 10,
                active: true,
                replicas: 1,
            },
            Case {
                name: "never committed, latest: lag 1",
                parts: vec![p(500, None), p(0, None)],
                trigger: trig(10),
                total: 2,
                metric: 2,
                active: true,
                replicas: 1,
            },
            Case {
                name: "never committed, earliest: whole partition",
                parts: vec![p(35, None)],
                trigger: with(
                    &|t| {
                        t.offset_reset_policy = OffsetResetPolicy::Earliest;
                        t.allow_idle_consumers = true;
                    },
                    10,
                ),
                total: 35,
                metric: 35,
                active: true,
                replicas: 4,
            },
            Case {
                name: "never committed, scale to zero on invalid offset",
                parts: vec![p(35, None)],
                trigger: with(&|t| t.scale_to_zero_on_invalid_offset = true, 10),
                total: 0,
                metric: 0,
                active: false,
                replicas: 0,
            },
            Case {
                name: "below activation stays at zero",
                parts: vec![p(3, Some(0))],
                trigger: with(&|t| t.activation_lag_threshold = 3, 1),
                total: 3,
                metric: 1,
                active: false,
                replicas: 0,
            },
            Case {
                name: "above activation scales",
                parts: vec![p(4, Some(0))],
                trigger: with(&|t| t.activation_lag_threshold = 3, 1),
                total: 4,
                metric: 1,
                active: true,
                replicas: 1,
            },
            Case {
                name: "min replicas hold when idle",
                parts: vec![p(0, Some(0))],
                trigger: with(&|t| t.min_replica_count = 2, 1),
                total: 0,
                metric: 0,
                active: false,
                replicas: 2,
            },
            Case {
                name: "max replicas cap",
                parts: vec![p(50, Some(0)); 8],
                trigger: with(&|t| t.max_replica_count = 3, 1),
                total: 400,
                metric: 8,
                active: true,
                replicas: 3,
            },
            Case {
                name: "one waiting render is one replica",
                parts: vec![p(1, Some(0)), p(0, Some(0)), p(0, None)],
                trigger: Trigger::for_phase(sprocket_core::Phase::Render, 3),
                total: 1,
                metric: 1,
                active: true,
                replicas: 1,
            },
        ];
        for c in cases {
            let got = plan(&c.parts, &c.trigger);
            assert_eq!(
                (got.total_lag, got.metric, got.active, got.replicas),
                (c.total, c.metric, c.active, c.replicas),
                "{}",
                c.name
            );
        }
    }
}

//! KEDA's and the HPA's rules case by case (`rules`: every rule has a case that
//! fails without it), and the ScaledObject settings (`settings`).

use super::*;
pub(super) use sprocket_core::{Phase, Topics};

mod rules;
mod settings;

const T: &str = "sprocket.render";
const RETRY: &str = "sprocket.render.retry";

fn trig(threshold: i64) -> Trigger {
    Trigger {
        topic: T.into(),
        consumer_group: "sprocket-render".into(),
        lag_threshold: threshold,
        activation_lag_threshold: 0,
        offset_reset_policy: OffsetResetPolicy::Latest,
        allow_idle_consumers: false,
        limit_to_partitions_with_lag: false,
        scale_to_zero_on_invalid_offset: false,
        exclude_persistent_lag: false,
    }
}

fn with(threshold: i64, f: impl Fn(&mut Trigger)) -> Trigger {
    let mut t = trig(threshold);
    f(&mut t);
    t
}

fn idle_ok(threshold: i64) -> Trigger {
    with(threshold, |t| t.allow_idle_consumers = true)
}

/// A ScaledObject of one trigger, 0..=100 replicas.
fn one(t: Trigger) -> ScaledObject {
    bounds(0, 100, vec![t])
}

fn bounds(min: i64, max: i64, triggers: Vec<Trigger>) -> ScaledObject {
    ScaledObject {
        min_replica_count: min,
        max_replica_count: max,
        triggers,
    }
}

fn p(end: i64, committed: Option<i64>) -> PartitionOffsets {
    PartitionOffsets { end, committed }
}

/// `n` partitions with `lag` each.
fn lagging(n: usize, lag: i64) -> Vec<PartitionOffsets> {
    vec![p(lag, Some(0)); n]
}

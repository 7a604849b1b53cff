//! What a ScaledObject says: its replica bounds and `kafka` triggers, KEDA's
//! reading of trigger metadata (defaults and refusals), and Sprocket's own
//! ScaledObject per phase ([`ScaledObject::for_phase`], the one source of truth
//! that `infra/` is checked against).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sprocket_core::{Phase, Topics};

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

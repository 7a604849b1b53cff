//! Retention: how long a job's data is kept, as durations written the
//! humantime way (`"36h"`, `"30d"`, `"10s"`; `"0"` keeps for ever).
//!
//! The deployment sets the rules (`[retention]`); a recipe may override the
//! ones that belong to a job (`work`, `archive`, `cold_after`) in its archive
//! step's `params.retention`.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::{CoreError, Phase, Recipe};

/// A retention period: `None` keeps for ever (written `"0"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Keep(pub Option<Duration>);

impl Keep {
    pub const FOREVER: Keep = Keep(None);

    pub fn after(d: Duration) -> Keep {
        Keep(if d.is_zero() { None } else { Some(d) })
    }

    /// Reads `"36h"`, `"30d"`, `"1h 30m"` or `"0"`.
    pub fn parse(text: &str) -> Result<Keep, String> {
        let t = text.trim();
        if t == "0" {
            return Ok(Keep::FOREVER);
        }
        humantime::parse_duration(t).map(Keep::after).map_err(|e| {
            format!("{text:?}: {e}; write a duration such as \"36h\", \"30d\" or \"0\" (keep)")
        })
    }

    /// The period, or `None` when kept for ever.
    pub fn period(&self) -> Option<Duration> {
        self.0
    }

    /// Whether something that ended at `since` is due at `now`.
    pub fn due(
        &self,
        since: chrono::DateTime<chrono::Utc>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> bool {
        match self.0.and_then(|d| chrono::Duration::from_std(d).ok()) {
            Some(d) => since + d <= now,
            None => false,
        }
    }
}

impl fmt::Display for Keep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            None => f.write_str("0"),
            Some(d) => write!(f, "{}", humantime::format_duration(d)),
        }
    }
}

impl Serialize for Keep {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Keep {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Keep, D::Error> {
        use serde::de::Error;
        // An environment variable `…=0` arrives as the number 0.
        match Value::deserialize(d)? {
            Value::String(s) => Keep::parse(&s).map_err(D::Error::custom),
            Value::Number(n) if n.as_u64() == Some(0) => Ok(Keep::FOREVER),
            other => Err(D::Error::custom(format!(
                "{other}: write a duration as a string such as \"36h\", \"30d\" or \"0\" (keep)"
            ))),
        }
    }
}

/// The rules one job's data is kept by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JobRetention {
    /// The job's working-store objects, after it finished.
    pub work: Keep,
    /// The job's archive copies, after it finished.
    pub archive: Keep,
    /// When the archive copies move to the cold store, after the job finished.
    pub cold_after: Keep,
}

/// A recipe's overrides of the deployment's job rules (absent: the deployment's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Overrides {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub work: Option<Keep>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archive: Option<Keep>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cold_after: Option<Keep>,
}

impl Overrides {
    /// The overrides a recipe sets in its archive step's `params.retention`.
    pub fn of(recipe: &Recipe) -> Result<Overrides, CoreError> {
        let Some(v) = recipe
            .step(Phase::Archive)
            .and_then(|s| s.params.get("retention"))
        else {
            return Ok(Overrides::default());
        };
        serde_json::from_value(v.clone())
            .map_err(|e| CoreError::InvalidRecipe(format!("archive params.retention: {e}")))
    }

    /// `base` with these overrides applied.
    pub fn over(&self, base: JobRetention) -> JobRetention {
        JobRetention {
            work: self.work.unwrap_or(base.work),
            archive: self.archive.unwrap_or(base.archive),
            cold_after: self.cold_after.unwrap_or(base.cold_after),
        }
    }
}

/// Where an artifact is once retention acted on it; an artifact without
/// one is where its phase wrote it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(tag = "state", rename_all = "snake_case", deny_unknown_fields)]
pub enum Kept {
    /// The working copy is gone; the archive copy serves it.
    Archived {
        at: chrono::DateTime<chrono::Utc>,
        rule: String,
    },
    /// The archive copy moved to the cold store `to`, which serves it.
    Tiered {
        at: chrono::DateTime<chrono::Utc>,
        rule: String,
        to: String,
    },
    /// No copy is left: removed at `at` by `rule`.
    Expired {
        at: chrono::DateTime<chrono::Utc>,
        rule: String,
    },
}

/// Folds a retention event into a job's `kept` states, given the names that
/// have archive copies (`archived`, from which an expired archive takes
/// its names). Duplicates change nothing: a state once recorded keeps its
/// time and rule, and only moves on (archived → tiered → expired).
pub(crate) fn fold(
    kept: &mut std::collections::BTreeMap<String, Kept>,
    archived: &mut std::collections::BTreeSet<String>,
    at: chrono::DateTime<chrono::Utc>,
    body: &crate::EventBody,
) {
    use crate::EventBody;
    match body {
        EventBody::JobDataExpired(r) => {
            for name in &r.removed {
                let rule = r.rule.clone();
                kept.entry(name.clone())
                    .or_insert(if archived.contains(name) {
                        Kept::Archived { at, rule }
                    } else {
                        Kept::Expired { at, rule }
                    });
            }
        }
        EventBody::JobArchiveTiered(t) => {
            for name in &t.moved {
                if !matches!(
                    kept.get(name),
                    Some(Kept::Expired { .. } | Kept::Tiered { .. })
                ) {
                    let (rule, to) = (t.rule.clone(), t.to.clone());
                    kept.insert(name.clone(), Kept::Tiered { at, rule, to });
                }
            }
        }
        EventBody::JobArchiveExpired(r) => {
            for name in &r.removed {
                archived.remove(name);
                // A working copy still there keeps serving it.
                if matches!(
                    kept.get(name),
                    Some(Kept::Archived { .. } | Kept::Tiered { .. })
                ) {
                    let rule = r.rule.clone();
                    kept.insert(name.clone(), Kept::Expired { at, rule });
                }
            }
        }
        _ => {}
    }
}

/// The rule a retention event records, if it is one.
pub fn rule_of(body: &crate::EventBody) -> Option<&str> {
    use crate::EventBody;
    match body {
        EventBody::JobDataExpired(r) | EventBody::JobArchiveExpired(r) => Some(&r.rule),
        EventBody::JobArchiveTiered(t) => Some(&t.rule),
        _ => None,
    }
}

/// The rules a removal or move is made by, as events and the API name them.
pub mod rule {
    pub const WORK: &str = "retention.work";
    pub const UPLOADS: &str = "retention.uploads";
    pub const ARCHIVE: &str = "retention.archive";
    pub const COLD_AFTER: &str = "retention.cold_after";
}

/// What retention owes a finished job at a time: the rules due, in the
/// order the janitor carries them out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Due {
    /// Remove the working-store objects (`retention.work`).
    Work(Keep),
    /// Move the archive copies to the cold store (`retention.cold_after`).
    Tier(Keep),
    /// Remove the archive copies (`retention.archive`).
    Archive(Keep),
}

impl Due {
    pub fn rule(&self) -> &'static str {
        match self {
            Due::Work(_) => rule::WORK,
            Due::Tier(_) => rule::COLD_AFTER,
            Due::Archive(_) => rule::ARCHIVE,
        }
    }
}

/// When a job finished: its last phase time, or its submission for a job
/// cancelled before any phase ran. Retention events leave it alone, so
/// every rule counts from the same instant.
pub fn finished_at(job: &crate::Job) -> Option<chrono::DateTime<chrono::Utc>> {
    job.phases
        .values()
        .flat_map(|t| [t.started_at, t.finished_at])
        .flatten()
        .max()
        .or(job.submitted_at)
}

/// The rules due for `job` at `now` under `rules`, each once: nothing for a
/// job queued or running, nothing already recorded (a rule's event names
/// the artifacts it acted on in the fold's `kept`).
pub fn due(job: &crate::Job, rules: &JobRetention, now: chrono::DateTime<chrono::Utc>) -> Vec<Due> {
    if !job.status.is_terminal() {
        return vec![];
    }
    let Some(end) = finished_at(job) else {
        return vec![];
    };
    let done = |r: &str| job.retired_by.contains(r);
    let has_archive = !job.archived.is_empty();
    let mut out = vec![];
    if rules.work.due(end, now) && !done(rule::WORK) {
        out.push(Due::Work(rules.work));
    }
    if has_archive && rules.archive.due(end, now) && !done(rule::ARCHIVE) {
        out.push(Due::Archive(rules.archive));
    } else if has_archive && rules.cold_after.due(end, now) && !done(rule::COLD_AFTER) {
        out.push(Due::Tier(rules.cold_after));
    }
    out
}

/// The event id of `rule` acting on `job`: the same on every run, so a
/// janitor killed between its deletions and its event writes the same
/// event again and the projections keep one. Shaped as a UUIDv7 whose time
/// is the job's finish and whose random bits are a hash of job and rule.
pub fn event_id(job: &crate::JobId, rule: &str, finished: chrono::DateTime<chrono::Utc>) -> String {
    // FNV-1a, twice with different seeds: stable across builds and platforms.
    let fnv = |seed: u64| {
        let mut h = 0xcbf2_9ce4_8422_2325u64 ^ seed;
        for b in job.as_str().bytes().chain([0]).chain(rule.bytes()) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        h
    };
    let ms = finished.timestamp_millis().max(0) as u64;
    let (a, b) = (fnv(0), fnv(0x9e37_79b9_7f4a_7c15));
    let mut bytes = [0u8; 16];
    bytes[..6].copy_from_slice(&ms.to_be_bytes()[2..]);
    bytes[6..8].copy_from_slice(&a.to_be_bytes()[..2]);
    bytes[8..16].copy_from_slice(&b.to_be_bytes());
    bytes[6] = (bytes[6] & 0x0f) | 0x70;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    uuid::Uuid::from_bytes(bytes).to_string()
}

#[cfg(test)]
mod tests;

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
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_humantime_and_zero() {
        assert_eq!(
            Keep::parse("36h").unwrap().period(),
            Some(Duration::from_secs(36 * 3600))
        );
        assert_eq!(
            Keep::parse("10s").unwrap().period(),
            Some(Duration::from_secs(10))
        );
        assert_eq!(Keep::parse("0").unwrap(), Keep::FOREVER);
        assert!(Keep::parse("soon").is_err());
        assert!(Keep::parse("").is_err());
        let k: Keep = serde_json::from_value(json!(0)).unwrap();
        assert_eq!(k, Keep::FOREVER);
        assert!(serde_json::from_value::<Keep>(json!(30)).is_err());
        for text in ["30days", "1h 30m", "0"] {
            let k = Keep::parse(text).unwrap();
            assert_eq!(Keep::parse(&k.to_string()).unwrap(), k);
        }
    }

    #[test]
    fn due_only_after_the_period_and_never_for_keep() {
        let t0 = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .to_utc();
        let k = Keep::parse("10s").unwrap();
        assert!(!k.due(t0, t0 + chrono::Duration::seconds(9)));
        assert!(k.due(t0, t0 + chrono::Duration::seconds(10)));
        assert!(!Keep::FOREVER.due(t0, t0 + chrono::Duration::days(10_000)));
    }

    #[test]
    fn a_recipe_overrides_in_its_archive_step() {
        let r: Recipe = serde_json::from_value(json!({"name": "x", "steps": [
            {"phase": "ingest"},
            {"phase": "archive", "params": {"retention": {"work": "1h", "cold_after": "0"}}}
        ]}))
        .unwrap();
        let base = JobRetention {
            work: Keep::parse("24h").unwrap(),
            archive: Keep::parse("30d").unwrap(),
            cold_after: Keep::parse("7d").unwrap(),
        };
        let got = Overrides::of(&r).unwrap().over(base);
        assert_eq!(got.work, Keep::parse("1h").unwrap());
        assert_eq!(got.archive, base.archive);
        assert_eq!(got.cold_after, Keep::FOREVER);
        let bad: Recipe = serde_json::from_value(json!({"name": "x", "steps": [
            {"phase": "ingest"},
            {"phase": "archive", "params": {"retention": {"uploads": "1h"}}}
        ]}))
        .unwrap();
        assert!(matches!(
            Overrides::of(&bad),
            Err(CoreError::InvalidRecipe(_))
        ));
        assert!(bad.validate().is_err());
    }
}

#[cfg(test)]
mod fold_tests {
    use super::*;
    use crate::event::{Artifact, JobArchiveTiered, MediaArchived, MediaRendered, Retired};
    use crate::{Envelope, EventBody, Job, JobId};

    fn artifact(name: &str) -> Artifact {
        Artifact {
            name: name.into(),
            key: format!("jobs/j/{name}"),
            bytes: 10,
            sha256: "00".into(),
            content_type: "application/octet-stream".into(),
        }
    }

    fn retired(rule: &str, names: &[&str]) -> Retired {
        Retired {
            rule: rule.into(),
            after: "10s".into(),
            removed: names.iter().map(|n| (*n).into()).collect(),
            bytes: 10,
        }
    }

    fn fold(job: &mut Job, body: EventBody) -> Envelope {
        let e = Envelope::new(job.id.clone(), "test", 1, body);
        let _ = job.apply(&e);
        e
    }

    #[test]
    fn each_artifact_is_live_archived_tiered_or_expired_and_duplicates_change_nothing() {
        let mut job = Job::new(JobId::parse("j").unwrap());
        fold(
            &mut job,
            EventBody::MediaRendered(MediaRendered {
                artifacts: vec![artifact("poster.jpg"), artifact("highlight.mp4")],
            }),
        );
        fold(
            &mut job,
            EventBody::MediaArchived(MediaArchived {
                artifacts: vec![artifact("poster.jpg")],
                manifest: artifact("manifest.json"),
            }),
        );
        let expired = fold(
            &mut job,
            EventBody::JobDataExpired(retired(
                rule::WORK,
                &["poster.jpg", "highlight.mp4", "manifest.json"],
            )),
        );
        assert!(matches!(&job.kept["highlight.mp4"],
            Kept::Expired { rule, at } if rule == rule::WORK && *at == expired.occurred_at));
        assert!(matches!(job.kept["poster.jpg"], Kept::Archived { .. }));
        let before = job.clone();
        let _ = job.apply(&expired);
        assert_eq!(job, before, "a duplicate changed the state");
        fold(
            &mut job,
            EventBody::JobArchiveTiered(JobArchiveTiered {
                rule: rule::COLD_AFTER.into(),
                after: "5s".into(),
                moved: vec!["poster.jpg".into(), "manifest.json".into()],
                to: "file:///cold".into(),
                bytes: 20,
            }),
        );
        assert!(matches!(&job.kept["poster.jpg"], Kept::Tiered { to, .. } if to == "file:///cold"));
        assert!(matches!(job.kept["highlight.mp4"], Kept::Expired { .. }));
        fold(
            &mut job,
            EventBody::JobArchiveExpired(retired(rule::ARCHIVE, &["poster.jpg", "manifest.json"])),
        );
        for name in ["poster.jpg", "manifest.json"] {
            assert!(
                matches!(&job.kept[name], Kept::Expired { rule, .. } if rule == rule::ARCHIVE),
                "{name}: {:?}",
                job.kept[name]
            );
        }
        // The state survives the projections' JSON.
        let again: Job = serde_json::from_str(&serde_json::to_string(&job).unwrap()).unwrap();
        assert_eq!(again, job);
    }

    #[test]
    fn an_archive_expired_before_the_working_copy_leaves_it_live_until_then() {
        let mut job = Job::new(JobId::parse("j").unwrap());
        fold(
            &mut job,
            EventBody::MediaArchived(MediaArchived {
                artifacts: vec![artifact("poster.jpg")],
                manifest: artifact("manifest.json"),
            }),
        );
        fold(
            &mut job,
            EventBody::JobArchiveExpired(retired(rule::ARCHIVE, &["poster.jpg"])),
        );
        assert!(!job.kept.contains_key("poster.jpg"));
        fold(
            &mut job,
            EventBody::JobDataExpired(retired(rule::WORK, &["poster.jpg"])),
        );
        assert!(matches!(job.kept["poster.jpg"], Kept::Expired { .. }));
    }
}

#[cfg(test)]
mod due_tests {
    use super::*;
    use crate::event::{Artifact, MediaArchived, Retired};
    use crate::{Envelope, EventBody, Job, JobId, JobStatus, Phase, PhaseTimes};

    fn finished(status: JobStatus, at: chrono::DateTime<chrono::Utc>) -> Job {
        let mut job = Job::new(JobId::parse("j").unwrap());
        job.status = status;
        job.phases.insert(
            Phase::Archive,
            PhaseTimes {
                started_at: Some(at),
                finished_at: Some(at),
                attempts: 1,
            },
        );
        job
    }

    fn rules() -> JobRetention {
        JobRetention {
            work: Keep::parse("10s").unwrap(),
            archive: Keep::parse("60s").unwrap(),
            cold_after: Keep::parse("30s").unwrap(),
        }
    }

    #[test]
    fn a_job_queued_or_running_owes_nothing_however_old() {
        let t0 = chrono::Utc::now();
        for status in [JobStatus::Queued, JobStatus::Running] {
            let job = finished(status, t0);
            assert_eq!(
                due(&job, &rules(), t0 + chrono::Duration::days(999)),
                vec![]
            );
        }
    }

    #[test]
    fn rules_fall_due_in_order_and_once() {
        let t0 = chrono::Utc::now();
        let mut job = Job::new(JobId::parse("j").unwrap());
        let a = Artifact {
            name: "poster.jpg".into(),
            key: "jobs/j/poster.jpg".into(),
            bytes: 1,
            sha256: "00".into(),
            content_type: "image/jpeg".into(),
        };
        let _ = job.apply(&Envelope::new(
            job.id.clone(),
            "t",
            1,
            EventBody::MediaArchived(MediaArchived {
                artifacts: vec![a.clone()],
                manifest: Artifact {
                    name: "manifest.json".into(),
                    ..a
                },
            }),
        ));
        job.status = JobStatus::Succeeded;
        job.phases = finished(JobStatus::Succeeded, t0).phases;
        assert!(job.archived.contains("poster.jpg"));
        let at = |s| t0 + chrono::Duration::seconds(s);
        assert_eq!(due(&job, &rules(), at(9)), vec![]);
        assert_eq!(due(&job, &rules(), at(10)), vec![Due::Work(rules().work)]);
        assert_eq!(
            due(&job, &rules(), at(30)),
            vec![Due::Work(rules().work), Due::Tier(rules().cold_after)]
        );
        assert_eq!(
            due(&job, &rules(), at(60)),
            vec![Due::Work(rules().work), Due::Archive(rules().archive)]
        );
        let _ = job.apply(&Envelope::new(
            job.id.clone(),
            "t",
            1,
            EventBody::JobDataExpired(Retired {
                rule: rule::WORK.into(),
                after: "10s".into(),
                removed: vec!["poster.jpg".into()],
                bytes: 1,
            }),
        ));
        assert_eq!(due(&job, &rules(), at(11)), vec![], "work expired twice");
        // A rule that found nothing to remove is done all the same.
        let mut empty = finished(JobStatus::Cancelled, t0);
        let _ = empty.apply(&Envelope::new(
            empty.id.clone(),
            "t",
            1,
            EventBody::JobDataExpired(Retired {
                rule: rule::WORK.into(),
                after: "10s".into(),
                removed: vec![],
                bytes: 0,
            }),
        ));
        assert_eq!(due(&empty, &rules(), at(99)), vec![]);
        // The finish time does not move with retention's own events.
        assert_eq!(finished_at(&job), Some(t0));
    }

    #[test]
    fn event_ids_are_stable_v7_and_differ_per_job_and_rule() {
        let t = chrono::Utc::now();
        let j = JobId::parse("j1").unwrap();
        let id = event_id(&j, rule::WORK, t);
        assert_eq!(id, event_id(&j, rule::WORK, t));
        assert_ne!(id, event_id(&j, rule::ARCHIVE, t));
        assert_ne!(id, event_id(&JobId::parse("j2").unwrap(), rule::WORK, t));
        let u = uuid::Uuid::parse_str(&id).unwrap();
        assert_eq!(u.get_version_num(), 7);
    }
}

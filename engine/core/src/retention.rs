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

/// The rules a removal or move is made by, as events and the API name them.
pub mod rule {
    pub const WORK: &str = "retention.work";
    pub const UPLOADS: &str = "retention.uploads";
    pub const ARCHIVE: &str = "retention.archive";
    pub const COLD_AFTER: &str = "retention.cold_after";
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

//! Retention: the settings, the fold of retention events, and what is due.

mod keep_and_overrides {
    use crate::retention::*;
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

mod fold_tests {
    use crate::event::{Artifact, JobArchiveTiered, MediaArchived, MediaRendered, Retired};
    use crate::retention::*;
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

mod due_tests {
    use crate::event::{Artifact, MediaArchived, Retired};
    use crate::retention::*;
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

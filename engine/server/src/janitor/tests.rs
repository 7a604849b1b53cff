use super::*;
use sprocket_core::event::{Artifact, MediaArchived, MediaRendered};
use sprocket_core::retention::Keep;
use sprocket_core::{JobId, JobStatus};

async fn artifact(s: &store::Store, name: &str, body: &[u8]) -> Artifact {
    let key = format!("jobs/j/{name}");
    let w = store::put_bytes(s, &key, body.to_vec()).await.unwrap();
    Artifact {
        name: name.into(),
        key,
        bytes: w.bytes,
        sha256: w.sha256,
        content_type: "application/octet-stream".into(),
    }
}

fn sweeper() -> Sweeper {
    Sweeper {
        stores: Stores {
            work: store::open("memory://").unwrap(),
            archive: store::open("memory://").unwrap(),
            cold: Some(store::open("memory://").unwrap()),
        },
        rules: JobRetention {
            work: Keep::parse("1s").unwrap(),
            archive: Keep::parse("1h").unwrap(),
            cold_after: Keep::parse("2s").unwrap(),
        },
        cold_url: Some("memory://cold".into()),
        producer: "sprocket-janitor".into(),
    }
}

#[tokio::test]
async fn expiry_and_tiering_empty_the_stores_and_a_rerun_writes_the_same_event() {
    let sw = sweeper();
    let mut job = Job::new(JobId::parse("j").unwrap());
    let poster = artifact(&sw.stores.work, "poster.jpg", b"jpeg").await;
    let scratch = artifact(&sw.stores.work, "source.mp4", b"video").await;
    let archived = artifact(&sw.stores.archive, "poster.jpg", b"jpeg").await;
    let manifest = artifact(&sw.stores.archive, "manifest.json", b"{}").await;
    for body in [
        EventBody::MediaRendered(MediaRendered {
            artifacts: vec![poster, scratch],
        }),
        EventBody::MediaArchived(MediaArchived {
            artifacts: vec![archived.clone()],
            manifest: manifest.clone(),
        }),
    ] {
        let _ = job.apply(&Envelope::new(job.id.clone(), "t", 1, body));
    }
    job.status = JobStatus::Succeeded;
    let end = retention::finished_at(&job).unwrap();
    let now = end + chrono::Duration::seconds(3);
    let due = sw.due(&job, now);
    assert_eq!(due.len(), 2, "{due:?}");

    let expired = sw.act(&job, &due[0]).await.unwrap();
    assert!(store::list(&sw.stores.work, "jobs/j/")
        .await
        .unwrap()
        .is_empty());
    let EventBody::JobDataExpired(r) = &expired.body else {
        panic!("{expired:?}")
    };
    assert_eq!(r.bytes, 4 + 5);
    assert_eq!(r.rule, "retention.work");
    // Killed before its event: the rerun finds nothing left, deletes
    // nothing twice and writes an event with the same id.
    let again = sw.act(&job, &due[0]).await.unwrap();
    assert_eq!(again.event_id, expired.event_id);

    let tiered = sw.act(&job, &due[1]).await.unwrap();
    let EventBody::JobArchiveTiered(t) = &tiered.body else {
        panic!("{tiered:?}")
    };
    assert_eq!(t.moved, vec!["manifest.json", "poster.jpg"]);
    let cold = sw.stores.cold.as_ref().unwrap();
    assert!(store::list(&sw.stores.archive, "jobs/j/")
        .await
        .unwrap()
        .is_empty());
    for a in [&archived, &manifest] {
        assert_eq!(store::digest(cold, &a.key).await.unwrap().sha256, a.sha256);
    }
    // Killed before its event: the rerun finds the copies in the cold store
    // and writes the same event, bytes and all.
    let again = sw.act(&job, &due[1]).await.unwrap();
    assert_eq!(again.event_id, tiered.event_id);
    assert_eq!(again.body, tiered.body);
    assert_eq!(t.bytes, archived.bytes + manifest.bytes);

    for e in [&expired, &tiered] {
        let _ = job.apply(e);
    }
    assert_eq!(sw.due(&job, now), vec![]);
    let later = sw.due(&job, end + chrono::Duration::hours(2));
    assert_eq!(later, vec![Due::Archive(sw.rules.archive)]);
    let gone = sw.act(&job, &later[0]).await.unwrap();
    assert!(store::list(cold, "jobs/j/").await.unwrap().is_empty());
    let _ = job.apply(&gone);
    assert!(job
        .kept
        .values()
        .all(|k| matches!(k, retention::Kept::Expired { .. })));
}

#[tokio::test]
async fn a_running_job_owes_nothing() {
    let sw = sweeper();
    let mut job = Job::new(JobId::parse("j").unwrap());
    job.status = JobStatus::Running;
    job.submitted_at = Some(chrono::Utc::now() - chrono::Duration::days(30));
    assert_eq!(sw.due(&job, chrono::Utc::now()), vec![]);
}

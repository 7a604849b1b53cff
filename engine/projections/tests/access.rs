//! What the API keeps beside the projections (keys, uploads) and the
//! tenant's view of the jobs, on SQLite and PostgreSQL alike.

mod support;

use chrono::{DateTime, Duration};
use sprocket_core::{EventBody, JobStatus, Phase};
use sprocket_projections::{
    ApiKey, Projections, UploadClaim, UploadRef, UploadRule, UploadUse, WorkClaim,
};
use support::history::{at, History};

fn key(id: &str, tenant: &str, scopes: &[&str], second: i64) -> ApiKey {
    ApiKey {
        id: id.into(),
        tenant: tenant.into(),
        name: Some(format!("{id} key")),
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
        created_at: format!("2026-12-06T00:00:{second:02}.000000000Z"),
        revoked_at: None,
    }
}

fn keys_are_found_by_hash_listed_and_revoked(p: &Projections) {
    let (a, b) = (
        key("a", "acme", &["jobs:read", "jobs:write"], 1),
        key("b", "globex", &["admin"], 2),
    );
    p.insert_key(&a, &"a".repeat(64)).unwrap();
    p.insert_key(&b, &"b".repeat(64)).unwrap();
    assert!(p.insert_key(&a, &"c".repeat(64)).is_err(), "ids are unique");
    assert!(
        p.insert_key(&key("c", "acme", &["admin"], 3), &"a".repeat(64))
            .is_err(),
        "hashes are unique"
    );
    assert_eq!(p.key_by_hash(&"a".repeat(64)).unwrap(), Some(a.clone()));
    assert_eq!(p.keys(None).unwrap(), [a.clone(), b.clone()]);
    assert_eq!(p.keys(Some("globex")).unwrap(), [b]);

    let when = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
    assert_eq!(
        p.revoke_key("a", Some("globex"), when).unwrap(),
        None,
        "another tenant's key"
    );
    let revoked = p.revoke_key("a", None, when).unwrap().expect("revoked");
    assert_eq!(
        revoked.revoked_at.as_deref(),
        Some("2027-01-15T08:00:00.000000000Z")
    );
    let again = p
        .revoke_key("a", None, when + Duration::hours(1))
        .unwrap()
        .unwrap();
    assert_eq!(
        again.revoked_at, revoked.revoked_at,
        "the first revocation stands"
    );
    assert_eq!(p.key_by_hash(&"a".repeat(64)).unwrap(), None);
    assert_eq!(p.revoke_key("nope", None, when).unwrap(), None);
}

fn uploads_count_toward_their_tenants_day(p: &Projections) {
    let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
    p.record_upload("u1", "acme", 100, now - Duration::hours(30))
        .unwrap();
    p.record_upload("u2", "acme", 200, now - Duration::hours(2))
        .unwrap();
    p.record_upload("u3", "acme", 300, now - Duration::hours(1))
        .unwrap();
    p.record_upload("u4", "globex", 999, now).unwrap();
    let day = p.uploads_since("acme", now - Duration::hours(24)).unwrap();
    assert_eq!(
        day,
        [
            UploadUse {
                bytes: 200,
                at: now - Duration::hours(2)
            },
            UploadUse {
                bytes: 300,
                at: now - Duration::hours(1)
            },
        ]
    );
    assert_eq!(p.upload_tenant("u4").unwrap().as_deref(), Some("globex"));
    assert_eq!(p.upload_tenant("u9").unwrap(), None);
    p.reset().unwrap();
    assert_eq!(
        p.upload_tenant("u1").unwrap().as_deref(),
        Some("acme"),
        "a rebuild keeps uploads"
    );
}

fn a_tenant_lists_and_counts_only_its_own_jobs(p: &Projections) {
    let mut events = Vec::new();
    for (i, (job, tenant)) in [
        ("j-acme-1", Some("acme")),
        ("j-acme-2", Some("acme")),
        ("j-globex", Some("globex")),
        ("j-none", None),
    ]
    .into_iter()
    .enumerate()
    {
        let mut h = History::new(job, i as i64);
        h.submitted();
        if job == "j-acme-2" {
            h.phase(Phase::Ingest).succeeded();
        }
        if let EventBody::JobSubmitted(s) = &mut h.events[0].body {
            s.tenant = tenant.map(str::to_owned);
        }
        events.extend(h.events);
    }
    p.apply(&at(0, 0, &events)).unwrap();
    let ids = |tenant, status| -> Vec<String> {
        p.jobs_of(tenant, status, 10, None)
            .unwrap()
            .items
            .into_iter()
            .map(|j| j.id.to_string())
            .collect()
    };
    assert_eq!(ids(Some("acme"), None), ["j-acme-2", "j-acme-1"]);
    assert_eq!(ids(Some("acme"), Some(JobStatus::Queued)), ["j-acme-1"]);
    assert_eq!(ids(Some("globex"), None), ["j-globex"]);
    assert_eq!(ids(None, None).len(), 4);
    assert_eq!(p.active_jobs("acme").unwrap(), 1);
    assert_eq!(p.active_jobs("globex").unwrap(), 1);
    assert_eq!(p.active_jobs("nobody").unwrap(), 0);
    let job = p
        .job(&sprocket_core::JobId::parse("j-acme-1").unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(job.tenant.as_deref(), Some("acme"));
}

/// Every stored event gets the next ordinal, batch after batch, without
/// gaps; a tenant's (or a status's) events come back in that order.
fn events_are_numbered_in_the_order_recorded(p: &Projections) {
    assert_eq!(p.last_ordinal().unwrap(), 0);
    let mut a = History::new("ord-a", 0);
    a.submitted();
    let mut b = History::new("ord-b", 1);
    b.submitted().phase(Phase::Ingest);
    if let EventBody::JobSubmitted(s) = &mut b.events[0].body {
        s.tenant = Some("globex".into());
    }
    p.apply(&at(0, 0, &a.events)).unwrap();
    p.apply(&at(1, 0, &b.events)).unwrap();
    // Applying a batch again stores nothing and numbers nothing.
    p.apply(&at(1, 0, &b.events)).unwrap();
    let total = (a.events.len() + b.events.len()) as i64;
    assert_eq!(p.last_ordinal().unwrap(), total);
    let all = p.recorded_after(None, None, 0, 100).unwrap();
    let ordinals: Vec<i64> = all.iter().map(|(n, _, _)| *n).collect();
    assert_eq!(ordinals, (1..=total).collect::<Vec<_>>());
    assert_eq!(all[0].1.job_id.as_str(), "ord-a");
    let globex = p.recorded_after(Some("globex"), None, 0, 100).unwrap();
    assert_eq!(globex.len(), b.events.len());
    assert!(globex.iter().all(|(_, e, _)| e.job_id.as_str() == "ord-b"));
    let after = p.recorded_after(None, None, 2, 2).unwrap();
    assert_eq!(after.iter().map(|(n, _, _)| *n).collect::<Vec<_>>(), [3, 4]);
    let running = p
        .recorded_after(None, Some(JobStatus::Running), 0, 100)
        .unwrap();
    assert!(
        running.iter().all(|(_, e, _)| e.job_id.as_str() == "ord-b"),
        "b's ingest is under way"
    );
}

/// Retention expires an upload only through one conditional update: never
/// one a queued or running job names, nor one a submission claimed after
/// every job the projections know of (unless that claim was given up).
fn uploads_expire_only_when_nothing_can_use_them(p: &Projections) {
    let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
    let old = now - Duration::days(2);
    for (id, at) in [
        ("up-live", old),
        ("up-done", old),
        ("up-none", old),
        ("up-claimed", old),
        ("up-fresh", now),
    ] {
        p.record_upload(id, "acme", 100, at).unwrap();
    }
    let mut live = History::new("live", 0);
    live.submitted().started(Phase::Ingest);
    let done = History::successful("done", 1);
    p.apply(&at(0, 0, &live.events)).unwrap();
    p.apply(&at(1, 0, &done.events)).unwrap();
    let before = now - Duration::hours(1);
    assert_eq!(
        p.claim_upload("up-claimed", now - Duration::minutes(10))
            .unwrap(),
        UploadClaim::Claimed
    );
    let ids = |v: Vec<UploadRef>| v.into_iter().map(|u| u.id).collect::<Vec<_>>();
    assert_eq!(ids(p.unused_uploads(before, 10).unwrap()), ["up-none"]);

    let unused = UploadRule::Unused { before };
    assert_eq!(
        p.expire_upload("up-none", unused, now).unwrap(),
        Some(UploadRef {
            id: "up-none".into(),
            bytes: 100
        })
    );
    assert_eq!(
        p.expire_upload("up-none", unused, now).unwrap(),
        None,
        "once"
    );
    let UploadClaim::Expired { rule, .. } = p.claim_upload("up-none", now).unwrap() else {
        panic!("an expired upload cannot be claimed")
    };
    assert_eq!(rule, "retention.uploads");
    assert_eq!(p.claim_upload("nope", now).unwrap(), UploadClaim::Unknown);
    for id in ["up-claimed", "up-fresh", "up-live"] {
        assert_eq!(p.expire_upload(id, unused, now).unwrap(), None, "{id}");
    }

    let with = |job, abandoned| UploadRule::WithJob { job, abandoned };
    assert_eq!(
        p.expire_upload("up-live", with("live", now), now).unwrap(),
        None,
        "a running job needs it"
    );
    // A claim newer than every job naming the upload: its job is on its way.
    p.claim_upload("up-done", now - Duration::minutes(5))
        .unwrap();
    assert_eq!(
        p.expire_upload("up-done", with("done", before), now)
            .unwrap(),
        None
    );
    // Given up: the claim is older than the period.
    assert!(p
        .expire_upload("up-done", with("done", now), now)
        .unwrap()
        .is_some());
    assert_eq!(
        ids(p.uploads_to_remove(10).unwrap()),
        ["up-done", "up-none"]
    );
    p.upload_removed("up-none", 100).unwrap();
    assert_eq!(ids(p.uploads_to_remove(10).unwrap()), ["up-done"]);
}

/// A retry and the janitor take a finished job's working data in turn: a
/// retry after the job finished keeps the janitor off, a retry from before
/// the finish does not, and once the janitor holds it no retry gets it.
fn a_retry_and_the_janitor_never_both_take_working_data(p: &Projections) {
    let t = |s: i64| DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap();
    let expiring = |finished| WorkClaim::Expiring { finished };
    // A retry at 10, the job finished again at 20: the janitor may go on.
    assert!(p.claim_work("a", WorkClaim::Retry, t(10)).unwrap());
    assert!(p.claim_work("a", expiring(t(20)), t(30)).unwrap());
    assert!(
        !p.claim_work("a", WorkClaim::Retry, t(40)).unwrap(),
        "the janitor holds it"
    );
    assert!(
        p.claim_work("a", expiring(t(20)), t(50)).unwrap(),
        "a rerun of the janitor"
    );
    // A retry after the finish the janitor saw: it is on its way.
    assert!(p.claim_work("b", WorkClaim::Retry, t(25)).unwrap());
    assert!(!p.claim_work("b", expiring(t(20)), t(30)).unwrap());
    assert!(
        p.claim_work("b", WorkClaim::Retry, t(60)).unwrap(),
        "retried again"
    );
    // Nobody before the janitor.
    assert!(p.claim_work("c", expiring(t(20)), t(30)).unwrap());
    assert!(!p.claim_work("c", WorkClaim::Retry, t(31)).unwrap());
}

on_both!(
    keys_are_found_by_hash_listed_and_revoked,
    uploads_count_toward_their_tenants_day,
    a_tenant_lists_and_counts_only_its_own_jobs,
    events_are_numbered_in_the_order_recorded,
    uploads_expire_only_when_nothing_can_use_them,
    a_retry_and_the_janitor_never_both_take_working_data,
);

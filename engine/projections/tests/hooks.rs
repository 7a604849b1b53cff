//! Webhooks and their delivery records, on SQLite and PostgreSQL alike.

mod support;

use chrono::DateTime;
use sprocket_projections::{Delivery, DeliveryOutcome, Projections, Webhook};

fn hook(id: &str, tenant: &str, events: &[&str], second: i64) -> Webhook {
    Webhook {
        id: id.into(),
        tenant: tenant.into(),
        url: format!("https://hooks.example.com/{id}"),
        events: events.iter().map(|s| s.to_string()).collect(),
        secret: format!("secret-of-{id}-0123456789"),
        created_at: format!("2026-12-06T00:00:{second:02}.000000000Z"),
    }
}

fn webhooks_are_kept_per_tenant_and_deleted_once(p: &Projections) {
    let (a, b, c) = (
        hook("a", "acme", &["*"], 1),
        hook("b", "globex", &["JobSucceeded", "JobFailed"], 2),
        hook("c", "acme", &["JobFailed"], 3),
    );
    for h in [&a, &b, &c] {
        p.insert_webhook(h).unwrap();
    }
    assert!(p.insert_webhook(&a).is_err(), "ids are unique");
    assert_eq!(p.webhooks(None).unwrap(), [a.clone(), b.clone(), c.clone()]);
    assert_eq!(p.webhooks(Some("acme")).unwrap(), [a.clone(), c.clone()]);
    assert_eq!(
        p.webhook("a", None).unwrap().unwrap().secret,
        a.secret,
        "the secret is kept to sign with"
    );
    assert_eq!(
        p.webhook("b", Some("acme")).unwrap(),
        None,
        "another tenant's is not found"
    );
    assert!(a.wants("PhaseProgress") && b.wants("JobFailed") && !b.wants("JobSubmitted"));

    let when = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
    assert!(
        !p.delete_webhook("b", Some("acme"), when).unwrap(),
        "not acme's to delete"
    );
    assert!(p.delete_webhook("a", Some("acme"), when).unwrap());
    assert!(
        !p.delete_webhook("a", Some("acme"), when).unwrap(),
        "deleted once"
    );
    assert_eq!(p.webhook("a", None).unwrap(), None);
    assert_eq!(p.webhooks(Some("acme")).unwrap(), [c]);
}

fn every_attempt_is_recorded_once(p: &Projections) {
    p.insert_webhook(&hook("a", "acme", &["*"], 1)).unwrap();
    let attempt = |n: u32, outcome, status: Option<u16>, second: u32| Delivery {
        webhook_id: "a".into(),
        event_id: "e1".into(),
        job_id: "j1".into(),
        event_type: "JobSucceeded".into(),
        attempt: n,
        outcome,
        status,
        error: (outcome != DeliveryOutcome::Delivered).then(|| "the server answered 500".into()),
        at: format!("2026-12-06T00:01:{second:02}.000000000Z"),
    };
    let first = attempt(1, DeliveryOutcome::Failed, Some(500), 1);
    let second = attempt(2, DeliveryOutcome::Dead, None, 2);
    p.record_delivery(&first).unwrap();
    p.record_delivery(&second).unwrap();
    // A redelivery after a crash records the same attempt again: kept once.
    p.record_delivery(&attempt(2, DeliveryOutcome::Delivered, Some(200), 3))
        .unwrap();
    assert_eq!(
        p.deliveries("a", false, 10).unwrap(),
        [second.clone(), first.clone()]
    );
    assert_eq!(p.deliveries("a", true, 10).unwrap(), [second]);
    assert_eq!(p.deliveries("a", false, 1).unwrap().len(), 1);
    assert!(p.deliveries("nobody", false, 10).unwrap().is_empty());
}

on_both!(
    webhooks_are_kept_per_tenant_and_deleted_once,
    every_attempt_is_recorded_once,
);

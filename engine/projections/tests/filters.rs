//! Listing filters (`labels`, `since`, with `tenant` and `status`) and their
//! keyset pages: each body is written once and runs against SQLite and
//! PostgreSQL. The expected pages come from the folded jobs themselves.

mod support;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use diesel::connection::SimpleConnection;
use sprocket_core::{EventBody, Job, JobId, JobStatus, Phase};
use sprocket_projections::{JobFilter, Projections};
use support::history::{at, History};
use support::stores::Store;

/// A job of the fill: id, second submitted, tenant, labels.
type Fill = (
    &'static str,
    i64,
    Option<&'static str>,
    &'static [(&'static str, &'static str)],
);

/// Ties on the second, keys a JSON path would misread, an empty value, a
/// number-like value, case.
const JOBS: &[Fill] = &[
    ("j-00", 0, Some("acme"), &[("team", "a"), ("tier", "gold")]),
    ("j-01", 10, Some("acme"), &[("team", "b")]),
    ("j-02", 10, Some("globex"), &[("team", "a")]),
    ("j-03", 20, None, &[]),
    ("j-04", 30, Some("acme"), &[("a.b", "x"), ("$.team", "a")]),
    (
        "j-05",
        40,
        Some("acme"),
        &[("quote\"d", "v'1"), ("team", "a")],
    ),
    ("j-06", 40, Some("globex"), &[("team", "A")]),
    ("j-07", 50, Some("acme"), &[("team", "")]),
    (
        "j-08",
        60,
        None,
        &[("ü", "ß"), ("team", "a"), ("tier", "gold")],
    ),
    ("j-09", 70, Some("acme"), &[("num", "1"), ("team", "a")]),
];

fn time(second: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_700_000_000 + second, 0).unwrap()
}

/// Projects [`JOBS`] (odd ones run their ingest to the end) and a job whose
/// first events arrive before its submission, in a later batch.
fn fill(p: &Projections) {
    let mut events = Vec::new();
    for (i, (id, second, tenant, labels)) in JOBS.iter().enumerate() {
        let mut h = History::new(id, *second);
        h.submitted();
        if i % 2 == 1 {
            h.phase(Phase::Ingest);
        }
        if let EventBody::JobSubmitted(s) = &mut h.events[0].body {
            s.tenant = tenant.map(str::to_owned);
            s.labels = labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
        }
        events.extend(h.events);
    }
    p.apply(&at(0, 0, &events)).unwrap();
    // Seen first without labels, then submitted with some.
    let mut late = History::new("j-late", 80);
    late.started(Phase::Ingest);
    late.submitted();
    let submitted = late.events.pop().unwrap();
    p.apply(&at(1, 0, &late.events)).unwrap();
    assert!(p
        .jobs_where(&labelled(&[("suite", "contract")]), 100, None)
        .unwrap()
        .items
        .is_empty());
    p.apply(&at(1, 1, &[submitted])).unwrap();
}

fn labelled(pairs: &[(&str, &str)]) -> JobFilter {
    JobFilter {
        labels: pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..JobFilter::default()
    }
}

/// Every job, as folded.
fn all_jobs(p: &Projections) -> Vec<Job> {
    JOBS.iter()
        .map(|j| j.0)
        .chain(["j-late"])
        .map(|id| p.job(&JobId::parse(id).unwrap()).unwrap().unwrap())
        .collect()
}

/// What `filter` should list, worked out from the folded jobs: newest
/// submitted first, ties by id descending.
fn expected(jobs: &[Job], filter: &JobFilter) -> Vec<String> {
    let mut keep: Vec<&Job> = jobs
        .iter()
        .filter(|j| filter.tenant.is_none() || j.tenant == filter.tenant)
        .filter(|j| filter.status.is_none_or(|s| j.status == s))
        .filter(|j| filter.since.is_none_or(|t| j.submitted_at.unwrap() >= t))
        .filter(|j| {
            filter
                .labels
                .iter()
                .all(|(k, v)| j.labels.get(k) == Some(v))
        })
        .collect();
    keep.sort_by_key(|j| std::cmp::Reverse((j.submitted_at, j.id.to_string())));
    keep.iter().map(|j| j.id.to_string()).collect()
}

/// Every page of `filter` at `limit` jobs a page, followed by its cursors.
fn walk(p: &Projections, filter: &JobFilter, limit: u32) -> Vec<String> {
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = p.jobs_where(filter, limit, after.as_deref()).unwrap();
        assert!(page.items.len() <= limit as usize);
        seen.extend(page.items.iter().map(|j| j.id.to_string()));
        match page.next {
            Some(next) => after = Some(next),
            None => return seen,
        }
    }
}

/// Filters worth listing, with how many jobs each should find.
fn cases() -> Vec<(JobFilter, usize)> {
    let with = |labels: &[(&str, &str)], f: JobFilter| JobFilter {
        labels: labelled(labels).labels,
        ..f
    };
    let none = JobFilter::default;
    vec![
        (none(), 11),
        (labelled(&[("team", "a")]), 5),
        (labelled(&[("team", "a"), ("tier", "gold")]), 2),
        (labelled(&[("tier", "gold"), ("team", "b")]), 0),
        (labelled(&[("team", "A")]), 1),
        (labelled(&[("team", "")]), 1),
        (labelled(&[("a.b", "x")]), 1),
        (labelled(&[("$.team", "a")]), 1),
        (labelled(&[("a", "x")]), 0),
        (labelled(&[("quote\"d", "v'1")]), 1),
        (labelled(&[("ü", "ß")]), 1),
        (labelled(&[("num", "1")]), 1),
        (labelled(&[("suite", "contract")]), 1),
        (labelled(&[("nothing", "here")]), 0),
        (labelled(&[("team", "a"), ("team", "b")]), 0),
        (
            JobFilter {
                since: Some(time(10)),
                ..none()
            },
            10,
        ),
        (
            JobFilter {
                since: Some(time(40) + chrono::Duration::nanoseconds(1)),
                ..none()
            },
            4,
        ),
        (
            with(
                &[("team", "a")],
                JobFilter {
                    since: Some(time(10)),
                    ..none()
                },
            ),
            4,
        ),
        (
            with(
                &[("team", "a")],
                JobFilter {
                    tenant: Some("acme".into()),
                    ..none()
                },
            ),
            3,
        ),
        (
            with(
                &[("team", "a")],
                JobFilter {
                    status: Some(JobStatus::Queued),
                    ..none()
                },
            ),
            3,
        ),
        (
            JobFilter {
                tenant: Some("acme".into()),
                status: Some(JobStatus::Running),
                since: Some(time(40)),
                labels: labelled(&[("team", "a")]).labels,
            },
            2,
        ),
    ]
}

fn jobs_filter_by_label_and_since_and_paginate(store: &Store) {
    let p = &store.projections;
    fill(p);
    let jobs = all_jobs(p);
    for (filter, count) in cases() {
        let want = expected(&jobs, &filter);
        assert_eq!(want.len(), count, "{filter:?}: {want:?}");
        for limit in [1, 2, 3, 100] {
            assert_eq!(walk(p, &filter, limit), want, "{filter:?}, {limit} a page");
        }
    }
    // Older signatures list as before.
    assert_eq!(
        p.jobs_of(Some("globex"), None, 10, None)
            .unwrap()
            .items
            .len(),
        2
    );
}

/// Rows written before the `labels` column existed get theirs from their
/// stored state when the migration runs: the migration is undone and done
/// again over projected rows, and every filter lists as before.
fn labels_of_older_rows_are_backfilled(store: &Store) {
    let p = &store.projections;
    fill(p);
    let before: Vec<Vec<String>> = cases().iter().map(|(f, _)| walk(p, f, 2)).collect();
    let redo = |conn: &mut dyn SimpleConnection, down: &str, up: &str| {
        conn.batch_execute(down).expect("undo the migration");
        conn.batch_execute(up).expect("redo the migration");
    };
    if p.backend() == "postgres" {
        redo(&mut store.postgres_connection(), DOWN_POSTGRES, UP_POSTGRES);
    } else {
        redo(&mut store.sqlite_connection(), DOWN_SQLITE, UP_SQLITE);
    }
    let after: Vec<Vec<String>> = cases().iter().map(|(f, _)| walk(p, f, 2)).collect();
    assert_eq!(after, before);
    assert_eq!(
        p.jobs_where(&labelled(&[("ü", "ß")]), 10, None)
            .unwrap()
            .items[0]
            .labels,
        BTreeMap::from([
            ("team".to_owned(), "a".to_owned()),
            ("tier".to_owned(), "gold".to_owned()),
            ("ü".to_owned(), "ß".to_owned()),
        ])
    );
}

const UP_SQLITE: &str =
    include_str!("../../../migrations/sqlite/2026-12-07-000000_job_labels/up.sql");
const DOWN_SQLITE: &str =
    include_str!("../../../migrations/sqlite/2026-12-07-000000_job_labels/down.sql");
const UP_POSTGRES: &str =
    include_str!("../../../migrations/postgres/2026-12-07-000000_job_labels/up.sql");
const DOWN_POSTGRES: &str =
    include_str!("../../../migrations/postgres/2026-12-07-000000_job_labels/down.sql");

macro_rules! filters {
    ($store:path) => {
        filters!(@tests $store;
            jobs_filter_by_label_and_since_and_paginate,
            labels_of_older_rows_are_backfilled,
        );
    };
    (@tests $store:path; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                if let Some(store) = $store() {
                    super::$name(&store);
                }
            }
        )*
    };
}

mod sqlite {
    fn store() -> Option<crate::support::stores::Store> {
        Some(crate::support::stores::sqlite())
    }
    filters!(store);
}

mod postgres {
    fn store() -> Option<crate::support::stores::Store> {
        crate::support::stores::postgres()
    }
    filters!(store);
}

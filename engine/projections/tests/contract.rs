//! One contract for every projection backend: each test body is written once,
//! taking a fresh, migrated `Projections`, and runs against SQLite and PostgreSQL.

mod support;

use sprocket_core::{ErrorInfo, EventBody, JobId, JobStatus, Phase};
use sprocket_projections::{Applied, Position, ProjectionError, Projections};
use support::history::{at, History, EVENTS};

fn job(p: &Projections, id: &JobId) -> sprocket_core::Job {
    p.job(id).unwrap().expect("job is projected")
}

fn a_successful_history_folds_to_succeeded(p: &Projections) {
    let h = History::successful("job-ok", 0);
    let applied = p.apply(&at(0, 0, &h.events)).unwrap();
    assert_eq!(
        applied,
        Applied {
            events: h.events.len(),
            skipped: 0
        }
    );

    let j = job(p, &h.job);
    assert_eq!(j.status, JobStatus::Succeeded);
    assert_eq!(j.phase, Some(Phase::Archive));
    assert_eq!(j.progress(), 100.0);
    assert!(j.error.is_none());
    assert_eq!(j.labels["suite"], "contract");
    for name in [
        "source",
        "analysis.json",
        "highlight.mp4",
        "poster.jpg",
        "manifest.json",
    ] {
        assert!(j.artifacts.contains_key(name), "missing artifact {name}");
    }
    assert!(j.artifacts["highlight.mp4"].key.starts_with("archive/"));
    assert!(j.media.is_some());
    for phase in Phase::ALL {
        let t = &j.phases[&phase];
        let (started, finished) = (t.started_at.unwrap(), t.finished_at.unwrap());
        assert!(started < finished, "{phase} times out of order");
        assert_eq!(t.attempts, 1);
    }
    assert_eq!(j.submitted_at, Some(h.events[0].occurred_at));
    assert_eq!(j.updated_at, Some(h.events.last().unwrap().occurred_at));
    assert_eq!(p.events(&h.job).unwrap(), h.events);
    let page = p.jobs(Some(JobStatus::Succeeded), 10, None).unwrap();
    assert_eq!(page.items, vec![j]);
    assert_eq!(page.next, None);
}

fn applying_a_batch_twice_changes_nothing(p: &Projections) {
    let h = History::successful("job-twice", 0);
    let mut batch = at(0, 0, &h.events);
    batch.insert(
        3,
        (
            Position::new("sprocket.analyze", 0, 7),
            h.work_item(Phase::Analyze),
        ),
    );
    let first = p.apply(&batch).unwrap();
    assert_eq!(
        first,
        Applied {
            events: h.events.len(),
            skipped: 1
        }
    );
    let snapshot = p.snapshot().unwrap();
    let offsets = p.offsets().unwrap();

    let again = p.apply(&batch).unwrap();
    assert_eq!(
        again,
        Applied {
            events: 0,
            skipped: batch.len()
        }
    );
    assert_eq!(p.snapshot().unwrap(), snapshot);
    assert_eq!(p.offsets().unwrap(), offsets);
    assert_eq!(p.events(&h.job).unwrap(), h.events);

    // Redelivered at new offsets (a producer retry): rows unchanged, offsets move.
    let moved = at(0, 100, &h.events);
    let applied = p.apply(&moved).unwrap();
    assert_eq!(
        applied,
        Applied {
            events: 0,
            skipped: h.events.len()
        }
    );
    assert_eq!(p.snapshot().unwrap(), snapshot);
    let next = p.offsets().unwrap();
    assert!(next.contains(&Position::new(EVENTS, 0, 100 + h.events.len() as i64)));
}

fn offsets_advance_with_the_rows(p: &Projections) {
    assert_eq!(p.offsets().unwrap(), vec![]);
    let a = History::successful("job-a", 0);
    let b = History::successful("job-b", 1);
    let mut batch = at(0, 10, &a.events[..4]);
    batch.extend(at(1, 0, &b.events[..2]));
    batch.push((
        Position::new("sprocket.ingest", 3, 41),
        a.work_item(Phase::Ingest),
    ));
    p.apply(&batch).unwrap();
    assert_eq!(
        p.offsets().unwrap(),
        vec![
            Position::new(EVENTS, 0, 14),
            Position::new(EVENTS, 1, 2),
            Position::new("sprocket.ingest", 3, 42),
        ]
    );
    assert_eq!(p.events(&a.job).unwrap().len(), 4);
    assert_eq!(p.events(&b.job).unwrap().len(), 2);

    // An older batch (already projected) never moves offsets back.
    p.apply(&at(0, 10, &a.events[..2])).unwrap();
    assert_eq!(p.offsets().unwrap()[0], Position::new(EVENTS, 0, 14));
    // The rest of the history continues where it stopped.
    p.apply(&at(0, 14, &a.events[4..])).unwrap();
    let end = 14 + a.events.len() as i64 - 4;
    assert_eq!(p.offsets().unwrap()[0], Position::new(EVENTS, 0, end));
    assert_eq!(job(p, &a.job).status, JobStatus::Succeeded);
}

fn a_failing_batch_moves_neither_rows_nor_offsets(p: &Projections) {
    let a = History::successful("job-a", 0);
    p.apply(&at(0, 0, &a.events[..3])).unwrap();
    let snapshot = p.snapshot().unwrap();
    let offsets = p.offsets().unwrap();

    // Good events for two jobs, then one whose row violates a constraint
    // (an empty event id) — after the others were written in the transaction.
    let b = History::successful("job-b", 1);
    let mut batch = at(0, 3, &a.events[3..6]);
    batch.extend(at(1, 0, &b.events[..3]));
    let mut bad = a.events[6].clone();
    bad.event_id = String::new();
    batch.push((Position::new(EVENTS, 0, 6), bad));
    let err = p.apply(&batch).unwrap_err();
    assert!(
        !err.retryable(),
        "a constraint violation is not retryable: {err}"
    );
    match &err {
        ProjectionError::Event {
            position, job_id, ..
        } => {
            assert_eq!(position, &Position::new(EVENTS, 0, 6));
            assert_eq!(job_id, "job-a");
        }
        other => panic!("expected an event error, got {other:?}"),
    }
    assert_eq!(p.snapshot().unwrap(), snapshot);
    assert_eq!(p.offsets().unwrap(), offsets);
    assert!(p.job(&b.job).unwrap().is_none());

    // The store is still usable and the good part applies.
    batch.pop();
    assert_eq!(p.apply(&batch).unwrap().events, 6);
    assert_eq!(p.events(&a.job).unwrap(), a.events[..6]);
    assert_eq!(p.offsets().unwrap()[0], Position::new(EVENTS, 0, 6));
}

fn reset_then_replay_is_identical(p: &Projections) {
    let ok = History::successful("job-ok", 0);
    let mut failed = History::new("job-failed", 1);
    failed
        .submitted()
        .phase(Phase::Ingest)
        .started(Phase::Analyze);
    failed.failed(Phase::Analyze, &ErrorInfo::new("model", "weights missing"));
    // A job whose events arrive before its submission sorts by its first event.
    let mut early = History::new("job-early", 2);
    early.started(Phase::Ingest).submitted();
    let mut log = ok.events.clone();
    log.extend(failed.events.clone());
    log.extend(early.events.clone());
    let log = at(0, 0, &log);
    for chunk in log.chunks(3) {
        p.apply(chunk).unwrap();
    }
    let snapshot = p.snapshot().unwrap();
    let offsets = p.offsets().unwrap();
    assert_eq!(snapshot["jobs"].as_array().unwrap().len(), 3);
    assert_eq!(snapshot["events"].as_array().unwrap().len(), log.len());

    p.reset().unwrap();
    let empty = p.snapshot().unwrap();
    assert_eq!(empty["jobs"].as_array().unwrap().len(), 0);
    assert_eq!(empty["events"].as_array().unwrap().len(), 0);
    assert_eq!(p.offsets().unwrap(), vec![]);
    assert!(p.job(&ok.job).unwrap().is_none());

    // Replayed in different batches: the same state.
    p.apply(&log[..5]).unwrap();
    p.apply(&log[5..]).unwrap();
    assert_eq!(p.snapshot().unwrap(), snapshot);
    assert_eq!(p.offsets().unwrap(), offsets);
}

fn jobs_filter_by_status_and_paginate(p: &Projections) {
    // 14 jobs over 7 distinct submission times (ties are broken by id).
    let mut all = Vec::new();
    for i in 0..14 {
        let id = format!("job-{i:02}");
        let second = (i / 2) as i64;
        let h = match i % 3 {
            0 => History::successful(&id, second),
            1 => {
                let mut h = History::new(&id, second);
                h.submitted().started(Phase::Ingest);
                h
            }
            _ => {
                let mut h = History::new(&id, second);
                h.submitted();
                h
            }
        };
        all.extend(h.events);
    }
    p.apply(&at(0, 0, &all)).unwrap();
    let mut expected: Vec<(i64, String)> =
        (0..14).map(|i| (i / 2, format!("job-{i:02}"))).collect();
    expected.sort_by(|x, y| y.cmp(x));
    let expected_ids = |status: Option<JobStatus>| -> Vec<String> {
        expected
            .iter()
            .map(|(_, id)| id.clone())
            .filter(|id| match status {
                None => true,
                Some(s) => job(p, &JobId::parse(id).unwrap()).status == s,
            })
            .collect()
    };
    let walk = |status: Option<JobStatus>, limit: u32| -> Vec<String> {
        let mut seen = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = p.jobs(status, limit, after.as_deref()).unwrap();
            assert!(page.items.len() <= limit as usize);
            assert!(page
                .items
                .iter()
                .all(|j| status.is_none_or(|s| j.status == s)));
            seen.extend(page.items.iter().map(|j| j.id.to_string()));
            match page.next {
                Some(next) => after = Some(next),
                None => return seen,
            }
        }
    };
    assert_eq!(walk(None, 4), expected_ids(None));
    assert_eq!(walk(None, 1), expected_ids(None));
    assert_eq!(walk(None, 100), expected_ids(None));
    for status in [JobStatus::Succeeded, JobStatus::Running, JobStatus::Queued] {
        let ids = walk(Some(status), 2);
        let count = if status == JobStatus::Queued { 4 } else { 5 };
        assert_eq!(ids.len(), count, "{status} jobs");
        assert_eq!(ids, expected_ids(Some(status)));
    }
    assert!(walk(Some(JobStatus::Failed), 3).is_empty());

    // A job submitted between two pages neither repeats nor hides older ones.
    let first = p.jobs(None, 5, None).unwrap();
    let mut newer = History::new("job-newest", 100);
    newer.submitted();
    p.apply(&at(0, 1000, &newer.events)).unwrap();
    let second = p.jobs(None, 100, first.next.as_deref()).unwrap();
    let ids: Vec<String> = first
        .items
        .iter()
        .chain(&second.items)
        .map(|j| j.id.to_string())
        .collect();
    assert_eq!(ids, expected_ids(None));

    let err = p.jobs(None, 5, Some("not-a-cursor")).unwrap_err();
    assert!(matches!(err, ProjectionError::InvalidCursor(_)));
    assert!(!err.retryable());
}

fn events_come_back_in_projection_order(p: &Projections) {
    let mut h = History::new("job-order", 0);
    h.submitted().phase(Phase::Ingest);
    // Projection order is arrival order, not occurred_at: a late live fact.
    let mut late = h.events[2].clone();
    late.event_id = "job-order-late".into();
    late.occurred_at -= chrono::Duration::seconds(30);
    let mut order = h.events.clone();
    order.insert(1, late);
    p.apply(&at(0, 0, &order[..3])).unwrap();
    p.apply(&at(0, 3, &order[3..])).unwrap();
    // Duplicates are not stored again.
    p.apply(&at(0, 3, &order[2..4])).unwrap();
    assert_eq!(p.events(&h.job).unwrap(), order);
    let seqs: Vec<i64> = p.snapshot().unwrap()["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, (1..=order.len() as i64).collect::<Vec<_>>());
    assert!(p
        .events(&JobId::parse("nobody").unwrap())
        .unwrap()
        .is_empty());
}

fn a_failed_job_keeps_its_error(p: &Projections) {
    let error = ErrorInfo::new("unsupported_media", "no video stream");
    let mut h = History::new("job-bad", 0);
    h.submitted()
        .started(Phase::Ingest)
        .failed(Phase::Ingest, &error);
    p.apply(&at(0, 0, &h.events)).unwrap();
    // Late live facts from a zombie worker do not revive it.
    let mut late = History::new("job-bad", 0);
    late.events = h.events.clone();
    late.started(Phase::Ingest);
    let zombie = late.events.last().unwrap().clone();
    p.apply(&at(0, h.events.len() as i64, &[zombie])).unwrap();

    let j = job(p, &h.job);
    assert_eq!(j.status, JobStatus::Failed);
    assert_eq!(j.error, Some(error));
    assert_eq!(j.phase, Some(Phase::Ingest));
    let page = p.jobs(Some(JobStatus::Failed), 10, None).unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].error, j.error);
    assert!(matches!(
        p.events(&h.job).unwrap().last().unwrap().body,
        EventBody::PhaseStarted(_)
    ));
}

fn a_submission_takes_its_canonical_position(p: &Projections) {
    let h = History::successful("job-canon", 0);
    let intake = (Position::new("sprocket.ingest", 2, 40), h.events[0].clone());
    let events = at(0, 0, &h.events);
    let n = h.events.len();

    // Seen on the intake first, then on the events topic in a later batch.
    let first = p
        .apply_canonical(std::slice::from_ref(&intake), EVENTS)
        .unwrap();
    assert_eq!(
        first,
        Applied {
            events: 1,
            skipped: 0
        }
    );
    let rest = p.apply_canonical(&events, EVENTS).unwrap();
    assert_eq!(
        rest,
        Applied {
            events: n - 1,
            skipped: 1
        }
    );
    let snapshot = p.snapshot().unwrap();
    let stored = &snapshot["events"][0];
    assert_eq!(
        (&stored["topic"], &stored["partition"], &stored["offset"]),
        (&EVENTS.into(), &0.into(), &0.into())
    );
    let offsets = p.offsets().unwrap();
    assert!(offsets.contains(&Position::new("sprocket.ingest", 2, 41)));

    // Both copies in one batch, and the events topic read first: the same rows.
    let mut both = vec![intake.clone()];
    both.extend(events.iter().cloned());
    let mut reversed = events.clone();
    reversed.push(intake);
    for order in [both, reversed] {
        p.reset().unwrap();
        let applied = p.apply_canonical(&order, EVENTS).unwrap();
        assert_eq!(
            applied,
            Applied {
                events: n,
                skipped: 1
            }
        );
        assert_eq!(p.snapshot().unwrap(), snapshot);
        assert_eq!(p.offsets().unwrap(), offsets);
    }
}

fn reads_on_an_empty_store(p: &Projections) {
    p.ping().unwrap();
    p.migrate().unwrap(); // idempotent
    assert!(p.job(&JobId::parse("missing").unwrap()).unwrap().is_none());
    let page = p.jobs(None, 10, None).unwrap();
    assert!(page.items.is_empty() && page.next.is_none());
    assert_eq!(p.apply(&[]).unwrap(), Applied::default());
    assert_eq!(p.offsets().unwrap(), vec![]);
}

/// Runs every body above against one backend.
macro_rules! contract {
    ($store:path) => {
        contract!(@tests $store;
            a_successful_history_folds_to_succeeded,
            applying_a_batch_twice_changes_nothing,
            offsets_advance_with_the_rows,
            a_failing_batch_moves_neither_rows_nor_offsets,
            reset_then_replay_is_identical,
            jobs_filter_by_status_and_paginate,
            events_come_back_in_projection_order,
            a_failed_job_keeps_its_error,
            a_submission_takes_its_canonical_position,
            reads_on_an_empty_store,
        );
    };
    (@tests $store:path; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                if let Some(store) = $store() {
                    super::$name(&store.projections);
                }
            }
        )*
    };
}

mod sqlite {
    fn store() -> Option<crate::support::stores::Store> {
        Some(crate::support::stores::sqlite())
    }
    contract!(store);
}

mod postgres {
    fn store() -> Option<crate::support::stores::Store> {
        crate::support::stores::postgres()
    }
    contract!(store);
}

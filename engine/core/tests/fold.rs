//! Properties of the job fold over generated valid histories: duplicates and
//! redeliveries never change the result, every prefix is consistent, and the
//! actions follow the routing slip.

mod history;

use history::{build, job_id, plan, Outcome, Plan, Tagged};
use proptest::prelude::*;
use proptest::sample::Index;
use sprocket_core::{Action, Envelope, EventBody, Job, JobStatus, Phase};

fn fold<'a>(events: impl IntoIterator<Item = &'a Envelope>) -> (Job, Vec<Action>) {
    let mut job = Job::new(job_id());
    let mut actions = Vec::new();
    for e in events {
        actions.extend(job.apply(e));
    }
    (job, actions)
}

fn envelopes(h: &[Tagged]) -> Vec<Envelope> {
    h.iter().map(|t| t.env.clone()).collect()
}

/// Inserts copies of events after their first occurrence: each pair picks an
/// event and a later position.
fn with_duplicates(events: &[Envelope], picks: &[(Index, Index)]) -> Vec<Envelope> {
    let mut out = events.to_vec();
    for (which, whereto) in picks {
        let i = which.index(out.len());
        let at = i + 1 + whereto.index(out.len() - i);
        let copy = out[i].clone();
        out.insert(at, copy);
    }
    out
}

/// Expected routing: each reached phase dispatched once, in recipe order, then
/// `Succeed` when the whole slip completed.
fn expected_routing(plan: &Plan) -> Vec<Route> {
    let mut expected: Vec<Route> = plan.reached().into_iter().map(Route::Dispatch).collect();
    if plan.outcome == Outcome::Succeed {
        expected.push(Route::Succeed);
    }
    expected
}

/// The routing part of an action sequence: which phase each dispatched item
/// is for, and success.
#[derive(Debug, PartialEq)]
enum Route {
    Dispatch(Phase),
    Succeed,
}

fn routing(actions: &[Action]) -> Vec<Route> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Dispatch(item) => Some(Route::Dispatch(item.phase)),
            Action::Succeed => Some(Route::Succeed),
            _ => None,
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// (a) Any event applied again, anywhere after its first occurrence, leaves
    /// the final state as it was and the routing unchanged.
    #[test]
    fn duplicates_never_change_the_result(
        plan in plan(),
        picks in proptest::collection::vec(any::<(Index, Index)>(), 1..12),
    ) {
        let events = envelopes(&build(&plan));
        let (once, once_actions) = fold(&events);
        let duplicated = with_duplicates(&events, &picks);
        let (twice, twice_actions) = fold(&duplicated);
        prop_assert_eq!(&twice, &once);
        prop_assert_eq!(routing(&twice_actions), routing(&once_actions));
    }

    /// (b) A phase redelivered with the same attempt (live facts published
    /// again, completion delivered twice) converges to the state of the history
    /// in which it ran once.
    #[test]
    fn redelivered_phases_converge(plan in plan()) {
        let history = build(&plan);
        let all = envelopes(&history);
        let once: Vec<Envelope> =
            history.iter().filter(|t| !t.extra).map(|t| t.env.clone()).collect();
        let (redelivered, redelivered_actions) = fold(&all);
        let (clean, clean_actions) = fold(&once);
        prop_assert_eq!(&redelivered, &clean);
        prop_assert_eq!(routing(&redelivered_actions), routing(&clean_actions));
    }

    /// (c) Every prefix folds to a consistent state.
    #[test]
    fn every_prefix_is_consistent(plan in plan()) {
        let events = envelopes(&build(&plan));
        let phases = plan.phases();
        let mut job = Job::new(job_id());
        let mut terminal: Option<JobStatus> = None;
        let mut succeeded_seen = false;
        let mut started_seen = false;
        for (n, e) in events.iter().enumerate() {
            let _ = job.apply(e);
            succeeded_seen |= matches!(e.body, EventBody::JobSucceeded(_));
            started_seen |= matches!(e.body, EventBody::PhaseStarted(_));
            let at = format!("after event {n} ({})", e.kind().0);

            prop_assert!(
                job.status != JobStatus::Succeeded || succeeded_seen,
                "succeeded without JobSucceeded {}", at
            );
            let progress = job.progress();
            prop_assert!((0.0..=100.0).contains(&progress), "progress {} {}", progress, at);
            prop_assert!(
                (0.0..=100.0).contains(&job.phase_progress),
                "phase progress {} {}", job.phase_progress, at
            );
            if let Some(t) = terminal {
                prop_assert_eq!(job.status, t, "left a terminal state {}", at);
            } else if job.status.is_terminal() {
                terminal = Some(job.status);
            }
            if !job.status.is_terminal() {
                let expected = if started_seen { JobStatus::Running } else { JobStatus::Queued };
                prop_assert_eq!(job.status, expected, "{}", at);
            }
            if job.status == JobStatus::Running {
                prop_assert!(job.phase.is_some(), "running without a phase {}", at);
            }
            if let Some(p) = job.phase {
                prop_assert!(phases.contains(&p), "phase {} not in the recipe {}", p, at);
            }
            for (p, t) in &job.phases {
                prop_assert!(phases.contains(p), "times for {} outside the recipe {}", p, at);
                if let Some(f) = t.finished_at {
                    let s = t.started_at;
                    prop_assert!(s.is_some_and(|s| s <= f), "{} finished before it started {}", p, at);
                }
            }
            prop_assert_eq!(job.updated_at, Some(e.occurred_at));
        }
        let expected = match plan.outcome {
            Outcome::Succeed => JobStatus::Succeeded,
            Outcome::Fail | Outcome::DeadLetter => JobStatus::Failed,
            Outcome::Cancel => JobStatus::Cancelled,
        };
        prop_assert_eq!(job.status, expected);
        match plan.outcome {
            Outcome::Succeed => {
                prop_assert_eq!(job.progress(), 100.0);
                prop_assert!(job.error.is_none());
                prop_assert!(phases.iter().all(|p| job.phases[p].finished_at.is_some()));
            }
            Outcome::Fail | Outcome::DeadLetter => {
                prop_assert!(job.error.is_some());
                prop_assert_eq!(job.phase, plan.stop_phase());
            }
            Outcome::Cancel => prop_assert!(job.cancel_requested),
        }
    }

    /// (d) The actions route the job through the recipe's phases in order, each
    /// once, even with duplicates and redeliveries; failures and cancellations
    /// produce their own action for the phase where they happened.
    #[test]
    fn actions_follow_the_routing_slip(
        plan in plan(),
        picks in proptest::collection::vec(any::<(Index, Index)>(), 0..8),
    ) {
        let events = with_duplicates(&envelopes(&build(&plan)), &picks);
        let (_, actions) = fold(&events);
        prop_assert_eq!(routing(&actions), expected_routing(&plan));
        let fails = actions.iter().filter(|a| matches!(a, Action::Fail { .. })).count();
        let aborts: Vec<&Action> =
            actions.iter().filter(|a| matches!(a, Action::Abort(_))).collect();
        prop_assert_eq!(fails > 0, plan.outcome == Outcome::Fail);
        prop_assert_eq!(!aborts.is_empty(), plan.outcome == Outcome::Cancel);
        let abort = plan.stop_phase().map(Action::Abort);
        for a in aborts {
            prop_assert_eq!(Some(a), abort.as_ref());
        }
    }
}

/// The generators themselves: a plain highlight history has the documented shape.
#[test]
fn a_plain_successful_history_visits_every_phase() {
    let plan = Plan {
        recipe: sprocket_core::RecipeRef::Name("highlight".into()),
        outcome: Outcome::Succeed,
        stop: 0,
        runs: vec![
            history::PhaseRun {
                retries: 0,
                redeliveries: 0,
                progress: vec![50.0],
                completion_redelivered: false,
            };
            4
        ],
    };
    let events = envelopes(&build(&plan));
    let kinds: Vec<&str> = events.iter().map(|e| e.kind().0).collect();
    assert_eq!(kinds.first(), Some(&"JobSubmitted"));
    assert_eq!(kinds.last(), Some(&"JobSucceeded"));
    assert_eq!(events.len(), 1 + 4 * 3 + 1);
    let (job, actions) = fold(&events);
    assert_eq!(job.status, JobStatus::Succeeded);
    assert_eq!(job.phase, Some(Phase::Archive));
    assert_eq!(
        job.artifacts["highlight.mp4"].key,
        "archive/job-1/highlight.mp4"
    );
    // Analyze's thumbnails are outputs like its analysis; an archived one
    // names its archive copy.
    assert_eq!(
        job.artifacts["shot-001.jpg"].key,
        "archive/job-1/shot-001.jpg"
    );
    assert_eq!(job.artifacts["shot-002.jpg"].key, "jobs/job-1/shot-002.jpg");
    assert_eq!(actions.last(), Some(&Action::Succeed));
}

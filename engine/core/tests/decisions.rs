//! Properties of the core's decisions (`machine`): a decision depends on its
//! inputs only, so a redelivered attempt or a duplicate submission never
//! changes what the adapters do; retries stop where the policy says; a
//! redrive restarts the job where it failed, with what the phases before it
//! produced, and the fold agrees with it.

// Shared with fold.rs, which uses all of it.
#[allow(dead_code)]
mod history;

use chrono::{DateTime, Utc};
use history::{build, completion, plan, Outcome, Plan};
use proptest::prelude::*;
use sprocket_core::machine::{self, Attempt, Claim, Completion};
use sprocket_core::retry::RetryPolicy;
use sprocket_core::{Action, Bounds, Envelope, ErrorInfo, EventBody, Job, JobStatus, Phase};

fn fold(events: &[Envelope]) -> (Job, Vec<Action>) {
    let mut job = Job::new(history::job_id());
    let mut actions = Vec::new();
    for e in events {
        actions.extend(job.apply(e));
    }
    (job, actions)
}

/// The work item the fold dispatched for `phase` in a plain successful run.
fn item_for(plan: &Plan, phase: Phase) -> Option<sprocket_core::WorkItem> {
    let events: Vec<Envelope> = build(plan).into_iter().map(|t| t.env).collect();
    let (_, actions) = fold(&events);
    actions.into_iter().find_map(|a| match a {
        Action::Dispatch(item) if item.phase == phase => Some(*item),
        _ => None,
    })
}

fn result() -> impl Strategy<Value = Attempt> {
    prop_oneof![
        any::<u8>().prop_map(|_| Attempt::Cancelled),
        (any::<bool>(), "[a-z]{1,12}").prop_map(|(retryable, m)| Attempt::Failed {
            error: ErrorInfo::new("x", m),
            retryable
        }),
        any::<u8>().prop_map(|_| Attempt::Completed(Box::new(Completion {
            event: completion(Phase::Ingest),
            artifacts: vec![],
            media: None,
        }))),
    ]
}

fn policy() -> impl Strategy<Value = RetryPolicy> {
    (1u32..6, 1u64..5000, 1.0f64..4.0, 0u64..60_000).prop_map(|(n, init, mult, extra)| {
        RetryPolicy {
            max_attempts: n,
            initial_delay_ms: init,
            multiplier: mult,
            max_delay_ms: init + extra,
        }
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Deciding an attempt again (a redelivery) gives the same action, the
    /// retry's delay included; retries stop at the policy's attempts.
    #[test]
    fn an_attempt_is_decided_the_same_way_every_time(
        plan in plan(),
        which in 0usize..4,
        attempt in 1u32..8,
        result in result(),
        policy in policy(),
    ) {
        let phases = plan.phases();
        let phase = phases[which % phases.len()];
        let Some(item) = item_for(&Plan { outcome: Outcome::Succeed, ..plan.clone() }, phase) else {
            return Err(TestCaseError::fail("no item dispatched"));
        };
        let t0: DateTime<Utc> = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let now = t0 + chrono::Duration::seconds(3);
        let a = machine::after_attempt(&item, attempt, t0, now, result.clone(), &policy);
        let b = machine::after_attempt(&item, attempt, t0, now, result.clone(), &policy);
        prop_assert_eq!(&a, &b);
        match (&result, a) {
            (Attempt::Failed { retryable: true, .. }, Action::Retry { attempt: next, delay_ms, item: again, .. }) => {
                prop_assert!(attempt < policy.max_attempts);
                prop_assert_eq!(next, attempt + 1);
                prop_assert!(delay_ms <= policy.max_delay_ms);
                prop_assert_eq!(*again, item);
            }
            (Attempt::Failed { retryable, error }, Action::Fail { phase: Some(p), error: e, dead_letter }) => {
                prop_assert!(!retryable || attempt >= policy.max_attempts);
                prop_assert_eq!(p, phase);
                prop_assert_eq!(&e, error);
                prop_assert_eq!(dead_letter.is_some(), *retryable);
            }
            (Attempt::Cancelled, Action::Cancel { phase: Some(p) }) => prop_assert_eq!(p, phase),
            (Attempt::Completed(_), Action::Dispatch(next)) => {
                prop_assert_eq!(Some(next.phase), phases.iter().skip_while(|p| **p != phase).nth(1).copied());
                prop_assert!(next.phases.contains_key(&phase), "the finished phase's times travel on");
            }
            (Attempt::Completed(_), Action::Succeed) => prop_assert_eq!(Some(&phase), phases.last()),
            (r, a) => prop_assert!(false, "{:?} decided as {:?}", r, a),
        }
    }

    /// Only the first submission of a job id runs; any other (or the same
    /// one delivered again, to the fold) is ignored, and the fold's routing
    /// starts once.
    #[test]
    fn duplicate_submissions_are_ignored(plan in plan(), copies in 1usize..4) {
        let events: Vec<Envelope> = build(&plan).into_iter().map(|t| t.env).collect();
        let submission = events[0].clone();
        let first = machine::accept(&submission, Claim::Ours, &Bounds::default());
        prop_assert!(matches!(&first, Action::Dispatch(i) if i.phase == plan.phases()[0]), "{:?}", first);
        prop_assert_eq!(machine::accept(&submission, Claim::Theirs, &Bounds::default()), Action::IgnoreDuplicate);
        let mut with_copies = events.clone();
        for _ in 0..copies {
            with_copies.insert(1, submission.clone());
        }
        let (_, actions) = fold(&with_copies);
        let ignored = actions.iter().filter(|a| **a == Action::IgnoreDuplicate).count();
        prop_assert_eq!(ignored, copies);
        prop_assert_eq!(actions.first(), Some(&first));
    }

    /// A failed job is redriven from the phase that failed, with the outputs
    /// of the phases before it; folding `JobRedriven` dispatches that same
    /// item. Anything not failed is refused.
    #[test]
    fn a_redrive_restarts_where_the_job_failed(plan in plan()) {
        let events: Vec<Envelope> = build(&plan).into_iter().map(|t| t.env).collect();
        let (mut job, _) = fold(&events);
        let decided = machine::redrive(&job);
        if job.status != JobStatus::Failed {
            prop_assert!(decided.is_err());
            return Ok(());
        }
        let Ok(Action::Redrive(item)) = decided else {
            return Err(TestCaseError::fail(format!("{decided:?}")));
        };
        prop_assert_eq!(Some(item.phase), plan.stop_phase());
        for p in plan.phases().into_iter().take_while(|p| *p != item.phase) {
            prop_assert!(item.phases.contains_key(&p), "{:?} is carried", p);
        }
        // Once retention removed its working data, a retry is refused.
        let mut expired = job.clone();
        let _ = expired.apply(&Envelope::new(job.id.clone(), "janitor", 1,
            EventBody::JobDataExpired(sprocket_core::event::Retired {
                rule: "retention.work".into(), after: "1h".into(), removed: vec![], bytes: 0,
            })));
        let refused = machine::redrive(&expired);
        prop_assert!(matches!(&refused, Err(r) if r.code == "data_expired"), "{:?}", refused);
        let redriven = Envelope::new(job.id.clone(), "api", 1,
            EventBody::JobRedriven(sprocket_core::event::JobRedriven { phase: item.phase }));
        prop_assert_eq!(job.apply(&redriven), vec![Action::Dispatch(item)]);
    }
}

//! The pure step, and the stepper's time limit under paused tokio time.

use std::time::Duration;

use chrono::{TimeZone, Utc};
use sprocket_core::machine::Claim;
use sprocket_core::{EventBody, Phase};
use sprocket_platform::config::Config;
use tokio_util::sync::CancellationToken;

use super::*;
use crate::outcome::Outcome;
use crate::ports::fakes::message;
use crate::step::{PhaseResult, Step};

fn step(phase: Phase) -> Step {
    Step::new(phase, "w", topics(), &Config::default()).unwrap()
}

fn now() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 5, 12, 0, 0).unwrap()
}

fn failed(retryable: bool) -> PhaseResult {
    PhaseResult::Failed(if retryable {
        WorkError::internal(Phase::Render, "disk full")
    } else {
        WorkError::Rejected {
            phase: Phase::Render,
            code: "bad_media",
            message: "no video stream".into(),
        }
    })
}

#[test]
fn a_completion_hands_the_slip_on_and_the_last_one_succeeds() {
    let input = item(1, Phase::Render, 2);
    let started_at = now() - chrono::Duration::seconds(3);
    let out = step(Phase::Render).step(
        &input,
        PhaseResult::Done {
            done: Box::new(rendered()),
            started_at,
        },
        now(),
    );
    let Outcome::Advanced { completed, next } = out else {
        panic!("{out:?}")
    };
    assert_eq!(completed.kind().0, "MediaRendered");
    assert_eq!(completed.attempt, 2);
    let EventBody::WorkItem(next_item) = &next.body else {
        panic!()
    };
    assert_eq!((next_item.phase, next.attempt), (Phase::Archive, 1));
    assert!(next_item.artifacts.contains_key("poster.jpg"));
    let times = &next_item.phases[&Phase::Render];
    assert_eq!(
        (times.started_at, times.finished_at),
        (Some(started_at), Some(now()))
    );

    let last = item(1, Phase::Archive, 1);
    let out = step(Phase::Archive).step(
        &last,
        PhaseResult::Done {
            done: Box::new(rendered()),
            started_at,
        },
        now(),
    );
    assert!(matches!(out, Outcome::Succeeded { .. }), "{out:?}");
}

#[test]
fn retries_are_scheduled_the_same_way_however_often_decided() {
    let s = step(Phase::Render);
    let input = item(7, Phase::Render, 1);
    let a = s.step(&input, failed(true), now());
    let b = s.step(&input, failed(true), now());
    let (
        Outcome::Retrying {
            again,
            due_at_ms,
            scheduled,
            ..
        },
        Outcome::Retrying {
            due_at_ms: due_b, ..
        },
    ) = (&a, &b)
    else {
        panic!("{a:?}")
    };
    assert_eq!(
        due_at_ms, due_b,
        "a redone decision schedules the same retry"
    );
    assert_eq!(again.attempt, 2);
    let EventBody::PhaseRetryScheduled(r) = &scheduled.body else {
        panic!()
    };
    assert_eq!(*due_at_ms, now().timestamp_millis() + r.delay_ms as i64);
    assert!((500..=1000).contains(&r.delay_ms), "{}", r.delay_ms);
}

#[test]
fn failures_for_good_and_exhausted_retries() {
    let s = step(Phase::Render);
    let out = s.step(&item(1, Phase::Render, 1), failed(false), now());
    assert!(
        matches!(
            out,
            Outcome::Failed {
                dead_lettered: None,
                ..
            }
        ),
        "{out:?}"
    );
    let out = s.step(&item(1, Phase::Render, 3), failed(true), now());
    let Outcome::Failed {
        dead_lettered: Some(d),
        job_failed,
        ..
    } = &out
    else {
        panic!("{out:?}")
    };
    assert!(
        d.reason.starts_with("attempts exhausted (3)"),
        "{}",
        d.reason
    );
    assert_eq!(job_failed.kind().0, "JobFailed");
    let writes = out.writes(Phase::Render, &topics());
    assert_eq!(
        writes.len(),
        4,
        "PhaseFailed, JobFailed, JobDeadLettered, the dead letter"
    );
}

#[test]
fn submissions_are_accepted_rejected_or_ignored() {
    let s = step(Phase::Ingest);
    let sub = submission(1, "minimal");
    assert_eq!(s.plan(&sub, Claim::Ours).unwrap().phase, Phase::Ingest);
    assert_eq!(s.plan(&sub, Claim::Theirs), Err(Box::new(Outcome::Skipped)));
    let bad = submission(2, "no-such-recipe");
    let out = s.plan(&bad, Claim::Ours).unwrap_err();
    assert!(
        matches!(
            *out,
            Outcome::Rejected {
                dead_letter: None,
                ..
            }
        ),
        "{out:?}"
    );
    // Over a limit: the job fails and the submission is dead-lettered.
    let mut over = submission(4, "minimal");
    if let EventBody::JobSubmitted(sub) = &mut over.body {
        sub.labels = (0..65).map(|i| (format!("k{i}"), "v".into())).collect();
    }
    let out = s.plan(&over, Claim::Ours).unwrap_err();
    let Outcome::Rejected {
        dead_letter: Some(reason),
        ..
    } = &*out
    else {
        panic!("{out:?}")
    };
    assert!(reason.contains("65 labels"), "{reason}");
    assert!(out.dead_letters());
    // A work item for another phase is not this phase's work.
    let out = s.plan(&item(3, Phase::Render, 1), Claim::Ours).unwrap_err();
    assert!(matches!(*out, Outcome::DeadLettered { .. }), "{out:?}");
}

#[tokio::test(start_paused = true)]
async fn over_its_time_limit_the_work_is_stopped_and_retried() {
    let work = an_hour_long_render();
    let mut cfg = Config::default();
    cfg.worker.timeout_s = 2.0;
    let (stepper, fakes) = stepper(work, cfg);
    let msg = message("sprocket.render", 0, 0, &item(1, Phase::Render, 1));
    let t = tokio::time::Instant::now();
    let cancel = CancellationToken::new();
    let out = stepper.handle(&msg, cancel.clone()).await;
    assert_eq!(t.elapsed(), Duration::from_secs(2), "stopped at the limit");
    assert!(cancel.is_cancelled(), "the work's token is cancelled");
    let Outcome::Retrying { failed, .. } = &out else {
        panic!("{out:?}")
    };
    let EventBody::PhaseFailed(f) = &failed.body else {
        panic!()
    };
    assert_eq!(f.error.code, "timeout");
    let live = fakes.live.0.lock().unwrap();
    assert_eq!(live.first().map(|e| e.kind().0), Some("PhaseStarted"));
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_job_is_stopped_and_recorded_cancelled() {
    let work = an_hour_long_render();
    let (stepper, _) = stepper(work, Config::default());
    let msg = message("sprocket.render", 0, 0, &item(4, Phase::Render, 1));
    let cancels = stepper.cancels.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(5)).await;
        cancels.cancel(&job(4));
    });
    let out = stepper.handle(&msg, CancellationToken::new()).await;
    assert!(matches!(out, Outcome::Cancelled { .. }), "{out:?}");
}

/// Render work that takes an hour unless it is stopped.
fn an_hour_long_render() -> Scripted {
    Scripted {
        phase: Phase::Render,
        run: Box::new(|_| {
            Box::pin(async {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                Ok(rendered())
            })
        }),
    }
}

/// A panic in a phase's code fails that attempt, retryably, with what the
/// panic said; the lane running it carries on.
#[tokio::test]
async fn a_panicking_phase_fails_its_attempt_and_is_retried() {
    let work = Scripted {
        phase: Phase::Render,
        run: Box::new(|_| Box::pin(async { panic!("index out of bounds in a filter") })),
    };
    let (stepper, _) = stepper(work, Config::default());
    let msg = message("sprocket.render", 0, 0, &item(5, Phase::Render, 1));
    let out = stepper.handle(&msg, CancellationToken::new()).await;
    let Outcome::Retrying { failed, .. } = &out else {
        panic!("{out:?}")
    };
    let EventBody::PhaseFailed(f) = &failed.body else {
        panic!()
    };
    assert_eq!(f.error.code, "internal");
    assert!(f.error.message.contains("index out of bounds"), "{f:?}");
}

/// The submission's copy on the events topic (and so the projections and
/// the API) keeps no credentials or query string of a URL source; the
/// ingest phase still fetches the URL as submitted.
#[tokio::test]
async fn a_source_url_is_recorded_without_its_credentials() {
    let secret = "https://user:pw@cdn.example.com/a.mp4?X-Amz-Signature=abc";
    let fetched = Arc::new(std::sync::Mutex::new(String::new()));
    let f = fetched.clone();
    let work = Scripted {
        phase: Phase::Ingest,
        run: Box::new(move |item| {
            *f.lock().unwrap() = item.source.value().to_owned();
            Box::pin(async { Ok(rendered()) })
        }),
    };
    let (stepper, fakes) = stepper(work, Config::default());
    let mut sub = submission(6, "minimal");
    if let EventBody::JobSubmitted(s) = &mut sub.body {
        s.source = sprocket_core::Source::Url(secret.into());
    }
    let msg = message("sprocket.ingest", 0, 0, &sub);
    let _ = stepper.handle(&msg, CancellationToken::new()).await;
    assert_eq!(*fetched.lock().unwrap(), secret);
    let live = fakes.live.0.lock().unwrap();
    let recorded = live
        .iter()
        .find_map(|e| match &e.body {
            EventBody::JobSubmitted(s) => Some(s.source.value().to_owned()),
            _ => None,
        })
        .expect("the acceptance is recorded");
    assert_eq!(recorded, "https://cdn.example.com/a.mp4");
}

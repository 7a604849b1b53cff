//! Generators of valid job histories for the fold's property tests.
//!
//! A history is built from a plan: a recipe, an outcome, and for each phase how
//! many retryable failures precede its last attempt, how often each attempt was
//! redelivered (the worker crashed after publishing live facts and ran it again
//! with the same attempt), which progress values it reported, and whether its
//! completion was delivered twice. Events are tagged `extra` when they exist
//! only because of a redelivery, so tests can compare with the history without
//! them.

use chrono::{DateTime, Duration, Utc};
use proptest::prelude::*;
use sprocket_core::event::*;
use sprocket_core::{
    Artifact, Envelope, ErrorInfo, EventBody, JobId, MediaInfo, Phase, Recipe, RecipeRef, Source,
    Step,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Succeed,
    /// A non-retryable `PhaseFailed`, then `JobFailed`.
    Fail,
    /// Retries exhausted: `JobDeadLettered`.
    DeadLetter,
    /// `JobCancelRequested` while the phase runs, then `JobCancelled`.
    Cancel,
}

#[derive(Debug, Clone)]
pub struct PhaseRun {
    /// Retryable failures before the last attempt.
    pub retries: u32,
    /// Extra, interrupted runs of each attempt (same attempt number).
    pub redeliveries: usize,
    pub progress: Vec<f64>,
    /// The completion event arrives twice.
    pub completion_redelivered: bool,
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub recipe: RecipeRef,
    pub outcome: Outcome,
    /// For outcomes other than success: the index of the phase where it ends.
    pub stop: usize,
    pub runs: Vec<PhaseRun>,
}

/// An event of a generated history; `extra` when only a redelivery produced it.
#[derive(Debug, Clone)]
pub struct Tagged {
    pub env: Envelope,
    pub extra: bool,
}

impl Plan {
    pub fn phases(&self) -> Vec<Phase> {
        self.recipe
            .resolve()
            .expect("generated recipes are valid")
            .phases()
            .collect()
    }

    /// The phases the job reaches: all of them, or up to and including `stop`.
    pub fn reached(&self) -> Vec<Phase> {
        let phases = self.phases();
        match self.outcome {
            Outcome::Succeed => phases,
            _ => phases[..=self.stop].to_vec(),
        }
    }

    pub fn stop_phase(&self) -> Option<Phase> {
        (self.outcome != Outcome::Succeed).then(|| self.phases()[self.stop])
    }
}

pub fn job_id() -> JobId {
    JobId::parse("job-1").unwrap()
}

fn artifact(name: &str, key: String) -> Artifact {
    Artifact {
        name: name.into(),
        bytes: key.len() as u64,
        sha256: format!("{:0>64}", key.len()),
        key,
        content_type: "application/octet-stream".into(),
    }
}

/// The completion event of a phase. Archive copies keep the rendered names, so a
/// late render completion must not overwrite them.
pub fn completion(phase: Phase) -> EventBody {
    let work = |n: &str| artifact(n, format!("jobs/job-1/{n}"));
    let archived = |n: &str| artifact(n, format!("archive/job-1/{n}"));
    match phase {
        Phase::Ingest => EventBody::MediaIngested(MediaIngested {
            source: work("source"),
            media: MediaInfo {
                format: "mp4".into(),
                duration_s: 12.5,
                width: 640,
                height: 360,
                fps: 25.0,
                video_codec: "h264".into(),
                audio_codec: None,
                bit_rate: None,
                video_stream: None,
            },
        }),
        Phase::Analyze => EventBody::MediaAnalyzed(MediaAnalyzed {
            analysis: work("analysis.json"),
            frames: 312,
            fps: 25.0,
            shots: 4,
            summary: None,
            thumbnails: vec![work("shot-001.jpg"), work("shot-002.jpg")],
        }),
        Phase::Render => EventBody::MediaRendered(MediaRendered {
            artifacts: vec![work("highlight.mp4"), work("poster.jpg")],
        }),
        Phase::Archive => EventBody::MediaArchived(MediaArchived {
            artifacts: vec![
                archived("highlight.mp4"),
                archived("poster.jpg"),
                archived("shot-001.jpg"),
            ],
            manifest: archived("manifest.json"),
        }),
    }
}

/// Builds the history a plan describes, with strictly increasing times.
pub fn build(plan: &Plan) -> Vec<Tagged> {
    let t0: DateTime<Utc> = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
    let mut out: Vec<Tagged> = Vec::new();
    let mut push = |attempt: u32, body: EventBody, extra: bool| {
        let n = out.len() as i64;
        out.push(Tagged {
            env: Envelope {
                event_id: format!("ev-{n:04}"),
                job_id: job_id(),
                occurred_at: t0 + Duration::milliseconds(250 * n),
                producer: "proptest".into(),
                attempt,
                body,
            },
            extra,
        });
    };
    push(
        1,
        EventBody::JobSubmitted(Submitted {
            source: Source::Upload("up-1".into()),
            recipe: plan.recipe.clone(),
            recipe_version: None,
            labels: [("team".to_owned(), "a".to_owned())].into(),
            tenant: None,
        }),
        false,
    );
    let phases = plan.phases();
    let stop = plan.stop_phase();
    for (i, &phase) in plan.reached().iter().enumerate() {
        let run = &plan.runs[i];
        let last_attempt = run.retries + 1;
        for attempt in 1..=last_attempt {
            let started = || {
                EventBody::PhaseStarted(PhaseStarted {
                    phase,
                    worker: format!("w-{phase}"),
                })
            };
            let progress = |p: f64| {
                EventBody::PhaseProgress(PhaseProgress {
                    phase,
                    percent: p,
                    detail: None,
                })
            };
            push(attempt, started(), false);
            for &p in &run.progress {
                push(attempt, progress(p), false);
            }
            for _ in 0..run.redeliveries {
                push(attempt, started(), true);
                for &p in run.progress.iter().rev() {
                    push(attempt, progress(p), true);
                }
            }
            let cause = ErrorInfo::new("transient", format!("{phase} attempt {attempt}"));
            if attempt < last_attempt {
                push(
                    attempt,
                    EventBody::PhaseFailed(PhaseFailed {
                        phase,
                        error: cause.clone(),
                        retryable: true,
                    }),
                    false,
                );
                push(
                    attempt,
                    EventBody::PhaseRetryScheduled(PhaseRetryScheduled {
                        phase,
                        delay_ms: 1000,
                        cause,
                    }),
                    false,
                );
                continue;
            }
            if stop == Some(phase) {
                let error = ErrorInfo::new("bad_media", format!("{phase} rejected the input"));
                match plan.outcome {
                    Outcome::Fail => {
                        let body = PhaseFailed {
                            phase,
                            error: error.clone(),
                            retryable: false,
                        };
                        push(attempt, EventBody::PhaseFailed(body), false);
                        let body = JobFailed {
                            phase: Some(phase),
                            error,
                        };
                        push(attempt, EventBody::JobFailed(body), false);
                    }
                    Outcome::DeadLetter => {
                        let body = JobDeadLettered {
                            phase,
                            topic: format!("sprocket.{phase}.dlq"),
                            reason: error.message,
                        };
                        push(attempt, EventBody::JobDeadLettered(body), false);
                    }
                    Outcome::Cancel => {
                        let body = JobCancelRequested {
                            reason: Some("user".into()),
                        };
                        push(attempt, EventBody::JobCancelRequested(body), false);
                        let body = JobCancelled { phase: Some(phase) };
                        push(attempt, EventBody::JobCancelled(body), false);
                    }
                    Outcome::Succeed => unreachable!("success has no stop phase"),
                }
                return out;
            }
            push(attempt, completion(phase), false);
            if run.completion_redelivered {
                push(attempt, completion(phase), true);
            }
        }
    }
    assert_eq!(plan.outcome, Outcome::Succeed);
    assert_eq!(plan.reached(), phases);
    push(1, EventBody::JobSucceeded(Empty {}), false);
    out
}

fn recipe() -> impl Strategy<Value = RecipeRef> {
    prop_oneof![
        Just(RecipeRef::Name("highlight".into())),
        Just(RecipeRef::Name("minimal".into())),
        // An inline slip: ingest, then any of the later phases in order.
        proptest::collection::vec(any::<bool>(), 3).prop_map(|keep| {
            let mut steps = vec![Phase::Ingest];
            steps.extend(
                Phase::ALL[1..]
                    .iter()
                    .zip(keep)
                    .filter(|(_, k)| *k)
                    .map(|(p, _)| *p),
            );
            RecipeRef::Inline(Recipe {
                name: "custom".into(),
                steps: steps
                    .into_iter()
                    .map(|phase| Step {
                        phase,
                        params: Default::default(),
                    })
                    .collect(),
            })
        }),
    ]
}

fn phase_run() -> impl Strategy<Value = PhaseRun> {
    (
        0u32..3,
        0usize..3,
        proptest::collection::vec(0.0f64..=100.0, 0..4),
        any::<bool>(),
    )
        .prop_map(
            |(retries, redeliveries, progress, completion_redelivered)| PhaseRun {
                retries,
                redeliveries,
                progress,
                completion_redelivered,
            },
        )
}

pub fn plan() -> impl Strategy<Value = Plan> {
    let outcome = prop_oneof![
        3 => Just(Outcome::Succeed),
        1 => Just(Outcome::Fail),
        1 => Just(Outcome::DeadLetter),
        1 => Just(Outcome::Cancel),
    ];
    (
        recipe(),
        outcome,
        0usize..4,
        proptest::collection::vec(phase_run(), 4),
    )
        .prop_map(|(recipe, outcome, stop, runs)| {
            let n = recipe.resolve().unwrap().steps.len();
            Plan {
                recipe,
                outcome,
                stop: stop % n,
                runs,
            }
        })
}

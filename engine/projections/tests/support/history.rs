//! Event histories for the contract tests, with deterministic ids and times.

use chrono::{DateTime, Duration, Utc};
use sprocket_core::event::*;
use sprocket_core::{
    Artifact, Envelope, ErrorInfo, EventBody, JobId, MediaInfo, Phase, Recipe, RecipeRef, Source,
    WorkItem,
};
use sprocket_projections::Position;

pub const EVENTS: &str = "sprocket.events";

/// One job's events, in the order they happened.
pub struct History {
    pub job: JobId,
    base: DateTime<Utc>,
    pub events: Vec<Envelope>,
}

impl History {
    /// A job whose first event happens `second` seconds into the test epoch.
    pub fn new(job: &str, second: i64) -> History {
        History {
            job: JobId::parse(job).unwrap(),
            base: DateTime::from_timestamp(1_700_000_000 + second, 0).unwrap(),
            events: Vec::new(),
        }
    }

    pub fn push(&mut self, attempt: u32, body: EventBody) -> &mut Self {
        let n = self.events.len();
        self.events.push(Envelope {
            event_id: format!("{}-{n:03}", self.job),
            job_id: self.job.clone(),
            occurred_at: self.base + Duration::milliseconds(100 * n as i64),
            producer: "contract-test".into(),
            attempt,
            body,
        });
        self
    }

    pub fn submitted(&mut self) -> &mut Self {
        self.push(
            1,
            EventBody::JobSubmitted(Submitted {
                source: Source::Upload(format!("up-{}", self.job)),
                recipe: RecipeRef::Name("highlight".into()),
                recipe_version: None,
                labels: [("suite".to_owned(), "contract".to_owned())].into(),
                tenant: None,
            }),
        )
    }

    pub fn started(&mut self, phase: Phase) -> &mut Self {
        let worker = format!("worker-{phase}");
        self.push(1, EventBody::PhaseStarted(PhaseStarted { phase, worker }))
    }

    /// Started, two progress reports, completed.
    pub fn phase(&mut self, phase: Phase) -> &mut Self {
        self.started(phase);
        for percent in [25.0, 75.0] {
            let body = PhaseProgress {
                phase,
                percent,
                detail: None,
            };
            self.push(1, EventBody::PhaseProgress(body));
        }
        self.push(1, completion(&self.job.clone(), phase))
    }

    pub fn succeeded(&mut self) -> &mut Self {
        self.push(1, EventBody::JobSucceeded(Empty {}))
    }

    /// A non-retryable failure of `phase`, then `JobFailed`.
    pub fn failed(&mut self, phase: Phase, error: &ErrorInfo) -> &mut Self {
        let body = PhaseFailed {
            phase,
            error: error.clone(),
            retryable: false,
        };
        self.push(1, EventBody::PhaseFailed(body));
        let body = JobFailed {
            phase: Some(phase),
            error: error.clone(),
        };
        self.push(1, EventBody::JobFailed(body))
    }

    /// Submitted, all four phases of `highlight`, succeeded.
    pub fn successful(job: &str, second: i64) -> History {
        let mut h = History::new(job, second);
        h.submitted();
        for phase in Phase::ALL {
            h.phase(phase);
        }
        h.succeeded();
        h
    }

    /// A work item for this job, as found on a phase topic.
    pub fn work_item(&self, phase: Phase) -> Envelope {
        let item = WorkItem {
            job_id: self.job.clone(),
            phase,
            recipe: Recipe::builtin("highlight").unwrap(),
            source: Source::Upload(format!("up-{}", self.job)),
            labels: Default::default(),
            submitted_at: self.base,
            artifacts: Default::default(),
            media: None,
            phases: Default::default(),
        };
        let mut e = Envelope::new(
            self.job.clone(),
            "contract-test",
            1,
            EventBody::WorkItem(Box::new(item)),
        );
        e.event_id = format!("{}-work-{phase}", self.job);
        e
    }
}

fn artifact(job: &JobId, name: &str, store: &str) -> Artifact {
    Artifact {
        name: name.into(),
        key: format!("{store}/{job}/{name}"),
        bytes: 1024,
        sha256: "ab".repeat(32),
        content_type: "application/octet-stream".into(),
    }
}

fn completion(job: &JobId, phase: Phase) -> EventBody {
    let work = |n: &str| artifact(job, n, "jobs");
    match phase {
        Phase::Ingest => EventBody::MediaIngested(MediaIngested {
            source: work("source"),
            media: MediaInfo {
                format: "mov,mp4,m4a,3gp,3g2,mj2".into(),
                duration_s: 10.0,
                width: 1280,
                height: 720,
                fps: 30.0,
                video_codec: "h264".into(),
                audio_codec: Some("aac".into()),
                bit_rate: Some(2_000_000),
                video_stream: None,
            },
        }),
        Phase::Analyze => EventBody::MediaAnalyzed(MediaAnalyzed {
            analysis: work("analysis.json"),
            frames: 300,
            fps: 30.0,
            shots: 3,
            summary: None,
            thumbnails: vec![],
        }),
        Phase::Render => EventBody::MediaRendered(MediaRendered {
            artifacts: vec![work("highlight.mp4"), work("poster.jpg")],
        }),
        Phase::Archive => EventBody::MediaArchived(MediaArchived {
            artifacts: vec![
                artifact(job, "highlight.mp4", "archive"),
                artifact(job, "poster.jpg", "archive"),
            ],
            manifest: artifact(job, "manifest.json", "archive"),
        }),
    }
}

/// Events at consecutive offsets of one partition of `sprocket.events`.
pub fn at(partition: i32, first: i64, events: &[Envelope]) -> Vec<(Position, Envelope)> {
    events
        .iter()
        .zip(first..)
        .map(|(e, offset)| (Position::new(EVENTS, partition, offset), e.clone()))
        .collect()
}

//! The event envelope and every event type.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{CoreError, ErrorInfo, JobId, Phase, RecipeRef, Source, WorkItem};

/// Every message Sprocket writes: the envelope fields plus `type` and `data`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// A UUIDv7.
    pub event_id: String,
    pub job_id: JobId,
    pub occurred_at: DateTime<Utc>,
    /// Who wrote it, e.g. `sprocket-api`, `sprocket-worker-render@host`.
    pub producer: String,
    /// The phase attempt this event belongs to, from 1.
    pub attempt: u32,
    #[serde(flatten)]
    pub body: EventBody,
}

/// Event types with their data, written as `{"type": ..., "data": {...}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum EventBody {
    JobSubmitted(Submitted),
    PhaseStarted(PhaseStarted),
    PhaseProgress(PhaseProgress),
    MediaIngested(MediaIngested),
    MediaAnalyzed(MediaAnalyzed),
    MediaRendered(MediaRendered),
    MediaArchived(MediaArchived),
    PhaseRetryScheduled(PhaseRetryScheduled),
    PhaseFailed(PhaseFailed),
    JobSucceeded(Empty),
    JobFailed(JobFailed),
    JobCancelRequested(JobCancelRequested),
    JobCancelled(JobCancelled),
    JobDeadLettered(JobDeadLettered),
    JobRedriven(JobRedriven),
    JobDataExpired(Retired),
    JobArchiveTiered(JobArchiveTiered),
    JobArchiveExpired(Retired),
    /// A unit of work on a phase topic (`sprocket.<phase>`); never on `sprocket.events`.
    WorkItem(Box<WorkItem>),
}

/// The type name of an event, as written in `type` and the `event-type` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EventKind(pub &'static str);

impl EventKind {
    /// Every type name, for schemas and validation.
    pub const ALL: [&'static str; 19] = [
        "JobSubmitted",
        "PhaseStarted",
        "PhaseProgress",
        "MediaIngested",
        "MediaAnalyzed",
        "MediaRendered",
        "MediaArchived",
        "PhaseRetryScheduled",
        "PhaseFailed",
        "JobSucceeded",
        "JobFailed",
        "JobCancelRequested",
        "JobCancelled",
        "JobDeadLettered",
        "JobRedriven",
        "WorkItem",
        "JobDataExpired",
        "JobArchiveTiered",
        "JobArchiveExpired",
    ];
}

impl EventBody {
    pub fn kind(&self) -> EventKind {
        EventKind(match self {
            EventBody::JobSubmitted(_) => "JobSubmitted",
            EventBody::PhaseStarted(_) => "PhaseStarted",
            EventBody::PhaseProgress(_) => "PhaseProgress",
            EventBody::MediaIngested(_) => "MediaIngested",
            EventBody::MediaAnalyzed(_) => "MediaAnalyzed",
            EventBody::MediaRendered(_) => "MediaRendered",
            EventBody::MediaArchived(_) => "MediaArchived",
            EventBody::PhaseRetryScheduled(_) => "PhaseRetryScheduled",
            EventBody::PhaseFailed(_) => "PhaseFailed",
            EventBody::JobSucceeded(_) => "JobSucceeded",
            EventBody::JobFailed(_) => "JobFailed",
            EventBody::JobCancelRequested(_) => "JobCancelRequested",
            EventBody::JobCancelled(_) => "JobCancelled",
            EventBody::JobDeadLettered(_) => "JobDeadLettered",
            EventBody::JobRedriven(_) => "JobRedriven",
            EventBody::WorkItem(_) => "WorkItem",
            EventBody::JobDataExpired(_) => "JobDataExpired",
            EventBody::JobArchiveTiered(_) => "JobArchiveTiered",
            EventBody::JobArchiveExpired(_) => "JobArchiveExpired",
        })
    }

    /// The phase whose completion this event records, if it is a completion event.
    pub fn completes(&self) -> Option<Phase> {
        match self {
            EventBody::MediaIngested(_) => Some(Phase::Ingest),
            EventBody::MediaAnalyzed(_) => Some(Phase::Analyze),
            EventBody::MediaRendered(_) => Some(Phase::Render),
            EventBody::MediaArchived(_) => Some(Phase::Archive),
            _ => None,
        }
    }
}

/// What the envelope needs filled in when an outside producer left it out.
#[derive(Debug, Clone)]
pub struct Fill {
    pub event_id: String,
    pub occurred_at: DateTime<Utc>,
    pub producer: String,
}

/// An envelope as it may arrive from outside: for `JobSubmitted` only `job_id`,
/// `type` and `data` are required.
#[derive(Deserialize)]
struct Incoming {
    event_id: Option<String>,
    job_id: JobId,
    occurred_at: Option<DateTime<Utc>>,
    producer: Option<String>,
    attempt: Option<u32>,
    #[serde(flatten)]
    body: EventBody,
}

impl Envelope {
    pub fn new(job_id: JobId, producer: impl Into<String>, attempt: u32, body: EventBody) -> Self {
        Envelope {
            event_id: uuid::Uuid::now_v7().to_string(),
            job_id,
            occurred_at: Utc::now(),
            producer: producer.into(),
            attempt,
            body,
        }
    }

    pub fn kind(&self) -> EventKind {
        self.body.kind()
    }

    /// Parses an envelope from JSON. Envelope fields a `JobSubmitted` may omit are
    /// taken from `fill`; any other type missing them is an error.
    pub fn from_json(json: &[u8], fill: impl FnOnce() -> Fill) -> Result<Envelope, CoreError> {
        let inc: Incoming =
            serde_json::from_slice(json).map_err(|e| CoreError::InvalidEvent(e.to_string()))?;
        let lenient = matches!(inc.body, EventBody::JobSubmitted(_));
        let complete =
            inc.event_id.is_some() && inc.occurred_at.is_some() && inc.producer.is_some();
        if !lenient && !complete {
            return Err(CoreError::InvalidEvent(
                "event_id, occurred_at and producer are required".into(),
            ));
        }
        let fill = if complete { None } else { Some(fill()) };
        let f = fill.as_ref();
        Ok(Envelope {
            event_id: inc.event_id.unwrap_or_else(|| f.unwrap().event_id.clone()),
            job_id: inc.job_id,
            occurred_at: inc.occurred_at.unwrap_or_else(|| f.unwrap().occurred_at),
            producer: inc.producer.unwrap_or_else(|| f.unwrap().producer.clone()),
            attempt: inc.attempt.unwrap_or(1).max(1),
            body: inc.body,
        })
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("an envelope always serializes")
    }

    /// The envelope as the events topic and the projections record it: a
    /// submission's source without credentials, query or fragment
    /// ([`Source::redacted`]); the intake's copy keeps them for the fetch.
    pub fn for_the_record(mut self) -> Envelope {
        if let EventBody::JobSubmitted(s) = &mut self.body {
            s.source = s.source.redacted();
        }
        self
    }

    /// A submission that names no tenant, as `tenant`'s (the configured
    /// default); anything else as it is.
    pub fn with_default_tenant(mut self, tenant: &str) -> Envelope {
        if let EventBody::JobSubmitted(s) = &mut self.body {
            s.tenant.get_or_insert_with(|| tenant.to_owned());
        }
        self
    }
}

/// `JobSubmitted.data`: the submission contract outside producers rely on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Submitted {
    pub source: Source,
    #[serde(default)]
    pub recipe: RecipeRef,
    /// The stored recipe's version the job runs. A submission may name one
    /// to pin it (`"recipe": "clip", "recipe_version": 2`); when the job is
    /// accepted, a stored recipe's name is recorded as that recipe inline
    /// with its version here ([`crate::stored::pin`]). Absent for built-in
    /// and inline recipes, and in events written before recipes were stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipe_version: Option<u32>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Whose job it is: the API sets the tenant of the submitting key; a
    /// producer writing the intake topic may name one, and the ingest worker
    /// records the configured default (`tenants.default`) for one that does
    /// not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhaseStarted {
    pub phase: Phase,
    pub worker: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhaseProgress {
    pub phase: Phase,
    /// Progress through this phase, 0–100.
    pub percent: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// A stored output: its name, where it lives, its size and digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Artifact {
    pub name: String,
    /// Object key in the store that holds it.
    pub key: String,
    pub bytes: u64,
    pub sha256: String,
    pub content_type: String,
}

/// What ffprobe says about a source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct MediaInfo {
    pub format: String,
    pub duration_s: f64,
    pub width: u32,
    pub height: u32,
    pub fps: f64,
    pub video_codec: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio_codec: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bit_rate: Option<u64>,
    /// The index (among all the file's streams) of the video stream the
    /// probe judged: analyze decodes and render cuts the same one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video_stream: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MediaIngested {
    pub source: Artifact,
    pub media: MediaInfo,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MediaAnalyzed {
    pub analysis: Artifact,
    pub frames: u64,
    pub fps: f64,
    pub shots: u32,
    /// What the models found, and which models they were (absent in events
    /// written before faces were detected).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<AnalysisSummary>,
    /// Each shot's thumbnail (`shot-001.jpg`, …, as `analysis.json` lists
    /// them), outputs of the job like the analysis (absent in events written
    /// before thumbnails, and when there are none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub thumbnails: Vec<Artifact>,
}

/// `MediaAnalyzed`'s summary of `analysis.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnalysisSummary {
    /// Faces found on the shots' keyframes, all shots together.
    pub faces: u32,
    /// Shots whose keyframe shows at least one face.
    pub shots_with_faces: u32,
    /// Each model or detector used, by name, with its version.
    pub models: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MediaRendered {
    pub artifacts: Vec<Artifact>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MediaArchived {
    /// The copies in the archive store, checksums verified.
    pub artifacts: Vec<Artifact>,
    pub manifest: Artifact,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhaseRetryScheduled {
    pub phase: Phase,
    pub delay_ms: u64,
    pub cause: ErrorInfo,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhaseFailed {
    pub phase: Phase,
    pub error: ErrorInfo,
    pub retryable: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Empty {}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobFailed {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    pub error: ErrorInfo,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobCancelRequested {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobCancelled {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobDeadLettered {
    pub phase: Phase,
    pub topic: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobRedriven {
    pub phase: Phase,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fill() -> Fill {
        Fill {
            event_id: "e1".into(),
            occurred_at: DateTime::from_timestamp(0, 0).unwrap(),
            producer: "outside".into(),
        }
    }

    #[test]
    fn a_bare_submission_gets_its_envelope_filled() {
        let json = br#"{"job_id":"j1","type":"JobSubmitted","data":{"source":{"upload":"u"},"recipe":"highlight"}}"#;
        let e = Envelope::from_json(json, fill).unwrap();
        assert_eq!(e.event_id, "e1");
        assert_eq!(e.attempt, 1);
        assert_eq!(e.producer, "outside");
        assert!(matches!(e.body, EventBody::JobSubmitted(_)));
    }

    #[test]
    fn other_types_need_a_full_envelope() {
        let json = br#"{"job_id":"j1","type":"JobSucceeded","data":{}}"#;
        assert!(Envelope::from_json(json, fill).is_err());
    }

    #[test]
    fn round_trips_with_type_and_data() {
        let e = Envelope::new(
            JobId::parse("j").unwrap(),
            "t",
            2,
            EventBody::JobRedriven(JobRedriven {
                phase: Phase::Render,
            }),
        );
        let v: serde_json::Value = serde_json::from_slice(&e.to_json()).unwrap();
        assert_eq!(v["type"], "JobRedriven");
        assert_eq!(v["data"]["phase"], "render");
        let back = Envelope::from_json(&e.to_json(), || unreachable!()).unwrap();
        assert_eq!(back, e);
    }

    #[test]
    fn rejects_unknown_types_and_fields_in_data() {
        let unknown = br#"{"job_id":"j","type":"Nope","data":{}}"#;
        assert!(Envelope::from_json(unknown, fill).is_err());
        let extra =
            br#"{"job_id":"j","type":"JobSubmitted","data":{"source":{"upload":"u"},"x":1}}"#;
        assert!(Envelope::from_json(extra, fill).is_err());
    }
}

/// What retention removed from a store (`JobDataExpired`: the working
/// store; `JobArchiveExpired`: the archive store or its cold tier), and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Retired {
    /// The rule that removed them (`retention.work`, `retention.archive`,
    /// `retention.uploads`), with the recipe's override if it set one.
    pub rule: String,
    /// The period the rule kept them for (`"24h"`).
    pub after: String,
    /// The artifacts removed, by name (an object already gone counts).
    pub removed: Vec<String>,
    /// Bytes freed.
    pub bytes: u64,
}

/// Archive copies moved to the cold store (`retention.cold_after`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobArchiveTiered {
    pub rule: String,
    pub after: String,
    /// The artifacts moved, by name; each keeps its key and digest.
    pub moved: Vec<String>,
    /// The cold store, its URL without credentials.
    pub to: String,
    pub bytes: u64,
}

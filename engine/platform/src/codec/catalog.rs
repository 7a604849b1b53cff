//! The JSON Schemas of `schemas/`, embedded in the binary, with their subjects and
//! compiled validators.

use std::collections::HashMap;
use std::sync::OnceLock;

use jsonschema::{Draft, Validator};
use serde_json::Value;

use super::CodecError;

/// Every event type with its JSON Schema, in the order of `EventKind::ALL`.
pub const SCHEMAS: [(&str, &str); 19] = [
    (
        "JobSubmitted",
        include_str!("../../../../schemas/JobSubmitted.json"),
    ),
    (
        "PhaseStarted",
        include_str!("../../../../schemas/PhaseStarted.json"),
    ),
    (
        "PhaseProgress",
        include_str!("../../../../schemas/PhaseProgress.json"),
    ),
    (
        "MediaIngested",
        include_str!("../../../../schemas/MediaIngested.json"),
    ),
    (
        "MediaAnalyzed",
        include_str!("../../../../schemas/MediaAnalyzed.json"),
    ),
    (
        "MediaRendered",
        include_str!("../../../../schemas/MediaRendered.json"),
    ),
    (
        "MediaArchived",
        include_str!("../../../../schemas/MediaArchived.json"),
    ),
    (
        "PhaseRetryScheduled",
        include_str!("../../../../schemas/PhaseRetryScheduled.json"),
    ),
    (
        "PhaseFailed",
        include_str!("../../../../schemas/PhaseFailed.json"),
    ),
    (
        "JobSucceeded",
        include_str!("../../../../schemas/JobSucceeded.json"),
    ),
    (
        "JobFailed",
        include_str!("../../../../schemas/JobFailed.json"),
    ),
    (
        "JobCancelRequested",
        include_str!("../../../../schemas/JobCancelRequested.json"),
    ),
    (
        "JobCancelled",
        include_str!("../../../../schemas/JobCancelled.json"),
    ),
    (
        "JobDeadLettered",
        include_str!("../../../../schemas/JobDeadLettered.json"),
    ),
    (
        "JobRedriven",
        include_str!("../../../../schemas/JobRedriven.json"),
    ),
    (
        "WorkItem",
        include_str!("../../../../schemas/WorkItem.json"),
    ),
    (
        "JobDataExpired",
        include_str!("../../../../schemas/JobDataExpired.json"),
    ),
    (
        "JobArchiveTiered",
        include_str!("../../../../schemas/JobArchiveTiered.json"),
    ),
    (
        "JobArchiveExpired",
        include_str!("../../../../schemas/JobArchiveExpired.json"),
    ),
];

/// `schemas/subjects.json`: the subject of each type, and extra topic subjects.
pub const SUBJECTS: &str = include_str!("../../../../schemas/subjects.json");

/// The schema of an event type, as embedded.
pub fn schema_of(kind: &str) -> Option<&'static str> {
    SCHEMAS.iter().find(|(k, _)| *k == kind).map(|(_, s)| *s)
}

/// Every (subject, event type) pair to register, for topic prefix `prefix`: each type
/// under its RecordNameStrategy subject, plus the TopicNameStrategy subjects of
/// `subjects.json` (`{prefix}ingest-value` for `JobSubmitted`).
pub fn subjects(prefix: &str) -> Vec<(String, &'static str)> {
    let doc: Value = serde_json::from_str(SUBJECTS).expect("schemas/subjects.json is JSON");
    let mut out = vec![];
    for (kind, _) in SCHEMAS {
        if let Some(s) = doc["subjects"][kind].as_str() {
            out.push((s.to_owned(), kind));
        }
        for s in doc["topic_subjects"][kind].as_array().into_iter().flatten() {
            if let Some(s) = s.as_str() {
                out.push((s.replace("{prefix}", prefix), kind));
            }
        }
    }
    out
}

/// Compiles a draft-07 schema (or the draft it names), checking `format`s.
pub fn compile(schema: &Value) -> Result<Validator, String> {
    jsonschema::options()
        .with_draft(Draft::Draft7.detect(schema))
        .should_validate_formats(true)
        .build(schema)
        .map_err(|e| e.to_string())
}

/// The embedded validators by event type.
pub fn validators() -> &'static HashMap<&'static str, Validator> {
    static VALIDATORS: OnceLock<HashMap<&'static str, Validator>> = OnceLock::new();
    VALIDATORS.get_or_init(|| {
        SCHEMAS
            .iter()
            .map(|(kind, text)| {
                let value: Value = serde_json::from_str(text).expect("embedded schemas are JSON");
                let v = compile(&value).expect("embedded schemas compile");
                (*kind, v)
            })
            .collect()
    })
}

/// Validates `value` as an event of type `kind`; the error says exactly what is wrong.
pub fn check(validator: &Validator, kind: &str, value: &Value) -> Result<(), CodecError> {
    if validator.is_valid(value) {
        return Ok(());
    }
    const SHOWN: usize = 5;
    let errors: Vec<String> = validator
        .iter_errors(value)
        .map(|e| {
            let at = e.instance_path().to_string();
            let at = if at.is_empty() { "/".to_owned() } else { at };
            format!("{at}: {}", e.masked())
        })
        .collect();
    let mut details = errors
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join("; ");
    if errors.len() > SHOWN {
        details.push_str(&format!("; and {} more", errors.len() - SHOWN));
    }
    Err(CodecError::SchemaViolation {
        event_type: kind.to_owned(),
        details,
    })
}

/// The event type a schema describes: its title `sprocket.<Type>`, or the `const` of its
/// `type` property.
pub fn kind_of_schema(schema: &Value) -> Option<String> {
    schema["title"]
        .as_str()
        .and_then(|t| t.strip_prefix("sprocket."))
        .or_else(|| schema["properties"]["type"]["const"].as_str())
        .map(str::to_owned)
}

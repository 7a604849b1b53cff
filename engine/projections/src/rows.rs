//! Rows as written and read, and how core values map onto their columns.

use chrono::{DateTime, SecondsFormat, Utc};
use diesel::prelude::*;
use sprocket_core::{Envelope, Job};

use crate::schema::{events, jobs};
use crate::{Position, ProjectionError};

/// A timestamp as stored: RFC 3339, UTC, nanoseconds, fixed width.
pub fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

// `None` is written as NULL, never as DEFAULT (which SQLite's multi-row
// inserts lack), so rows can be inserted many at a time on both backends.
#[derive(Debug, Clone, Insertable, Queryable, Selectable)]
#[diesel(table_name = jobs, treat_none_as_default_value = false)]
pub(crate) struct JobRow {
    pub id: String,
    pub status: String,
    pub phase: Option<String>,
    pub progress: f64,
    pub attempts: i32,
    pub submitted_at: String,
    pub updated_at: String,
    pub state: String,
    pub last_seq: i64,
    pub tenant: Option<String>,
    /// `job.labels` as a JSON object, for the label filter of listings.
    pub labels: String,
    /// The upload the job's source names, for the janitor.
    pub upload: Option<String>,
}

impl JobRow {
    /// The row for a folded job whose last stored event is `last_seq`. A job
    /// seen before its submission sorts by `fallback`: the time its first
    /// event was projected.
    pub fn from_job(job: &Job, fallback: &str, last_seq: i64) -> JobRow {
        let stamp =
            |t: Option<DateTime<Utc>>| t.map(timestamp).unwrap_or_else(|| fallback.to_owned());
        JobRow {
            id: job.id.to_string(),
            status: job.status.as_str().to_owned(),
            phase: job.phase.map(|p| p.as_str().to_owned()),
            progress: job.progress(),
            attempts: i32::try_from(job.attempts()).unwrap_or(i32::MAX),
            submitted_at: stamp(job.submitted_at),
            updated_at: stamp(job.updated_at),
            state: serde_json::to_string(job).expect("a job always serializes"),
            last_seq,
            tenant: job.tenant.clone(),
            labels: serde_json::to_string(&job.labels).expect("labels always serialize"),
            upload: match &job.source {
                Some(sprocket_core::Source::Upload(id)) => Some(id.clone()),
                _ => None,
            },
        }
    }
}

/// Parses a stored job state.
pub(crate) fn parse_job(id: &str, state: &str) -> Result<Job, ProjectionError> {
    serde_json::from_str(state).map_err(|source| ProjectionError::Corrupt {
        what: "job state",
        key: id.to_owned(),
        source,
    })
}

/// Parses a stored event body.
pub(crate) fn parse_event(event_id: &str, body: &str) -> Result<Envelope, ProjectionError> {
    serde_json::from_str(body).map_err(|source| ProjectionError::Corrupt {
        what: "event body",
        key: event_id.to_owned(),
        source,
    })
}

#[derive(Debug, Clone, Insertable, Queryable, Selectable)]
#[diesel(table_name = events, treat_none_as_default_value = false)]
pub(crate) struct EventRow {
    pub event_id: String,
    pub job_id: String,
    pub seq: i64,
    pub kind: String,
    pub occurred_at: String,
    pub body: String,
    pub topic: String,
    pub kafka_partition: i32,
    pub kafka_offset: i64,
    /// Set when the batch is written ([`crate::apply`]): after the highest
    /// one stored.
    pub ordinal: i64,
}

impl EventRow {
    pub fn new(position: &Position, e: &Envelope, seq: i64) -> EventRow {
        EventRow {
            event_id: e.event_id.clone(),
            job_id: e.job_id.to_string(),
            seq,
            kind: e.kind().0.to_owned(),
            occurred_at: timestamp(e.occurred_at),
            body: EventRow::body_of(e),
            topic: position.topic.clone(),
            kafka_partition: position.partition,
            kafka_offset: position.offset,
            ordinal: 0,
        }
    }

    /// Moves the row to `position` (the event's copy on its canonical topic).
    /// An event's stored body: its JSON.
    pub fn body_of(e: &Envelope) -> String {
        String::from_utf8(e.to_json()).expect("serde_json writes UTF-8")
    }

    pub fn place(&mut self, position: &Position) {
        self.topic = position.topic.clone();
        self.kafka_partition = position.partition;
        self.kafka_offset = position.offset;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_timestamps_are_fixed_width_and_sort_as_text() {
        let a = DateTime::from_timestamp(1_700_000_000, 5).unwrap();
        let b = DateTime::from_timestamp(1_700_000_000, 400_000_000).unwrap();
        let c = DateTime::from_timestamp(1_700_000_001, 0).unwrap();
        let (sa, sb, sc) = (timestamp(a), timestamp(b), timestamp(c));
        assert_eq!(sa, "2023-11-14T22:13:20.000000005Z");
        assert_eq!(sa.len(), sc.len());
        assert!(sa < sb && sb < sc);
    }
}

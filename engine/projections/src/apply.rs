//! Projecting a batch of events: rows and offsets in one transaction.

use std::collections::BTreeMap;

use diesel::dsl::max;
use diesel::prelude::*;
use diesel::result::Error as DieselError;
use sprocket_core::{Action, Envelope, EventBody, Job};

use crate::connection::AnyConnection;
use crate::rows::{parse_job, timestamp, EventRow, JobRow};
use crate::schema::{events, jobs, offsets};
use crate::{Applied, Position, ProjectionError};

/// A job touched by the batch, written back once at the end.
struct Touched {
    job: Job,
    /// Whether a row exists already (update) or not (insert).
    stored: bool,
    /// The sort key to use while the job has no submission: the stored one, or
    /// the time of the first event seen.
    fallback_submitted: String,
    next_seq: i64,
    /// The last event of the batch that changed it, for error context.
    last: (Position, String),
}

/// In one transaction: for each `(position, envelope)`, skip work items, event
/// ids already stored and resubmissions of a known job; otherwise fold the event into its job (loaded, or new),
/// store the event with the job's next sequence number, and save the job. Then
/// move each partition's next offset to `max(stored, offset + 1)` over every
/// position in the batch, skipped ones included.
pub(crate) fn apply_batch(
    conn: &mut AnyConnection,
    batch: &[(Position, Envelope)],
    canonical: Option<&str>,
) -> Result<Applied, ProjectionError> {
    if batch.is_empty() {
        return Ok(Applied::default());
    }
    conn.transaction(|conn| {
        let mut applied = Applied::default();
        let mut touched: BTreeMap<String, Touched> = BTreeMap::new();
        for (position, e) in batch {
            let at = |source| event_error(position, e, source);
            if matches!(e.body, EventBody::WorkItem(_)) {
                applied.skipped += 1;
                continue;
            }
            if is_stored(conn, &e.event_id).map_err(at)? {
                if canonical == Some(position.topic.as_str()) {
                    diesel::update(events::table.find(&e.event_id))
                        .set((
                            events::topic.eq(&position.topic),
                            events::kafka_partition.eq(position.partition),
                            events::kafka_offset.eq(position.offset),
                        ))
                        .execute(conn)
                        .map_err(at)?;
                }
                applied.skipped += 1;
                continue;
            }
            let key = e.job_id.to_string();
            let t = match touched.get_mut(&key) {
                Some(t) => t,
                None => {
                    let loaded = load(conn, e).map_err(|err| match err {
                        Loaded::Db(source) => at(source),
                        Loaded::Corrupt(c) => c,
                    })?;
                    touched.entry(key).or_insert(loaded)
                }
            };
            // Only a job's first submission is part of its history. Replay
            // executes nothing: the actions only say whether the event
            // was a duplicate submission.
            if t.job.apply(e).contains(&Action::IgnoreDuplicate) {
                applied.skipped += 1;
                continue;
            }
            let row = EventRow::new(position, e, t.next_seq);
            diesel::insert_into(events::table)
                .values(&row)
                .execute(conn)
                .map_err(at)?;
            t.next_seq += 1;
            t.last = (position.clone(), e.event_id.clone());
            applied.events += 1;
        }
        for t in touched.values() {
            save(conn, t).map_err(|source| ProjectionError::Event {
                position: t.last.0.clone(),
                job_id: t.job.id.to_string(),
                event_id: t.last.1.clone(),
                source,
            })?;
        }
        advance_offsets(conn, batch)?;
        Ok(applied)
    })
}

fn event_error(position: &Position, e: &Envelope, source: DieselError) -> ProjectionError {
    ProjectionError::Event {
        position: position.clone(),
        job_id: e.job_id.to_string(),
        event_id: e.event_id.clone(),
        source,
    }
}

fn is_stored(conn: &mut AnyConnection, event_id: &str) -> QueryResult<bool> {
    events::table
        .find(event_id)
        .select(events::event_id)
        .first::<String>(conn)
        .optional()
        .map(|found| found.is_some())
}

enum Loaded {
    Db(DieselError),
    Corrupt(ProjectionError),
}

/// The job `e` belongs to, as stored, or new; with its next sequence number.
fn load(conn: &mut AnyConnection, e: &Envelope) -> Result<Touched, Loaded> {
    let id = e.job_id.as_str();
    let row = jobs::table
        .find(id)
        .select((jobs::state, jobs::submitted_at))
        .first::<(String, String)>(conn)
        .optional()
        .map_err(Loaded::Db)?;
    let last_seq = events::table
        .filter(events::job_id.eq(id))
        .select(max(events::seq))
        .first::<Option<i64>>(conn)
        .map_err(Loaded::Db)?;
    let (job, stored, fallback_submitted) = match row {
        Some((state, submitted)) => (
            parse_job(id, &state).map_err(Loaded::Corrupt)?,
            true,
            submitted,
        ),
        None => (Job::new(e.job_id.clone()), false, timestamp(e.occurred_at)),
    };
    Ok(Touched {
        job,
        stored,
        fallback_submitted,
        next_seq: last_seq.unwrap_or(0) + 1,
        last: (Position::new("", 0, 0), e.event_id.clone()),
    })
}

fn save(conn: &mut AnyConnection, t: &Touched) -> QueryResult<()> {
    let row = JobRow::from_job(&t.job, &t.fallback_submitted);
    if t.stored {
        diesel::update(jobs::table.find(&row.id))
            .set(&row)
            .execute(conn)?;
    } else {
        diesel::insert_into(jobs::table)
            .values(&row)
            .execute(conn)?;
    }
    Ok(())
}

/// `next_offset = max(stored, offset + 1)` for every partition in the batch.
fn advance_offsets(
    conn: &mut AnyConnection,
    batch: &[(Position, Envelope)],
) -> Result<(), ProjectionError> {
    let mut next: BTreeMap<(&str, i32), i64> = BTreeMap::new();
    for (p, _) in batch {
        let n = next.entry((p.topic.as_str(), p.partition)).or_insert(0);
        *n = (*n).max(p.offset.saturating_add(1));
    }
    let write = |source| ProjectionError::Query {
        context: "advance offsets",
        source,
    };
    for ((topic, partition), n) in next {
        let key = (topic, partition);
        let stored = offsets::table
            .find(key)
            .select(offsets::next_offset)
            .first::<i64>(conn)
            .optional()
            .map_err(write)?;
        match stored {
            Some(s) if s >= n => {}
            Some(_) => {
                diesel::update(offsets::table.find(key))
                    .set(offsets::next_offset.eq(n))
                    .execute(conn)
                    .map_err(write)?;
            }
            None => {
                diesel::insert_into(offsets::table)
                    .values((
                        offsets::topic.eq(topic),
                        offsets::kafka_partition.eq(partition),
                        offsets::next_offset.eq(n),
                    ))
                    .execute(conn)
                    .map_err(write)?;
            }
        }
    }
    Ok(())
}

//! Projecting a batch of events: rows and offsets in one transaction, in a
//! handful of statements whatever the batch's size. What the batch touches is
//! read in two primary-key lookups, folded in memory ([`fold::plan`]), and written with
//! multi-row statements.

use std::collections::HashSet;

use diesel::prelude::*;
use diesel::result::Error as DieselError;
use diesel::upsert::excluded;
use sprocket_core::{Envelope, EventBody};

use crate::connection::AnyConnection;
use crate::fold::{self, Known, Plan, StoredJob};
use crate::rows::{EventRow, JobRow};
use crate::schema::{events, jobs, offsets};
use crate::{Applied, Position, ProjectionError};

/// Runs `$body` with `$c` bound to the open backend's own connection, for the
/// statements the multi-backend connection cannot express (multi-row inserts,
/// `ON CONFLICT`): written once, compiled for each backend.
macro_rules! on_backend {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            AnyConnection::Postgres($c) => $body,
            AnyConnection::Sqlite($c) => $body,
        }
    };
}

/// Most rows, or ids in a list, per statement: well under the bind-parameter
/// limits of both backends.
const CHUNK: usize = 500;

/// In one transaction: fold the batch ([`fold::plan`] has the rules), store its
/// new events, write back the jobs it touched, then move each partition's
/// next offset to `max(stored, offset + 1)` over every position in the batch,
/// skipped ones included.
pub(crate) fn apply_batch(
    conn: &mut AnyConnection,
    batch: &[(Position, Envelope)],
    canonical: Option<&str>,
) -> Result<Applied, ProjectionError> {
    if batch.is_empty() {
        return Ok(Applied::default());
    }
    conn.transaction(|conn| {
        let known = known(conn, batch)?;
        let mut plan = fold::plan(batch, canonical, known)?;
        number(conn, &mut plan.events)?;
        write(conn, &plan)?;
        advance_offsets(conn, batch)?;
        Ok(plan.applied)
    })
}

fn query(context: &'static str) -> impl Fn(DieselError) -> ProjectionError {
    move |source| ProjectionError::Query { context, source }
}

/// The batch's event ids already stored, and the stored jobs of the others.
fn known(
    conn: &mut AnyConnection,
    batch: &[(Position, Envelope)],
) -> Result<Known, ProjectionError> {
    let facts: Vec<&Envelope> = batch
        .iter()
        .map(|(_, e)| e)
        .filter(|e| !matches!(e.body, EventBody::WorkItem(_)))
        .collect();
    let ids: Vec<&str> = unique(facts.iter().map(|e| e.event_id.as_str()));
    let mut known = Known::default();
    for chunk in ids.chunks(CHUNK) {
        let found: Vec<String> = events::table
            .filter(events::event_id.eq_any(chunk))
            .select(events::event_id)
            .load(conn)
            .map_err(query("find stored events"))?;
        known.events.extend(found);
    }
    // Jobs of new events, and of submissions (a copy of one stored first
    // from the intake may change its job's recipe: `fold::adopt`).
    let job_ids = unique(
        facts
            .iter()
            .filter(|e| {
                !known.events.contains(&e.event_id) || matches!(e.body, EventBody::JobSubmitted(_))
            })
            .map(|e| e.job_id.as_str()),
    );
    for chunk in job_ids.chunks(CHUNK) {
        let rows: Vec<(String, String, String, i64)> = jobs::table
            .filter(jobs::id.eq_any(chunk))
            .select((jobs::id, jobs::state, jobs::submitted_at, jobs::last_seq))
            .load(conn)
            .map_err(query("load jobs"))?;
        for (id, state, submitted_at, last_seq) in rows {
            let job = StoredJob {
                state,
                submitted_at,
                last_seq,
            };
            known.jobs.insert(id, job);
        }
    }
    Ok(known)
}

/// Numbers the batch's new event rows after the highest number stored, in
/// batch order. Inside the batch's transaction; the unique index on
/// `ordinal` refuses a second writer that read the same highest number, and
/// its batch is retried.
fn number(conn: &mut AnyConnection, rows: &mut [EventRow]) -> Result<(), ProjectionError> {
    if rows.is_empty() {
        return Ok(());
    }
    let base = crate::queries::last_ordinal(conn)?;
    for (i, row) in rows.iter_mut().enumerate() {
        row.ordinal = base + 1 + i as i64;
    }
    Ok(())
}

/// Distinct values, in first-seen order.
fn unique<'a>(values: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut seen = HashSet::new();
    values.filter(|v| seen.insert(*v)).collect()
}

fn write(conn: &mut AnyConnection, plan: &Plan) -> Result<(), ProjectionError> {
    for (event_id, to, body) in &plan.moves {
        diesel::update(events::table.find(event_id))
            .set((
                events::topic.eq(&to.topic),
                events::kafka_partition.eq(to.partition),
                events::kafka_offset.eq(to.offset),
            ))
            .execute(conn)
            .map_err(query("move an event to its canonical topic"))?;
        if let Some(body) = body {
            diesel::update(events::table.find(event_id))
                .set(events::body.eq(body))
                .execute(conn)
                .map_err(query("take a submission's canonical body"))?;
        }
    }
    insert_rows(
        conn,
        &plan.events,
        |conn, rows| {
            on_backend!(conn, |c| diesel::insert_into(events::table)
                .values(rows)
                .execute(c))
        },
        |row, source| ProjectionError::Event {
            position: Position::new(&row.topic, row.kafka_partition, row.kafka_offset),
            job_id: row.job_id.clone(),
            event_id: row.event_id.clone(),
            source,
        },
    )?;
    // A job's row is written whole: inserted, or replacing the stored one.
    let rows: Vec<JobRow> = plan.jobs.values().map(|t| t.row()).collect();
    insert_rows(
        conn,
        &rows,
        |conn, rows| {
            on_backend!(conn, |c| diesel::insert_into(jobs::table)
                .values(rows)
                .on_conflict(jobs::id)
                .do_update()
                .set((
                    jobs::status.eq(excluded(jobs::status)),
                    jobs::phase.eq(excluded(jobs::phase)),
                    jobs::progress.eq(excluded(jobs::progress)),
                    jobs::attempts.eq(excluded(jobs::attempts)),
                    jobs::submitted_at.eq(excluded(jobs::submitted_at)),
                    jobs::updated_at.eq(excluded(jobs::updated_at)),
                    jobs::state.eq(excluded(jobs::state)),
                    jobs::last_seq.eq(excluded(jobs::last_seq)),
                    jobs::tenant.eq(excluded(jobs::tenant)),
                    jobs::labels.eq(excluded(jobs::labels)),
                    jobs::upload.eq(excluded(jobs::upload)),
                ))
                .execute(c))
        },
        |row, source| {
            let t = &plan.jobs[&row.id];
            ProjectionError::Event {
                position: t.last.0.clone(),
                job_id: row.id.clone(),
                event_id: t.last.1.clone(),
                source,
            }
        },
    )
}

/// Inserts `rows` [`CHUNK`] at a time. A chunk the database refuses is tried
/// again row by row (from a savepoint), so the error names the row at fault.
fn insert_rows<R>(
    conn: &mut AnyConnection,
    rows: &[R],
    insert: impl Fn(&mut AnyConnection, &[R]) -> QueryResult<usize>,
    blame: impl Fn(&R, DieselError) -> ProjectionError,
) -> Result<(), ProjectionError> {
    for chunk in rows.chunks(CHUNK) {
        let whole = conn.transaction(|conn| insert(conn, chunk));
        if whole.is_err() {
            for row in chunk {
                insert(conn, std::slice::from_ref(row)).map_err(|e| blame(row, e))?;
            }
        }
    }
    Ok(())
}

/// `next_offset = max(stored, offset + 1)` for every partition in the batch.
fn advance_offsets(
    conn: &mut AnyConnection,
    batch: &[(Position, Envelope)],
) -> Result<(), ProjectionError> {
    let write = query("advance offsets");
    let stored: Vec<(String, i32, i64)> = offsets::table.load(conn).map_err(&write)?;
    for ((topic, partition), n) in fold::next_offsets(batch) {
        let key = (topic, partition);
        let current = stored
            .iter()
            .find(|(t, p, _)| t == topic && *p == partition)
            .map(|&(_, _, o)| o);
        match current {
            Some(s) if s >= n => {}
            Some(_) => {
                diesel::update(offsets::table.find(key))
                    .set(offsets::next_offset.eq(n))
                    .execute(conn)
                    .map_err(&write)?;
            }
            None => {
                diesel::insert_into(offsets::table)
                    .values((
                        offsets::topic.eq(topic),
                        offsets::kafka_partition.eq(partition),
                        offsets::next_offset.eq(n),
                    ))
                    .execute(conn)
                    .map_err(&write)?;
            }
        }
    }
    Ok(())
}

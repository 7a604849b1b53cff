//! Reads: one job, a page of jobs, a job's events, offsets and snapshots.

use chrono::{DateTime, Utc};
use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::{Bool, Text};
use serde_json::{json, Value};
use sprocket_core::{Envelope, Job, JobId, JobStatus};

use crate::connection::AnyConnection;
use crate::cursor::Cursor;

type Backend = <AnyConnection as diesel::Connection>::Backend;
use crate::rows::{parse_event, parse_job, timestamp, EventRow, JobRow};
use crate::schema::{events, jobs, offsets};
use crate::{Page, Position, ProjectionError};

/// The most jobs one page may hold.
pub(crate) const MAX_PAGE: u32 = 1000;

pub(crate) fn query(context: &'static str) -> impl Fn(diesel::result::Error) -> ProjectionError {
    move |source| ProjectionError::Query { context, source }
}

pub(crate) fn job(conn: &mut AnyConnection, id: &JobId) -> Result<Option<Job>, ProjectionError> {
    let state = jobs::table
        .find(id.as_str())
        .select(jobs::state)
        .first::<String>(conn)
        .optional()
        .map_err(query("load job"))?;
    state.map(|s| parse_job(id.as_str(), &s)).transpose()
}

/// Which jobs a listing shows; every condition given must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobFilter {
    /// Only this tenant's jobs.
    pub tenant: Option<String>,
    /// Only jobs in this status.
    pub status: Option<JobStatus>,
    /// Only jobs whose labels hold each of these keys with that value.
    pub labels: Vec<(String, String)>,
    /// Only jobs submitted at or after this time.
    pub since: Option<DateTime<Utc>>,
}

/// Newest submitted first (ties broken by id, descending), keyset-paginated:
/// the cursor is the last row's sort key, so a filter only thins the pages
/// and a page never repeats or skips a job that matches.
pub(crate) fn jobs(
    conn: &mut AnyConnection,
    filter: &JobFilter,
    limit: u32,
    after: Option<&str>,
) -> Result<Page<Job>, ProjectionError> {
    let limit = limit.clamp(1, MAX_PAGE) as usize;
    let after = after.map(Cursor::decode).transpose()?;
    let postgres = matches!(conn, AnyConnection::Postgres(_));
    let mut q = jobs::table
        .select((jobs::submitted_at, jobs::id, jobs::state))
        .into_boxed();
    if let Some(tenant) = &filter.tenant {
        q = q.filter(jobs::tenant.eq(tenant.clone()));
    }
    if let Some(status) = filter.status {
        q = q.filter(jobs::status.eq(status.as_str()));
    }
    if let Some(since) = filter.since {
        // Stored times are fixed-width UTC text: they compare as the times do.
        q = q.filter(jobs::submitted_at.ge(timestamp(since)));
    }
    for (key, value) in &filter.labels {
        q = q.filter(has_label(key, value, postgres));
    }
    if let Some(c) = after {
        // `(submitted_at, id) < cursor`. The first, redundant bound is one an
        // index scan can start from; without it PostgreSQL reads every newer
        // row to filter them out, so a page cost grew with its depth.
        q = q
            .filter(jobs::submitted_at.le(c.submitted_at.clone()))
            .filter(
                jobs::submitted_at
                    .lt(c.submitted_at.clone())
                    .or(jobs::submitted_at.eq(c.submitted_at).and(jobs::id.lt(c.id))),
            );
    }
    let mut rows = q
        .order((jobs::submitted_at.desc(), jobs::id.desc()))
        .limit(limit as i64 + 1)
        .load::<(String, String, String)>(conn)
        .map_err(query("list jobs"))?;
    let more = rows.len() > limit;
    rows.truncate(limit);
    let next = match rows.last() {
        Some((submitted_at, id, _)) if more => Some(
            Cursor {
                submitted_at: submitted_at.clone(),
                id: id.clone(),
            }
            .encode(),
        ),
        _ => None,
    };
    let items = rows
        .iter()
        .map(|(_, id, state)| parse_job(id, state))
        .collect::<Result<_, _>>()?;
    Ok(Page { items, next })
}

/// The job's labels hold `key` with `value`, in each backend's JSON functions
/// (the only SQL here written twice): PostgreSQL tests containment, which its
/// `jobs_by_labels` index serves; SQLite looks the key up among the object's
/// entries. Keys and values are bound, never spliced in.
fn has_label(
    key: &str,
    value: &str,
    postgres: bool,
) -> Box<dyn BoxableExpression<jobs::table, Backend, SqlType = Bool>> {
    if postgres {
        let wanted = json!({ key: value }).to_string();
        Box::new(
            sql::<Bool>("jobs.labels::jsonb @> ")
                .bind::<Text, _>(wanted)
                .sql("::jsonb"),
        )
    } else {
        Box::new(
            sql::<Bool>("EXISTS (SELECT 1 FROM json_each(jobs.labels) AS l WHERE l.key = ")
                .bind::<Text, _>(key.to_owned())
                .sql(" AND l.type = 'text' AND l.value = ")
                .bind::<Text, _>(value.to_owned())
                .sql(")"),
        )
    }
}

pub(crate) fn events(
    conn: &mut AnyConnection,
    id: &JobId,
) -> Result<Vec<Envelope>, ProjectionError> {
    Ok(events_after(conn, id, 0)?
        .into_iter()
        .map(|(_, e)| e)
        .collect())
}

/// The job's events after sequence number `after`, with their numbers.
pub(crate) fn events_after(
    conn: &mut AnyConnection,
    id: &JobId,
    after: i64,
) -> Result<Vec<(i64, Envelope)>, ProjectionError> {
    events::table
        .filter(events::job_id.eq(id.as_str()))
        .filter(events::seq.gt(after))
        .order(events::seq.asc())
        .select((events::seq, events::event_id, events::body))
        .load::<(i64, String, String)>(conn)
        .map_err(query("list events"))?
        .iter()
        .map(|(seq, event_id, body)| Ok((*seq, parse_event(event_id, body)?)))
        .collect()
}

/// Events after ordinal `after`, in the order they were recorded, at most
/// `limit`: of `tenant`'s jobs when given, of jobs now in `status` when given.
/// Each with its ordinal and its job's stored state (for filters on it).
pub(crate) fn recorded_after(
    conn: &mut AnyConnection,
    tenant: Option<&str>,
    status: Option<JobStatus>,
    after: i64,
    limit: u32,
) -> Result<Vec<(i64, Envelope, String)>, ProjectionError> {
    let mut q = events::table
        .inner_join(jobs::table)
        .filter(events::ordinal.gt(after))
        .select((events::ordinal, events::event_id, events::body, jobs::state))
        .into_boxed();
    if let Some(t) = tenant {
        q = q.filter(jobs::tenant.eq(t.to_owned()));
    }
    if let Some(s) = status {
        q = q.filter(jobs::status.eq(s.as_str()));
    }
    q.order(events::ordinal.asc())
        .limit(i64::from(limit.clamp(1, MAX_PAGE)))
        .load::<(i64, String, String, String)>(conn)
        .map_err(query("list recorded events"))?
        .into_iter()
        .map(|(ordinal, event_id, body, state)| {
            Ok((ordinal, parse_event(&event_id, &body)?, state))
        })
        .collect()
}

/// The highest event ordinal stored (0 before any event).
pub(crate) fn last_ordinal(conn: &mut AnyConnection) -> Result<i64, ProjectionError> {
    events::table
        .select(diesel::dsl::max(events::ordinal))
        .first::<Option<i64>>(conn)
        .map(Option::unwrap_or_default)
        .map_err(query("read the highest event ordinal"))
}

pub(crate) fn offsets(conn: &mut AnyConnection) -> Result<Vec<Position>, ProjectionError> {
    let rows = offsets::table
        .order((offsets::topic.asc(), offsets::kafka_partition.asc()))
        .load::<(String, i32, i64)>(conn)
        .map_err(query("load offsets"))?;
    Ok(rows
        .into_iter()
        .map(|(topic, partition, offset)| Position {
            topic,
            partition,
            offset,
        })
        .collect())
}

/// Every job row (by id) and event row (by job, then sequence), with the stored
/// JSON columns parsed so that equal projections give equal values.
/// The statuses of jobs still queued or running, as stored.
pub(crate) fn live_statuses() -> Vec<&'static str> {
    JobStatus::ALL
        .into_iter()
        .filter(|s| !s.is_terminal())
        .map(JobStatus::as_str)
        .collect()
}

pub(crate) fn active_jobs(conn: &mut AnyConnection, tenant: &str) -> Result<u64, ProjectionError> {
    let n: i64 = jobs::table
        .filter(jobs::tenant.eq(tenant))
        .filter(jobs::status.eq_any(live_statuses()))
        .count()
        .get_result(conn)
        .map_err(query("count active jobs"))?;
    Ok(n.max(0) as u64)
}

pub(crate) fn snapshot(conn: &mut AnyConnection) -> Result<Value, ProjectionError> {
    let job_rows = jobs::table
        .order(jobs::id.asc())
        .select(JobRow::as_select())
        .load(conn)
        .map_err(query("snapshot jobs"))?;
    let event_rows = events::table
        .order((events::job_id.asc(), events::seq.asc()))
        .select(EventRow::as_select())
        .load(conn)
        .map_err(query("snapshot events"))?;
    let parse = |what: &'static str, key: &str, text: &str| {
        serde_json::from_str::<Value>(text).map_err(|source| ProjectionError::Corrupt {
            what,
            key: key.to_owned(),
            source,
        })
    };
    let jobs = job_rows
        .iter()
        .map(|r| {
            Ok(json!({
                "id": r.id,
                "status": r.status,
                "phase": r.phase,
                "progress": r.progress,
                "attempts": r.attempts,
                "submitted_at": r.submitted_at,
                "updated_at": r.updated_at,
                "last_seq": r.last_seq,
                "tenant": r.tenant,
                "state": parse("job state", &r.id, &r.state)?,
            }))
        })
        .collect::<Result<Vec<_>, ProjectionError>>()?;
    let events = event_rows
        .iter()
        .map(|r| {
            Ok(json!({
                "event_id": r.event_id,
                "job_id": r.job_id,
                "seq": r.seq,
                "type": r.kind,
                "occurred_at": r.occurred_at,
                "body": parse("event body", &r.event_id, &r.body)?,
                "topic": r.topic,
                "partition": r.kafka_partition,
                "offset": r.kafka_offset,
            }))
        })
        .collect::<Result<Vec<_>, ProjectionError>>()?;
    Ok(json!({ "jobs": jobs, "events": events }))
}

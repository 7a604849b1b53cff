//! The `Projections` handle: one connection shared behind a mutex, reopened when
//! the database drops it.

use std::sync::{Arc, Mutex};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use sprocket_core::{Envelope, Job, JobId, JobStatus};

use crate::connection::{self, AnyConnection, Target};
use crate::schema::{events, jobs, offsets};
use crate::{apply, queries, Applied, Page, Position, ProjectionError};

/// A handle on the projection database. Cheap to clone; `Send + Sync`.
#[derive(Clone)]
pub struct Projections {
    inner: Arc<Inner>,
}

struct Inner {
    target: Target,
    /// `None` after the connection was lost; the next call reconnects.
    conn: Mutex<Option<AnyConnection>>,
}

impl std::fmt::Debug for Projections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Projections")
            .field("backend", &self.backend())
            .finish_non_exhaustive()
    }
}

impl Projections {
    /// Opens `sqlite://<path>` (the file is created; WAL, busy timeout, foreign
    /// keys), `sqlite://:memory:`, or `postgres://…` / `postgresql://…`.
    pub fn connect(url: &str) -> Result<Self, ProjectionError> {
        let target = Target::parse(url)?;
        let conn = target.open()?;
        tracing::debug!(backend = target.backend(), "projection database open");
        Ok(Projections {
            inner: Arc::new(Inner {
                target,
                conn: Mutex::new(Some(conn)),
            }),
        })
    }

    /// `"sqlite"` or `"postgres"`.
    pub fn backend(&self) -> &'static str {
        self.inner.target.backend()
    }

    /// Creates or updates the tables (embedded migrations of this backend).
    pub fn migrate(&self) -> Result<(), ProjectionError> {
        self.with_conn(connection::migrate)
    }

    /// Projects a batch in one transaction; see [`apply::apply_batch`] for the rules.
    /// Either every row and offset of the batch commits, or nothing does.
    pub fn apply(&self, batch: &[(Position, Envelope)]) -> Result<Applied, ProjectionError> {
        self.with_conn(|conn| apply::apply_batch(conn, batch, None))
    }

    /// Like [`apply`](Self::apply), naming the source-of-truth topic: an event
    /// stored from another topic first (a submission read on the intake) takes
    /// its position on `canonical` when that copy arrives, so a replay that reads
    /// the topics in another order reaches identical rows.
    pub fn apply_canonical(
        &self,
        batch: &[(Position, Envelope)],
        canonical: &str,
    ) -> Result<Applied, ProjectionError> {
        self.with_conn(|conn| apply::apply_batch(conn, batch, Some(canonical)))
    }

    /// The next offset to read per topic partition, ordered by topic and partition.
    pub fn offsets(&self) -> Result<Vec<Position>, ProjectionError> {
        self.with_conn(queries::offsets)
    }

    /// Empties every table, offsets included (`projector --rebuild`).
    pub fn reset(&self) -> Result<(), ProjectionError> {
        self.with_conn(|conn| {
            conn.transaction(|conn| {
                diesel::delete(events::table).execute(conn)?;
                diesel::delete(jobs::table).execute(conn)?;
                diesel::delete(offsets::table).execute(conn)?;
                Ok(())
            })
            .map_err(|source| ProjectionError::Query {
                context: "reset",
                source,
            })
        })
    }

    /// A job's folded state, if any of its events were projected.
    pub fn job(&self, id: &JobId) -> Result<Option<Job>, ProjectionError> {
        self.with_conn(|conn| queries::job(conn, id))
    }

    /// Jobs, newest submitted first, optionally of one status. `after` is the
    /// `next` cursor of the previous page; `limit` is clamped to 1–1000.
    pub fn jobs(
        &self,
        status: Option<JobStatus>,
        limit: u32,
        after: Option<&str>,
    ) -> Result<Page<Job>, ProjectionError> {
        self.with_conn(|conn| queries::jobs(conn, status, limit, after))
    }

    /// A job's events in the order they were projected.
    pub fn events(&self, id: &JobId) -> Result<Vec<Envelope>, ProjectionError> {
        self.with_conn(|conn| queries::events(conn, id))
    }

    /// Every job row and event row, sorted, as JSON: equal snapshots mean equal
    /// projections (rebuild tests).
    pub fn snapshot(&self) -> Result<serde_json::Value, ProjectionError> {
        self.with_conn(queries::snapshot)
    }

    /// Readiness: the database answers a query.
    pub fn ping(&self) -> Result<(), ProjectionError> {
        self.with_conn(|conn| {
            conn.batch_execute("SELECT 1")
                .map_err(|source| ProjectionError::Query {
                    context: "ping",
                    source,
                })
        })
    }

    /// Runs `f` on the connection, reopening it first if it was lost, and
    /// dropping it when `f` reports it broken.
    fn with_conn<T>(
        &self,
        f: impl FnOnce(&mut AnyConnection) -> Result<T, ProjectionError>,
    ) -> Result<T, ProjectionError> {
        let mut guard = self
            .inner
            .conn
            .lock()
            .map_err(|_| ProjectionError::Poisoned)?;
        if guard.is_none() {
            *guard = Some(self.inner.target.open()?);
            tracing::info!(backend = self.backend(), "projection database reconnected");
        }
        let conn = guard.as_mut().expect("opened above");
        let result = f(conn);
        if let Err(e) = &result {
            if e.breaks_connection() {
                tracing::warn!(backend = self.backend(), error = %e, "projection connection lost");
                *guard = None;
            }
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_shareable_across_threads() {
        fn assert_send_sync<T: Send + Sync + Clone>() {}
        assert_send_sync::<Projections>();
    }

    #[test]
    fn an_in_memory_store_works_and_bad_urls_are_refused() {
        let p = Projections::connect("sqlite://:memory:").unwrap();
        p.migrate().unwrap();
        p.ping().unwrap();
        assert_eq!(p.backend(), "sqlite");
        assert!(p.offsets().unwrap().is_empty());
        let err = Projections::connect("mysql://x").unwrap_err();
        assert!(matches!(err, ProjectionError::InvalidUrl { .. }));
        assert!(!err.retryable());
    }

    #[test]
    fn an_unreachable_postgres_is_retryable() {
        let err = Projections::connect("postgres://nobody@127.0.0.1:1/none").unwrap_err();
        assert!(matches!(err, ProjectionError::Connect { .. }), "{err:?}");
        assert!(err.retryable());
    }
}

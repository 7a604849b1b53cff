//! The `Projections` handle: a pool of connections ([`crate::pool`]); each call
//! borrows one, and one the database dropped is replaced.

use std::sync::Arc;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use sprocket_core::{Envelope, Job, JobId, JobStatus};

use crate::connection::{self, AnyConnection, Target};
use crate::pool::{self, Pool, PoolOptions};
use crate::queries::JobFilter;
use crate::schema::{events, jobs, offsets};
use crate::{apply, queries, Applied, Page, Position, ProjectionError};

/// A handle on the projection database. Cheap to clone (clones share the
/// pool); `Send + Sync`.
#[derive(Clone)]
pub struct Projections {
    inner: Arc<Inner>,
}

struct Inner {
    backend: &'static str,
    options: PoolOptions,
    pool: Pool,
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
    /// keys), `sqlite://:memory:`, or `postgres://…` / `postgresql://…`, with
    /// the default [`PoolOptions`].
    pub fn connect(url: &str) -> Result<Self, ProjectionError> {
        Self::connect_with(url, PoolOptions::default())
    }

    /// Like [`connect`](Self::connect), with a pool of `options.size`
    /// connections. Fails at once when the database cannot be reached.
    pub fn connect_with(url: &str, options: PoolOptions) -> Result<Self, ProjectionError> {
        let target = Target::parse(url)?;
        let backend = target.backend();
        let pool = pool::build(target, options)?;
        tracing::debug!(
            backend,
            pool_size = options.size,
            "projection database open"
        );
        Ok(Projections {
            inner: Arc::new(Inner {
                backend,
                options,
                pool,
            }),
        })
    }

    /// `"sqlite"` or `"postgres"`.
    pub fn backend(&self) -> &'static str {
        self.inner.backend
    }

    /// The most connections this handle (and its clones) may hold at once.
    pub fn pool_size(&self) -> u32 {
        self.inner.pool.max_size()
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
        self.jobs_of(None, status, limit, after)
    }

    /// Like [`jobs`](Self::jobs), only the jobs of `tenant` when one is given.
    pub fn jobs_of(
        &self,
        tenant: Option<&str>,
        status: Option<JobStatus>,
        limit: u32,
        after: Option<&str>,
    ) -> Result<Page<Job>, ProjectionError> {
        let filter = JobFilter {
            tenant: tenant.map(str::to_owned),
            status,
            ..JobFilter::default()
        };
        self.jobs_where(&filter, limit, after)
    }

    /// Jobs that pass `filter`, newest submitted first, keyset-paginated like
    /// [`jobs`](Self::jobs): `after` is the `next` of the previous page (of
    /// the same filter).
    pub fn jobs_where(
        &self,
        filter: &JobFilter,
        limit: u32,
        after: Option<&str>,
    ) -> Result<Page<Job>, ProjectionError> {
        self.with_conn(|conn| queries::jobs(conn, filter, limit, after))
    }

    /// How many jobs of `tenant` are queued or running.
    pub fn active_jobs(&self, tenant: &str) -> Result<u64, ProjectionError> {
        self.with_conn(|conn| queries::active_jobs(conn, tenant))
    }

    /// A job's events in the order they were projected.
    pub fn events(&self, id: &JobId) -> Result<Vec<Envelope>, ProjectionError> {
        self.with_conn(|conn| queries::events(conn, id))
    }

    /// Events recorded after ordinal `after` (every job's, in the order the
    /// projector recorded them), at most `limit` (clamped to 1–1000): only
    /// `tenant`'s jobs and jobs now in `status`, when given. Each with its
    /// ordinal and its job's state as stored (JSON).
    pub fn recorded_after(
        &self,
        tenant: Option<&str>,
        status: Option<JobStatus>,
        after: i64,
        limit: u32,
    ) -> Result<Vec<(i64, Envelope, String)>, ProjectionError> {
        self.with_conn(|conn| queries::recorded_after(conn, tenant, status, after, limit))
    }

    /// The highest event ordinal recorded (0 before any): where a stream of
    /// what happens from now on starts.
    pub fn last_ordinal(&self) -> Result<i64, ProjectionError> {
        self.with_conn(queries::last_ordinal)
    }

    /// A job's events after its `after`-th (0: all), each with its sequence
    /// number in the job's history (1, 2, …, without gaps).
    pub fn events_after(
        &self,
        id: &JobId,
        after: i64,
    ) -> Result<Vec<(i64, Envelope)>, ProjectionError> {
        self.with_conn(|conn| queries::events_after(conn, id, after))
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

    /// Runs `f` on a pooled connection (waiting up to the pool's timeout for
    /// one); a connection `f` reports broken is closed rather than lent again.
    pub(crate) fn with_conn<T>(
        &self,
        f: impl FnOnce(&mut AnyConnection) -> Result<T, ProjectionError>,
    ) -> Result<T, ProjectionError> {
        let mut pooled = self
            .inner
            .pool
            .get()
            .map_err(|source| ProjectionError::Pool {
                backend: self.backend(),
                waited: self.inner.options.timeout,
                source,
            })?;
        let result = f(&mut pooled.conn);
        if let Err(e) = &result {
            if e.breaks_connection() {
                tracing::warn!(backend = self.backend(), error = %e, "projection connection lost");
            }
        }
        pooled.finished(&result);
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
    fn an_in_memory_store_is_one_connection_shared_by_every_thread() {
        let options = PoolOptions {
            size: 8,
            ..PoolOptions::default()
        };
        let p = Projections::connect_with("sqlite://:memory:", options).unwrap();
        assert_eq!(p.pool_size(), 1);
        p.migrate().unwrap();
        // Tables made on one thread are there on the others: one database.
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| assert!(p.offsets().unwrap().is_empty()));
            }
        });
    }

    #[test]
    fn a_file_store_has_the_pool_it_was_given() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("p.db").display());
        let options = PoolOptions {
            size: 3,
            ..PoolOptions::default()
        };
        let p = Projections::connect_with(&url, options).unwrap();
        assert_eq!(p.pool_size(), 3);
        p.migrate().unwrap();
        p.ping().unwrap();
    }

    #[test]
    fn an_unreachable_postgres_is_retryable() {
        let err = Projections::connect("postgres://nobody@127.0.0.1:1/none").unwrap_err();
        assert!(matches!(err, ProjectionError::Connect { .. }), "{err:?}");
        assert!(err.retryable());
    }
}

//! What retention and the API race for, settled in the database.
//!
//! Uploads: a submission through the API claims its upload
//! ([`Projections::claim_upload`]); the janitor removes an upload only
//! through [`Projections::expire_upload`], one conditional update that no
//! claim can slip past: an upload a queued or running job names, or one a
//! submission claimed after every job the projections know of, is never
//! expired.
//!
//! A finished job's working data: a retry and the janitor each take the
//! job's one `work_claims` row ([`Projections::claim_work`]) before they act,
//! so a retry accepted after the job finished keeps the janitor off its
//! data, and once the janitor holds it every retry is refused.

use chrono::{DateTime, Utc};
use diesel::dsl::{exists, max, not};
use diesel::prelude::*;

use crate::connection::AnyConnection;
use crate::queries::{live_statuses, query};
use crate::rows::timestamp;
use crate::schema::{jobs, uploads, work_claims};
use crate::{ProjectionError, Projections};

/// What claiming an upload for a submission found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UploadClaim {
    /// Claimed: the janitor leaves it for the job.
    Claimed,
    /// No such upload is recorded.
    Unknown,
    /// Retention removed it at `at` under `rule`.
    Expired { at: String, rule: String },
}

/// An upload the janitor may act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadRef {
    pub id: String,
    pub bytes: u64,
}

/// Why the janitor may expire an upload.
#[derive(Debug, Clone, Copy)]
pub enum UploadRule<'a> {
    /// `retention.uploads`: no job names it, and it was uploaded (and last
    /// claimed, if ever) before `before`.
    Unused { before: DateTime<Utc> },
    /// `retention.work`: the working data of `job`, which names it, expires;
    /// no queued or running job names it, and every claim belongs to a job
    /// the projections know of (or was given up before `abandoned`).
    WithJob {
        job: &'a str,
        abandoned: DateTime<Utc>,
    },
}

impl Projections {
    /// Claims upload `id` for a submission at `at`.
    pub fn claim_upload(
        &self,
        id: &str,
        at: DateTime<Utc>,
    ) -> Result<UploadClaim, ProjectionError> {
        self.with_conn(|conn| {
            let claimed = diesel::update(
                uploads::table
                    .filter(uploads::id.eq(id))
                    .filter(uploads::expired_at.is_null()),
            )
            .set(uploads::used_at.eq(timestamp(at)))
            .execute(conn)
            .map_err(query("claim upload"))?;
            if claimed > 0 {
                return Ok(UploadClaim::Claimed);
            }
            let expired: Option<(Option<String>, Option<String>)> = uploads::table
                .find(id)
                .select((uploads::expired_at, uploads::expired_rule))
                .first(conn)
                .optional()
                .map_err(query("find upload"))?;
            Ok(match expired {
                Some((Some(at), rule)) => UploadClaim::Expired {
                    at,
                    rule: rule.unwrap_or_default(),
                },
                _ => UploadClaim::Unknown,
            })
        })
    }

    /// Uploads no job names, uploaded and last claimed before `before`, not
    /// expired: at most `limit`, oldest first.
    pub fn unused_uploads(
        &self,
        before: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<UploadRef>, ProjectionError> {
        let before = timestamp(before);
        self.with_conn(|conn| {
            let rows: Vec<(String, i64)> = uploads::table
                .filter(uploads::expired_at.is_null())
                .filter(uploads::created_at.lt(&before))
                .filter(uploads::used_at.is_null().or(uploads::used_at.lt(&before)))
                .filter(not(exists(
                    jobs::table.filter(jobs::upload.eq(uploads::id.nullable())),
                )))
                .order(uploads::created_at.asc())
                .limit(limit)
                .select((uploads::id, uploads::bytes))
                .load(conn)
                .map_err(query("list unused uploads"))?;
            Ok(rows.into_iter().map(UploadRef::from).collect())
        })
    }

    /// Marks upload `id` expired at `at` under `rule` if the rule still
    /// holds; returns it when marked (then remove its object and call
    /// [`upload_removed`](Self::upload_removed)).
    pub fn expire_upload(
        &self,
        id: &str,
        rule: UploadRule<'_>,
        at: DateTime<Utc>,
    ) -> Result<Option<UploadRef>, ProjectionError> {
        self.with_conn(|conn| {
            conn.transaction(|conn| {
                let open = uploads::table
                    .filter(uploads::id.eq(id))
                    .filter(uploads::expired_at.is_null());
                let marked = match rule {
                    UploadRule::Unused { before } => {
                        let before = timestamp(before);
                        diesel::update(
                            open.filter(uploads::created_at.lt(&before))
                                .filter(uploads::used_at.is_null().or(uploads::used_at.lt(&before)))
                                .filter(not(exists(jobs::table.filter(jobs::upload.eq(id))))),
                        )
                        .set((
                            uploads::expired_at.eq(timestamp(at)),
                            uploads::expired_rule.eq(sprocket_core::retention::rule::UPLOADS),
                        ))
                        .execute(conn)
                    }
                    UploadRule::WithJob { job, abandoned } => {
                        // Every claim made before the newest job that names it
                        // was submitted belongs to a job the projections know.
                        let newest: Option<String> = jobs::table
                            .filter(jobs::upload.eq(id))
                            .select(max(jobs::submitted_at))
                            .first(conn)?;
                        let accounted = newest
                            .map_or_else(|| timestamp(abandoned), |n| n.max(timestamp(abandoned)));
                        diesel::update(
                            open.filter(
                                uploads::used_at
                                    .is_null()
                                    .or(uploads::used_at.le(&accounted)),
                            )
                            .filter(not(exists(
                                jobs::table
                                    .filter(jobs::upload.eq(id))
                                    .filter(jobs::status.eq_any(live_statuses())),
                            ))),
                        )
                        .set((
                            uploads::expired_at.eq(timestamp(at)),
                            uploads::expired_rule.eq(sprocket_core::retention::rule::WORK),
                            uploads::expired_job.eq(job),
                        ))
                        .execute(conn)
                    }
                }?;
                if marked == 0 {
                    return Ok(None);
                }
                let bytes: i64 = uploads::table.find(id).select(uploads::bytes).first(conn)?;
                Ok(Some(UploadRef::from((id.to_owned(), bytes))))
            })
            .map_err(query("expire upload"))
        })
    }

    /// Expired uploads whose object is still to be removed.
    pub fn uploads_to_remove(&self, limit: i64) -> Result<Vec<UploadRef>, ProjectionError> {
        self.with_conn(|conn| {
            let rows: Vec<(String, i64)> = uploads::table
                .filter(uploads::expired_at.is_not_null())
                .filter(uploads::freed_bytes.is_null())
                .order(uploads::id.asc())
                .limit(limit)
                .select((uploads::id, uploads::bytes))
                .load(conn)
                .map_err(query("list uploads to remove"))?;
            Ok(rows.into_iter().map(UploadRef::from).collect())
        })
    }

    /// Records that an expired upload's object is gone, `freed` bytes with it.
    pub fn upload_removed(&self, id: &str, freed: u64) -> Result<(), ProjectionError> {
        self.with_conn(|conn| {
            diesel::update(uploads::table.find(id))
                .set(uploads::freed_bytes.eq(i64::try_from(freed).unwrap_or(i64::MAX)))
                .execute(conn)
                .map(drop)
                .map_err(query("record a removed upload"))
        })
    }
}

/// Who takes a finished job's working data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkClaim {
    /// A retry accepted at the claim's time.
    Retry,
    /// The janitor, removing it; `finished` is when the job finished as the
    /// janitor saw it: a retry claimed before then has run its course.
    Expiring { finished: DateTime<Utc> },
}

impl WorkClaim {
    fn kind(self) -> &'static str {
        match self {
            WorkClaim::Retry => "retry",
            WorkClaim::Expiring { .. } => "expiring",
        }
    }
}

impl Projections {
    /// Takes job `job`'s working data for `claim` at `at`; false when the
    /// other side holds it (the janitor is removing it, or a retry after
    /// the job's finish is on its way).
    pub fn claim_work(
        &self,
        job: &str,
        claim: WorkClaim,
        at: DateTime<Utc>,
    ) -> Result<bool, ProjectionError> {
        let at = timestamp(at);
        self.with_conn(|conn| {
            let row = (
                work_claims::job_id.eq(job),
                work_claims::kind.eq(claim.kind()),
                work_claims::at.eq(&at),
            );
            let insert = diesel::insert_into(work_claims::table).values(row);
            let inserted = match conn {
                AnyConnection::Postgres(c) => insert.on_conflict_do_nothing().execute(c),
                AnyConnection::Sqlite(c) => insert.on_conflict_do_nothing().execute(c),
            }
            .map_err(query("claim working data"))?;
            if inserted > 0 {
                return Ok(true);
            }
            // One conditional update of the row: the database orders it
            // against the other side's, which then sees this one's result.
            let row = work_claims::table.filter(work_claims::job_id.eq(job));
            let updated = match claim {
                WorkClaim::Retry => diesel::update(row.filter(work_claims::kind.eq("retry")))
                    .set(work_claims::at.eq(&at))
                    .execute(conn),
                WorkClaim::Expiring { finished } => diesel::update(
                    row.filter(
                        work_claims::kind
                            .eq("expiring")
                            .or(work_claims::at.le(timestamp(finished))),
                    ),
                )
                .set((work_claims::kind.eq("expiring"), work_claims::at.eq(&at)))
                .execute(conn),
            }
            .map_err(query("claim working data"))?;
            Ok(updated > 0)
        })
    }
}

impl From<(String, i64)> for UploadRef {
    fn from((id, bytes): (String, i64)) -> Self {
        UploadRef {
            id,
            bytes: bytes.max(0) as u64,
        }
    }
}

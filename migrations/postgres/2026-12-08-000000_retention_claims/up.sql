-- The lifecycle of uploads under retention.
--
-- jobs.upload: the upload a job's source names (NULL for other sources),
-- written with the rest of the row, so the janitor can tell which uploads
-- a queued or running job still needs.
ALTER TABLE jobs ADD COLUMN upload TEXT;

UPDATE jobs SET upload = state::jsonb -> 'source' ->> 'upload';

CREATE INDEX jobs_by_upload ON jobs (upload) WHERE upload IS NOT NULL;

-- uploads.used_at: the last time a submission through the API named the
-- upload (set before the job reaches the projections, so the janitor never
-- removes an upload a submission is on its way with).
-- expired_at, expired_rule, expired_job: when, under which rule and (for
-- retention.work) with which job's working data it was removed.
-- freed_bytes: set once the object is gone; NULL on an expired row means
-- the removal is still to be done (a janitor was killed in between).
ALTER TABLE uploads ADD COLUMN used_at TEXT;
ALTER TABLE uploads ADD COLUMN expired_at TEXT;
ALTER TABLE uploads ADD COLUMN expired_rule TEXT;
ALTER TABLE uploads ADD COLUMN expired_job TEXT;
ALTER TABLE uploads ADD COLUMN freed_bytes BIGINT;

CREATE INDEX uploads_to_expire ON uploads (created_at) WHERE expired_at IS NULL;

-- Who holds a finished job's working data: a retry on its way ('retry',
-- when the API accepted it) or the janitor removing it ('expiring'). One
-- row per job, taken by conditional writes, so a retry and the janitor
-- never both win: a retry accepted after the job finished keeps the janitor
-- off, and once the janitor holds it every retry is refused.
CREATE TABLE work_claims (
    job_id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    at TEXT NOT NULL
);

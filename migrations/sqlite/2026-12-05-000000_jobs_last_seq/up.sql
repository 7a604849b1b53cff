-- Each job's highest event sequence number, kept on its row (see the
-- PostgreSQL migration of the same name).
ALTER TABLE jobs ADD COLUMN last_seq INTEGER NOT NULL DEFAULT 0 CHECK (last_seq >= 0);

UPDATE jobs
SET last_seq = coalesce((SELECT max(seq) FROM events WHERE events.job_id = jobs.id), 0);

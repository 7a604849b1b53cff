-- Each job's highest event sequence number, kept on its row (written in the
-- same transaction as its events): the projector reads it with the job, by
-- primary key, instead of aggregating every event of the batch's jobs.
ALTER TABLE jobs ADD COLUMN last_seq BIGINT NOT NULL DEFAULT 0 CHECK (last_seq >= 0);

UPDATE jobs
SET last_seq = coalesce((SELECT max(seq) FROM events WHERE events.job_id = jobs.id), 0);

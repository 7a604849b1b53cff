DROP TABLE work_claims;
DROP INDEX uploads_to_expire;
ALTER TABLE uploads DROP COLUMN freed_bytes;
ALTER TABLE uploads DROP COLUMN expired_job;
ALTER TABLE uploads DROP COLUMN expired_rule;
ALTER TABLE uploads DROP COLUMN expired_at;
ALTER TABLE uploads DROP COLUMN used_at;
DROP INDEX jobs_by_upload;
ALTER TABLE jobs DROP COLUMN upload;

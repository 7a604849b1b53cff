DROP TABLE offsets;
DROP INDEX events_by_job;
DROP TABLE events;
DROP INDEX jobs_by_submission;
DROP INDEX jobs_by_status;
DROP TABLE jobs;

DROP INDEX jobs_by_labels;
ALTER TABLE jobs DROP COLUMN labels;

-- A job's labels as a JSON object of strings (`{}` when it has none), kept
-- beside the folded state like its status, so that `GET /v1/jobs?label=k=v`
-- filters in SQL. Written with the rest of the row; jobs recorded before
-- take theirs from their stored state.
ALTER TABLE jobs ADD COLUMN labels TEXT NOT NULL DEFAULT '{}';

UPDATE jobs SET labels = COALESCE(json_extract(state, '$.labels'), '{}');

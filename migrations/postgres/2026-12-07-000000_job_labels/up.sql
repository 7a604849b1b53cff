-- A job's labels as a JSON object of strings (`{}` when it has none), kept
-- beside the folded state like its status, so that `GET /v1/jobs?label=k=v`
-- filters in SQL. Written with the rest of the row; jobs recorded before
-- take theirs from their stored state. The column is text on both backends
-- (every query is written once); the index is on its jsonb value, which the
-- label filter's containment test (`labels::jsonb @> '{"k": "v"}'`) uses.
ALTER TABLE jobs ADD COLUMN labels TEXT NOT NULL DEFAULT '{}';

UPDATE jobs SET labels = COALESCE((state::jsonb -> 'labels')::text, '{}');

CREATE INDEX jobs_by_labels ON jobs USING GIN ((labels::jsonb) jsonb_path_ops);

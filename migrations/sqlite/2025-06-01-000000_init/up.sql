-- Sprocket projections (SQLite). Timestamps are fixed-width RFC 3339 UTC text.

CREATE TABLE jobs (
    id           TEXT PRIMARY KEY NOT NULL CHECK (length(id) BETWEEN 1 AND 64),
    status       TEXT NOT NULL
                 CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    phase        TEXT CHECK (phase IN ('ingest', 'analyze', 'render', 'archive')),
    progress     REAL NOT NULL CHECK (progress >= 0 AND progress <= 100),
    attempts     INTEGER NOT NULL CHECK (attempts >= 0),
    submitted_at TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    state        TEXT NOT NULL
);

CREATE INDEX jobs_by_status ON jobs (status, submitted_at, id);
CREATE INDEX jobs_by_submission ON jobs (submitted_at, id);

CREATE TABLE events (
    event_id    TEXT PRIMARY KEY NOT NULL CHECK (event_id <> ''),
    job_id      TEXT NOT NULL,
    seq         INTEGER NOT NULL CHECK (seq >= 1),
    "type"      TEXT NOT NULL,
    occurred_at TEXT NOT NULL,
    body        TEXT NOT NULL,
    topic       TEXT NOT NULL,
    "partition" INTEGER NOT NULL,
    "offset"    INTEGER NOT NULL
);

CREATE UNIQUE INDEX events_by_job ON events (job_id, seq);

CREATE TABLE offsets (
    topic       TEXT NOT NULL,
    "partition" INTEGER NOT NULL,
    next_offset INTEGER NOT NULL CHECK (next_offset >= 0),
    PRIMARY KEY (topic, "partition")
);

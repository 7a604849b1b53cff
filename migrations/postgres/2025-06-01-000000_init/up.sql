-- Sprocket projections (PostgreSQL). Timestamps are fixed-width RFC 3339 UTC text,
-- the same on both backends, so every query is written once. Sort keys compare
-- bytewise (COLLATE "C"), as SQLite does, so both backends page in the same order.

CREATE TABLE jobs (
    id           TEXT COLLATE "C" PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 64),
    status       TEXT NOT NULL
                 CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    phase        TEXT CHECK (phase IN ('ingest', 'analyze', 'render', 'archive')),
    progress     DOUBLE PRECISION NOT NULL CHECK (progress >= 0 AND progress <= 100),
    attempts     INTEGER NOT NULL CHECK (attempts >= 0),
    submitted_at TEXT COLLATE "C" NOT NULL,
    updated_at   TEXT COLLATE "C" NOT NULL,
    state        TEXT NOT NULL
);

CREATE INDEX jobs_by_status ON jobs (status, submitted_at, id);
CREATE INDEX jobs_by_submission ON jobs (submitted_at, id);

CREATE TABLE events (
    event_id    TEXT COLLATE "C" PRIMARY KEY CHECK (event_id <> ''),
    job_id      TEXT COLLATE "C" NOT NULL,
    seq         BIGINT NOT NULL CHECK (seq >= 1),
    "type"      TEXT NOT NULL,
    occurred_at TEXT NOT NULL,
    body        TEXT NOT NULL,
    topic       TEXT NOT NULL,
    "partition" INTEGER NOT NULL,
    "offset"    BIGINT NOT NULL
);

CREATE UNIQUE INDEX events_by_job ON events (job_id, seq);

CREATE TABLE offsets (
    topic       TEXT NOT NULL,
    "partition" INTEGER NOT NULL,
    next_offset BIGINT NOT NULL CHECK (next_offset >= 0),
    PRIMARY KEY (topic, "partition")
);

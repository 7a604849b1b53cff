-- Webhooks (not projections: what the API keeps, which no topic holds;
-- `projector --rebuild` leaves them as they are).

-- A tenant's subscriptions: where to POST which event types, and the secret
-- each delivery is signed with (kept as given: it must be usable to sign).
CREATE TABLE webhooks (
    id         TEXT PRIMARY KEY NOT NULL CHECK (id <> ''),
    tenant     TEXT NOT NULL CHECK (length(tenant) BETWEEN 1 AND 64),
    url        TEXT NOT NULL,
    events     TEXT NOT NULL,
    secret     TEXT NOT NULL,
    created_at TEXT NOT NULL,
    deleted_at TEXT
);
CREATE INDEX webhooks_by_tenant ON webhooks (tenant, created_at);

-- Every delivery attempt, and its outcome: `delivered`, `failed` (another
-- attempt follows), `dead` (given up: a dead letter) or `dropped` (the
-- webhook was deleted before the attempt).
CREATE TABLE webhook_deliveries (
    webhook_id TEXT NOT NULL,
    event_id   TEXT NOT NULL,
    attempt    INTEGER NOT NULL CHECK (attempt >= 1),
    job_id     TEXT NOT NULL,
    event_type TEXT NOT NULL,
    outcome    TEXT NOT NULL,
    status     INTEGER,
    error      TEXT,
    at         TEXT NOT NULL,
    PRIMARY KEY (webhook_id, event_id, attempt)
);
CREATE INDEX webhook_deliveries_by_time ON webhook_deliveries (webhook_id, at);

-- Tenants. A job's tenant is folded from its submission like the rest of
-- its row (NULL for jobs recorded before tenants); listings of one tenant
-- page on these indexes.
ALTER TABLE jobs ADD COLUMN tenant TEXT COLLATE "C" CHECK (length(tenant) BETWEEN 1 AND 64);
CREATE INDEX jobs_by_tenant ON jobs (tenant, submitted_at, id);
CREATE INDEX jobs_by_tenant_status ON jobs (tenant, status, submitted_at, id);

-- Not projections: what the API itself keeps, which no topic holds.
-- `projector --rebuild` leaves them as they are.

-- API keys: only a key's SHA-256 is stored; the key is shown once.
CREATE TABLE api_keys (
    id         TEXT COLLATE "C" PRIMARY KEY CHECK (id <> ''),
    tenant     TEXT COLLATE "C" NOT NULL CHECK (length(tenant) BETWEEN 1 AND 64),
    name       TEXT,
    scopes     TEXT NOT NULL,
    hash       TEXT NOT NULL UNIQUE CHECK (length(hash) = 64),
    created_at TEXT COLLATE "C" NOT NULL,
    revoked_at TEXT
);

-- Uploads and whose they are, for ownership and the daily upload quota.
CREATE TABLE uploads (
    id         TEXT COLLATE "C" PRIMARY KEY CHECK (id <> ''),
    tenant     TEXT COLLATE "C" NOT NULL CHECK (length(tenant) BETWEEN 1 AND 64),
    bytes      BIGINT NOT NULL CHECK (bytes >= 0),
    created_at TEXT COLLATE "C" NOT NULL
);
CREATE INDEX uploads_by_tenant ON uploads (tenant, created_at);

-- The embedded store's schema. Every table is keyed by organization first.
-- Times are milliseconds since the Unix epoch, UTC.

CREATE TABLE orgs (
    org_id INTEGER PRIMARY KEY,
    slug TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    plan TEXT NOT NULL CHECK (plan IN ('team', 'scale', 'enterprise')),
    enterprise_retention_days INTEGER,
    created_at INTEGER NOT NULL
);

-- The head of each organization's log: the writer reads and advances it in
-- the same transaction as the entries, which keeps sequences gapless.
CREATE TABLE log_heads (
    org_id INTEGER PRIMARY KEY REFERENCES orgs (org_id),
    size INTEGER NOT NULL
);

CREATE TABLE api_keys (
    org_id INTEGER NOT NULL REFERENCES orgs (org_id),
    prefix TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    scopes TEXT NOT NULL,          -- space-separated
    secret_hash BLOB NOT NULL,     -- SHA-256 of the whole key
    created_at INTEGER NOT NULL,
    revoked_at INTEGER,
    last_used_at INTEGER,
    PRIMARY KEY (org_id, prefix)
);

CREATE TABLE entries (
    org_id INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    id BLOB NOT NULL,              -- UUIDv7, 16 bytes
    ts INTEGER NOT NULL,           -- when the action occurred
    received_at INTEGER NOT NULL,
    actor_type TEXT NOT NULL,
    actor TEXT NOT NULL,
    event TEXT NOT NULL,
    resource_type TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    resource_name TEXT,
    details TEXT NOT NULL,         -- compact JSON object
    ip_address TEXT,
    user_agent TEXT,
    request_id TEXT,
    idempotency_key TEXT,
    PRIMARY KEY (org_id, seq)
);

-- Listing is newest first by (ts, seq); each filter has an index that ends
-- in (ts, seq), so a first page reads only the rows it returns.
CREATE INDEX entries_by_time ON entries (org_id, ts, seq);
CREATE INDEX entries_by_actor ON entries (org_id, actor, ts, seq);
CREATE INDEX entries_by_event ON entries (org_id, event, ts, seq);
CREATE INDEX entries_by_resource_type ON entries (org_id, resource_type, ts, seq);
CREATE INDEX entries_by_resource_id ON entries (org_id, resource_id, ts, seq);
CREATE UNIQUE INDEX entries_by_id ON entries (org_id, id);
CREATE UNIQUE INDEX entries_by_idempotency_key ON entries (org_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

-- Webhook endpoints and the delivery outbox. A delivery row is written in
-- the same transaction as its entry, so an entry is never committed without
-- its deliveries, and never delivered without being committed.

CREATE TABLE webhooks (
    org_id INTEGER NOT NULL REFERENCES orgs (org_id),
    id TEXT NOT NULL,
    url TEXT NOT NULL,
    description TEXT NOT NULL,
    events TEXT NOT NULL,          -- space-separated patterns; empty = all
    enabled INTEGER NOT NULL,
    secret BLOB NOT NULL,
    previous_secret BLOB,
    previous_secret_until INTEGER,
    created_at INTEGER NOT NULL,
    failing_since INTEGER,
    disabled_reason TEXT,
    PRIMARY KEY (org_id, id)
);

CREATE TABLE deliveries (
    org_id INTEGER NOT NULL,
    id TEXT NOT NULL,
    webhook_id TEXT NOT NULL,
    seq INTEGER NOT NULL,          -- the entry delivered
    status TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts INTEGER NOT NULL,
    next_attempt_at INTEGER,       -- when pending: due time (or lease expiry while in flight)
    last_attempt_at INTEGER,
    last_status INTEGER,           -- HTTP status of the last answer
    last_latency_ms INTEGER,
    last_error TEXT,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (org_id, id)
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_by_webhook ON deliveries (org_id, webhook_id, created_at);
CREATE INDEX deliveries_by_entry ON deliveries (org_id, seq);

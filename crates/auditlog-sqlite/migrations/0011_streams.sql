-- SIEM streams. No outbox row per entry: the log is the queue, and each
-- stream keeps the cursor (the last seq delivered) beside its settings.
-- One sender at a time holds a stream, across processes, by its lease.

CREATE TABLE streams (
    org_id INTEGER NOT NULL REFERENCES orgs (org_id),
    id TEXT NOT NULL,
    transport TEXT NOT NULL CHECK (transport IN ('syslog+tls', 'syslog+tcp')),
    host TEXT NOT NULL,
    port INTEGER NOT NULL,
    format TEXT NOT NULL CHECK (format IN ('rfc5424', 'cef', 'ocsf')),
    events TEXT NOT NULL,          -- space-separated patterns; empty = all
    facility INTEGER NOT NULL,
    app_name TEXT NOT NULL,
    description TEXT NOT NULL,
    enabled INTEGER NOT NULL,
    tls_ca TEXT,                   -- PEM; absent: the system's roots
    tls_client_cert TEXT,          -- PEM
    tls_client_key BLOB,           -- PEM, sealed
    created_at INTEGER NOT NULL,
    revision INTEGER NOT NULL,
    cursor INTEGER NOT NULL,
    failing_since INTEGER,
    last_error TEXT,
    last_delivered_at INTEGER,
    lease_holder TEXT,
    lease_until INTEGER,
    PRIMARY KEY (org_id, id)
);

-- SIEM streams. No outbox row per entry: the log is the queue, and each
-- stream keeps the cursor (the last seq delivered) beside its settings.
-- One sender at a time holds a stream, across replicas, by its lease.

CREATE TABLE streams (
    org_id bigint NOT NULL REFERENCES orgs (org_id),
    id text NOT NULL,
    transport text NOT NULL CHECK (transport IN ('syslog+tls', 'syslog+tcp')),
    host text NOT NULL,
    port integer NOT NULL,
    format text NOT NULL CHECK (format IN ('rfc5424', 'cef', 'ocsf')),
    events text[] NOT NULL,        -- patterns; empty = all
    facility smallint NOT NULL,
    app_name text NOT NULL,
    description text NOT NULL,
    enabled boolean NOT NULL,
    tls_ca text,                   -- PEM; absent: the system's roots
    tls_client_cert text,          -- PEM
    tls_client_key bytea,          -- PEM, sealed
    created_at bigint NOT NULL,
    revision bigint NOT NULL,
    cursor bigint NOT NULL,
    failing_since bigint,
    last_error text,
    last_delivered_at bigint,
    lease_holder text,
    lease_until bigint,
    PRIMARY KEY (org_id, id)
);

-- The PostgreSQL store's schema.
--
-- Times are milliseconds since the Unix epoch, UTC (bigint), as in the domain
-- and the SQLite store: one representation everywhere, exactly the value the
-- Merkle leaves hash.
--
-- Every table that grows with an organization's activity is keyed by org_id
-- first, so a sharded PostgreSQL (Citus) can distribute it on org_id: every
-- primary key and unique constraint includes it. orgs, users, sessions and
-- api_keys are looked up by installation-wide names (slug, email, session
-- token, key prefix); they stay small and would be reference tables there.

CREATE TABLE orgs (
    org_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    slug text NOT NULL UNIQUE,
    name text NOT NULL,
    plan text NOT NULL CHECK (plan IN ('team', 'scale', 'enterprise')),
    enterprise_retention_days bigint,
    sso_issuer text,
    sso_client_id text,
    sso_enforced boolean,
    created_at bigint NOT NULL
);

-- The head of each organization's log. The writer locks its row
-- (SELECT ... FOR UPDATE) for the whole append transaction and assigns
-- sequence numbers from it: appends to one organization from any number of
-- processes are serialized, which keeps sequences gapless and unique and the
-- Merkle tree consistent.
CREATE TABLE log_heads (
    org_id bigint PRIMARY KEY REFERENCES orgs (org_id),
    size bigint NOT NULL
);

-- One account per person (lower-cased email), across organizations.
CREATE TABLE users (
    email text PRIMARY KEY,
    password_hash text,            -- argon2id PHC string; NULL until set
    created_at bigint NOT NULL
);

CREATE TABLE memberships (
    org_id bigint NOT NULL REFERENCES orgs (org_id),
    email text NOT NULL REFERENCES users (email),
    role text NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
    added_at bigint NOT NULL,
    PRIMARY KEY (org_id, email)
);
-- "Which organizations is this person in": by nature across organizations.
CREATE INDEX memberships_by_email ON memberships (email);

CREATE TABLE projects (
    org_id bigint NOT NULL REFERENCES orgs (org_id),
    id text NOT NULL,
    name text NOT NULL,
    created_at bigint NOT NULL,
    PRIMARY KEY (org_id, id)
);

-- Only the SHA-256 of a session's cookie token is kept.
CREATE TABLE sessions (
    token_hash bytea PRIMARY KEY,
    email text NOT NULL REFERENCES users (email),
    csrf_token text NOT NULL,
    created_at bigint NOT NULL,
    expires_at bigint NOT NULL
);
CREATE INDEX sessions_by_expiry ON sessions (expires_at);

CREATE TABLE api_keys (
    org_id bigint NOT NULL REFERENCES orgs (org_id),
    prefix text NOT NULL UNIQUE,   -- public, unique across the installation
    name text NOT NULL,
    scopes text[] NOT NULL,
    secret_hash bytea NOT NULL,    -- SHA-256 of the whole key
    created_at bigint NOT NULL,
    revoked_at bigint,
    last_used_at bigint,
    PRIMARY KEY (org_id, prefix)
);

-- The entries, partitioned by the time the action occurred, one partition a
-- month, so that retention can one day drop a whole expired month instead of
-- deleting row by row. The store creates monthly partitions on demand
-- (named entries_pYYYYMM) for 2000-01 up to 2099-12; the two fixed
-- partitions below catch anything earlier or later, so no timestamp can
-- fail an insert. There is deliberately no DEFAULT partition: attaching a
-- monthly partition then needs no scan of it, and listings newest first can
-- read the partitions in order instead of merging them.
--
-- A primary key on a partitioned table must include the partition key, hence
-- (org_id, seq, ts). That (org_id, seq) alone is unique is the writer's
-- guarantee: it assigns seq under the lock on the organization's log head.
CREATE TABLE entries (
    org_id bigint NOT NULL,
    seq bigint NOT NULL,
    ts bigint NOT NULL,            -- when the action occurred
    received_at bigint NOT NULL,
    id uuid NOT NULL,              -- UUIDv7
    actor_type text NOT NULL,
    actor text NOT NULL,
    event text NOT NULL,
    resource_type text NOT NULL,
    resource_id text NOT NULL,
    resource_name text,
    details json NOT NULL,         -- json, not jsonb: kept byte for byte as recorded
    ip_address inet,
    user_agent text,
    request_id text,
    idempotency_key text,
    PRIMARY KEY (org_id, seq, ts)
) PARTITION BY RANGE (ts);

CREATE TABLE entries_before_2000 PARTITION OF entries
    FOR VALUES FROM (MINVALUE) TO (946684800000);
CREATE TABLE entries_from_2100 PARTITION OF entries
    FOR VALUES FROM (4102444800000) TO (MAXVALUE);

-- Listing is newest first by (ts, seq); each filter has an index that ends
-- in (ts, seq), so a first page reads only the rows it returns.
CREATE INDEX entries_by_time ON entries (org_id, ts, seq);
CREATE INDEX entries_by_actor ON entries (org_id, actor, ts, seq);
CREATE INDEX entries_by_event ON entries (org_id, event, ts, seq);
CREATE INDEX entries_by_resource_type ON entries (org_id, resource_type, ts, seq);
CREATE INDEX entries_by_resource_id ON entries (org_id, resource_id, ts, seq);

-- Looking an entry up by id or by idempotency key needs uniqueness that a
-- partitioned table cannot give (a unique index there must include ts, which
-- neither lookup knows). These two small unpartitioned tables hold it: each
-- maps the name to the entry's (seq, ts), which finds the entry in one
-- partition. They are written in the entry's transaction and deleted with
-- it; a retention step that drops a partition deletes its rows here too.
CREATE TABLE entry_ids (
    org_id bigint NOT NULL,
    id uuid NOT NULL,
    seq bigint NOT NULL,
    ts bigint NOT NULL,
    PRIMARY KEY (org_id, id)
);

CREATE TABLE entry_keys (
    org_id bigint NOT NULL,
    idempotency_key text NOT NULL,
    seq bigint NOT NULL,
    ts bigint NOT NULL,
    PRIMARY KEY (org_id, idempotency_key)
);

-- Webhook endpoints and the delivery outbox. A delivery row is written in
-- the same transaction as its entry, so an entry is never committed without
-- its deliveries, and never delivered without being committed.
CREATE TABLE webhooks (
    org_id bigint NOT NULL REFERENCES orgs (org_id),
    id text NOT NULL,
    url text NOT NULL,
    description text NOT NULL,
    events text[] NOT NULL,        -- patterns; empty = all
    enabled boolean NOT NULL,
    secret bytea NOT NULL,
    previous_secret bytea,
    previous_secret_until bigint,
    created_at bigint NOT NULL,
    failing_since bigint,
    disabled_reason text,
    PRIMARY KEY (org_id, id)
);

CREATE TABLE deliveries (
    org_id bigint NOT NULL,
    id text NOT NULL,
    webhook_id text NOT NULL,
    seq bigint NOT NULL,           -- the entry delivered...
    entry_ts bigint NOT NULL,      -- ...and its partition key, to find it in one partition
    status text NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts integer NOT NULL,
    next_attempt_at bigint,        -- when pending: due time (or lease expiry while in flight)
    last_attempt_at bigint,
    last_status integer,           -- HTTP status of the last answer
    last_latency_ms bigint,
    last_error text,
    created_at bigint NOT NULL,
    PRIMARY KEY (org_id, id)
);
-- The dispatcher claims due deliveries across organizations, oldest first;
-- this is the one index that by nature does not start with org_id.
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_by_webhook ON deliveries (org_id, webhook_id, created_at);
CREATE INDEX deliveries_by_entry ON deliveries (org_id, seq);

-- Tamper evidence: each organization's log is an RFC 9162 Merkle tree
-- (leaf index = seq - 1), stored as the SQLite store stores it: leaf hashes
-- packed 256 to a tile, and a row only for perfect subtrees of level 8 and
-- up; the levels between are recomputed from a tile when a proof needs them.
-- Both are written in the transaction that adds their entries, and purging
-- entries leaves them alone, so proofs and roots outlive retention.
CREATE TABLE merkle_leaves (
    org_id bigint NOT NULL REFERENCES orgs (org_id),
    tile bigint NOT NULL,          -- leaves tile*256 .. tile*256+255
    hashes bytea NOT NULL,         -- 32 bytes a leaf, in order
    PRIMARY KEY (org_id, tile)
);
-- Hashes do not compress; trying to on every rewrite of a tile is wasted work.
ALTER TABLE merkle_leaves ALTER COLUMN hashes SET STORAGE EXTERNAL;

CREATE TABLE merkle_nodes (
    org_id bigint NOT NULL REFERENCES orgs (org_id),
    level smallint NOT NULL,       -- 8 and up
    idx bigint NOT NULL,
    hash bytea NOT NULL,
    PRIMARY KEY (org_id, level, idx)
);

-- Signed checkpoints (C2SP tlog-checkpoint notes), one per signed size.
CREATE TABLE checkpoints (
    org_id bigint NOT NULL REFERENCES orgs (org_id),
    size bigint NOT NULL,
    root bytea NOT NULL,
    note text NOT NULL,
    signed_at bigint NOT NULL,
    PRIMARY KEY (org_id, size)
);

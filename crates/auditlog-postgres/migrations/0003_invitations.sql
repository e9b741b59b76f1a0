-- Invitations and password resets: single-use, expiring tokens with which
-- a person joins an organization or sets their own password. Only the
-- token's SHA-256 is kept. Keyed by organization first like every table;
-- the token's hash is unique across the installation, as it is looked up
-- alone.
CREATE TABLE invitations (
    org_id bigint NOT NULL REFERENCES orgs (org_id),
    token_hash bytea NOT NULL UNIQUE,
    kind text NOT NULL CHECK (kind IN ('join', 'password_reset')),
    email text NOT NULL,
    role text NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
    invited_by text NOT NULL,
    created_at bigint NOT NULL,
    expires_at bigint NOT NULL,
    accepted_at bigint,
    PRIMARY KEY (org_id, token_hash)
);

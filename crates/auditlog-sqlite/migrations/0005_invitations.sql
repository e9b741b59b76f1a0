-- Invitations and password resets: single-use, expiring tokens with which
-- a person joins an organization or sets their own password. Only the
-- token's SHA-256 is kept.
CREATE TABLE invitations (
    org_id INTEGER NOT NULL REFERENCES orgs (org_id),
    token_hash BLOB NOT NULL UNIQUE,
    kind TEXT NOT NULL CHECK (kind IN ('join', 'password_reset')),
    email TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
    invited_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    accepted_at INTEGER,
    PRIMARY KEY (org_id, token_hash)
);

-- People, roles, projects and web sessions.

ALTER TABLE orgs ADD COLUMN sso_issuer TEXT;
ALTER TABLE orgs ADD COLUMN sso_client_id TEXT;
ALTER TABLE orgs ADD COLUMN sso_enforced INTEGER;

-- One account per person (lower-cased email), across organizations.
CREATE TABLE users (
    email TEXT PRIMARY KEY,
    password_hash TEXT,            -- argon2id PHC string; NULL until set
    created_at INTEGER NOT NULL
);

CREATE TABLE memberships (
    org_id INTEGER NOT NULL REFERENCES orgs (org_id),
    email TEXT NOT NULL REFERENCES users (email),
    role TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
    added_at INTEGER NOT NULL,
    PRIMARY KEY (org_id, email)
);
CREATE INDEX memberships_by_email ON memberships (email);

CREATE TABLE projects (
    org_id INTEGER NOT NULL REFERENCES orgs (org_id),
    id TEXT NOT NULL,
    name TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (org_id, id)
);

-- Only the SHA-256 of a session's cookie token is kept.
CREATE TABLE sessions (
    token_hash BLOB PRIMARY KEY,
    email TEXT NOT NULL REFERENCES users (email),
    csrf_token TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX sessions_by_expiry ON sessions (expires_at);

-- Single sign-on through each organization's OpenID Connect provider.
--
-- The client secret is sealed with the server's key, as webhook secrets
-- are. Allowed email domains are kept comma-separated (a domain holds no
-- comma); provisioning names the role given to people signing in for the
-- first time, NULL when they are refused.
ALTER TABLE orgs ADD COLUMN sso_client_secret BLOB;
ALTER TABLE orgs ADD COLUMN sso_allowed_domains TEXT;
ALTER TABLE orgs ADD COLUMN sso_provision_role TEXT;

-- How each session began: 'password', 'sso' (for the organization in
-- sso_org_id) or 'break_glass'. Enforced single sign-on admits only
-- sessions begun through that organization's provider.
ALTER TABLE sessions ADD COLUMN method TEXT NOT NULL DEFAULT 'password';
ALTER TABLE sessions ADD COLUMN sso_org_id INTEGER;

-- Sign-ins under way: the browser went to the provider and has not come
-- back. Keyed by the SHA-256 of the `state` it carries, so a row is found
-- only by whoever holds the state; taken (deleted) when it comes back, so a
-- replayed state finds nothing. The nonce and PKCE verifier are sealed.
CREATE TABLE sso_flows (
    state_hash BLOB PRIMARY KEY,
    org_id INTEGER NOT NULL REFERENCES orgs (org_id),
    sealed BLOB NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX sso_flows_by_expiry ON sso_flows (expires_at);

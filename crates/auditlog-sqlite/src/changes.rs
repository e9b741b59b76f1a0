//! Applying a management [`Change`] inside the writer's transaction.
//!
//! Each change is a compare-and-set on what the caller saw; a value that
//! moved meanwhile refuses the change (`stale`) rather than record an entry
//! describing a state that never existed. The rules themselves (stale
//! values, the last owner) are the domain's [`change_rules`](rules); this
//! file reads what they need inside the same transaction, so no
//! interleaving can leave an organization without an owner. Changes to
//! people's accounts are in [`accounts`].

use auditlog_domain::change::{Change, WebhookSettings};
use auditlog_domain::change_rules as rules;
use auditlog_domain::member::Project;
use auditlog_domain::org::SsoConfig;
use auditlog_domain::sso;
use auditlog_domain::store::NewApiKey;
use auditlog_domain::webhook::Endpoint;
use auditlog_domain::{OrgId, Role, StoreError, SubmittedBy};
use r2d2_sqlite::rusqlite::{self, Connection, OptionalExtension, params};

use crate::accounts;
use crate::rows::{conflict_or, db_err, patterns_to_text, scopes_to_text};

fn owners(conn: &Connection, org: OrgId) -> Result<u64, StoreError> {
    conn.query_row(
        "SELECT count(*) FROM memberships WHERE org_id = ?1 AND role = 'owner'",
        [org.0],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n.max(0) as u64)
    .map_err(db_err)
}

fn current_role(conn: &Connection, org: OrgId, email: &str) -> Result<Option<String>, StoreError> {
    conn.query_row(
        "SELECT role FROM memberships WHERE org_id = ?1 AND email = ?2",
        params![org.0, email],
        |r| r.get(0),
    )
    .optional()
    .map_err(db_err)
}

/// Runs a compare-and-set statement that must match exactly one row.
fn execute_one(conn: &Connection, sql: &str, params: impl rusqlite::Params, what: &str) -> Result<(), StoreError> {
    let n = conn.execute(sql, params).map_err(db_err)?;
    rules::expect_one(n as u64, what)
}

/// Applies one change; each kind has its own function below.
pub fn apply(conn: &Connection, org: OrgId, change: &Change, now: i64) -> Result<(), StoreError> {
    match change {
        Change::EraseSubject {
            pseudonym,
            token,
            entries,
        } => crate::personal::erase(conn, org, pseudonym, token, *entries),
        Change::RenameOrg { old, new } => execute_one(
            conn,
            "UPDATE orgs SET name = ?3 WHERE org_id = ?1 AND name = ?2",
            params![org.0, old, new],
            "the organization's name",
        ),
        Change::SetPlan {
            old,
            new,
            enterprise_retention_days,
        } => execute_one(
            conn,
            "UPDATE orgs SET plan = ?3, enterprise_retention_days = ?4 WHERE org_id = ?1 AND plan = ?2",
            params![org.0, old.as_str(), new.as_str(), enterprise_retention_days],
            "the organization's plan",
        ),
        Change::ConfigureSso(config) => configure_sso(conn, org, config.as_ref()),
        Change::SetRole { email, from, to } => set_role(conn, org, email, *from, *to),
        Change::RemoveMember { email, role } => remove_member(conn, org, email, *role),
        Change::CreateKey(key) => create_key(conn, org, key, now),
        Change::RevokeKey { prefix, at } => execute_one(
            conn,
            "UPDATE api_keys SET revoked_at = ?3 WHERE org_id = ?1 AND prefix = ?2 AND revoked_at IS NULL",
            params![org.0, prefix.as_str(), at.millis()],
            &format!("API key {prefix}"),
        ),
        Change::TouchKey { prefix, previous, at } => execute_one(
            conn,
            "UPDATE api_keys SET last_used_at = ?4 WHERE org_id = ?1 AND prefix = ?2 AND last_used_at IS ?3",
            params![org.0, prefix.as_str(), previous.map(|t| t.millis()), at.millis()],
            &format!("API key {prefix}'s last use"),
        ),
        Change::CreateProject(p) => create_project(conn, org, p),
        Change::RenameProject { id, old, new } => execute_one(
            conn,
            "UPDATE projects SET name = ?4 WHERE org_id = ?1 AND id = ?2 AND name = ?3",
            params![org.0, id, old, new],
            &format!("project {id}"),
        ),
        Change::DeleteProject { id } => execute_one(
            conn,
            "DELETE FROM projects WHERE org_id = ?1 AND id = ?2",
            params![org.0, id],
            &format!("project {id}"),
        ),
        webhook @ (Change::CreateWebhook(_)
        | Change::UpdateWebhook(_)
        | Change::DeleteWebhook { .. }
        | Change::RotateWebhookSecret { .. }
        | Change::DisableWebhook { .. }) => apply_webhook(conn, org, webhook),
        stream @ (Change::CreateStream(_) | Change::UpdateStream { .. } | Change::DeleteStream { .. }) => {
            crate::streams::apply(conn, org, stream)
        }
        account => accounts::apply(conn, org, account, now),
    }
}

/// The changes to webhook endpoints.
fn apply_webhook(conn: &Connection, org: OrgId, change: &Change) -> Result<(), StoreError> {
    match change {
        Change::CreateWebhook(w) => create_webhook(conn, org, w),
        Change::UpdateWebhook(w) => update_webhook(conn, org, w),
        Change::DeleteWebhook { id } => delete_webhook(conn, org, id),
        Change::RotateWebhookSecret {
            id,
            new,
            previous_until,
        } => execute_one(
            conn,
            "UPDATE webhooks SET previous_secret = secret, previous_secret_until = ?4, secret = ?3 \
             WHERE org_id = ?1 AND id = ?2",
            params![org.0, id, new.0, previous_until.millis()],
            &format!("webhook {id}"),
        ),
        Change::DisableWebhook { id, reason } => execute_one(
            conn,
            "UPDATE webhooks SET enabled = 0, disabled_reason = ?3 WHERE org_id = ?1 AND id = ?2 AND enabled",
            params![org.0, id, reason],
            &format!("webhook {id}"),
        ),
        other => Err(StoreError::Internal(format!("not a change to webhooks: {other:?}"))),
    }
}

fn configure_sso(conn: &Connection, org: OrgId, config: Option<&SsoConfig>) -> Result<(), StoreError> {
    let sso = config.map(|c| &c.settings);
    // Removing single sign-on removes its secret; changing it keeps the
    // stored secret unless a new one is given.
    conn.execute(
        "UPDATE orgs SET sso_issuer = ?2, sso_client_id = ?3, sso_enforced = ?4, sso_allowed_domains = ?5, \
         sso_provision_role = ?6, sso_client_secret = CASE WHEN ?2 IS NULL THEN NULL ELSE coalesce(?7, sso_client_secret) END \
         WHERE org_id = ?1",
        params![
            org.0,
            sso.map(|s| s.issuer.as_str()),
            sso.map(|s| s.client_id.as_str()),
            sso.map(|s| s.enforced),
            sso.and_then(|s| sso::stored_domains(&s.allowed_domains)),
            sso.and_then(|s| s.provision_role.map(Role::as_str)),
            config.and_then(|c| c.sealed_secret.as_deref()),
        ],
    )
    .map_err(db_err)?;
    Ok(())
}

fn set_role(conn: &Connection, org: OrgId, email: &str, from: Role, to: Role) -> Result<(), StoreError> {
    rules::role_as_seen(
        current_role(conn, org, email)?.as_deref(),
        from,
        &format!("{email}'s role"),
    )?;
    rules::keep_an_owner(email, from, Some(to), owners(conn, org)?)?;
    conn.execute(
        "UPDATE memberships SET role = ?3 WHERE org_id = ?1 AND email = ?2",
        params![org.0, email, to.as_str()],
    )
    .map_err(db_err)?;
    Ok(())
}

fn remove_member(conn: &Connection, org: OrgId, email: &str, role: Role) -> Result<(), StoreError> {
    rules::role_as_seen(
        current_role(conn, org, email)?.as_deref(),
        role,
        &format!("{email}'s membership"),
    )?;
    rules::keep_an_owner(email, role, None, owners(conn, org)?)?;
    conn.execute(
        "DELETE FROM memberships WHERE org_id = ?1 AND email = ?2",
        params![org.0, email],
    )
    .map_err(db_err)?;
    Ok(())
}

fn create_key(conn: &Connection, org: OrgId, key: &NewApiKey, now: i64) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO api_keys (org_id, prefix, name, scopes, secret_hash, created_at, created_by) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            org.0,
            key.prefix.as_str(),
            key.name,
            scopes_to_text(&key.scopes),
            &key.hash.0[..],
            now,
            key.created_by.as_ref().map(SubmittedBy::to_text),
        ],
    )
    .map_err(|e| conflict_or(e, format!("API key {}", key.prefix)))?;
    Ok(())
}

fn create_project(conn: &Connection, org: OrgId, p: &Project) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO projects (org_id, id, name, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![org.0, p.id, p.name, p.created_at.millis()],
    )
    .map_err(|e| conflict_or(e, format!("project {}", p.id)))?;
    Ok(())
}

fn create_webhook(conn: &Connection, org: OrgId, w: &Endpoint) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO webhooks (org_id, id, url, description, events, enabled, secret, created_at, payload_format) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            org.0,
            w.id,
            w.url,
            w.description,
            patterns_to_text(&w.events),
            w.enabled,
            w.secret.0,
            w.created_at.millis(),
            w.payload_format.as_str()
        ],
    )
    .map_err(|e| conflict_or(e, format!("webhook {}", w.id)))?;
    Ok(())
}

/// Replaces an endpoint's settings; re-enabling it clears its failure.
fn update_webhook(conn: &Connection, org: OrgId, w: &WebhookSettings) -> Result<(), StoreError> {
    let events = patterns_to_text(&w.events);
    execute_one(
        conn,
        "UPDATE webhooks SET url = ?3, description = ?4, events = ?5, enabled = ?6, payload_format = ?7, \
         failing_since = CASE WHEN ?6 AND NOT enabled THEN NULL ELSE failing_since END, \
         disabled_reason = CASE WHEN ?6 THEN NULL ELSE disabled_reason END \
         WHERE org_id = ?1 AND id = ?2",
        params![
            org.0,
            w.id,
            w.url,
            w.description,
            events,
            w.enabled,
            w.payload_format.as_str()
        ],
        &format!("webhook {}", w.id),
    )
}

/// Deletes the endpoint and the deliveries still waiting for it.
fn delete_webhook(conn: &Connection, org: OrgId, id: &str) -> Result<(), StoreError> {
    let n = conn
        .execute("DELETE FROM webhooks WHERE org_id = ?1 AND id = ?2", params![org.0, id])
        .map_err(db_err)?;
    conn.execute(
        "DELETE FROM deliveries WHERE org_id = ?1 AND webhook_id = ?2 AND status = 'pending'",
        params![org.0, id],
    )
    .map_err(db_err)?;
    rules::expect_one(n as u64, &format!("webhook {id}"))
}

//! Applying a management [`Change`] inside the writer's transaction, laid
//! out as the SQLite store's `changes`.
//!
//! Each change is a compare-and-set on what the caller saw; a value that
//! moved meanwhile refuses the change (`stale`) rather than record an entry
//! describing a state that never existed. The rules are the domain's
//! [`change_rules`](rules); the last-owner rule is read here, inside the
//! same transaction, after the organization's log head was locked: changes to one organization are serialized with its appends, so
//! no interleaving of replicas can leave it without an owner.

use auditlog_domain::change::{Change, WebhookSettings};
use auditlog_domain::change_rules as rules;
use auditlog_domain::member::Project;
use auditlog_domain::org::SsoConfig;
use auditlog_domain::sso;
use auditlog_domain::store::NewApiKey;
use auditlog_domain::webhook::Endpoint;
use auditlog_domain::{OrgId, Role, StoreError, SubmittedBy};
use deadpool_postgres::Transaction;

use crate::accounts;
use crate::db::{self, Params};
use crate::error::{Failure, conflict_or};
use crate::rows::{get, patterns_to_sql, scopes_to_sql};

fn conflict(e: tokio_postgres::Error, what: String) -> Failure {
    Failure::Store(conflict_or(e, what))
}

/// Inserts one new row; a unique key already taken is a conflict naming
/// `what`.
async fn insert_new(tx: &Transaction<'_>, sql: &str, params: Params<'_>, what: String) -> Result<(), Failure> {
    db::execute(tx, sql, params).await.map_err(|e| conflict(e, what))?;
    Ok(())
}

async fn owners(tx: &Transaction<'_>, org: OrgId) -> Result<u64, Failure> {
    let r = db::query_one(
        tx,
        "SELECT count(*) FROM memberships WHERE org_id = $1 AND role = 'owner'",
        &[&org.0],
    )
    .await?;
    Ok(get::<i64>(&r, 0)?.max(0) as u64)
}

async fn current_role(tx: &Transaction<'_>, org: OrgId, email: &str) -> Result<Option<String>, Failure> {
    let r = db::query_opt(
        tx,
        "SELECT role FROM memberships WHERE org_id = $1 AND email = $2",
        &[&org.0, &email],
    )
    .await?;
    Ok(r.map(|r| get(&r, 0)).transpose()?)
}

/// Runs a compare-and-set statement that must match exactly one row.
async fn execute_one(tx: &Transaction<'_>, sql: &str, params: Params<'_>, what: &str) -> Result<(), Failure> {
    let n = db::execute(tx, sql, params).await?;
    Ok(rules::expect_one(n, what)?)
}

/// Applies one change; each kind has its own function below.
pub async fn apply(tx: &Transaction<'_>, org: OrgId, change: &Change, now: i64) -> Result<(), Failure> {
    match change {
        Change::EraseSubject {
            pseudonym,
            token,
            entries,
        } => crate::personal::erase(tx, org, pseudonym, token, *entries).await,
        Change::RenameOrg { old, new } => {
            execute_one(
                tx,
                "UPDATE orgs SET name = $3 WHERE org_id = $1 AND name = $2",
                &[&org.0, old, new],
                "the organization's name",
            )
            .await
        }
        Change::SetPlan {
            old,
            new,
            enterprise_retention_days,
        } => {
            execute_one(
                tx,
                "UPDATE orgs SET plan = $3, enterprise_retention_days = $4 WHERE org_id = $1 AND plan = $2",
                &[
                    &org.0,
                    &old.as_str(),
                    &new.as_str(),
                    &enterprise_retention_days.map(i64::from),
                ],
                "the organization's plan",
            )
            .await
        }
        Change::ConfigureSso(config) => configure_sso(tx, org, config.as_ref()).await,
        Change::SetRole { email, from, to } => set_role(tx, org, email, *from, *to).await,
        Change::RemoveMember { email, role } => remove_member(tx, org, email, *role).await,
        key @ (Change::CreateKey(_) | Change::RevokeKey { .. } | Change::TouchKey { .. }) => {
            apply_key(tx, org, key, now).await
        }
        Change::CreateProject(p) => create_project(tx, org, p).await,
        Change::RenameProject { id, old, new } => {
            execute_one(
                tx,
                "UPDATE projects SET name = $4 WHERE org_id = $1 AND id = $2 AND name = $3",
                &[&org.0, id, old, new],
                &format!("project {id}"),
            )
            .await
        }
        Change::DeleteProject { id } => {
            execute_one(
                tx,
                "DELETE FROM projects WHERE org_id = $1 AND id = $2",
                &[&org.0, id],
                &format!("project {id}"),
            )
            .await
        }
        webhook @ (Change::CreateWebhook(_)
        | Change::UpdateWebhook(_)
        | Change::DeleteWebhook { .. }
        | Change::RotateWebhookSecret { .. }
        | Change::DisableWebhook { .. }) => apply_webhook(tx, org, webhook).await,
        stream @ (Change::CreateStream(_) | Change::UpdateStream { .. } | Change::DeleteStream { .. }) => {
            crate::streams::apply(tx, org, stream).await
        }
        account => accounts::apply(tx, org, account, now).await,
    }
}

/// The changes to API keys.
async fn apply_key(tx: &Transaction<'_>, org: OrgId, change: &Change, now: i64) -> Result<(), Failure> {
    match change {
        Change::CreateKey(key) => create_key(tx, org, key, now).await,
        Change::RevokeKey { prefix, at } => {
            execute_one(
                tx,
                "UPDATE api_keys SET revoked_at = $3 WHERE org_id = $1 AND prefix = $2 AND revoked_at IS NULL",
                &[&org.0, &prefix.as_str(), &at.millis()],
                &format!("API key {prefix}"),
            )
            .await
        }
        Change::TouchKey { prefix, previous, at } => {
            execute_one(
                tx,
                "UPDATE api_keys SET last_used_at = $4 \
                 WHERE org_id = $1 AND prefix = $2 AND last_used_at IS NOT DISTINCT FROM $3",
                &[&org.0, &prefix.as_str(), &previous.map(|t| t.millis()), &at.millis()],
                &format!("API key {prefix}'s last use"),
            )
            .await
        }
        other => Err(Failure::Store(StoreError::Internal(format!(
            "not a change to API keys: {other:?}"
        )))),
    }
}

/// The changes to webhook endpoints.
async fn apply_webhook(tx: &Transaction<'_>, org: OrgId, change: &Change) -> Result<(), Failure> {
    match change {
        Change::CreateWebhook(w) => create_webhook(tx, org, w).await,
        Change::UpdateWebhook(w) => update_webhook(tx, org, w).await,
        Change::DeleteWebhook { id } => delete_webhook(tx, org, id).await,
        Change::RotateWebhookSecret {
            id,
            new,
            previous_until,
        } => {
            execute_one(
                tx,
                "UPDATE webhooks SET previous_secret = secret, previous_secret_until = $4, secret = $3 \
                 WHERE org_id = $1 AND id = $2",
                &[&org.0, id, &new.0, &previous_until.millis()],
                &format!("webhook {id}"),
            )
            .await
        }
        Change::DisableWebhook { id, reason } => {
            execute_one(
                tx,
                "UPDATE webhooks SET enabled = false, disabled_reason = $3 WHERE org_id = $1 AND id = $2 AND enabled",
                &[&org.0, id, reason],
                &format!("webhook {id}"),
            )
            .await
        }
        other => Err(StoreError::Internal(format!("not a change to webhooks: {other:?}")).into()),
    }
}

async fn configure_sso(tx: &Transaction<'_>, org: OrgId, config: Option<&SsoConfig>) -> Result<(), Failure> {
    let sso = config.map(|c| &c.settings);
    // Removing single sign-on removes its secret; changing it keeps the
    // stored secret unless a new one is given.
    db::execute(
        tx,
        "UPDATE orgs SET sso_issuer = $2, sso_client_id = $3, sso_enforced = $4, sso_allowed_domains = $5, \
         sso_provision_role = $6, \
         sso_client_secret = CASE WHEN $2::text IS NULL THEN NULL ELSE coalesce($7, sso_client_secret) END \
         WHERE org_id = $1",
        &[
            &org.0,
            &sso.map(|s| s.issuer.as_str()),
            &sso.map(|s| s.client_id.as_str()),
            &sso.map(|s| s.enforced),
            &sso.and_then(|s| sso::stored_domains(&s.allowed_domains)),
            &sso.and_then(|s| s.provision_role.map(Role::as_str)),
            &config.and_then(|c| c.sealed_secret.as_deref()),
        ],
    )
    .await?;
    Ok(())
}

async fn set_role(tx: &Transaction<'_>, org: OrgId, email: &str, from: Role, to: Role) -> Result<(), Failure> {
    rules::role_as_seen(
        current_role(tx, org, email).await?.as_deref(),
        from,
        &format!("{email}'s role"),
    )?;
    rules::keep_an_owner(email, from, Some(to), owners(tx, org).await?)?;
    db::execute(
        tx,
        "UPDATE memberships SET role = $3 WHERE org_id = $1 AND email = $2",
        &[&org.0, &email, &to.as_str()],
    )
    .await?;
    Ok(())
}

async fn remove_member(tx: &Transaction<'_>, org: OrgId, email: &str, role: Role) -> Result<(), Failure> {
    rules::role_as_seen(
        current_role(tx, org, email).await?.as_deref(),
        role,
        &format!("{email}'s membership"),
    )?;
    rules::keep_an_owner(email, role, None, owners(tx, org).await?)?;
    db::execute(
        tx,
        "DELETE FROM memberships WHERE org_id = $1 AND email = $2",
        &[&org.0, &email],
    )
    .await?;
    Ok(())
}

async fn create_key(tx: &Transaction<'_>, org: OrgId, key: &NewApiKey, now: i64) -> Result<(), Failure> {
    insert_new(
        tx,
        "INSERT INTO api_keys (org_id, prefix, name, scopes, secret_hash, created_at, created_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &[
            &org.0,
            &key.prefix.as_str(),
            &key.name,
            &scopes_to_sql(&key.scopes),
            &&key.hash.0[..],
            &now,
            &key.created_by.as_ref().map(SubmittedBy::to_text),
        ],
        format!("API key {}", key.prefix),
    )
    .await
}

async fn create_project(tx: &Transaction<'_>, org: OrgId, p: &Project) -> Result<(), Failure> {
    insert_new(
        tx,
        "INSERT INTO projects (org_id, id, name, created_at) VALUES ($1, $2, $3, $4)",
        &[&org.0, &p.id, &p.name, &p.created_at.millis()],
        format!("project {}", p.id),
    )
    .await
}

async fn create_webhook(tx: &Transaction<'_>, org: OrgId, w: &Endpoint) -> Result<(), Failure> {
    insert_new(
        tx,
        "INSERT INTO webhooks (org_id, id, url, description, events, enabled, secret, created_at, payload_format) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        &[
            &org.0,
            &w.id,
            &w.url,
            &w.description,
            &patterns_to_sql(&w.events),
            &w.enabled,
            &w.secret.0,
            &w.created_at.millis(),
            &w.payload_format.as_str(),
        ],
        format!("webhook {}", w.id),
    )
    .await
}

/// Replaces an endpoint's settings; re-enabling it clears its failure.
async fn update_webhook(tx: &Transaction<'_>, org: OrgId, w: &WebhookSettings) -> Result<(), Failure> {
    let events = patterns_to_sql(&w.events);
    execute_one(
        tx,
        "UPDATE webhooks SET url = $3, description = $4, events = $5, enabled = $6, payload_format = $7, \
         failing_since = CASE WHEN $6 AND NOT enabled THEN NULL ELSE failing_since END, \
         disabled_reason = CASE WHEN $6 THEN NULL ELSE disabled_reason END \
         WHERE org_id = $1 AND id = $2",
        &[
            &org.0,
            &w.id,
            &w.url,
            &w.description,
            &events,
            &w.enabled,
            &w.payload_format.as_str(),
        ],
        &format!("webhook {}", w.id),
    )
    .await
}

/// Deletes the endpoint and the deliveries still waiting for it.
async fn delete_webhook(tx: &Transaction<'_>, org: OrgId, id: &str) -> Result<(), Failure> {
    let n = db::execute(tx, "DELETE FROM webhooks WHERE org_id = $1 AND id = $2", &[&org.0, &id]).await?;
    db::execute(
        tx,
        "DELETE FROM deliveries WHERE org_id = $1 AND webhook_id = $2 AND status = 'pending'",
        &[&org.0, &id],
    )
    .await?;
    Ok(rules::expect_one(n, &format!("webhook {id}"))?)
}

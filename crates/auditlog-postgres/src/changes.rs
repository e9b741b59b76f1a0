//! Applying a management [`Change`] inside the writer's transaction, with
//! the SQLite store's rules.
//!
//! Each change is a compare-and-set on what the caller saw; a value that
//! moved meanwhile refuses the change (`stale`) rather than record an entry
//! describing a state that never existed. The last-owner rule is checked
//! here, inside the same transaction, after the organization's log head was
//! locked: changes to one organization are serialized with its appends, so
//! no interleaving of replicas can leave it without an owner.

use auditlog_domain::change::Change;
use auditlog_domain::{OrgId, Role, StoreError};
use deadpool_postgres::Transaction;

use crate::accounts;
use crate::db;
use crate::error::{Failure, conflict_or};
use crate::rows::{get, patterns_to_sql, scopes_to_sql};

fn rejected(code: &'static str, message: impl Into<String>) -> Failure {
    Failure::Store(StoreError::Rejected {
        code,
        message: message.into(),
    })
}

fn stale(what: &str) -> Failure {
    rejected("stale", format!("{what} changed meanwhile; reload and try again"))
}

fn expect_one(n: u64, what: &str) -> Result<(), Failure> {
    if n == 1 { Ok(()) } else { Err(stale(what)) }
}

fn conflict(e: tokio_postgres::Error, what: String) -> Failure {
    Failure::Store(conflict_or(e, what))
}

async fn owners(tx: &Transaction<'_>, org: OrgId) -> Result<i64, Failure> {
    let r = db::query_one(
        tx,
        "SELECT count(*) FROM memberships WHERE org_id = $1 AND role = 'owner'",
        &[&org.0],
    )
    .await?;
    Ok(get(&r, 0)?)
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

/// Refuses to take the organization's only owner away.
async fn keep_an_owner(
    tx: &Transaction<'_>,
    org: OrgId,
    email: &str,
    from: Role,
    to: Option<Role>,
) -> Result<(), Failure> {
    if from == Role::Owner && to != Some(Role::Owner) && owners(tx, org).await? <= 1 {
        let what = if to.is_some() { "demoted" } else { "removed" };
        return Err(rejected(
            "last_owner",
            format!("{email} is the organization's last owner and cannot be {what}; make someone else an owner first"),
        ));
    }
    Ok(())
}

pub async fn apply(tx: &Transaction<'_>, org: OrgId, change: &Change, now: i64) -> Result<(), Failure> {
    match change {
        Change::RenameOrg { old, new } => {
            let n = db::execute(
                tx,
                "UPDATE orgs SET name = $3 WHERE org_id = $1 AND name = $2",
                &[&org.0, old, new],
            )
            .await?;
            expect_one(n, "the organization's name")
        }
        Change::SetPlan {
            old,
            new,
            enterprise_retention_days,
        } => {
            let days = enterprise_retention_days.map(i64::from);
            let n = db::execute(
                tx,
                "UPDATE orgs SET plan = $3, enterprise_retention_days = $4 WHERE org_id = $1 AND plan = $2",
                &[&org.0, &old.as_str(), &new.as_str(), &days],
            )
            .await?;
            expect_one(n, "the organization's plan")
        }
        Change::ConfigureSso(sso) => {
            db::execute(
                tx,
                "UPDATE orgs SET sso_issuer = $2, sso_client_id = $3, sso_enforced = $4 WHERE org_id = $1",
                &[
                    &org.0,
                    &sso.as_ref().map(|s| s.issuer.as_str()),
                    &sso.as_ref().map(|s| s.client_id.as_str()),
                    &sso.as_ref().map(|s| s.enforced),
                ],
            )
            .await?;
            Ok(())
        }
        Change::AddMember { email, role } => accounts::add_member(tx, org, email, *role, now).await,
        Change::SetPassword { email, password_hash } => accounts::set_password(tx, email, password_hash, now).await,
        Change::Invite(inv) => accounts::invite(tx, org, inv).await,
        Change::AcceptInvitation {
            token_hash,
            email,
            role,
            new_account,
            at,
        } => {
            let a = accounts::Acceptance {
                token_hash,
                email,
                role: *role,
                new_account: new_account.as_deref(),
                at: at.millis(),
            };
            accounts::accept(tx, org, a).await
        }
        Change::ForceReset {
            memberships,
            invitation,
        } => accounts::force_reset(tx, org, memberships, invitation).await,
        Change::CompleteReset {
            token_hash,
            email,
            password_hash,
            at,
        } => accounts::complete_reset(tx, org, token_hash, email, password_hash, at.millis()).await,
        Change::ChangePassword {
            email,
            old_hash,
            new_hash,
            keep,
        } => accounts::change_password(tx, email, old_hash, new_hash, keep).await,
        Change::SetRole { email, from, to } => {
            if current_role(tx, org, email).await?.as_deref() != Some(from.as_str()) {
                return Err(stale(&format!("{email}'s role")));
            }
            keep_an_owner(tx, org, email, *from, Some(*to)).await?;
            db::execute(
                tx,
                "UPDATE memberships SET role = $3 WHERE org_id = $1 AND email = $2",
                &[&org.0, email, &to.as_str()],
            )
            .await?;
            Ok(())
        }
        Change::RemoveMember { email, role } => {
            if current_role(tx, org, email).await?.as_deref() != Some(role.as_str()) {
                return Err(stale(&format!("{email}'s membership")));
            }
            keep_an_owner(tx, org, email, *role, None).await?;
            db::execute(
                tx,
                "DELETE FROM memberships WHERE org_id = $1 AND email = $2",
                &[&org.0, email],
            )
            .await?;
            Ok(())
        }
        Change::CreateKey(key) => {
            db::execute(
                tx,
                "INSERT INTO api_keys (org_id, prefix, name, scopes, secret_hash, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[
                    &org.0,
                    &key.prefix.as_str(),
                    &key.name,
                    &scopes_to_sql(&key.scopes),
                    &&key.hash.0[..],
                    &now,
                ],
            )
            .await
            .map_err(|e| conflict(e, format!("API key {}", key.prefix)))?;
            Ok(())
        }
        Change::RevokeKey { prefix, at } => {
            let n = db::execute(
                tx,
                "UPDATE api_keys SET revoked_at = $3 WHERE org_id = $1 AND prefix = $2 AND revoked_at IS NULL",
                &[&org.0, &prefix.as_str(), &at.millis()],
            )
            .await?;
            expect_one(n, &format!("API key {prefix}"))
        }
        Change::TouchKey { prefix, previous, at } => {
            let n = db::execute(
                tx,
                "UPDATE api_keys SET last_used_at = $4 \
                 WHERE org_id = $1 AND prefix = $2 AND last_used_at IS NOT DISTINCT FROM $3",
                &[&org.0, &prefix.as_str(), &previous.map(|t| t.millis()), &at.millis()],
            )
            .await?;
            expect_one(n, &format!("API key {prefix}'s last use"))
        }
        Change::CreateProject(p) => {
            db::execute(
                tx,
                "INSERT INTO projects (org_id, id, name, created_at) VALUES ($1, $2, $3, $4)",
                &[&org.0, &p.id, &p.name, &p.created_at.millis()],
            )
            .await
            .map_err(|e| conflict(e, format!("project {}", p.id)))?;
            Ok(())
        }
        Change::RenameProject { id, old, new } => {
            let n = db::execute(
                tx,
                "UPDATE projects SET name = $4 WHERE org_id = $1 AND id = $2 AND name = $3",
                &[&org.0, id, old, new],
            )
            .await?;
            expect_one(n, &format!("project {id}"))
        }
        Change::DeleteProject { id } => {
            let n = db::execute(tx, "DELETE FROM projects WHERE org_id = $1 AND id = $2", &[&org.0, id]).await?;
            expect_one(n, &format!("project {id}"))
        }
        Change::CreateWebhook(w) => {
            db::execute(
                tx,
                "INSERT INTO webhooks (org_id, id, url, description, events, enabled, secret, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                &[
                    &org.0,
                    &w.id,
                    &w.url,
                    &w.description,
                    &patterns_to_sql(&w.events),
                    &w.enabled,
                    &w.secret.0,
                    &w.created_at.millis(),
                ],
            )
            .await
            .map_err(|e| conflict(e, format!("webhook {}", w.id)))?;
            Ok(())
        }
        Change::UpdateWebhook {
            id,
            url,
            description,
            events,
            enabled,
        } => {
            let n = db::execute(
                tx,
                "UPDATE webhooks SET url = $3, description = $4, events = $5, enabled = $6, \
                 failing_since = CASE WHEN $6 AND NOT enabled THEN NULL ELSE failing_since END, \
                 disabled_reason = CASE WHEN $6 THEN NULL ELSE disabled_reason END \
                 WHERE org_id = $1 AND id = $2",
                &[&org.0, id, url, description, &patterns_to_sql(events), enabled],
            )
            .await?;
            expect_one(n, &format!("webhook {id}"))
        }
        Change::DeleteWebhook { id } => {
            let n = db::execute(tx, "DELETE FROM webhooks WHERE org_id = $1 AND id = $2", &[&org.0, id]).await?;
            db::execute(
                tx,
                "DELETE FROM deliveries WHERE org_id = $1 AND webhook_id = $2 AND status = 'pending'",
                &[&org.0, id],
            )
            .await?;
            expect_one(n, &format!("webhook {id}"))
        }
        Change::RotateWebhookSecret {
            id,
            new,
            previous_until,
        } => {
            let n = db::execute(
                tx,
                "UPDATE webhooks SET previous_secret = secret, previous_secret_until = $4, secret = $3 \
                 WHERE org_id = $1 AND id = $2",
                &[&org.0, id, &new.0, &previous_until.millis()],
            )
            .await?;
            expect_one(n, &format!("webhook {id}"))
        }
        Change::DisableWebhook { id, reason } => {
            let n = db::execute(
                tx,
                "UPDATE webhooks SET enabled = false, disabled_reason = $3 WHERE org_id = $1 AND id = $2 AND enabled",
                &[&org.0, id, reason],
            )
            .await?;
            expect_one(n, &format!("webhook {id}"))
        }
    }
}

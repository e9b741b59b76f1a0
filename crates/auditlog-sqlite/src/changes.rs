//! Applying a management [`Change`] inside the writer's transaction.
//!
//! Each change is a compare-and-set on what the caller saw; a value that
//! moved meanwhile refuses the change (`stale`) rather than record an entry
//! describing a state that never existed. The last-owner rule is checked
//! here, inside the same transaction, so no interleaving can leave an
//! organization without an owner.

use auditlog_domain::change::Change;
use auditlog_domain::{OrgId, Role, StoreError};
use r2d2_sqlite::rusqlite::{Connection, OptionalExtension, params};

use crate::accounts;
use crate::rows::{conflict_or, db_err, patterns_to_text, scopes_to_text};

fn rejected(code: &'static str, message: impl Into<String>) -> StoreError {
    StoreError::Rejected {
        code,
        message: message.into(),
    }
}

fn stale(what: &str) -> StoreError {
    rejected("stale", format!("{what} changed meanwhile; reload and try again"))
}

fn expect_one(n: usize, what: &str) -> Result<(), StoreError> {
    if n == 1 { Ok(()) } else { Err(stale(what)) }
}

fn owners(conn: &Connection, org: OrgId) -> Result<i64, StoreError> {
    conn.query_row(
        "SELECT count(*) FROM memberships WHERE org_id = ?1 AND role = 'owner'",
        [org.0],
        |r| r.get(0),
    )
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

/// Refuses to take the organization's only owner away.
fn keep_an_owner(conn: &Connection, org: OrgId, email: &str, from: Role, to: Option<Role>) -> Result<(), StoreError> {
    if from == Role::Owner && to != Some(Role::Owner) && owners(conn, org)? <= 1 {
        let what = if to.is_some() { "demoted" } else { "removed" };
        return Err(rejected(
            "last_owner",
            format!("{email} is the organization's last owner and cannot be {what}; make someone else an owner first"),
        ));
    }
    Ok(())
}

pub fn apply(conn: &Connection, org: OrgId, change: &Change, now: i64) -> Result<(), StoreError> {
    match change {
        Change::RenameOrg { old, new } => {
            let n = conn
                .execute(
                    "UPDATE orgs SET name = ?3 WHERE org_id = ?1 AND name = ?2",
                    params![org.0, old, new],
                )
                .map_err(db_err)?;
            expect_one(n, "the organization's name")
        }
        Change::SetPlan {
            old,
            new,
            enterprise_retention_days,
        } => {
            let n = conn
                .execute(
                    "UPDATE orgs SET plan = ?3, enterprise_retention_days = ?4 WHERE org_id = ?1 AND plan = ?2",
                    params![org.0, old.as_str(), new.as_str(), enterprise_retention_days],
                )
                .map_err(db_err)?;
            expect_one(n, "the organization's plan")
        }
        Change::ConfigureSso(sso) => {
            conn.execute(
                "UPDATE orgs SET sso_issuer = ?2, sso_client_id = ?3, sso_enforced = ?4 WHERE org_id = ?1",
                params![
                    org.0,
                    sso.as_ref().map(|s| s.issuer.as_str()),
                    sso.as_ref().map(|s| s.client_id.as_str()),
                    sso.as_ref().map(|s| s.enforced),
                ],
            )
            .map_err(db_err)?;
            Ok(())
        }
        Change::AddMember { email, role } => accounts::add_member(conn, org, email, *role, now),
        Change::SetPassword { email, password_hash } => accounts::set_password(conn, email, password_hash, now),
        Change::Invite(inv) => accounts::invite(conn, org, inv),
        Change::AcceptInvitation {
            token_hash,
            email,
            role,
            new_account,
            at,
        } => accounts::accept(
            conn,
            org,
            accounts::Acceptance {
                token_hash,
                email,
                role: *role,
                new_account: new_account.as_deref(),
                at: at.millis(),
            },
        ),
        Change::ForceReset {
            memberships,
            invitation,
        } => accounts::force_reset(conn, org, memberships, invitation),
        Change::CompleteReset {
            token_hash,
            email,
            password_hash,
            at,
        } => accounts::complete_reset(conn, org, token_hash, email, password_hash, at.millis()),
        Change::ChangePassword {
            email,
            old_hash,
            new_hash,
            keep,
        } => accounts::change_password(conn, email, old_hash, new_hash, keep),
        Change::SetRole { email, from, to } => {
            if current_role(conn, org, email)?.as_deref() != Some(from.as_str()) {
                return Err(stale(&format!("{email}'s role")));
            }
            keep_an_owner(conn, org, email, *from, Some(*to))?;
            conn.execute(
                "UPDATE memberships SET role = ?3 WHERE org_id = ?1 AND email = ?2",
                params![org.0, email, to.as_str()],
            )
            .map_err(db_err)?;
            Ok(())
        }
        Change::RemoveMember { email, role } => {
            if current_role(conn, org, email)?.as_deref() != Some(role.as_str()) {
                return Err(stale(&format!("{email}'s membership")));
            }
            keep_an_owner(conn, org, email, *role, None)?;
            conn.execute(
                "DELETE FROM memberships WHERE org_id = ?1 AND email = ?2",
                params![org.0, email],
            )
            .map_err(db_err)?;
            Ok(())
        }
        Change::CreateKey(key) => {
            conn.execute(
                "INSERT INTO api_keys (org_id, prefix, name, scopes, secret_hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![org.0, key.prefix.as_str(), key.name, scopes_to_text(&key.scopes), &key.hash.0[..], now],
            )
            .map_err(|e| conflict_or(e, format!("API key {}", key.prefix)))?;
            Ok(())
        }
        Change::RevokeKey { prefix, at } => {
            let n = conn
                .execute(
                    "UPDATE api_keys SET revoked_at = ?3 WHERE org_id = ?1 AND prefix = ?2 AND revoked_at IS NULL",
                    params![org.0, prefix.as_str(), at.millis()],
                )
                .map_err(db_err)?;
            expect_one(n, &format!("API key {prefix}"))
        }
        Change::TouchKey { prefix, previous, at } => {
            let n = conn
                .execute(
                    "UPDATE api_keys SET last_used_at = ?4 WHERE org_id = ?1 AND prefix = ?2 AND last_used_at IS ?3",
                    params![org.0, prefix.as_str(), previous.map(|t| t.millis()), at.millis()],
                )
                .map_err(db_err)?;
            expect_one(n, &format!("API key {prefix}'s last use"))
        }
        Change::CreateProject(p) => {
            conn.execute(
                "INSERT INTO projects (org_id, id, name, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![org.0, p.id, p.name, p.created_at.millis()],
            )
            .map_err(|e| conflict_or(e, format!("project {}", p.id)))?;
            Ok(())
        }
        Change::RenameProject { id, old, new } => {
            let n = conn
                .execute(
                    "UPDATE projects SET name = ?4 WHERE org_id = ?1 AND id = ?2 AND name = ?3",
                    params![org.0, id, old, new],
                )
                .map_err(db_err)?;
            expect_one(n, &format!("project {id}"))
        }
        Change::CreateWebhook(w) => {
            conn.execute(
                "INSERT INTO webhooks (org_id, id, url, description, events, enabled, secret, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    org.0,
                    w.id,
                    w.url,
                    w.description,
                    patterns_to_text(&w.events),
                    w.enabled,
                    w.secret.0,
                    w.created_at.millis()
                ],
            )
            .map_err(|e| conflict_or(e, format!("webhook {}", w.id)))?;
            Ok(())
        }
        Change::UpdateWebhook {
            id,
            url,
            description,
            events,
            enabled,
        } => {
            let n = conn
                .execute(
                    "UPDATE webhooks SET url = ?3, description = ?4, events = ?5, enabled = ?6, \
                     failing_since = CASE WHEN ?6 AND NOT enabled THEN NULL ELSE failing_since END, \
                     disabled_reason = CASE WHEN ?6 THEN NULL ELSE disabled_reason END \
                     WHERE org_id = ?1 AND id = ?2",
                    params![org.0, id, url, description, patterns_to_text(events), enabled],
                )
                .map_err(db_err)?;
            expect_one(n, &format!("webhook {id}"))
        }
        Change::DeleteWebhook { id } => {
            let n = conn
                .execute("DELETE FROM webhooks WHERE org_id = ?1 AND id = ?2", params![org.0, id])
                .map_err(db_err)?;
            conn.execute(
                "DELETE FROM deliveries WHERE org_id = ?1 AND webhook_id = ?2 AND status = 'pending'",
                params![org.0, id],
            )
            .map_err(db_err)?;
            expect_one(n, &format!("webhook {id}"))
        }
        Change::RotateWebhookSecret {
            id,
            new,
            previous_until,
        } => {
            let n = conn
                .execute(
                    "UPDATE webhooks SET previous_secret = secret, previous_secret_until = ?4, secret = ?3 \
                     WHERE org_id = ?1 AND id = ?2",
                    params![org.0, id, new.0, previous_until.millis()],
                )
                .map_err(db_err)?;
            expect_one(n, &format!("webhook {id}"))
        }
        Change::DisableWebhook { id, reason } => {
            let n = conn
                .execute(
                    "UPDATE webhooks SET enabled = 0, disabled_reason = ?3 WHERE org_id = ?1 AND id = ?2 AND enabled",
                    params![org.0, id, reason],
                )
                .map_err(db_err)?;
            expect_one(n, &format!("webhook {id}"))
        }
        Change::DeleteProject { id } => {
            let n = conn
                .execute("DELETE FROM projects WHERE org_id = ?1 AND id = ?2", params![org.0, id])
                .map_err(db_err)?;
            expect_one(n, &format!("project {id}"))
        }
    }
}

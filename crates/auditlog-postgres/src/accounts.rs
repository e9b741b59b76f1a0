//! Applying the changes that touch people's accounts (members added by the
//! operator, invitations, resets, password changes) inside the writer's
//! transaction, as the SQLite store's `accounts` does. The rules are decided
//! by the caller; each function here is a compare-and-set on what the caller
//! saw, so a race refuses the change instead of applying it to a state
//! nobody saw. Accounts are global, so their rows are locked (`FOR UPDATE`)
//! where two organizations' transactions could meet on them.

use auditlog_domain::change::{Acceptance, Change};
use auditlog_domain::change_rules as rules;
use auditlog_domain::invitation::Invitation;
use auditlog_domain::{OrgId, Role, StoreError};
use deadpool_postgres::Transaction;

use crate::db;
use crate::error::{Failure, conflict_or};
use crate::rows::get;

/// Applies a change to people's accounts; [`crate::changes::apply`] hands
/// over every change it does not apply itself.
pub async fn apply(tx: &Transaction<'_>, org: OrgId, change: &Change, now: i64) -> Result<(), Failure> {
    match change {
        Change::AddMember { email, role } => add_member(tx, org, email, *role, now).await,
        Change::SetPassword { email, password_hash } => set_password(tx, email, password_hash, now).await,
        Change::Invite(inv) => invite(tx, org, inv).await,
        Change::AcceptInvitation(a) => accept(tx, org, a).await,
        Change::ForceReset {
            memberships,
            invitation,
        } => force_reset(tx, org, memberships, invitation).await,
        Change::CompleteReset {
            token_hash,
            email,
            password_hash,
            at,
        } => complete_reset(tx, org, token_hash, email, password_hash, at.millis()).await,
        Change::ChangePassword {
            email,
            old_hash,
            new_hash,
            keep,
        } => change_password(tx, email, old_hash, new_hash, keep).await,
        Change::EndSession { token_hash } => {
            let n = db::execute(tx, "DELETE FROM sessions WHERE token_hash = $1", &[&&token_hash[..]]).await?;
            Ok(rules::expect_one(n, "the session")?)
        }
        other => Err(StoreError::Internal(format!("not a change to accounts: {other:?}")).into()),
    }
}

/// Makes `email` a member, creating their account without a password if
/// they have none. `ON CONFLICT DO NOTHING` waits for another
/// organization's concurrent insert of the same person instead of failing.
async fn add_member(tx: &Transaction<'_>, org: OrgId, email: &str, role: Role, now: i64) -> Result<(), Failure> {
    db::execute(
        tx,
        "INSERT INTO users (email, password_hash, created_at) VALUES ($1, NULL, $2) ON CONFLICT (email) DO NOTHING",
        &[&email, &now],
    )
    .await?;
    insert_membership(tx, org, email, role, now).await
}

async fn insert_membership(tx: &Transaction<'_>, org: OrgId, email: &str, role: Role, now: i64) -> Result<(), Failure> {
    db::execute(
        tx,
        "INSERT INTO memberships (org_id, email, role, added_at) VALUES ($1, $2, $3, $4)",
        &[&org.0, &email, &role.as_str(), &now],
    )
    .await
    .map_err(|e| Failure::Store(conflict_or(e, format!("member {email}"))))?;
    Ok(())
}

/// Sets the password, creating the account if needed.
async fn set_password(tx: &Transaction<'_>, email: &str, hash: &str, now: i64) -> Result<(), Failure> {
    db::execute(
        tx,
        "INSERT INTO users (email, password_hash, created_at) VALUES ($1, $2, $3) \
         ON CONFLICT (email) DO UPDATE SET password_hash = excluded.password_hash",
        &[&email, &hash, &now],
    )
    .await?;
    Ok(())
}

async fn invite(tx: &Transaction<'_>, org: OrgId, inv: &Invitation) -> Result<(), Failure> {
    db::execute(
        tx,
        "INSERT INTO invitations (org_id, token_hash, kind, email, role, invited_by, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        &[
            &org.0,
            &&inv.token_hash[..],
            &inv.kind.as_str(),
            &inv.email,
            &inv.role.as_str(),
            &inv.invited_by,
            &inv.created_at.millis(),
            &inv.expires_at.millis(),
        ],
    )
    .await?;
    Ok(())
}

/// Marks the invitation of `kind` for `email` used, if it still can be.
async fn use_invitation(
    tx: &Transaction<'_>,
    org: OrgId,
    token_hash: &[u8; 32],
    kind: &str,
    email: &str,
    at: i64,
) -> Result<(), Failure> {
    let n = db::execute(
        tx,
        "UPDATE invitations SET accepted_at = $5 WHERE org_id = $1 AND token_hash = $2 AND kind = $3 \
         AND email = $4 AND accepted_at IS NULL AND expires_at > $5",
        &[&org.0, &&token_hash[..], &kind, &email, &at],
    )
    .await?;
    Ok(rules::invitation_usable(n)?)
}

/// Uses a join invitation. A new account is created only where none
/// exists: an existing account (with or without a password) is joined only
/// by its signed-in owner, never by whoever holds the token.
async fn accept(tx: &Transaction<'_>, org: OrgId, a: &Acceptance) -> Result<(), Failure> {
    use_invitation(tx, org, &a.token_hash, "join", &a.email, a.at.millis()).await?;
    let created = match a.new_account.as_deref() {
        Some(hash) => {
            db::execute(
                tx,
                "INSERT INTO users (email, password_hash, created_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (email) DO NOTHING",
                &[&a.email, &hash, &a.at.millis()],
            )
            .await?
                == 1
        }
        None => false,
    };
    // After the insert the account is there either way; only without
    // one does its existence need a look.
    let exists = a.new_account.is_some()
        || db::query_opt(tx, "SELECT 1 FROM users WHERE email = $1 FOR SHARE", &[&a.email])
            .await?
            .is_some();
    rules::account_for_acceptance(&a.email, a.new_account.is_some(), created, exists)?;
    insert_membership(tx, org, &a.email, a.role, a.at.millis()).await
}

async fn force_reset(tx: &Transaction<'_>, org: OrgId, seen: &[OrgId], inv: &Invitation) -> Result<(), Failure> {
    // Locks the account, so a membership accepted meanwhile waits for this
    // transaction or is seen by it.
    db::query_opt(tx, "SELECT 1 FROM users WHERE email = $1 FOR UPDATE", &[&inv.email]).await?;
    let rows = db::query(tx, "SELECT org_id FROM memberships WHERE email = $1", &[&inv.email]).await?;
    let stored: Vec<OrgId> = rows.iter().map(|r| get(r, 0).map(OrgId)).collect::<Result<_, _>>()?;
    rules::memberships_as_seen(&inv.email, &stored, seen)?;
    db::execute(
        tx,
        "UPDATE users SET password_hash = NULL WHERE email = $1",
        &[&inv.email],
    )
    .await?;
    end_sessions(tx, &inv.email, &[]).await?;
    invite(tx, org, inv).await
}

async fn complete_reset(
    tx: &Transaction<'_>,
    org: OrgId,
    token_hash: &[u8; 32],
    email: &str,
    password_hash: &str,
    at: i64,
) -> Result<(), Failure> {
    use_invitation(tx, org, token_hash, "password_reset", email, at).await?;
    db::execute(
        tx,
        "UPDATE users SET password_hash = $2 WHERE email = $1",
        &[&email, &password_hash],
    )
    .await?;
    end_sessions(tx, email, &[]).await
}

async fn change_password(
    tx: &Transaction<'_>,
    email: &str,
    old_hash: &str,
    new_hash: &str,
    keep: &[u8; 32],
) -> Result<(), Failure> {
    let n = db::execute(
        tx,
        "UPDATE users SET password_hash = $3 WHERE email = $1 AND password_hash = $2",
        &[&email, &old_hash, &new_hash],
    )
    .await?;
    rules::password_as_seen(n)?;
    end_sessions(tx, email, &keep[..]).await
}

/// Ends every session of `email` but the one whose hash is `keep`.
async fn end_sessions(tx: &Transaction<'_>, email: &str, keep: &[u8]) -> Result<(), Failure> {
    db::execute(
        tx,
        "DELETE FROM sessions WHERE email = $1 AND token_hash <> $2",
        &[&email, &keep],
    )
    .await?;
    Ok(())
}

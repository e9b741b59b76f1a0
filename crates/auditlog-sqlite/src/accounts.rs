//! Applying the changes that touch people's accounts (members added by the
//! operator, invitations, resets, password changes) inside the writer's
//! transaction. The rules are decided by the caller; each function here is
//! a compare-and-set on what the caller saw, so a race refuses the change
//! (`stale`, `invitation_used`) instead of applying it to a state nobody saw.

use auditlog_domain::change::{Acceptance, Change};
use auditlog_domain::change_rules as rules;
use auditlog_domain::invitation::Invitation;
use auditlog_domain::{OrgId, Role, StoreError};
use r2d2_sqlite::rusqlite::{Connection, OptionalExtension, params};

use crate::rows::{conflict_or, db_err};

/// Applies a change to people's accounts; [`crate::changes::apply`] hands
/// over every change it does not apply itself.
pub fn apply(conn: &Connection, org: OrgId, change: &Change, now: i64) -> Result<(), StoreError> {
    match change {
        Change::AddMember { email, role } => add_member(conn, org, email, *role, now),
        Change::SetPassword { email, password_hash } => set_password(conn, email, password_hash, now),
        Change::Invite(inv) => invite(conn, org, inv),
        Change::AcceptInvitation(a) => accept(conn, org, a),
        Change::ForceReset {
            memberships,
            invitation,
        } => force_reset(conn, org, memberships, invitation),
        Change::CompleteReset {
            token_hash,
            email,
            password_hash,
            at,
        } => complete_reset(conn, org, token_hash, email, password_hash, at.millis()),
        Change::ChangePassword {
            email,
            old_hash,
            new_hash,
            keep,
        } => change_password(conn, email, old_hash, new_hash, keep),
        Change::EndSession { token_hash } => {
            let n = conn
                .execute("DELETE FROM sessions WHERE token_hash = ?1", [&token_hash[..]])
                .map_err(db_err)?;
            rules::expect_one(n as u64, "the session")
        }
        other => Err(StoreError::Internal(format!("not a change to accounts: {other:?}"))),
    }
}

/// Makes `email` a member, creating their account without a password if
/// they have none.
fn add_member(conn: &Connection, org: OrgId, email: &str, role: Role, now: i64) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO users (email, password_hash, created_at) VALUES (?1, NULL, ?2) ON CONFLICT (email) DO NOTHING",
        params![email, now],
    )
    .map_err(db_err)?;
    insert_membership(conn, org, email, role, now)
}

fn insert_membership(conn: &Connection, org: OrgId, email: &str, role: Role, now: i64) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO memberships (org_id, email, role, added_at) VALUES (?1, ?2, ?3, ?4)",
        params![org.0, email, role.as_str(), now],
    )
    .map_err(|e| conflict_or(e, format!("member {email}")))?;
    Ok(())
}

/// Sets the password, creating the account if needed.
fn set_password(conn: &Connection, email: &str, hash: &str, now: i64) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO users (email, password_hash, created_at) VALUES (?1, ?2, ?3) \
         ON CONFLICT (email) DO UPDATE SET password_hash = excluded.password_hash",
        params![email, hash, now],
    )
    .map_err(db_err)?;
    Ok(())
}

fn invite(conn: &Connection, org: OrgId, inv: &Invitation) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO invitations (org_id, token_hash, kind, email, role, invited_by, created_at, expires_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            org.0,
            &inv.token_hash[..],
            inv.kind.as_str(),
            inv.email,
            inv.role.as_str(),
            inv.invited_by,
            inv.created_at.millis(),
            inv.expires_at.millis()
        ],
    )
    .map_err(db_err)?;
    Ok(())
}

/// Marks the invitation of `kind` for `email` used, if it still can be.
fn use_invitation(
    conn: &Connection,
    org: OrgId,
    token_hash: &[u8; 32],
    kind: &str,
    email: &str,
    at: i64,
) -> Result<(), StoreError> {
    let n = conn
        .execute(
            "UPDATE invitations SET accepted_at = ?5 WHERE org_id = ?1 AND token_hash = ?2 AND kind = ?3 \
             AND email = ?4 AND accepted_at IS NULL AND expires_at > ?5",
            params![org.0, &token_hash[..], kind, email, at],
        )
        .map_err(db_err)?;
    rules::invitation_usable(n as u64)
}

/// Uses a join invitation. A new account is created only where none
/// exists: an existing account (with or without a password) is joined only
/// by its signed-in owner, never by whoever holds the token.
fn accept(conn: &Connection, org: OrgId, a: &Acceptance) -> Result<(), StoreError> {
    use_invitation(conn, org, &a.token_hash, "join", &a.email, a.at.millis())?;
    let created = match a.new_account.as_deref() {
        Some(hash) => {
            conn.execute(
                "INSERT INTO users (email, password_hash, created_at) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (email) DO NOTHING",
                params![a.email, hash, a.at.millis()],
            )
            .map_err(db_err)?
                == 1
        }
        None => false,
    };
    // After the insert the account is there either way; only without
    // one does its existence need a look.
    let exists = a.new_account.is_some()
        || conn
            .query_row("SELECT 1 FROM users WHERE email = ?1", [&a.email], |r| {
                r.get::<_, i64>(0)
            })
            .optional()
            .map_err(db_err)?
            .is_some();
    rules::account_for_acceptance(&a.email, a.new_account.is_some(), created, exists)?;
    insert_membership(conn, org, &a.email, a.role, a.at.millis())
}

/// The account's organizations.
fn account_orgs(conn: &Connection, email: &str) -> Result<Vec<OrgId>, StoreError> {
    let mut s = conn
        .prepare_cached("SELECT org_id FROM memberships WHERE email = ?1")
        .map_err(db_err)?;
    let rows = s.query_map([email], |r| r.get(0).map(OrgId)).map_err(db_err)?;
    rows.collect::<Result<_, _>>().map_err(db_err)
}

fn force_reset(conn: &Connection, org: OrgId, seen: &[OrgId], inv: &Invitation) -> Result<(), StoreError> {
    rules::memberships_as_seen(&inv.email, &account_orgs(conn, &inv.email)?, seen)?;
    conn.execute("UPDATE users SET password_hash = NULL WHERE email = ?1", [&inv.email])
        .map_err(db_err)?;
    end_sessions(conn, &inv.email, None)?;
    invite(conn, org, inv)
}

fn complete_reset(
    conn: &Connection,
    org: OrgId,
    token_hash: &[u8; 32],
    email: &str,
    password_hash: &str,
    at: i64,
) -> Result<(), StoreError> {
    use_invitation(conn, org, token_hash, "password_reset", email, at)?;
    conn.execute(
        "UPDATE users SET password_hash = ?2 WHERE email = ?1",
        params![email, password_hash],
    )
    .map_err(db_err)?;
    end_sessions(conn, email, None)
}

fn change_password(
    conn: &Connection,
    email: &str,
    old_hash: &str,
    new_hash: &str,
    keep: &[u8; 32],
) -> Result<(), StoreError> {
    let n = conn
        .execute(
            "UPDATE users SET password_hash = ?3 WHERE email = ?1 AND password_hash = ?2",
            params![email, old_hash, new_hash],
        )
        .map_err(db_err)?;
    rules::password_as_seen(n as u64)?;
    end_sessions(conn, email, Some(keep))
}

/// Ends every session of `email` but `keep`.
fn end_sessions(conn: &Connection, email: &str, keep: Option<&[u8; 32]>) -> Result<(), StoreError> {
    let keep: &[u8] = keep.map(|k| &k[..]).unwrap_or(&[]);
    conn.execute(
        "DELETE FROM sessions WHERE email = ?1 AND token_hash != ?2",
        params![email, keep],
    )
    .map_err(db_err)?;
    Ok(())
}

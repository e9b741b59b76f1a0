//! Invitations and password resets: single-use, expiring tokens with which
//! a person sets their own credential or joins an organization.
//!
//! Adding a member never sets, changes or owns a credential. The inviter
//! gets a token to pass on; the person it names accepts it, signed in as
//! themselves or by creating a new account with a password of their own.
//! A reset is the same kind of token, issued by an owner who owns every
//! membership of the account (see [`may_force_reset`]), with which the
//! person sets a new password. Only the token's SHA-256 is stored.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::role::Role;
use crate::{OrgId, Timestamp};

/// How long an invitation or a reset can be used: a week, so a person who
/// is away for a few days can still accept.
pub const DEFAULT_TTL_MS: i64 = 7 * 24 * 60 * 60 * 1000;

/// What accepting the token does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum InvitationKind {
    /// Joins the organization with the role.
    Join,
    /// Sets a new password on an account whose password an owner cleared.
    PasswordReset,
}

impl InvitationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            InvitationKind::Join => "join",
            InvitationKind::PasswordReset => "password_reset",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "join" => Some(InvitationKind::Join),
            "password_reset" => Some(InvitationKind::PasswordReset),
            _ => None,
        }
    }
}

/// An invitation as stored: the token is known only by its hash.
#[derive(Clone, PartialEq, Eq)]
pub struct Invitation {
    pub org_id: OrgId,
    pub token_hash: [u8; 32],
    pub kind: InvitationKind,
    pub email: String,
    /// The role a `Join` gives; a reset keeps the person's roles.
    pub role: Role,
    /// Who issued it, as the log names them.
    pub invited_by: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub accepted_at: Option<Timestamp>,
}

impl std::fmt::Debug for Invitation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Invitation")
            .field("org_id", &self.org_id)
            .field("kind", &self.kind)
            .field("email", &self.email)
            .field("role", &self.role)
            .field("expires_at", &self.expires_at)
            .field("accepted_at", &self.accepted_at)
            .finish_non_exhaustive()
    }
}

/// The token's prefix, so a leaked one is recognisable (as `lqt_` keys are).
pub const TOKEN_PREFIX: &str = "inv_";

/// A new token (shown once, to the inviter) and its hash (stored).
pub fn new_token() -> (String, [u8; 32]) {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let token = format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
    let hash = hash_token(&token);
    (token, hash)
}

pub fn hash_token(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl Invitation {
    /// A new invitation issued now; returns it with its token.
    pub fn issue(
        org_id: OrgId,
        kind: InvitationKind,
        email: &str,
        role: Role,
        invited_by: &str,
        now: Timestamp,
        ttl_ms: i64,
    ) -> (String, Invitation) {
        let (token, token_hash) = new_token();
        let inv = Invitation {
            org_id,
            token_hash,
            kind,
            email: email.to_owned(),
            role,
            invited_by: invited_by.to_owned(),
            created_at: now,
            expires_at: now.plus_millis(ttl_ms),
            accepted_at: None,
        };
        (token, inv)
    }

    /// Whether it can still be accepted at `now`.
    pub fn usable(&self, now: Timestamp) -> bool {
        self.accepted_at.is_none() && now < self.expires_at
    }
}

/// Why an owner may not force a reset of an account's password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{email} is also a member of {org_count} organization(s) you do not own; only they, or the operator, can reset this password"
)]
pub struct NotYours {
    pub email: String,
    pub org_count: usize,
}

/// An owner may force a reset only if they own every organization the
/// account belongs to: a reset hands whoever holds its token the account,
/// so it must give the owner nothing they do not already control.
/// `account_orgs` are the account's organizations; `owned` says whether the
/// acting person is an owner of one.
pub fn may_force_reset(email: &str, account_orgs: &[OrgId], owned: impl Fn(OrgId) -> bool) -> Result<(), NotYours> {
    let foreign = account_orgs.iter().filter(|o| !owned(**o)).count();
    if foreign == 0 {
        Ok(())
    } else {
        Err(NotYours {
            email: email.to_owned(),
            org_count: foreign,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_prefixed_and_kept_as_hashes() {
        let (t1, h1) = new_token();
        let (t2, _) = new_token();
        assert_ne!(t1, t2);
        assert!(t1.starts_with(TOKEN_PREFIX));
        assert_eq!(hash_token(&t1), h1);
        assert_eq!(t1.len(), TOKEN_PREFIX.len() + 43, "256 bits, base64url");
    }

    #[test]
    fn an_invitation_is_usable_once_and_until_it_expires() {
        let (_, mut inv) = Invitation::issue(
            OrgId(1),
            InvitationKind::Join,
            "a@b.co",
            Role::Viewer,
            "o@b.co",
            Timestamp(0),
            10,
        );
        assert!(inv.usable(Timestamp(9)));
        assert!(!inv.usable(Timestamp(10)), "expired");
        inv.accepted_at = Some(Timestamp(1));
        assert!(!inv.usable(Timestamp(2)), "used");
        assert!(!format!("{inv:?}").contains("token"), "Debug hides the hash");
    }

    #[test]
    fn a_reset_needs_every_membership_owned() {
        let mine = |o: OrgId| o == OrgId(1) || o == OrgId(2);
        assert!(may_force_reset("a@b.co", &[OrgId(1), OrgId(2)], mine).is_ok());
        let e = may_force_reset("a@b.co", &[OrgId(1), OrgId(3)], mine).unwrap_err();
        assert_eq!(e.org_count, 1);
        assert!(may_force_reset("a@b.co", &[], mine).is_ok());
    }

    #[test]
    fn kinds_round_trip() {
        for k in [InvitationKind::Join, InvitationKind::PasswordReset] {
            assert_eq!(InvitationKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(InvitationKind::parse("other"), None);
    }
}

//! The rules a management [`Change`](crate::change::Change) must pass inside
//! its transaction, and the refusals that say why one did not.
//!
//! The stores only read the state a rule needs (a row count, the number of
//! owners, an account's organizations) and ask here; so both backends
//! refuse the same changes with the same codes and messages, and the
//! conformance suite holds them to it.

use crate::OrgId;
use crate::role::Role;
use crate::store::StoreError;

fn rejected(code: &'static str, message: impl Into<String>) -> StoreError {
    StoreError::Rejected {
        code,
        message: message.into(),
    }
}

/// A value the caller saw moved before its change was applied: the change
/// is refused rather than record an entry about a state that never existed.
pub fn stale(what: &str) -> StoreError {
    rejected("stale", format!("{what} changed meanwhile; reload and try again"))
}

/// A compare-and-set that must have matched exactly one row.
pub fn expect_one(rows: u64, what: &str) -> Result<(), StoreError> {
    if rows == 1 { Ok(()) } else { Err(stale(what)) }
}

/// A member's role must still be the one the caller saw.
pub fn role_as_seen(stored: Option<&str>, seen: Role, what: &str) -> Result<(), StoreError> {
    if stored == Some(seen.as_str()) {
        Ok(())
    } else {
        Err(stale(what))
    }
}

/// Refuses to take the organization's only owner away: `from` is the
/// member's role, `to` the new one (`None`: removed), `owners` how many
/// owners the organization has now.
pub fn keep_an_owner(email: &str, from: Role, to: Option<Role>, owners: u64) -> Result<(), StoreError> {
    if from == Role::Owner && to != Some(Role::Owner) && owners <= 1 {
        let what = if to.is_some() { "demoted" } else { "removed" };
        return Err(rejected(
            "last_owner",
            format!("{email} is the organization's last owner and cannot be {what}; make someone else an owner first"),
        ));
    }
    Ok(())
}

/// An invitation or reset token must match exactly one unused, unexpired
/// invitation.
pub fn invitation_usable(rows: u64) -> Result<(), StoreError> {
    if rows == 1 {
        Ok(())
    } else {
        Err(rejected(
            "invitation_invalid",
            "this invitation is unknown, already used or expired; ask for a new one",
        ))
    }
}

/// Whoever holds a join token may create an account that does not exist
/// yet, never take over one that does; and an existing account joins only
/// when its signed-in owner accepts. `created` is whether the account was
/// created now (with a password), `exists` whether it is there at all.
pub fn account_for_acceptance(email: &str, new_account: bool, created: bool, exists: bool) -> Result<(), StoreError> {
    let ok = if new_account { created } else { exists };
    if ok {
        Ok(())
    } else {
        Err(rejected(
            "sign_in_required",
            format!("sign in as {email} to accept this invitation"),
        ))
    }
}

/// An owner may reset a person's password only for the organizations the
/// owner was allowed to reset it for: the person's memberships must still
/// be exactly `seen`.
pub fn memberships_as_seen(email: &str, stored: &[OrgId], seen: &[OrgId]) -> Result<(), StoreError> {
    let sorted = |orgs: &[OrgId]| {
        let mut ids: Vec<i64> = orgs.iter().map(|o| o.0).collect();
        ids.sort_unstable();
        ids
    };
    if sorted(stored) == sorted(seen) {
        Ok(())
    } else {
        Err(stale(&format!("{email}'s memberships")))
    }
}

/// A person's own password change applies only over the password they
/// proved they know.
pub fn password_as_seen(rows: u64) -> Result<(), StoreError> {
    if rows == 1 {
        Ok(())
    } else {
        Err(rejected(
            "stale",
            "your password changed meanwhile; sign in again and retry",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(r: Result<(), StoreError>) -> &'static str {
        match r {
            Ok(()) => "ok",
            Err(StoreError::Rejected { code, .. }) => code,
            Err(other) => panic!("not a refusal: {other}"),
        }
    }

    #[test]
    fn the_last_owner_can_be_neither_demoted_nor_removed() {
        assert_eq!(
            code(keep_an_owner("a@x", Role::Owner, Some(Role::Admin), 1)),
            "last_owner"
        );
        assert_eq!(code(keep_an_owner("a@x", Role::Owner, None, 1)), "last_owner");
        assert_eq!(code(keep_an_owner("a@x", Role::Owner, None, 2)), "ok");
        assert_eq!(code(keep_an_owner("a@x", Role::Owner, Some(Role::Owner), 1)), "ok");
        assert_eq!(code(keep_an_owner("a@x", Role::Admin, None, 1)), "ok");
    }

    #[test]
    fn a_value_that_moved_is_stale() {
        assert_eq!(code(expect_one(1, "x")), "ok");
        assert_eq!(code(expect_one(0, "x")), "stale");
        assert_eq!(code(role_as_seen(Some("admin"), Role::Admin, "x")), "ok");
        assert_eq!(code(role_as_seen(Some("viewer"), Role::Admin, "x")), "stale");
        assert_eq!(code(role_as_seen(None, Role::Admin, "x")), "stale");
        assert_eq!(code(password_as_seen(0)), "stale");
    }

    #[test]
    fn memberships_compare_as_sets() {
        let (a, b) = (OrgId(1), OrgId(2));
        assert_eq!(code(memberships_as_seen("p", &[b, a], &[a, b])), "ok");
        assert_eq!(code(memberships_as_seen("p", &[a, b], &[a])), "stale");
    }

    #[test]
    fn a_token_never_takes_over_an_existing_account() {
        assert_eq!(code(account_for_acceptance("p", true, true, true)), "ok");
        assert_eq!(code(account_for_acceptance("p", true, false, true)), "sign_in_required");
        assert_eq!(code(account_for_acceptance("p", false, false, true)), "ok");
        assert_eq!(
            code(account_for_acceptance("p", false, false, false)),
            "sign_in_required"
        );
        assert_eq!(code(invitation_usable(0)), "invitation_invalid");
    }
}

//! Who may do what: one pure function from an authority and an action to a
//! decision, so every rule lives in one place and is tested here.
//!
//! Rules that depend on the organization's state (the last owner cannot be
//! removed or demoted) are enforced by the store inside the transaction
//! that makes the change; see `Change`.

use crate::api_key::Scope;
use crate::role::Role;

/// What a caller acts with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authority {
    /// A person signed in, with their role in the organization.
    User(Role),
    /// An API key with its scopes. An `admin` key manages the organization
    /// as an admin would, but does not read the log unless it also has
    /// `audit:read`.
    Key(Vec<Scope>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    ReadAudit,
    WriteAudit,
    ViewOrg,
    /// Rename or configure single sign-on.
    ConfigureOrg,
    ChangePlan,
    ViewMembers,
    AddMember {
        role: Role,
    },
    ChangeRole {
        from: Role,
        to: Role,
    },
    RemoveMember {
        role: Role,
    },
    /// Clear a member's password and issue a reset token. Only an owner
    /// signed in as a person; the domain's `invitation::may_force_reset`
    /// decides which accounts.
    ForceReset,
    ViewKeys,
    CreateKey {
        scopes: Vec<Scope>,
    },
    RevokeKey,
    ViewProjects,
    ManageProjects,
    /// See, create, change, delete, test webhooks and their deliveries.
    ManageWebhooks,
    /// See, create, change and delete SIEM streams.
    ManageStreams,
    /// Erase a person's personal data from the log. Owners only: no key
    /// counts as one.
    EraseSubject,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Denied {
    pub code: &'static str,
    pub message: String,
}

fn deny(code: &'static str, message: impl Into<String>) -> Result<(), Denied> {
    Err(Denied {
        code,
        message: message.into(),
    })
}

fn at_least(role: Role, needed: Role, what: &str) -> Result<(), Denied> {
    if role >= needed {
        return Ok(());
    }
    let needs = match needed {
        Role::Owner => "the owner role",
        Role::Admin => "the owner or admin role",
        Role::Member | Role::Viewer => "the member role or higher",
    };
    deny("insufficient_role", format!("{what} needs {needs}; you are {role}"))
}

/// The role an authority counts as for management, if any.
fn management_role(authority: &Authority) -> Option<Role> {
    match authority {
        Authority::User(role) => Some(*role),
        Authority::Key(scopes) if scopes.contains(&Scope::Admin) => Some(Role::Admin),
        Authority::Key(_) => None,
    }
}

pub fn check(authority: &Authority, action: &Action) -> Result<(), Denied> {
    match action {
        Action::ReadAudit => match authority {
            Authority::User(role) => at_least(*role, Role::Admin, "reading the audit log"),
            Authority::Key(scopes) if scopes.contains(&Scope::AuditRead) => Ok(()),
            Authority::Key(_) => deny("missing_scope", "this API key lacks the audit:read scope"),
        },
        Action::WriteAudit => match authority {
            Authority::Key(scopes) if scopes.contains(&Scope::AuditWrite) => Ok(()),
            Authority::Key(_) => deny("missing_scope", "this API key lacks the audit:write scope"),
            Authority::User(_) => deny(
                "missing_scope",
                "recording events needs an API key with the audit:write scope",
            ),
        },
        _ => {
            let Some(role) = management_role(authority) else {
                return deny(
                    "missing_scope",
                    "managing the organization needs an API key with the admin scope",
                );
            };
            check_management(role, action)?;
            match action {
                Action::CreateKey { scopes } => may_grant(authority, scopes),
                _ => Ok(()),
            }
        }
    }
}

/// Whether `authority` holds `scope` itself. Owners and admins hold every
/// scope; members only `audit:write`, the one scope their keys may have;
/// viewers none; a key exactly its own, so an `admin` key, which manages
/// but does not read the log, cannot read it through a key it makes.
pub fn holds(authority: &Authority, scope: Scope) -> bool {
    match authority {
        Authority::User(Role::Owner | Role::Admin) => true,
        Authority::User(Role::Member) => scope == Scope::AuditWrite,
        Authority::User(Role::Viewer) => false,
        Authority::Key(scopes) => scopes.contains(&scope),
    }
}

/// A key can only be given scopes its creator holds.
fn may_grant(authority: &Authority, scopes: &[Scope]) -> Result<(), Denied> {
    match scopes.iter().find(|s| !holds(authority, **s)) {
        None => Ok(()),
        Some(scope) => deny(
            "scope_not_held",
            format!("a new key can only have scopes its creator holds, and you do not hold {scope}"),
        ),
    }
}

fn check_management(role: Role, action: &Action) -> Result<(), Denied> {
    match action {
        Action::ViewOrg | Action::ViewMembers | Action::ViewProjects => Ok(()),
        Action::ViewKeys => at_least(role, Role::Member, "listing API keys"),
        Action::ManageProjects => at_least(role, Role::Member, "changing projects"),
        Action::ConfigureOrg => at_least(role, Role::Admin, "changing the organization's settings"),
        Action::ChangePlan => at_least(role, Role::Owner, "changing the plan"),
        Action::RevokeKey => at_least(role, Role::Admin, "revoking API keys"),
        Action::ManageWebhooks => at_least(role, Role::Admin, "managing webhooks"),
        Action::ManageStreams => at_least(role, Role::Admin, "managing SIEM streams"),
        Action::CreateKey { scopes } => {
            let privileged = scopes.iter().any(|s| matches!(s, Scope::AuditRead | Scope::Admin));
            if privileged {
                at_least(role, Role::Admin, "creating a key with the audit:read or admin scope")
            } else {
                at_least(role, Role::Member, "creating API keys")
            }
        }
        Action::AddMember { role: new } => {
            at_least(role, Role::Admin, "adding members")?;
            if *new == Role::Owner {
                at_least(role, Role::Owner, "adding an owner")?;
            }
            Ok(())
        }
        Action::ChangeRole { from, to } => {
            at_least(role, Role::Admin, "changing roles")?;
            if *from == Role::Owner || *to == Role::Owner {
                at_least(role, Role::Owner, "changing an owner's role or making an owner")?;
            }
            Ok(())
        }
        Action::RemoveMember { role: target } => {
            at_least(role, Role::Admin, "removing members")?;
            if *target == Role::Owner {
                at_least(role, Role::Owner, "removing an owner")?;
            }
            Ok(())
        }
        Action::ForceReset => at_least(role, Role::Owner, "resetting a member's password"),
        Action::EraseSubject => at_least(role, Role::Owner, "erasing a person's data"),
        Action::ReadAudit | Action::WriteAudit => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Role::*;

    fn user(r: Role) -> Authority {
        Authority::User(r)
    }

    fn ok(a: &Authority, act: Action) -> bool {
        check(a, &act).is_ok()
    }

    #[test]
    fn only_owners_and_admins_read_the_log() {
        assert!(ok(&user(Owner), Action::ReadAudit));
        assert!(ok(&user(Admin), Action::ReadAudit));
        assert!(!ok(&user(Member), Action::ReadAudit));
        assert!(!ok(&user(Viewer), Action::ReadAudit));
        assert!(ok(&Authority::Key(vec![Scope::AuditRead]), Action::ReadAudit));
        assert!(!ok(
            &Authority::Key(vec![Scope::AuditWrite, Scope::Admin]),
            Action::ReadAudit
        ));
    }

    #[test]
    fn only_write_keys_ingest() {
        assert!(ok(&Authority::Key(vec![Scope::AuditWrite]), Action::WriteAudit));
        assert!(!ok(&Authority::Key(vec![Scope::AuditRead]), Action::WriteAudit));
        assert!(!ok(&user(Owner), Action::WriteAudit));
    }

    #[test]
    fn only_owners_change_the_plan() {
        assert!(ok(&user(Owner), Action::ChangePlan));
        for a in [user(Admin), user(Member), Authority::Key(vec![Scope::Admin])] {
            assert!(!ok(&a, Action::ChangePlan), "{a:?}");
        }
    }

    #[test]
    fn admins_manage_members_below_owner() {
        let admin = user(Admin);
        assert!(ok(&admin, Action::AddMember { role: Admin }));
        assert!(ok(
            &admin,
            Action::ChangeRole {
                from: Viewer,
                to: Admin
            }
        ));
        assert!(ok(&admin, Action::RemoveMember { role: Member }));
        assert!(!ok(&admin, Action::AddMember { role: Owner }));
        assert!(!ok(&admin, Action::ChangeRole { from: Owner, to: Admin }));
        assert!(!ok(&admin, Action::ChangeRole { from: Admin, to: Owner }));
        assert!(!ok(&admin, Action::RemoveMember { role: Owner }));
        assert!(ok(
            &user(Owner),
            Action::ChangeRole {
                from: Owner,
                to: Viewer
            }
        ));
        assert!(ok(&user(Owner), Action::RemoveMember { role: Owner }));
        assert!(!ok(&user(Member), Action::AddMember { role: Viewer }));
        assert!(!ok(&user(Viewer), Action::RemoveMember { role: Viewer }));
    }

    #[test]
    fn privileged_keys_need_owner_or_admin() {
        let read = Action::CreateKey {
            scopes: vec![Scope::AuditRead],
        };
        let admin_key = Action::CreateKey {
            scopes: vec![Scope::Admin],
        };
        let write = Action::CreateKey {
            scopes: vec![Scope::AuditWrite],
        };
        assert!(ok(&user(Admin), read.clone()));
        assert!(ok(&user(Owner), admin_key.clone()));
        assert!(!ok(&user(Member), read));
        assert!(!ok(&user(Member), admin_key));
        assert!(ok(&user(Member), write.clone()));
        assert!(!ok(&user(Viewer), write));
    }

    #[test]
    fn nobody_grants_a_scope_they_do_not_hold() {
        let create = |scopes: Vec<Scope>| Action::CreateKey { scopes };
        let admin_key = Authority::Key(vec![Scope::Admin]);
        let denied = check(&admin_key, &create(vec![Scope::AuditRead])).unwrap_err();
        assert_eq!(denied.code, "scope_not_held");
        assert!(denied.message.contains("audit:read"), "{}", denied.message);
        assert!(!ok(&admin_key, create(vec![Scope::AuditWrite])));
        assert!(!ok(&admin_key, create(vec![Scope::Admin, Scope::AuditRead])));
        assert!(ok(&admin_key, create(vec![Scope::Admin])));
        let full_key = Authority::Key(vec![Scope::Admin, Scope::AuditRead, Scope::AuditWrite]);
        assert!(ok(
            &full_key,
            create(vec![Scope::Admin, Scope::AuditRead, Scope::AuditWrite])
        ));
        let read_admin = Authority::Key(vec![Scope::Admin, Scope::AuditRead]);
        assert!(ok(&read_admin, create(vec![Scope::AuditRead])));
        assert!(!ok(&read_admin, create(vec![Scope::AuditWrite])));
        for role in [Owner, Admin] {
            assert!(ok(
                &user(role),
                create(vec![Scope::Admin, Scope::AuditRead, Scope::AuditWrite])
            ));
        }
        assert!(ok(&user(Member), create(vec![Scope::AuditWrite])));
        assert!(!ok(&user(Member), create(vec![Scope::AuditWrite, Scope::AuditRead])));
        assert!(!ok(&user(Viewer), create(vec![Scope::AuditWrite])));
    }

    #[test]
    fn what_each_authority_holds() {
        let all = [Scope::AuditWrite, Scope::AuditRead, Scope::Admin];
        let held = |a: &Authority| all.iter().filter(|s| holds(a, **s)).count();
        assert_eq!(held(&user(Owner)), 3);
        assert_eq!(held(&user(Admin)), 3);
        assert_eq!(held(&user(Member)), 1);
        assert!(holds(&user(Member), Scope::AuditWrite));
        assert_eq!(held(&user(Viewer)), 0);
        assert_eq!(held(&Authority::Key(vec![Scope::AuditRead])), 1);
        assert!(!holds(&Authority::Key(vec![Scope::Admin]), Scope::AuditRead));
    }

    #[test]
    fn keys_without_admin_scope_manage_nothing() {
        let k = Authority::Key(vec![Scope::AuditRead, Scope::AuditWrite]);
        for act in [
            Action::ViewOrg,
            Action::ViewMembers,
            Action::ManageProjects,
            Action::ViewKeys,
        ] {
            assert_eq!(check(&k, &act).unwrap_err().code, "missing_scope");
        }
        let admin = Authority::Key(vec![Scope::Admin]);
        assert!(ok(&admin, Action::ManageProjects));
        assert!(ok(&admin, Action::AddMember { role: Member }));
        assert!(!ok(&admin, Action::AddMember { role: Owner }));
    }

    #[test]
    fn webhooks_are_for_owners_and_admins() {
        assert!(ok(&user(Owner), Action::ManageWebhooks));
        assert!(ok(&user(Admin), Action::ManageWebhooks));
        assert!(ok(&Authority::Key(vec![Scope::Admin]), Action::ManageWebhooks));
        assert!(!ok(&user(Member), Action::ManageWebhooks));
        assert!(!ok(&Authority::Key(vec![Scope::AuditRead]), Action::ManageWebhooks));
        assert!(ok(&user(Admin), Action::ManageStreams));
        assert!(ok(&Authority::Key(vec![Scope::Admin]), Action::ManageStreams));
        assert!(!ok(&user(Member), Action::ManageStreams));
        assert!(!ok(&Authority::Key(vec![Scope::AuditWrite]), Action::ManageStreams));
    }

    #[test]
    fn viewers_only_view() {
        let v = user(Viewer);
        assert!(ok(&v, Action::ViewOrg) && ok(&v, Action::ViewMembers) && ok(&v, Action::ViewProjects));
        for act in [
            Action::ManageProjects,
            Action::ViewKeys,
            Action::ConfigureOrg,
            Action::RevokeKey,
        ] {
            let d = check(&v, &act).unwrap_err();
            assert_eq!(d.code, "insufficient_role");
            assert!(d.message.contains("you are viewer"), "{}", d.message);
        }
    }

    #[test]
    fn only_owners_erase_and_no_key_can() {
        assert!(check(&user(Owner), &Action::EraseSubject).is_ok());
        for who in [
            user(Admin),
            user(Member),
            Authority::Key(vec![Scope::Admin, Scope::AuditRead]),
        ] {
            assert_eq!(
                check(&who, &Action::EraseSubject).unwrap_err().code,
                "insufficient_role"
            );
        }
    }
}

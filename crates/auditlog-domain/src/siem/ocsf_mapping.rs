//! Which OCSF 1.8.0 class and activity each event is: a table for the
//! built-in catalog, and a rule for the events operators add.
//!
//! The classes, and why:
//!
//! - Authentication (3002) for sign-in and sign-out: Logon for
//!   `session.signed_in` and `session.sign_in_failed` (the latter with
//!   status Failure), Logoff for `session.signed_out` and `session.ended`
//!   (OCSF's Logoff is any end of a logon session, not only the person's).
//! - Account Change (3001) for what happens to a person's credentials:
//!   Password Change, Password Reset.
//! - Group Management (3006) for membership: a person belongs to many
//!   organizations, so joining or leaving one adds the user to, or removes
//!   them from, the organization's group; no account is created or deleted.
//!   Provisioning by single sign-on is such a join.
//! - User Access Management (3005) for a member's role changing: Assign
//!   Privileges, the new role.
//! - Datastore Activity (6005) for the log's own data being read, queried,
//!   exported or purged.
//! - Entity Management (3004) for everything else: configuration objects
//!   (organizations, projects, keys, webhooks, guardrails, alerts, ...)
//!   created, read, updated, renamed (Move: "move or rename"), enabled,
//!   disabled or deleted. An alert firing is Activate, OCSF's transient
//!   change of an entity's state.
//!
//! An event outside the built-in table (an operator's) is Entity
//! Management, because every entry names a resource that `entity` can hold,
//! so the event always validates. Its activity comes from the last word of
//! its action: `dataset.created` is Create, `report.file_deleted` Delete;
//! see [`FALLBACK_VERBS`]. Other actions are Other (99), with the event name
//! as `activity_name`.
//!
//! Any event whose action ends in `failed` has status Failure; the others
//! Success.

/// The OCSF classes auditlog's events map to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    AccountChange,
    Authentication,
    EntityManagement,
    UserAccessManagement,
    GroupManagement,
    DatastoreActivity,
}

/// The activity id OCSF gives "Other" in every class.
pub const OTHER: u8 = 99;

/// Activity ids of the classes, named as OCSF captions them.
pub mod activity {
    pub mod account {
        pub const PASSWORD_CHANGE: u8 = 3;
        pub const PASSWORD_RESET: u8 = 4;
    }
    pub mod auth {
        pub const LOGON: u8 = 1;
        pub const LOGOFF: u8 = 2;
    }
    pub mod entity {
        pub const CREATE: u8 = 1;
        pub const READ: u8 = 2;
        pub const UPDATE: u8 = 3;
        pub const DELETE: u8 = 4;
        pub const MOVE: u8 = 5;
        pub const ENABLE: u8 = 8;
        pub const DISABLE: u8 = 9;
        pub const ACTIVATE: u8 = 10;
    }
    pub mod access {
        pub const ASSIGN_PRIVILEGES: u8 = 1;
    }
    pub mod group {
        pub const ADD_USER: u8 = 3;
        pub const REMOVE_USER: u8 = 4;
    }
    pub mod datastore {
        pub const READ: u8 = 1;
        pub const QUERY: u8 = 4;
        pub const DELETE: u8 = 7;
    }
}

impl Class {
    pub const ALL: [Class; 6] = [
        Class::AccountChange,
        Class::Authentication,
        Class::EntityManagement,
        Class::UserAccessManagement,
        Class::GroupManagement,
        Class::DatastoreActivity,
    ];

    pub fn uid(self) -> u32 {
        match self {
            Class::AccountChange => 3001,
            Class::Authentication => 3002,
            Class::EntityManagement => 3004,
            Class::UserAccessManagement => 3005,
            Class::GroupManagement => 3006,
            Class::DatastoreActivity => 6005,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Class::AccountChange => "Account Change",
            Class::Authentication => "Authentication",
            Class::EntityManagement => "Entity Management",
            Class::UserAccessManagement => "User Access Management",
            Class::GroupManagement => "Group Management",
            Class::DatastoreActivity => "Datastore Activity",
        }
    }

    pub fn category_uid(self) -> u32 {
        self.uid() / 1000
    }

    pub fn category_name(self) -> &'static str {
        match self.category_uid() {
            3 => "Identity & Access Management",
            _ => "Application Activity",
        }
    }

    /// The class's activities as OCSF 1.8.0 defines them, without Unknown
    /// (0) and Other (99).
    pub fn activities(self) -> &'static [(u8, &'static str)] {
        match self {
            Class::AccountChange => ACCOUNT_CHANGE,
            Class::Authentication => AUTHENTICATION,
            Class::EntityManagement => ENTITY_MANAGEMENT,
            Class::UserAccessManagement => USER_ACCESS_MANAGEMENT,
            Class::GroupManagement => GROUP_MANAGEMENT,
            Class::DatastoreActivity => DATASTORE_ACTIVITY,
        }
    }

    /// The caption of activity `id`: "Other" for 99.
    pub fn activity_caption(self, id: u8) -> Option<&'static str> {
        if id == OTHER {
            return Some("Other");
        }
        self.activities().iter().find(|(i, _)| *i == id).map(|(_, n)| *n)
    }
}

const ACCOUNT_CHANGE: &[(u8, &str)] = &[
    (1, "Create"),
    (2, "Enable"),
    (3, "Password Change"),
    (4, "Password Reset"),
    (5, "Disable"),
    (6, "Delete"),
    (7, "Attach Policy"),
    (8, "Detach Policy"),
    (9, "Lock"),
    (10, "MFA Factor Enable"),
    (11, "MFA Factor Disable"),
    (12, "Unlock"),
];

const AUTHENTICATION: &[(u8, &str)] = &[
    (1, "Logon"),
    (2, "Logoff"),
    (3, "Authentication Ticket"),
    (4, "Service Ticket Request"),
    (5, "Service Ticket Renew"),
    (6, "Preauth"),
    (7, "Account Switch"),
];

const ENTITY_MANAGEMENT: &[(u8, &str)] = &[
    (1, "Create"),
    (2, "Read"),
    (3, "Update"),
    (4, "Delete"),
    (5, "Move"),
    (6, "Enroll"),
    (7, "Unenroll"),
    (8, "Enable"),
    (9, "Disable"),
    (10, "Activate"),
    (11, "Deactivate"),
    (12, "Suspend"),
    (13, "Resume"),
];

const USER_ACCESS_MANAGEMENT: &[(u8, &str)] = &[(1, "Assign Privileges"), (2, "Revoke Privileges")];

const GROUP_MANAGEMENT: &[(u8, &str)] = &[
    (1, "Assign Privileges"),
    (2, "Revoke Privileges"),
    (3, "Add User"),
    (4, "Remove User"),
    (5, "Delete"),
    (6, "Create"),
    (7, "Add Subgroup"),
    (8, "Remove Subgroup"),
];

const DATASTORE_ACTIVITY: &[(u8, &str)] = &[
    (1, "Read"),
    (2, "Update"),
    (3, "Connect"),
    (4, "Query"),
    (5, "Write"),
    (6, "Create"),
    (7, "Delete"),
    (8, "List"),
    (9, "Encrypt"),
    (10, "Decrypt"),
];

/// Where an event lands in OCSF.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Mapping {
    pub class: Class,
    pub activity_id: u8,
    /// Did the activity fail (status Failure rather than Success)?
    pub failure: bool,
}

impl Mapping {
    /// `class_uid * 100 + activity_id`, as OCSF defines it.
    pub fn type_uid(&self) -> u32 {
        self.class.uid() * 100 + u32::from(self.activity_id)
    }

    /// The activity's caption ("Other" for 99).
    pub fn activity_caption(&self) -> &'static str {
        self.class.activity_caption(self.activity_id).unwrap_or("Other")
    }

    /// `type_name`, the caption of `type_uid`: "Class: Activity".
    pub fn type_name(&self) -> String {
        format!("{}: {}", self.class.name(), self.activity_caption())
    }
}

use Class::{
    AccountChange, Authentication, DatastoreActivity, EntityManagement, GroupManagement, UserAccessManagement,
};
use activity::{access, account, auth, datastore, entity, group};

/// Every built-in event's class and activity.
const BUILTIN: &[(&str, Class, u8)] = &[
    ("organization.created", EntityManagement, entity::CREATE),
    ("organization.renamed", EntityManagement, entity::MOVE),
    ("organization.sso_configured", EntityManagement, entity::UPDATE),
    ("organization.member_added", GroupManagement, group::ADD_USER),
    ("organization.member_invited", EntityManagement, entity::CREATE),
    (
        "organization.member_password_reset",
        AccountChange,
        account::PASSWORD_RESET,
    ),
    (
        "organization.member_password_changed",
        AccountChange,
        account::PASSWORD_CHANGE,
    ),
    ("organization.member_removed", GroupManagement, group::REMOVE_USER),
    (
        "organization.member_role_changed",
        UserAccessManagement,
        access::ASSIGN_PRIVILEGES,
    ),
    ("organization.member_provisioned", GroupManagement, group::ADD_USER),
    ("project.created", EntityManagement, entity::CREATE),
    ("project.deleted", EntityManagement, entity::DELETE),
    ("project.renamed", EntityManagement, entity::MOVE),
    ("api_key.created", EntityManagement, entity::CREATE),
    ("api_key.revoked", EntityManagement, entity::DELETE),
    ("api_key.last_used_updated", EntityManagement, entity::UPDATE),
    ("guardrail.created", EntityManagement, entity::CREATE),
    ("guardrail.updated", EntityManagement, entity::UPDATE),
    ("guardrail.enabled", EntityManagement, entity::ENABLE),
    ("guardrail.disabled", EntityManagement, entity::DISABLE),
    ("guardrail.deleted", EntityManagement, entity::DELETE),
    ("alert.created", EntityManagement, entity::CREATE),
    ("alert.updated", EntityManagement, entity::UPDATE),
    ("alert.triggered", EntityManagement, entity::ACTIVATE),
    ("alert.deleted", EntityManagement, entity::DELETE),
    ("billing.plan_upgraded", EntityManagement, entity::UPDATE),
    ("billing.plan_downgraded", EntityManagement, entity::UPDATE),
    ("billing.payment_method_changed", EntityManagement, entity::UPDATE),
    ("data_export.requested", DatastoreActivity, datastore::QUERY),
    ("data_export.downloaded", DatastoreActivity, datastore::READ),
    ("evaluation.template_created", EntityManagement, entity::CREATE),
    ("evaluation.template_deleted", EntityManagement, entity::DELETE),
    ("prompt.version_published", EntityManagement, entity::UPDATE),
    ("prompt.version_rolled_back", EntityManagement, entity::UPDATE),
    ("webhook.created", EntityManagement, entity::CREATE),
    ("webhook.updated", EntityManagement, entity::UPDATE),
    ("webhook.deleted", EntityManagement, entity::DELETE),
    ("webhook.disabled", EntityManagement, entity::DISABLE),
    ("webhook.secret_rotated", EntityManagement, entity::UPDATE),
    ("webhook.redelivered", EntityManagement, entity::UPDATE),
    ("webhook.replayed", EntityManagement, entity::UPDATE),
    ("stream.created", EntityManagement, entity::CREATE),
    ("stream.updated", EntityManagement, entity::UPDATE),
    ("stream.deleted", EntityManagement, entity::DELETE),
    ("audit_log.viewed", DatastoreActivity, datastore::READ),
    ("audit_log.retention_purged", DatastoreActivity, datastore::DELETE),
    ("audit_log.subject_erased", DatastoreActivity, datastore::DELETE),
    ("session.signed_in", Authentication, auth::LOGON),
    ("session.sign_in_failed", Authentication, auth::LOGON),
    ("session.signed_out", Authentication, auth::LOGOFF),
    ("session.ended", Authentication, auth::LOGOFF),
];

/// The last word of an operator's action, and the Entity Management
/// activity it means.
pub const FALLBACK_VERBS: &[(&str, u8)] = &[
    ("created", entity::CREATE),
    ("added", entity::CREATE),
    ("viewed", entity::READ),
    ("read", entity::READ),
    ("updated", entity::UPDATE),
    ("changed", entity::UPDATE),
    ("deleted", entity::DELETE),
    ("removed", entity::DELETE),
    ("renamed", entity::MOVE),
    ("moved", entity::MOVE),
    ("enabled", entity::ENABLE),
    ("disabled", entity::DISABLE),
];

/// The built-in event's mapping, or `None` for an event the built-in
/// catalog does not have.
pub fn builtin(event: &str) -> Option<Mapping> {
    BUILTIN
        .iter()
        .find(|(name, _, _)| *name == event)
        .map(|&(_, class, activity_id)| Mapping {
            class,
            activity_id,
            failure: failed(event),
        })
}

/// Every built-in event with its mapping, in catalog order.
pub fn builtin_table() -> impl Iterator<Item = (&'static str, Mapping)> {
    BUILTIN.iter().filter_map(|(name, _, _)| Some((*name, builtin(name)?)))
}

/// The mapping of any event: the built-in table's, else the fallback rule
/// (see the module comment).
pub fn class_of(event: &str) -> Mapping {
    builtin(event).unwrap_or_else(|| Mapping {
        class: EntityManagement,
        activity_id: fallback_activity(event),
        failure: failed(event),
    })
}

/// The last word of the event's action (`report.file_deleted`: `deleted`).
fn last_word(event: &str) -> &str {
    let action = event.rsplit('.').next().unwrap_or(event);
    action.rsplit('_').next().unwrap_or(action)
}

fn fallback_activity(event: &str) -> u8 {
    let word = last_word(event);
    FALLBACK_VERBS
        .iter()
        .find(|(verb, _)| *verb == word)
        .map_or(OTHER, |(_, id)| *id)
}

fn failed(event: &str) -> bool {
    last_word(event) == "failed"
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Catalog;

    #[test]
    fn every_built_in_event_has_an_explicit_mapping() {
        let catalog = Catalog::builtin();
        for spec in catalog.events() {
            assert!(builtin(&spec.name).is_some(), "{} has no OCSF mapping", spec.name);
        }
        for (name, _, _) in BUILTIN {
            assert!(catalog.contains(name), "{name} is mapped but not in the catalog");
        }
        assert_eq!(BUILTIN.len(), catalog.len());
    }

    #[test]
    fn every_mapped_activity_exists_in_its_class() {
        for (name, m) in builtin_table() {
            assert!(
                m.class.activities().iter().any(|(id, _)| *id == m.activity_id),
                "{name}: activity {} is not one of {}'s",
                m.activity_id,
                m.class.name()
            );
        }
    }

    #[test]
    fn type_uid_is_class_uid_times_a_hundred_plus_activity() {
        for (name, m) in builtin_table() {
            assert_eq!(m.type_uid(), m.class.uid() * 100 + u32::from(m.activity_id), "{name}");
        }
        let m = class_of("session.signed_in");
        assert_eq!((m.type_uid(), m.type_name()), (300201, "Authentication: Logon".into()));
        let m = class_of("dataset.exported");
        assert_eq!(
            (m.type_uid(), m.type_name()),
            (300499, "Entity Management: Other".into())
        );
    }

    #[test]
    fn categories_follow_the_class_uid() {
        for c in Class::ALL {
            let want = if c == Class::DatastoreActivity { 6 } else { 3 };
            assert_eq!(c.category_uid(), want, "{c:?}");
        }
        assert_eq!(Class::DatastoreActivity.category_name(), "Application Activity");
    }

    #[test]
    fn a_failed_sign_in_is_a_failed_logon() {
        let m = class_of("session.sign_in_failed");
        assert_eq!((m.class, m.activity_id, m.failure), (Authentication, auth::LOGON, true));
        assert!(!class_of("session.signed_in").failure);
    }

    #[test]
    fn operator_events_are_entity_management_by_their_last_word() {
        let cases = [
            ("dataset.created", entity::CREATE),
            ("report.file_deleted", entity::DELETE),
            ("dataset.renamed", entity::MOVE),
            ("dataset.exported", OTHER),
            ("dataset.created_by_mistake", OTHER),
            ("sync.run_failed", OTHER),
        ];
        for (event, want) in cases {
            let m = class_of(event);
            assert_eq!((m.class, m.activity_id), (EntityManagement, want), "{event}");
        }
        assert!(class_of("sync.run_failed").failure);
    }
}

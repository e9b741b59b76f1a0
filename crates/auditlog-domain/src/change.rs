//! Management changes, applied by the store in the same transaction as the
//! audit entries that record them: a change that fails records nothing, and
//! an entry that fails to record rolls the change back.
//!
//! Changes carry the values the caller saw (`old`, `from`), and the store
//! applies them only if those still hold, so two admins racing cannot
//! record an entry that describes a state that never existed. Rules that
//! need the organization's whole state, such as keeping at least one owner,
//! are checked by the store inside the transaction too.

use crate::Timestamp;
use crate::api_key::KeyPrefix;
use crate::member::Project;
use crate::org::{Plan, Sso};
use crate::role::Role;
use crate::store::NewApiKey;
use crate::webhook::{Endpoint, Secret};

#[derive(Debug, Clone)]
pub enum Change {
    RenameOrg {
        old: String,
        new: String,
    },
    SetPlan {
        old: Plan,
        new: Plan,
        enterprise_retention_days: Option<u32>,
    },
    ConfigureSso(Option<Sso>),
    /// Adds a member, creating the person's account if needed; a password
    /// hash is set only on an account that has none.
    AddMember {
        email: String,
        role: Role,
        password_hash: Option<String>,
    },
    SetRole {
        email: String,
        from: Role,
        to: Role,
    },
    RemoveMember {
        email: String,
        role: Role,
    },
    CreateKey(NewApiKey),
    RevokeKey {
        prefix: KeyPrefix,
        at: Timestamp,
    },
    /// Moves a key's last-used time from `previous` to `at`; applied only if
    /// `previous` still holds, so concurrent requests record it once.
    TouchKey {
        prefix: KeyPrefix,
        previous: Option<Timestamp>,
        at: Timestamp,
    },
    CreateProject(Project),
    RenameProject {
        id: String,
        old: String,
        new: String,
    },
    DeleteProject {
        id: String,
    },
    CreateWebhook(Endpoint),
    /// Replaces an endpoint's settings; re-enabling clears its failure state.
    UpdateWebhook {
        id: String,
        url: String,
        description: String,
        events: Vec<crate::pattern::EventPattern>,
        enabled: bool,
    },
    /// Deletes an endpoint and its deliveries not yet made.
    DeleteWebhook {
        id: String,
    },
    RotateWebhookSecret {
        id: String,
        new: Secret,
        /// Until when the old secret keeps signing.
        previous_until: Timestamp,
    },
    /// Disables an endpoint (410 Gone, or failing for five days); applied
    /// only while it is still enabled, so it is recorded once.
    DisableWebhook {
        id: String,
        reason: String,
    },
}

//! Management changes, applied by the store in the same transaction as the
//! audit entries that record them: a change that fails records nothing, and
//! an entry that fails to record rolls the change back.
//!
//! Changes carry the values the caller saw (`old`, `from`), and the store
//! applies them only if those still hold, so two admins racing cannot
//! record an entry that describes a state that never existed. Rules that
//! need the organization's whole state, such as keeping at least one owner,
//! are checked by the store inside the transaction too.

use crate::api_key::KeyPrefix;
use crate::invitation::Invitation;
use crate::member::Project;
use crate::org::{Plan, SsoConfig};
use crate::personal::Pseudonym;
use crate::role::Role;
use crate::store::NewApiKey;
use crate::stream::{Stream, StreamSettings};
use crate::webhook::{Endpoint, Secret};
use crate::{OrgId, Timestamp};

#[derive(Debug, Clone)]
pub enum Change {
    /// Erases a person (see `personal`): their key, their sealed values and
    /// their blind-index `token` in the rows. Applied only while the person
    /// still has exactly `entries` entries, the count the entry recording
    /// the erasure states.
    EraseSubject {
        pseudonym: Pseudonym,
        token: String,
        entries: u64,
    },
    RenameOrg {
        old: String,
        new: String,
    },
    SetPlan {
        old: Plan,
        new: Plan,
        enterprise_retention_days: Option<u32>,
    },
    /// Sets, changes or (with `None`) removes single sign-on, its secret too.
    ConfigureSso(Option<SsoConfig>),
    /// Adds a member at once, creating the person's account (without a
    /// password) if needed. Only the operator's command line and the
    /// service's own seeding use it: through the API, people join by
    /// accepting an invitation.
    AddMember {
        email: String,
        role: Role,
    },
    /// The operator sets a person's password on the host, creating the
    /// account if needed (`auditlog member add`).
    SetPassword {
        email: String,
        password_hash: String,
    },
    /// Stores a new invitation (or password reset) token's hash.
    Invite(Invitation),
    /// Uses a `Join` invitation: marks it accepted (once, before it
    /// expires) and makes its person a member. With `new_account`, the
    /// account is created with that password hash and must not exist yet;
    /// without, it must (the person is signed in as it).
    AcceptInvitation(Acceptance),
    /// An owner's forced reset: the account's password is cleared, every
    /// session of it ends and a `PasswordReset` invitation is stored.
    /// Applied only while the account's organizations are still exactly
    /// `memberships` (the set the owner was allowed to reset for).
    ForceReset {
        memberships: Vec<OrgId>,
        invitation: Invitation,
    },
    /// Uses a `PasswordReset` invitation: marks it accepted and sets the
    /// account's password; any session of the account ends.
    CompleteReset {
        token_hash: [u8; 32],
        email: String,
        password_hash: String,
        at: Timestamp,
    },
    /// A person changes their own password: applied only if the stored
    /// hash is still `old_hash`; every session of theirs but `keep` ends.
    ChangePassword {
        email: String,
        old_hash: String,
        new_hash: String,
        keep: [u8; 32],
    },
    /// Ends one session (past its expiry); applied only while it is still
    /// there, so replicas sweeping at once record its end once.
    EndSession {
        token_hash: [u8; 32],
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
    UpdateWebhook(WebhookSettings),
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
    /// Stores a new stream; its cursor starts at the organization's newest
    /// entry, read inside the transaction, so it carries what is recorded
    /// from then on.
    CreateStream(Box<Stream>),
    /// Replaces a stream's settings (a sender on the old ones stops);
    /// `keep_tls_key` keeps the stored client key when the update brings
    /// none. Re-enabling clears its failure state.
    UpdateStream {
        settings: Box<StreamSettings>,
        keep_tls_key: bool,
    },
    DeleteStream {
        id: String,
    },
}

/// An endpoint's settings as an update replaces them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookSettings {
    pub id: String,
    pub url: String,
    pub description: String,
    pub events: Vec<crate::pattern::EventPattern>,
    pub enabled: bool,
    pub payload_format: crate::webhook::PayloadFormat,
}

/// A `Join` invitation used: by whom, as what, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acceptance {
    pub token_hash: [u8; 32],
    pub email: String,
    pub role: Role,
    /// The new account's password hash; `None` when the account exists
    /// and its owner is signed in.
    pub new_account: Option<String>,
    pub at: Timestamp,
}

//! The `Store` trait: everything auditlog keeps, in domain words. SQLite and
//! PostgreSQL implement it and pass the same conformance suite.
//!
//! Every method names the organization first: each table is keyed by it, so
//! no query can reach across organizations, and a sharded PostgreSQL can
//! distribute on it.

use async_trait::async_trait;
use uuid::Uuid;

use crate::api_key::{KeyHash, KeyPrefix, Scope};
use crate::change::Change;
use crate::filter::{Filter, Page};
use crate::member::{Member, Project, User};
use crate::org::NewOrg;
use crate::session::Session;
use crate::{Entry, NewEntry, Org, OrgId, Role, Timestamp};

/// One caller's entries (and the change they record, if any), committed
/// together with other callers' in a single transaction by the writer.
#[derive(Debug, Clone)]
pub struct AppendRequest {
    pub org_id: OrgId,
    /// Applied first, in order; if one fails, nothing of this request is
    /// written and the other requests of the transaction are unaffected.
    pub changes: Vec<Change>,
    pub entries: Vec<NewEntry>,
}

impl AppendRequest {
    pub fn entries(org_id: OrgId, entries: Vec<NewEntry>) -> Self {
        Self {
            org_id,
            changes: Vec::new(),
            entries,
        }
    }
}

/// What one purge batch removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Purged {
    pub count: u64,
    pub first_seq: Option<i64>,
    pub last_seq: Option<i64>,
}

/// What an appended entry became.
#[derive(Debug, Clone, PartialEq)]
pub struct Appended {
    pub entry: Entry,
    /// True when the idempotency key was seen before and `entry` is the
    /// original, not a new entry.
    pub replayed: bool,
}

#[derive(Debug, Clone)]
pub struct NewApiKey {
    pub org_id: OrgId,
    pub prefix: KeyPrefix,
    pub name: String,
    pub scopes: Vec<Scope>,
    pub hash: KeyHash,
}

#[derive(Debug, Clone)]
pub struct ApiKeyRecord {
    pub org_id: OrgId,
    pub prefix: KeyPrefix,
    pub name: String,
    pub scopes: Vec<Scope>,
    pub hash: KeyHash,
    pub created_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
    pub last_used_at: Option<Timestamp>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique name (slug, key prefix, member) is taken.
    #[error("{0} already exists")]
    Conflict(String),
    /// A change was refused by a rule checked inside its transaction (the
    /// last owner, a value changed concurrently). Nothing was written.
    #[error("{message}")]
    Rejected { code: &'static str, message: String },
    #[error("{0} not found")]
    NotFound(String),
    /// The database cannot take writes or reads right now (busy, disk full,
    /// unreachable). Callers may retry later; nothing was committed.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    /// Anything else; a bug or corruption, logged and never shown to clients.
    #[error("storage failure: {0}")]
    Internal(String),
}

pub type RequestResult = Result<Vec<Appended>, StoreError>;

#[async_trait]
pub trait Store: Send + Sync + 'static {
    async fn create_org(&self, org: NewOrg, now: Timestamp) -> Result<Org, StoreError>;
    async fn org_by_slug(&self, slug: &str) -> Result<Option<Org>, StoreError>;
    async fn orgs(&self) -> Result<Vec<Org>, StoreError>;

    async fn create_api_key(&self, key: NewApiKey, now: Timestamp) -> Result<ApiKeyRecord, StoreError>;
    /// Looks a key up by its public prefix, which is unique across the
    /// installation, so a key used against another organization can be told
    /// apart from a key that does not exist.
    async fn api_key(&self, prefix: &KeyPrefix) -> Result<Option<ApiKeyRecord>, StoreError>;
    async fn api_keys(&self, org: OrgId) -> Result<Vec<ApiKeyRecord>, StoreError>;

    async fn members(&self, org: OrgId) -> Result<Vec<Member>, StoreError>;
    async fn member(&self, org: OrgId, email: &str) -> Result<Option<Member>, StoreError>;
    async fn user(&self, email: &str) -> Result<Option<User>, StoreError>;
    /// Every organization the person belongs to, with their role.
    async fn memberships(&self, email: &str) -> Result<Vec<(Org, Role)>, StoreError>;
    /// Sets an account's password, creating the account if needed.
    async fn set_password(&self, email: &str, password_hash: &str, now: Timestamp) -> Result<(), StoreError>;

    async fn projects(&self, org: OrgId) -> Result<Vec<Project>, StoreError>;
    async fn project(&self, org: OrgId, id: &str) -> Result<Option<Project>, StoreError>;

    async fn create_session(&self, session: Session) -> Result<(), StoreError>;
    /// The session with this token hash, if it exists and has not expired.
    async fn session(&self, token_hash: &[u8; 32], now: Timestamp) -> Result<Option<Session>, StoreError>;
    async fn delete_session(&self, token_hash: &[u8; 32]) -> Result<(), StoreError>;

    /// Commits every request in one transaction. For each request its
    /// changes (if any) are applied first, then its entries: each new entry gets a
    /// time-ordered id, the next sequence number of its organization
    /// (gapless) and `received_at`; an entry whose idempotency key the
    /// organization has used before yields the original instead. A request
    /// whose change is refused writes nothing and gets its error; the
    /// others commit. On an outer error nothing is committed.
    async fn append(
        &self,
        requests: Vec<AppendRequest>,
        received_at: Timestamp,
    ) -> Result<Vec<RequestResult>, StoreError>;

    /// One page of entries matching `filter`, newest first by
    /// `(timestamp, seq)`, strictly after `page.after`.
    async fn list(&self, org: OrgId, filter: &Filter, page: Page) -> Result<Vec<Entry>, StoreError>;

    async fn entry(&self, org: OrgId, id: Uuid) -> Result<Option<Entry>, StoreError>;

    /// The organization's highest sequence number (0 when empty).
    async fn log_size(&self, org: OrgId) -> Result<i64, StoreError>;

    /// Deletes at most `limit` of the organization's entries whose timestamp
    /// is before `cutoff`, oldest first, in one short transaction.
    async fn purge_before(&self, org: OrgId, cutoff: Timestamp, limit: u32) -> Result<Purged, StoreError>;

    /// Checks the database answers (for readiness).
    async fn ping(&self) -> Result<(), StoreError>;
}

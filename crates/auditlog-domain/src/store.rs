//! The `Store` trait: everything auditlog keeps, in domain words. SQLite and
//! PostgreSQL implement it and pass the same conformance suite.
//!
//! Every method names the organization first: each table is keyed by it, so
//! no query can reach across organizations, and a sharded PostgreSQL can
//! distribute on it.

use async_trait::async_trait;
use uuid::Uuid;

use crate::api_key::{KeyHash, KeyPrefix, Scope};
use crate::filter::{Filter, Page};
use crate::org::NewOrg;
use crate::{Entry, NewEntry, Org, OrgId, Timestamp};

/// One caller's entries, committed together with other callers' in a single
/// transaction by the writer.
#[derive(Debug, Clone)]
pub struct AppendRequest {
    pub org_id: OrgId,
    pub entries: Vec<NewEntry>,
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
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique name (slug, key prefix) is taken.
    #[error("{0} already exists")]
    Conflict(String),
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

#[async_trait]
pub trait Store: Send + Sync + 'static {
    async fn create_org(&self, org: NewOrg, now: Timestamp) -> Result<Org, StoreError>;
    async fn org_by_slug(&self, slug: &str) -> Result<Option<Org>, StoreError>;

    async fn create_api_key(&self, key: NewApiKey, now: Timestamp) -> Result<ApiKeyRecord, StoreError>;
    /// Looks a key up by its public prefix, which is unique across the
    /// installation, so a key used against another organization can be told
    /// apart from a key that does not exist.
    async fn api_key(&self, prefix: &KeyPrefix) -> Result<Option<ApiKeyRecord>, StoreError>;

    /// Commits every request's entries in one transaction: each new entry
    /// gets a time-ordered id, the next sequence number of its organization
    /// (gapless) and `received_at`; an entry whose idempotency key the
    /// organization has used before yields the original instead. Returns one
    /// result list per request, in order. On error nothing is committed.
    async fn append(
        &self,
        requests: Vec<AppendRequest>,
        received_at: Timestamp,
    ) -> Result<Vec<Vec<Appended>>, StoreError>;

    /// One page of entries matching `filter`, newest first by
    /// `(timestamp, seq)`, strictly after `page.after`.
    async fn list(&self, org: OrgId, filter: &Filter, page: Page) -> Result<Vec<Entry>, StoreError>;

    async fn entry(&self, org: OrgId, id: Uuid) -> Result<Option<Entry>, StoreError>;

    /// The organization's highest sequence number (0 when empty).
    async fn log_size(&self, org: OrgId) -> Result<i64, StoreError>;

    /// Checks the database answers (for readiness).
    async fn ping(&self) -> Result<(), StoreError>;
}

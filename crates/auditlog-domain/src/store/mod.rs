//! The `Store` trait: everything auditlog keeps, in domain words. SQLite and
//! PostgreSQL implement it and pass the same conformance suite.
//!
//! Every method names the organization first: each table is keyed by it, so
//! no query can reach across organizations, and a sharded PostgreSQL can
//! distribute on it.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use uuid::Uuid;

use crate::api_key::{KeyHash, KeyPrefix, Scope};
use crate::change::Change;
use crate::filter::{Filter, Page};
use crate::invitation::Invitation;
use crate::member::{Member, Project, User};
use crate::merkle::{Hash, NodeId};
use crate::org::NewOrg;
use crate::sealed::SecretSealer;
use crate::session::Session;
use crate::webhook::Endpoint;
use crate::{Entry, NewEntry, Org, OrgId, Role, Timestamp};
use serde::Serialize;

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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum DeliveryStatus {
    Pending,
    Delivered,
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
        }
    }

    /// The status stored as [`as_str`](Self::as_str) wrote it.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Pending, Self::Delivered, Self::Failed]
            .into_iter()
            .find(|d| d.as_str() == s)
    }
}

/// One entry's delivery to one endpoint, and how it went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Delivery {
    pub id: String,
    pub webhook_id: String,
    pub seq: i64,
    pub status: DeliveryStatus,
    pub attempts: u32,
    pub next_attempt_at: Option<Timestamp>,
    pub last_attempt_at: Option<Timestamp>,
    pub last_status: Option<u16>,
    pub last_latency_ms: Option<u64>,
    pub last_error: Option<String>,
    pub created_at: Timestamp,
}

/// A delivery claimed for sending, with what is needed to send it.
#[derive(Debug, Clone)]
pub struct DueDelivery {
    pub org_id: OrgId,
    pub delivery: Delivery,
    pub endpoint: Endpoint,
    pub entry: Entry,
}

/// What the dispatcher decided after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptResult {
    Delivered,
    RetryAt(Timestamp),
    /// The schedule is spent.
    Failed,
}

impl AttemptResult {
    /// The delivery's status after the attempt, and when to try next.
    pub fn stored(self) -> (DeliveryStatus, Option<Timestamp>) {
        match self {
            AttemptResult::Delivered => (DeliveryStatus::Delivered, None),
            AttemptResult::RetryAt(t) => (DeliveryStatus::Pending, Some(t)),
            AttemptResult::Failed => (DeliveryStatus::Failed, None),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub at: Timestamp,
    pub status: Option<u16>,
    pub latency_ms: u64,
    pub error: Option<String>,
    pub result: AttemptResult,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedAttempt {
    pub org_id: OrgId,
    pub delivery_id: String,
    pub attempt: Attempt,
}

/// A signed checkpoint of an organization's log, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCheckpoint {
    pub size: u64,
    pub root: Hash,
    /// The signed note, exactly as signed.
    pub note: String,
    pub signed_at: Timestamp,
}

/// What one purge batch removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Purged {
    pub count: u64,
    pub first_seq: Option<i64>,
    pub last_seq: Option<i64>,
}

impl Purged {
    /// Adds what another step removed from the same organization.
    pub fn add(&mut self, other: Purged) {
        self.count += other.count;
        self.first_seq = match (self.first_seq, other.first_seq) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.last_seq = self.last_seq.max(other.last_seq);
    }
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

#[derive(Debug, Clone, thiserror::Error)]
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

/// Background work that one process at a time should do, however many
/// replicas share the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Job {
    /// Signing checkpoints of the logs that grew.
    Checkpoints,
    /// Purging entries past their retention window.
    Retention,
}

impl Job {
    pub fn as_str(self) -> &'static str {
        match self {
            Job::Checkpoints => "checkpoints",
            Job::Retention => "retention",
        }
    }
}

/// Held while a process does a [`Job`]; dropping it lets another take it.
pub trait JobLease: Send + std::fmt::Debug {}

/// The lease of a backend that serves one process: it always has the job.
#[derive(Debug)]
pub struct SoleProcess;

impl JobLease for SoleProcess {}

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
    /// The invitation or reset with this token hash, used or not.
    async fn invitation(&self, token_hash: &[u8; 32]) -> Result<Option<Invitation>, StoreError>;
    /// Sets an account's password, creating the account if needed.
    async fn set_password(&self, email: &str, password_hash: &str, now: Timestamp) -> Result<(), StoreError>;

    async fn projects(&self, org: OrgId) -> Result<Vec<Project>, StoreError>;
    async fn project(&self, org: OrgId, id: &str) -> Result<Option<Project>, StoreError>;

    async fn create_session(&self, session: Session) -> Result<(), StoreError>;
    /// The session with this token hash, if it exists and has not expired.
    async fn session(&self, token_hash: &[u8; 32], now: Timestamp) -> Result<Option<Session>, StoreError>;
    async fn delete_session(&self, token_hash: &[u8; 32]) -> Result<(), StoreError>;

    /// Seals, in one transaction, every webhook secret (current or previous)
    /// still stored in clear, as written before secrets were sealed; a value
    /// changed meanwhile is left to its writer. Returns how many were sealed.
    async fn seal_clear_webhook_secrets(&self, sealer: Arc<SecretSealer>) -> Result<u64, StoreError>;

    /// Commits every request, the requests of one organization in one
    /// transaction (a store may split a call between transactions by
    /// organization, so that organizations free now need not wait for those
    /// another process is appending to). For each request its
    /// changes (if any) are applied first, then its entries: each new entry gets a
    /// time-ordered id, the next sequence number of its organization
    /// (gapless) and `received_at`; an entry whose idempotency key the
    /// organization has used before yields the original instead. A request
    /// whose change is refused writes nothing and gets its error; the
    /// others commit. A request whose transaction failed while others
    /// committed gets that failure as its own error. On an outer error
    /// nothing is committed.
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

    /// The stored hashes among `ids` of the organization's Merkle tree (see
    /// [`crate::merkle`]); nodes not stored yet are left out. The writer
    /// stores every perfect node in the same transaction as its last entry,
    /// and purging entries keeps them, so proofs outlive retention.
    async fn tree_nodes(&self, org: OrgId, ids: Vec<NodeId>) -> Result<HashMap<NodeId, Hash>, StoreError>;

    /// The organizations whose log has grown past their latest checkpoint
    /// (or that have entries and none), in one read.
    async fn orgs_with_unsigned_entries(&self) -> Result<Vec<Org>, StoreError>;

    /// The organization's checkpoint at `size`, or its latest when `None`.
    async fn checkpoint(&self, org: OrgId, size: Option<u64>) -> Result<Option<StoredCheckpoint>, StoreError>;

    /// Stores a signed checkpoint. One for the same size already stored is
    /// kept (the first signature of a size stands).
    async fn save_checkpoint(&self, org: OrgId, checkpoint: StoredCheckpoint) -> Result<(), StoreError>;

    /// Deletes at most `limit` of the organization's entries whose timestamp
    /// is before `cutoff`, oldest first, in one short transaction.
    async fn purge_before(&self, org: OrgId, cutoff: Timestamp, limit: u32) -> Result<Purged, StoreError>;

    /// Removes, in bulk, every stored unit of entries (PostgreSQL: a month's
    /// partition) all of whose entries are before their own organization's
    /// cutoff in `cutoffs`, with what [`Store::purge_before`] removes along
    /// with an entry; the tree stays. A unit holding an entry of an
    /// organization not in `cutoffs`, or one still within its window, is
    /// left for `purge_before`. Returns what was removed, per organization,
    /// exactly; a failure partway ends the step and still returns what was
    /// removed before it. Appends with any timestamp keep working during
    /// and after it.
    ///
    /// The default removes nothing: a backend without such units purges
    /// row by row only.
    async fn drop_expired_partitions(
        &self,
        cutoffs: &HashMap<OrgId, Timestamp>,
    ) -> Result<HashMap<OrgId, Purged>, StoreError> {
        let _ = cutoffs;
        Ok(HashMap::new())
    }

    async fn webhooks(&self, org: OrgId) -> Result<Vec<Endpoint>, StoreError>;
    async fn webhook(&self, org: OrgId, id: &str) -> Result<Option<Endpoint>, StoreError>;

    /// Claims up to `limit` pending deliveries that are due, across all
    /// organizations, oldest first. A claimed delivery is not due again
    /// until `lease_until`, so a dispatcher that dies mid-flight only
    /// delays it; entries and endpoints come along for sending.
    async fn claim_deliveries(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<DueDelivery>, StoreError>;

    /// Records attempts on deliveries, in one transaction, and each
    /// endpoint's health: a success clears its failing-since time, a failure
    /// starts it if not running. Returns, per attempt, the endpoint's
    /// failing-since time afterwards (`None` also when the delivery is gone).
    async fn record_attempts(&self, attempts: Vec<RecordedAttempt>) -> Result<Vec<Option<Timestamp>>, StoreError>;

    /// [`Store::record_attempts`] for one attempt.
    async fn record_attempt(
        &self,
        org: OrgId,
        delivery_id: &str,
        attempt: Attempt,
    ) -> Result<Option<Timestamp>, StoreError> {
        let one = RecordedAttempt {
            org_id: org,
            delivery_id: delivery_id.to_owned(),
            attempt,
        };
        Ok(self.record_attempts(vec![one]).await?.pop().flatten())
    }

    /// An endpoint's deliveries, newest first.
    async fn deliveries(&self, org: OrgId, webhook_id: &str, limit: u32) -> Result<Vec<Delivery>, StoreError>;

    /// Makes a delivery due now again, whatever its state.
    async fn retry_delivery(&self, org: OrgId, delivery_id: &str, now: Timestamp) -> Result<Delivery, StoreError>;

    /// Checks the database answers (for readiness).
    async fn ping(&self) -> Result<(), StoreError>;

    /// Waits for a sign that deliveries were written by any process sharing
    /// the database: returns once more than `seen` signs were given since
    /// the store was opened, with their number. A worker passes the number
    /// it last got, so a sign given while it was busy is not lost. This lets
    /// every replica's dispatcher start on a new delivery at once, not at
    /// its next poll. The default never returns: with one process, its own
    /// writer already wakes its dispatcher.
    async fn wait_for_deliveries(&self, seen: u64) -> u64 {
        let _ = seen;
        std::future::pending().await
    }

    /// Takes `job` for this process if no other process sharing the
    /// database holds it: `None` means another replica is doing it now. The
    /// default, for a backend one process uses, always takes it.
    async fn try_lease(&self, job: Job) -> Result<Option<Box<dyn JobLease>>, StoreError> {
        let _ = job;
        Ok(Some(Box::new(SoleProcess)))
    }
}

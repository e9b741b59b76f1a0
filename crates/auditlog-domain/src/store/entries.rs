//! The log itself: appending entries (with the changes they record),
//! reading them back, and the Merkle tree and checkpoints that prove them.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use uuid::Uuid;

use crate::change::Change;
use crate::filter::{Bucket, Filter, Page};
use crate::merkle::{Hash, NodeId};
use crate::personal::{PersonalData, Pseudonym};
use crate::store::StoreError;
use crate::{Entry, NewEntry, Org, OrgId, Timestamp};

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

/// What an appended entry became.
#[derive(Debug, Clone, PartialEq)]
pub struct Appended {
    pub entry: Entry,
    /// True when the idempotency key was seen before and `entry` is the
    /// original, not a new entry.
    pub replayed: bool,
}

pub type RequestResult = Result<Vec<Appended>, StoreError>;

/// A signed checkpoint of an organization's log, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCheckpoint {
    pub size: u64,
    pub root: Hash,
    /// The signed note, exactly as signed.
    pub note: String,
    pub signed_at: Timestamp,
}

/// Entries and the tree over them.
#[async_trait]
pub trait EntryStore: Send + Sync + 'static {
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

    /// The entries `filter` selects, counted per category and per bucket of
    /// `width_ms` (buckets start at multiples of it), oldest bucket first.
    /// The caller bounds the time range; a bucket with no entry is absent.
    async fn histogram(&self, org: OrgId, filter: &Filter, width_ms: i64) -> Result<Vec<Bucket>, StoreError>;

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

    /// Gives the store the deployment's personal-data keys and rules: from
    /// then on it seals new entries' personal values (canonical version 3),
    /// opens them as it reads, and matches filters by a person's id through
    /// the blind index. Without them it writes version 2 and refuses to
    /// read version-3 entries. The first call stands.
    fn use_personal_data(&self, personal: Arc<PersonalData>);

    /// How many of the organization's entries hold values of `pseudonym`
    /// that can still be opened: what erasing that person would affect.
    async fn subject_entries(&self, org: OrgId, pseudonym: Pseudonym) -> Result<u64, StoreError>;
}

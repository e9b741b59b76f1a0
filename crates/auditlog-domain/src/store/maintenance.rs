//! Upkeep: retention's purges, readiness, and the leases that let one
//! replica at a time do a background job.

use std::collections::HashMap;

use async_trait::async_trait;

use crate::store::StoreError;
use crate::{OrgId, Timestamp};

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

/// Purges, readiness and job leases.
#[async_trait]
pub trait MaintenanceStore: Send + Sync + 'static {
    /// Deletes at most `limit` of the organization's entries whose timestamp
    /// is before `cutoff`, oldest first, in one short transaction.
    async fn purge_before(&self, org: OrgId, cutoff: Timestamp, limit: u32) -> Result<Purged, StoreError>;

    /// Removes, in bulk, every stored unit of entries (PostgreSQL: a month's
    /// partition) all of whose entries are before their own organization's
    /// cutoff in `cutoffs`, with what [`MaintenanceStore::purge_before`] removes along
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

    /// Checks the database answers (for readiness).
    async fn ping(&self) -> Result<(), StoreError>;

    /// Takes `job` for this process if no other process sharing the
    /// database holds it: `None` means another replica is doing it now. The
    /// default, for a backend one process uses, always takes it.
    async fn try_lease(&self, job: Job) -> Result<Option<Box<dyn JobLease>>, StoreError> {
        let _ = job;
        Ok(Some(Box::new(SoleProcess)))
    }
}

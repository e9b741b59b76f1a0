//! The `Store` traits: everything auditlog keeps, in domain words, split
//! by concern (entries and the tree, accounts, access, deliveries,
//! streams, maintenance). SQLite and PostgreSQL implement each in a file of the
//! same name and pass the same conformance suite.
//!
//! Every method names the organization first: each table is keyed by it, so
//! no query can reach across organizations, and a sharded PostgreSQL can
//! distribute on it.

mod access;
mod accounts;
mod deliveries;
mod entries;
mod maintenance;
mod streams;

pub use access::{AccessStore, ApiKeyRecord, NewApiKey};
pub use accounts::AccountStore;
pub use deliveries::{
    Attempt, AttemptResult, Delivery, DeliveryStatus, DeliveryStore, DueDelivery, RecordedAttempt, Replay,
};
pub use entries::{AppendRequest, Appended, EntryStore, RequestResult, StoredCheckpoint};
pub use maintenance::{Job, JobLease, MaintenanceStore, Purged, SoleProcess};
pub use streams::{HeldStream, Progress, StreamStore};

/// Everything auditlog keeps: what the server holds one of. Each part is
/// a trait of its own, so a reader (or a narrower caller) can take one
/// concern at a time; a backend implements all six.
pub trait Store: EntryStore + AccountStore + AccessStore + DeliveryStore + StreamStore + MaintenanceStore {}

impl<T: EntryStore + AccountStore + AccessStore + DeliveryStore + StreamStore + MaintenanceStore> Store for T {}

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

impl StoreError {
    /// A database a newer release migrated past the `known` schema versions
    /// of this build: running old code on it could misread or corrupt it.
    pub fn newer_schema(current: i64, known: usize) -> Self {
        StoreError::Internal(format!(
            "the database is at schema version {current}, newer than this build of auditlog, which knows \
             versions up to {known}: a newer release wrote it, and downgrades are refused; run that release or a \
             later one"
        ))
    }
}

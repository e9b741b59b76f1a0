//! Erasing a person, as the API and the command line both do it: count the
//! person's entries, then erase them in the same transaction as the
//! `audit_log.subject_erased` entry that states the count.

use std::future::Future;

use auditlog_domain::change::Change;
use auditlog_domain::entry::Resource;
use auditlog_domain::personal::{PersonalData, Subject};
use auditlog_domain::store::{AppendRequest, Appended};
use auditlog_domain::{Entry, NewEntry, OrgId, Store, StoreError, Timestamp};
use serde_json::{Value, json};

pub const ERASED_EVENT: &str = "audit_log.subject_erased";

/// Ingest may add an entry of the person between counting and erasing,
/// and the store then refuses the stale count; each try counts again.
/// More than a few in a row means the person's entries keep arriving.
const TRIES: usize = 5;

/// What an erasure did.
#[derive(Debug, Clone)]
pub struct Erased {
    /// The person's keyed pseudonym, in hex: how the log names them.
    pub subject: String,
    pub entries: u64,
    /// The `audit_log.subject_erased` entry.
    pub entry: Entry,
}

/// Erases `subject` in `org`: `record` makes the entry that records it
/// from its resource and details, `commit` appends a request (through the
/// service's writer, or the store itself).
pub async fn erase<C, F>(
    store: &dyn Store,
    personal: &PersonalData,
    org: OrgId,
    subject: &Subject,
    record: impl Fn(Resource, Value) -> NewEntry,
    commit: C,
) -> Result<Erased, StoreError>
where
    C: Fn(AppendRequest) -> F,
    F: Future<Output = Result<Vec<Appended>, StoreError>>,
{
    let pseudonym = personal.pseudonym(subject);
    let hex = pseudonym.to_hex();
    for _ in 0..TRIES {
        let entries = store.subject_entries(org, pseudonym).await?;
        let change = Change::EraseSubject {
            pseudonym,
            token: personal.token(&pseudonym),
            entries,
        };
        let resource = Resource {
            kind: "subject".into(),
            id: hex.clone(),
            name: None,
        };
        let entry = record(resource, json!({"subject": hex, "entries": entries}));
        let request = AppendRequest {
            org_id: org,
            changes: vec![change],
            entries: vec![entry],
        };
        match commit(request).await {
            Ok(mut appended) => {
                let entry = appended
                    .pop()
                    .ok_or_else(|| StoreError::Internal("the writer returned no entry".into()))?
                    .entry;
                return Ok(Erased {
                    subject: hex,
                    entries,
                    entry,
                });
            }
            Err(StoreError::Rejected {
                code: "subject_changed",
                ..
            }) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(StoreError::Unavailable(
        "the person's entries kept changing while being erased; try again".into(),
    ))
}

/// Commits one request straight to the store, received at `at`: how the
/// command line (and the bench) erase, where no service writer runs.
pub async fn append_one(store: &dyn Store, request: AppendRequest, at: Timestamp) -> Result<Vec<Appended>, StoreError> {
    store
        .append(vec![request], at)
        .await?
        .pop()
        .ok_or_else(|| StoreError::Internal("the store returned no result".into()))?
}

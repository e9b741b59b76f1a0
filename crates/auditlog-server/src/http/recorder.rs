//! Entries the service records about its own actions, written through the
//! same writer as ingest, in the same transaction as the change they
//! describe.

use auditlog_domain::NewEntry;
use auditlog_domain::change::Change;
use auditlog_domain::entry::Resource;
use auditlog_domain::store::{AppendRequest, Appended};
use serde_json::Value;

use crate::http::auth::Principal;
use crate::http::error::ApiError;
use crate::http::state::AppState;

/// Applies `changes` and records `entries` atomically; returns once
/// committed. If a change is refused, nothing is recorded.
pub async fn commit(
    state: &AppState,
    principal: &Principal,
    changes: Vec<Change>,
    entries: Vec<NewEntry>,
) -> Result<Vec<Appended>, ApiError> {
    debug_assert!(
        entries.iter().all(|e| state.catalog.contains(&e.event)),
        "recorded events must be catalogued"
    );
    Ok(state
        .writer
        .append(AppendRequest {
            org_id: principal.org.id,
            changes,
            entries,
        })
        .await?)
}

/// Applies one change and records the one entry that describes it, done by
/// the caller now.
pub async fn record_change(
    state: &AppState,
    principal: &Principal,
    change: Change,
    event: &str,
    resource: Resource,
    details: Value,
) -> Result<(), ApiError> {
    let entry = principal.entry(state.clock.now(), event, resource, details);
    commit(state, principal, vec![change], vec![entry]).await.map(|_| ())
}

/// Records one entry with no change.
pub async fn record(state: &AppState, principal: &Principal, entry: NewEntry) -> Result<Appended, ApiError> {
    commit(state, principal, Vec::new(), vec![entry])
        .await?
        .pop()
        .ok_or_else(|| ApiError::Internal("the writer returned no entry".into()))
}

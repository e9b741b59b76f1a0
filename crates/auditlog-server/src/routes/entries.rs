//! Reading the log: `GET /v1/orgs/{org}/audit/events` (filtered, newest
//! first, keyset-paginated) and `GET …/audit/events/{id}`.

use auditlog_domain::canonical::entry_leaf_hash;
use auditlog_domain::cursor::Cursor;
use auditlog_domain::filter::{ListingRequest, Page, parse_listing};
use auditlog_domain::permissions::Action;
use auditlog_domain::{Entry, Org};
use axum::Json;
use axum::extract::{Path, State};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::AppState;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::query_string::QueryPairs;

/// Parses a listing's parameters and bounds it by the retention window, so
/// entries past it are never shown, even before the purger removes them.
pub fn listing(
    pairs: &[(String, String)],
    state: &AppState,
    org: &Org,
    extra: &[&str],
) -> Result<ListingRequest, ApiError> {
    let mut req = parse_listing(pairs, &state.catalog, extra).map_err(|details| ApiError::BadRequest {
        code: "invalid_query",
        message: details.first().map(|p| p.message.clone()).unwrap_or_default(),
        details,
    })?;
    req.filter.within_retention(org, state.clock.now());
    Ok(req)
}

/// A `true`/`false` parameter the endpoint declared as its own; absent is
/// false.
pub fn flag(req: &ListingRequest, name: &str) -> Result<bool, ApiError> {
    let values: Vec<&str> = req
        .extra
        .iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .collect();
    match values.as_slice() {
        [] | ["false"] => Ok(false),
        ["true"] => Ok(true),
        _ => Err(ApiError::bad_request(
            "invalid_query",
            format!("{name} must be true or false, given once"),
        )),
    }
}

/// One page of a listing and the cursor to the next, if there is one.
pub async fn page_of(
    state: &AppState,
    org: &Org,
    req: &ListingRequest,
) -> Result<(Vec<Entry>, Option<String>), ApiError> {
    // One row more than asked tells whether another page exists, so the
    // last page carries no cursor to an empty page.
    let probe = Page {
        limit: req.page.limit + 1,
        ..req.page
    };
    let mut entries = state.store.list(org.id, &req.filter, probe).await?;
    let next_cursor = if entries.len() > req.page.limit as usize {
        entries.truncate(req.page.limit as usize);
        entries.last().map(|e| {
            Cursor {
                timestamp: e.timestamp,
                seq: e.seq,
            }
            .encode()
        })
    } else {
        None
    };
    Ok((entries, next_cursor))
}

#[tracing::instrument(skip_all, fields(org = %principal.org.slug))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    QueryPairs(pairs): QueryPairs,
) -> Result<Json<Value>, ApiError> {
    principal.authorize(Action::ReadAudit)?;
    let req = listing(&pairs, &state, &principal.org, &["proofs"])?;
    let with_leaves = flag(&req, "proofs")?;
    let (entries, next_cursor) = page_of(&state, &principal.org, &req).await?;
    if !with_leaves {
        return Ok(Json(json!({ "entries": entries, "next_cursor": next_cursor })));
    }
    // Each entry with its Merkle leaf hash, for GET …/proofs/inclusion.
    let entries: Vec<Value> = entries
        .iter()
        .map(|e| {
            let mut v = serde_json::to_value(e).unwrap_or_default();
            if let Some(obj) = v.as_object_mut() {
                obj.insert(
                    "leaf_hash".into(),
                    json!(crate::routes::proofs::b64(&entry_leaf_hash(e))),
                );
            }
            v
        })
        .collect();
    Ok(Json(json!({ "entries": entries, "next_cursor": next_cursor })))
}

/// One entry of the organization, unless it is past the retention window.
pub async fn visible_entry(state: &AppState, org: &Org, id: &str) -> Result<Entry, ApiError> {
    let not_found = || ApiError::NotFound(format!("no entry {id:?} in this organization"));
    let uuid = Uuid::parse_str(id).map_err(|_| not_found())?;
    let cutoff = org.retention_cutoff(state.clock.now());
    state
        .store
        .entry(org.id, uuid)
        .await?
        .filter(|e| e.timestamp >= cutoff)
        .ok_or_else(not_found)
}

#[tracing::instrument(skip_all, fields(org = %principal.org.slug, id = %id))]
pub async fn get_one(
    State(state): State<AppState>,
    principal: Principal,
    Path((_, id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    principal.authorize(Action::ReadAudit)?;
    let entry = visible_entry(&state, &principal.org, &id).await?;
    Ok(Json(
        serde_json::to_value(entry).map_err(|e| ApiError::Internal(e.to_string()))?,
    ))
}

//! Reading the log: `GET /v1/orgs/{org}/audit/events` (filtered, newest
//! first, keyset-paginated) and `GET …/audit/events/{id}`.

use auditlog_domain::api_key::Scope;
use auditlog_domain::cursor::Cursor;
use auditlog_domain::filter::{Page, parse_listing};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::AppState;
use crate::auth::authenticate;
use crate::error::ApiError;
use crate::query_string::QueryPairs;

#[tracing::instrument(skip_all, fields(org = %org))]
pub async fn list(
    State(state): State<AppState>,
    Path(org): Path<String>,
    headers: HeaderMap,
    QueryPairs(pairs): QueryPairs,
) -> Result<Json<Value>, ApiError> {
    let principal = authenticate(&state, &headers, &org, Scope::AuditRead).await?;
    let req = parse_listing(&pairs, &state.catalog, &[]).map_err(|details| ApiError::BadRequest {
        code: "invalid_query",
        message: details.first().map(|p| p.message.clone()).unwrap_or_default(),
        details,
    })?;
    // One row more than asked tells whether another page exists, so the
    // last page carries no cursor to an empty page.
    let probe = Page {
        limit: req.page.limit + 1,
        ..req.page
    };
    let mut entries = state.store.list(principal.org.id, &req.filter, probe).await?;
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
    Ok(Json(json!({ "entries": entries, "next_cursor": next_cursor })))
}

#[tracing::instrument(skip_all, fields(org = %org, id = %id))]
pub async fn get_one(
    State(state): State<AppState>,
    Path((org, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let principal = authenticate(&state, &headers, &org, Scope::AuditRead).await?;
    let not_found = || ApiError::NotFound(format!("no entry {id:?} in this organization"));
    let uuid = Uuid::parse_str(&id).map_err(|_| not_found())?;
    let entry = state.store.entry(principal.org.id, uuid).await?.ok_or_else(not_found)?;
    Ok(Json(
        serde_json::to_value(entry).map_err(|e| ApiError::Internal(e.to_string()))?,
    ))
}

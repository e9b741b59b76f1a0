//! Reading the log: `GET /v1/orgs/{org}/audit/events` (filtered, newest
//! first, keyset-paginated) and `GET …/audit/events/{id}`.

use auditlog_domain::canonical::entry_leaf_hash;
use auditlog_domain::cursor::Cursor;
use auditlog_domain::filter::{ListingRequest, Page, parse_listing};
use auditlog_domain::permissions::Action;
use auditlog_domain::read_audit::{Read, ReadKind};
use auditlog_domain::{Entry, Org};
use axum::Json;
use axum::extract::{Path, State};
use serde::Serialize;
use uuid::Uuid;

use crate::http::auth::Principal;
use crate::http::error::ApiError;
use crate::http::query_string::QueryPairs;
use crate::http::reads;
use crate::http::state::AppState;

/// The filters of a listing or an export, as `parse_listing` reads them.
/// Described here for the OpenAPI document; the handlers read them with
/// [`QueryPairs`] so that `event` may repeat and unknown keys are named.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct FilterParams {
    /// The actor's id exactly: an email, a key prefix such as
    /// `lqt_ab12cd34`, `system`, or a service's name.
    #[param(min_length = 1, max_length = 512)]
    actor: Option<String>,
    /// An event name or pattern (`api_key.created`, `api_key.*`, `*`);
    /// repeat it, or separate patterns with commas, to select any of them.
    /// At most 50.
    #[param(style = Form, explode, max_items = 50, value_type = Option<Vec<String>>)]
    event: Option<Vec<String>>,
    #[param(min_length = 1, max_length = 512)]
    resource_type: Option<String>,
    #[param(min_length = 1, max_length = 512)]
    resource_id: Option<String>,
    /// The credential that submitted the entry, as `KIND:ID` with KIND one
    /// of `service`, `api_key`, `session`, `cli` (e.g.
    /// `api_key:lqt_ab12cd34`). Walks the log by time: combine it with
    /// another filter on a large log.
    #[param(min_length = 3, max_length = 512, pattern = "^(service|api_key|session|cli):.+$")]
    submitted_by: Option<String>,
    /// Inclusive, RFC 3339.
    #[param(value_type = Option<String>, format = DateTime)]
    from: Option<String>,
    /// Exclusive, RFC 3339; later than `from`.
    #[param(value_type = Option<String>, format = DateTime)]
    to: Option<String>,
    /// The query language, e.g. `actor:alice@acme.com event:api_key.*
    /// resource:project:p_1 after:2026-01-01`; a field given both here and
    /// as its own parameter is refused.
    #[param(max_length = 2048)]
    q: Option<String>,
    /// Only entries with a larger `seq`, oldest first: how a webhook
    /// receiver that saw a gap catches up. Not with `cursor`.
    #[param(minimum = 0)]
    after_seq: Option<i64>,
}

/// A page of a listing.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct PageParams {
    #[param(minimum = 1, maximum = 1000, default = 50)]
    limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    #[param(max_length = 512)]
    cursor: Option<String>,
}

/// One page of entries, newest first.
#[derive(Serialize, utoipa::ToSchema)]
pub struct EntryPage {
    entries: Vec<ListedEntry>,
    /// Where the next page starts; `null` on the last page.
    next_cursor: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ListedEntry {
    #[serde(flatten)]
    entry: Entry,
    /// With `proofs=true`: the entry's Merkle leaf hash (base64), for
    /// `GET …/audit/proofs/inclusion`.
    #[serde(skip_serializing_if = "Option::is_none")]
    leaf_hash: Option<String>,
}

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

/// Entries that match the filters, newest first (oldest first with
/// `after_seq`), a page at a time.
#[utoipa::path(
    get,
    path = "/v1/orgs/{org}/audit/events",
    operation_id = "list_events",
    tag = "audit",
    params(
        crate::http::responses::OrgPath,
        FilterParams,
        PageParams,
        ("proofs" = Option<bool>, Query, description = "Add each entry's Merkle leaf hash."),
    ),
    responses(
        (status = 200, description = "A page of entries.", body = EntryPage),
        crate::http::responses::ReadRefused,
    ),
    security(("api_key" = []), ("session" = [])),
)]
#[tracing::instrument(skip_all, fields(org = %principal.org.slug))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    QueryPairs(pairs): QueryPairs,
) -> Result<Json<EntryPage>, ApiError> {
    principal.authorize(Action::ReadAudit)?;
    let req = listing(&pairs, &state, &principal.org, &["proofs"])?;
    let with_leaves = flag(&req, "proofs")?;
    let (entries, next_cursor) = page_of(&state, &principal.org, &req).await?;
    let read = Read::from_query(ReadKind::List, &pairs, entries.len() as u64);
    reads::record(&state, &principal, read);
    let entries = entries
        .into_iter()
        .map(|entry| ListedEntry {
            leaf_hash: with_leaves.then(|| crate::http::routes::proofs::b64(&entry_leaf_hash(&entry))),
            entry,
        })
        .collect();
    Ok(Json(EntryPage { entries, next_cursor }))
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

/// One entry, unless it is past the plan's retention window.
#[utoipa::path(
    get,
    path = "/v1/orgs/{org}/audit/events/{id}",
    operation_id = "get_event",
    tag = "audit",
    params(
        crate::http::responses::OrgPath,
        ("id" = String, Path, format = Uuid, description = "The entry's id."),
    ),
    responses(
        (status = 200, description = "The entry.", body = Entry),
        crate::http::responses::DeniedOrMissing,
    ),
    security(("api_key" = []), ("session" = [])),
)]
#[tracing::instrument(skip_all, fields(org = %principal.org.slug, id = %id))]
pub async fn get_one(
    State(state): State<AppState>,
    principal: Principal,
    Path((_, id)): Path<(String, String)>,
) -> Result<Json<Entry>, ApiError> {
    principal.authorize(Action::ReadAudit)?;
    let entry = visible_entry(&state, &principal.org, &id).await?;
    reads::record(&state, &principal, Read::of_one(ReadKind::Entry, &id, 1));
    Ok(Json(entry))
}

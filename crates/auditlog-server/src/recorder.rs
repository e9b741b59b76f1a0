//! Entries the service records about its own actions (an export, and later
//! every management change), written through the same writer as ingest.

use auditlog_domain::NewEntry;
use auditlog_domain::entry::Resource;
use auditlog_domain::store::{AppendRequest, Appended};
use serde_json::{Map, Value};

use crate::AppState;
use crate::auth::Principal;
use crate::context::RequestContext;
use crate::error::ApiError;

/// Records `event` as done by `principal` in this request; returns once it
/// is committed.
pub async fn record(
    state: &AppState,
    principal: &Principal,
    ctx: &RequestContext,
    event: &str,
    resource: Resource,
    details: Value,
) -> Result<Appended, ApiError> {
    debug_assert!(state.catalog.contains(event), "{event} must be catalogued");
    let details = match details {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    let entry = NewEntry {
        timestamp: state.clock.now(),
        actor: principal.actor(),
        event: event.to_owned(),
        resource,
        details,
        ip_address: ctx.ip,
        user_agent: ctx.user_agent.clone(),
        request_id: ctx.request_id.clone(),
        idempotency_key: None,
    };
    let mut out = state
        .writer
        .append(AppendRequest::entries(principal.org.id, vec![entry]))
        .await?;
    out.pop()
        .ok_or_else(|| ApiError::Internal("the writer returned no entry".into()))
}

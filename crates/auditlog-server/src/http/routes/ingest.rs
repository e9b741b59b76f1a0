//! `POST /v1/orgs/{org}/audit/events`: record one event or a batch.
//!
//! The body is validated whole against the catalog before anything is
//! written; the answer comes only after the writer has committed.

use std::time::Instant;

use auditlog_domain::entry::ActorType;
use auditlog_domain::ingest::{IngestContext, validate_body};
use auditlog_domain::permissions::Action;
use auditlog_domain::store::AppendRequest;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request, State};
use axum::http::StatusCode;
use serde::Serialize;
use serde_json::Value;

use crate::http::auth::Principal;
use crate::http::error::ApiError;
use crate::metrics::Outcome;
use crate::{http::state::AppState, http::state::Limiters};

// These types only describe the body: `validate_body` reads it from
// untyped JSON, so that every problem of every event is reported at once.

/// One event, or a batch of them.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
#[serde(untagged)]
pub enum IngestBody {
    Batch(IngestBatch),
    One(Box<IngestEvent>),
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
#[serde(deny_unknown_fields)]
pub struct IngestBatch {
    /// Recorded all or none.
    #[schema(min_items = 1, max_items = 1000)]
    events: Vec<IngestEvent>,
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({
    "event": "guardrail.enabled",
    "actor": "li.wei@acme.com",
    "resource": {"type": "guardrail", "id": "g_12", "name": "PII"},
    "details": {"name": "PII"},
})))]
pub struct IngestEvent {
    /// A catalogued event (`GET /v1/audit/catalog`).
    #[schema(examples("guardrail.enabled"))]
    event: String,
    /// When the action occurred, RFC 3339; within the plan's retention
    /// window and at most 5 minutes ahead. Default: now. Alias `occurred_at`.
    #[schema(value_type = Option<String>, format = DateTime)]
    timestamp: Option<String>,
    #[schema(value_type = Option<String>, format = DateTime)]
    occurred_at: Option<String>,
    /// Who did it. Default: the caller.
    #[schema(min_length = 1, max_length = 320)]
    actor: Option<String>,
    /// Default: inferred from `actor` (an email is a user, `lqt_…` a key,
    /// anything else a service). `system`, the service itself, is refused
    /// with `reserved_event`. `actor` may also be the object reads return,
    /// `{"type": …, "id": …}`.
    actor_type: Option<ActorType>,
    resource: IngestResource,
    /// At most 16 KiB as compact JSON; must hold the event's required
    /// detail keys.
    details: Option<serde_json::Map<String, Value>>,
    /// IPv4 or IPv6; default: the caller's. Alias `ip`.
    ip_address: Option<String>,
    ip: Option<String>,
    #[schema(min_length = 1, max_length = 512)]
    user_agent: Option<String>,
    #[schema(min_length = 1, max_length = 128)]
    request_id: Option<String>,
    /// The same key again answers with the first recording (`replayed`)
    /// instead of recording twice.
    #[schema(min_length = 1, max_length = 128)]
    idempotency_key: Option<String>,
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
#[serde(deny_unknown_fields)]
pub struct IngestResource {
    #[serde(rename = "type")]
    #[schema(min_length = 1, max_length = 64)]
    kind: String,
    #[schema(min_length = 1, max_length = 256)]
    id: String,
    #[schema(min_length = 1, max_length = 256)]
    name: Option<String>,
}

/// What was recorded, in the order given.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Ingested {
    entries: Vec<IngestedEntry>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct IngestedEntry {
    id: uuid::Uuid,
    seq: i64,
    timestamp: auditlog_domain::Timestamp,
    received_at: auditlog_domain::Timestamp,
    /// True when an earlier request with the same idempotency key recorded
    /// it; nothing new was written.
    replayed: bool,
}

/// Records one event or a batch, after the commit.
#[utoipa::path(
    post,
    path = "/v1/orgs/{org}/audit/events",
    operation_id = "ingest_events",
    tag = "audit",
    params(crate::http::responses::OrgPath),
    request_body = IngestBody,
    responses(
        (status = 201, description = "Recorded (durably committed).", body = Ingested),
        (status = 400, response = crate::http::responses::BadRequest),
        (status = 401, response = crate::http::responses::Unauthenticated),
        (status = 403, response = crate::http::responses::Forbidden),
        (status = 413, response = crate::http::responses::PayloadTooLarge),
        (status = 422, response = crate::http::responses::Unprocessable),
        (status = 429, response = crate::http::responses::TooManyRequests),
        (status = 500, response = crate::http::responses::Internal),
    ),
    security(("api_key" = []), ("session" = [], "csrf" = [])),
)]
#[tracing::instrument(skip_all, fields(org = %principal.org.slug))]
pub async fn ingest(
    State(state): State<AppState>,
    principal: Principal,
    request: Request,
) -> Result<(StatusCode, Json<Ingested>), ApiError> {
    let started = Instant::now();
    let result = record(&state, &principal, request).await;
    let metrics = &state.config.runtime.metrics;
    let outcome = match &result {
        Ok((_, Json(body))) => {
            metrics.ingest_entries.inc_by(body.entries.len() as u64);
            "created"
        }
        Err(ApiError::Unavailable(_)) => "unavailable",
        Err(ApiError::Internal(_)) => "failed",
        Err(_) => "refused",
    };
    metrics.ingest_requests.get_or_create(&Outcome::of(outcome)).inc();
    metrics.ingest_seconds.observe(started.elapsed().as_secs_f64());
    result
}

async fn record(
    state: &AppState,
    principal: &Principal,
    request: Request,
) -> Result<(StatusCode, Json<Ingested>), ApiError> {
    principal.authorize(Action::WriteAudit)?;
    let ctx = principal.ctx.clone();
    // Before the body is read: a client over its rate costs no more than
    // its request's headers, and holds no memory.
    let now = state.clock.now();
    Limiters::take(&state.limits.ingest_per_key, &principal.actor().id, now)?;
    if let Some(ip) = ctx.ip {
        Limiters::take(&state.limits.ingest_per_ip, &ip.to_string(), now)?;
    }
    let body = Bytes::from_request(request, state).await.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge(state.config.max_body_bytes)
        } else {
            ApiError::bad_request("unreadable_body", e.body_text())
        }
    })?;
    let value: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request("invalid_json", format!("the body is not valid JSON: {e}")))?;
    let ingest_ctx = IngestContext {
        catalog: &state.catalog,
        now: state.clock.now(),
        retention_days: principal.org.retention_days(),
        default_actor: principal.actor(),
        default_ip: ctx.ip,
        default_request_id: ctx.request_id.clone(),
        submitted_by: principal.submitted_by(),
    };
    let entries = validate_body(&value, &ingest_ctx).map_err(ApiError::Invalid)?;
    let appended = state
        .writer
        .append(AppendRequest::entries(principal.org.id, entries))
        .await?;
    let entries = appended
        .iter()
        .map(|a| IngestedEntry {
            id: a.entry.id,
            seq: a.entry.seq,
            timestamp: a.entry.timestamp,
            received_at: a.entry.received_at,
            replayed: a.replayed,
        })
        .collect();
    Ok((StatusCode::CREATED, Json(Ingested { entries })))
}

//! `POST /v1/orgs/{org}/audit/events`: record one event or a batch.
//!
//! The body is validated whole against the catalog before anything is
//! written; the answer comes only after the writer has committed.

use std::time::Instant;

use auditlog_domain::ingest::{IngestContext, validate_body};
use auditlog_domain::permissions::Action;
use auditlog_domain::store::AppendRequest;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::auth::Principal;
use crate::error::ApiError;
use crate::metrics::Outcome;
use crate::{AppState, Limiters};

#[tracing::instrument(skip_all, fields(org = %principal.org.slug))]
pub async fn ingest(
    State(state): State<AppState>,
    principal: Principal,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let started = Instant::now();
    let result = record(&state, &principal, body).await;
    let metrics = &state.config.metrics;
    let outcome = match &result {
        Ok((_, Json(body))) => {
            let n = body["entries"].as_array().map_or(0, Vec::len);
            metrics.ingest_entries.inc_by(n as u64);
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
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    principal.authorize(Action::WriteAudit)?;
    let ctx = principal.ctx.clone();
    // Before the body is parsed and validated: a client over its rate
    // costs little more than reading its request.
    let now = state.clock.now();
    Limiters::take(&state.limits.ingest_per_key, &principal.actor().id, now)?;
    if let Some(ip) = ctx.ip {
        Limiters::take(&state.limits.ingest_per_ip, &ip.to_string(), now)?;
    }
    let body = body.map_err(|e| {
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
    };
    let entries = validate_body(&value, &ingest_ctx).map_err(ApiError::Invalid)?;
    let appended = state
        .writer
        .append(AppendRequest::entries(principal.org.id, entries))
        .await?;
    let out: Vec<Value> = appended
        .iter()
        .map(|a| {
            json!({
                "id": a.entry.id,
                "seq": a.entry.seq,
                "timestamp": a.entry.timestamp,
                "received_at": a.entry.received_at,
                "replayed": a.replayed,
            })
        })
        .collect();
    Ok((StatusCode::CREATED, Json(json!({ "entries": out }))))
}

//! Webhook endpoints: `GET/POST /v1/orgs/{org}/webhooks`,
//! `GET/PATCH/DELETE …/webhooks/{id}`, `POST …/{id}/rotate-secret`,
//! `POST …/{id}/test`, `GET …/{id}/deliveries`,
//! `POST …/{id}/deliveries/{delivery}/retry`. Owners and admins only; every
//! change records a `webhook.*` entry in its own transaction.

use auditlog_domain::Entry;
use auditlog_domain::change::Change;
use auditlog_domain::entry::{Actor, Resource};
use auditlog_domain::pattern::EventPattern;
use auditlog_domain::permissions::Action;
use auditlog_domain::webhook::{Endpoint, ROTATION_OVERLAP_MS, Secret, message_id, payload_body};
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use rand::RngExt;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::Principal;
use crate::body;
use crate::error::ApiError;
use crate::recorder::{commit, record_change};

const MAX_PATTERNS: usize = 50;

fn endpoint_json(w: &Endpoint) -> Value {
    json!({
        "id": w.id,
        "url": w.url,
        "description": w.description,
        "events": w.events.iter().map(|p| p.as_str()).collect::<Vec<_>>(),
        "enabled": w.enabled,
        "disabled_reason": w.disabled_reason,
        "failing_since": w.failing_since,
        "created_at": w.created_at,
        "previous_secret_valid_until": w.previous_secret.as_ref().map(|(_, until)| until),
    })
}

fn resource(w: &Endpoint) -> Resource {
    Resource {
        kind: "webhook".into(),
        id: w.id.clone(),
        name: (!w.description.is_empty()).then(|| w.description.clone()),
    }
}

fn new_id() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    let tail: String = (0..12)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect();
    format!("wh_{tail}")
}

fn patterns(raw: &[String], state: &AppState) -> Result<Vec<EventPattern>, ApiError> {
    if raw.len() > MAX_PATTERNS {
        return Err(ApiError::invalid(
            "events",
            "too_many",
            format!("at most {MAX_PATTERNS} patterns"),
        ));
    }
    raw.iter()
        .map(|p| {
            let pattern =
                EventPattern::parse(p).map_err(|e| ApiError::invalid("events", "invalid_pattern", e.to_string()))?;
            if pattern.expand(&state.catalog).is_empty() {
                return Err(ApiError::invalid(
                    "events",
                    "unknown_event",
                    format!("{p:?} matches no event in the catalog"),
                ));
            }
            Ok(pattern)
        })
        .collect()
}

fn checked_url(state: &AppState, url: &str) -> Result<String, ApiError> {
    if url.len() > 2048 {
        return Err(ApiError::invalid(
            "url",
            "too_long",
            "the URL is longer than 2048 characters",
        ));
    }
    state
        .webhooks
        .policy()
        .check_url(url)
        .map(|u| u.to_string())
        .map_err(|e| ApiError::invalid("url", "invalid_url", e))
}

fn description(raw: Option<String>) -> Result<String, ApiError> {
    let d = raw.unwrap_or_default();
    if d.chars().count() > 500 || d.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            "description",
            "invalid_value",
            "at most 500 characters, no control characters",
        ));
    }
    Ok(d.trim().to_owned())
}

async fn existing(state: &AppState, principal: &Principal, id: &str) -> Result<Endpoint, ApiError> {
    state
        .store
        .webhook(principal.org.id, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no webhook {id:?} in this organization")))
}

pub async fn list(State(state): State<AppState>, principal: Principal) -> Result<Json<Value>, ApiError> {
    principal.authorize(Action::ManageWebhooks)?;
    let hooks: Vec<Value> = state
        .store
        .webhooks(principal.org.id)
        .await?
        .iter()
        .map(endpoint_json)
        .collect();
    Ok(Json(json!({ "webhooks": hooks })))
}

pub async fn get_one(
    State(state): State<AppState>,
    principal: Principal,
    Path((_, id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    principal.authorize(Action::ManageWebhooks)?;
    Ok(Json(endpoint_json(&existing(&state, &principal, &id).await?)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewWebhook {
    url: String,
    description: Option<String>,
    #[serde(default)]
    events: Vec<String>,
    enabled: Option<bool>,
}

#[tracing::instrument(skip_all, fields(org = %principal.org.slug))]
pub async fn create(
    State(state): State<AppState>,
    principal: Principal,
    raw: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let req: NewWebhook = body::parse(raw, state.config.max_body_bytes)?;
    principal.authorize(Action::ManageWebhooks)?;
    let now = state.clock.now();
    let secret = Secret::generate();
    let endpoint = Endpoint {
        id: new_id(),
        url: checked_url(&state, &req.url)?,
        description: description(req.description)?,
        events: patterns(&req.events, &state)?,
        enabled: req.enabled.unwrap_or(true),
        // Stored sealed; shown once, in clear, in this answer.
        secret: state.webhooks.seal(&secret),
        previous_secret: None,
        created_at: now,
        failing_since: None,
        disabled_reason: None,
    };
    let entry = principal.entry(
        now,
        "webhook.created",
        resource(&endpoint),
        json!({"url": endpoint.url, "events": req.events, "enabled": endpoint.enabled}),
    );
    commit(
        &state,
        &principal,
        vec![Change::CreateWebhook(endpoint.clone())],
        vec![entry],
    )
    .await?;
    let mut out = endpoint_json(&endpoint);
    out["secret"] = json!(secret.to_whsec());
    Ok((StatusCode::CREATED, Json(out)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookPatch {
    url: Option<String>,
    description: Option<String>,
    events: Option<Vec<String>>,
    enabled: Option<bool>,
}

#[tracing::instrument(skip_all, fields(org = %principal.org.slug))]
pub async fn update(
    State(state): State<AppState>,
    principal: Principal,
    Path((_, id)): Path<(String, String)>,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let req: WebhookPatch = body::parse(raw, state.config.max_body_bytes)?;
    principal.authorize(Action::ManageWebhooks)?;
    let old = existing(&state, &principal, &id).await?;
    let url = match &req.url {
        Some(u) => checked_url(&state, u)?,
        None => old.url.clone(),
    };
    let description = match req.description {
        Some(d) => description(Some(d))?,
        None => old.description.clone(),
    };
    let events = match &req.events {
        Some(e) => patterns(e, &state)?,
        None => old.events.clone(),
    };
    let enabled = req.enabled.unwrap_or(old.enabled);
    let now = state.clock.now();
    let show = |p: &[EventPattern]| p.iter().map(|p| p.as_str().to_owned()).collect::<Vec<_>>();
    let mut changes = serde_json::Map::new();
    if url != old.url {
        changes.insert("url".into(), json!({"old": old.url, "new": url}));
    }
    if description != old.description {
        changes.insert(
            "description".into(),
            json!({"old": old.description, "new": description}),
        );
    }
    if events != old.events {
        changes.insert("events".into(), json!({"old": show(&old.events), "new": show(&events)}));
    }
    if enabled && !old.enabled {
        changes.insert("enabled".into(), json!({"old": false, "new": true}));
    }
    let mut entries = Vec::new();
    if !changes.is_empty() {
        entries.push(principal.entry(
            now,
            "webhook.updated",
            resource(&old),
            json!({"url": url, "changes": changes}),
        ));
    }
    if !enabled && old.enabled {
        let reason = format!("disabled by {}", principal.actor().id);
        entries.push(principal.entry(
            now,
            "webhook.disabled",
            resource(&old),
            json!({"url": url, "reason": reason}),
        ));
    }
    if !entries.is_empty() {
        let change = Change::UpdateWebhook {
            id: old.id.clone(),
            url,
            description,
            events,
            enabled,
        };
        commit(&state, &principal, vec![change], entries).await?;
    }
    Ok(Json(endpoint_json(&existing(&state, &principal, &id).await?)))
}

#[tracing::instrument(skip_all, fields(org = %principal.org.slug))]
pub async fn delete(
    State(state): State<AppState>,
    principal: Principal,
    Path((_, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    principal.authorize(Action::ManageWebhooks)?;
    let old = existing(&state, &principal, &id).await?;
    let (what, details) = (resource(&old), json!({"url": old.url}));
    let change = Change::DeleteWebhook { id: old.id };
    record_change(&state, &principal, change, "webhook.deleted", what, details).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[tracing::instrument(skip_all, fields(org = %principal.org.slug))]
pub async fn rotate_secret(
    State(state): State<AppState>,
    principal: Principal,
    Path((_, id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    principal.authorize(Action::ManageWebhooks)?;
    let old = existing(&state, &principal, &id).await?;
    let now = state.clock.now();
    let secret = Secret::generate();
    let until = now.plus_millis(ROTATION_OVERLAP_MS);
    let entry = principal.entry(
        now,
        "webhook.secret_rotated",
        resource(&old),
        json!({"url": old.url, "previous_secret_valid_until": until}),
    );
    let change = Change::RotateWebhookSecret {
        id: old.id.clone(),
        new: state.webhooks.seal(&secret),
        previous_until: until,
    };
    commit(&state, &principal, vec![change], vec![entry]).await?;
    Ok(Json(
        json!({"id": old.id, "secret": secret.to_whsec(), "previous_secret_valid_until": until}),
    ))
}

/// Sends a signed test message now and reports what the receiver answered.
#[tracing::instrument(skip_all, fields(org = %principal.org.slug))]
pub async fn test(
    State(state): State<AppState>,
    principal: Principal,
    Path((_, id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    principal.authorize(Action::ManageWebhooks)?;
    let endpoint = existing(&state, &principal, &id).await?;
    let now = state.clock.now();
    let entry = Entry {
        id: uuid::Uuid::now_v7(),
        org_id: principal.org.id,
        seq: 0,
        timestamp: now,
        received_at: now,
        actor: Actor::system(),
        event: "webhook.test".into(),
        resource: resource(&endpoint),
        details: json!({"message": "a test message from auditlog; it is not in the audit log"})
            .as_object()
            .cloned()
            .unwrap_or_default(),
        ip_address: None,
        user_agent: None,
        request_id: principal.ctx.request_id.clone(),
        idempotency_key: None,
    };
    let sent = state
        .webhooks
        .send(
            &endpoint.url,
            &endpoint.signing_secrets(now),
            &message_id(&endpoint.id, &entry),
            now,
            payload_body(&entry),
        )
        .await;
    Ok(Json(json!({
        "delivered": sent.status.is_some_and(|s| (200..300).contains(&s)),
        "status": sent.status,
        "latency_ms": sent.latency_ms,
        "error": sent.error,
    })))
}

pub async fn deliveries(
    State(state): State<AppState>,
    principal: Principal,
    Path((_, id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    principal.authorize(Action::ManageWebhooks)?;
    let endpoint = existing(&state, &principal, &id).await?;
    let list = state.store.deliveries(principal.org.id, &endpoint.id, 100).await?;
    Ok(Json(json!({ "deliveries": list })))
}

pub async fn retry(
    State(state): State<AppState>,
    principal: Principal,
    Path((_, id, delivery)): Path<(String, String, String)>,
) -> Result<Json<Value>, ApiError> {
    principal.authorize(Action::ManageWebhooks)?;
    let endpoint = existing(&state, &principal, &id).await?;
    let belongs = state
        .store
        .deliveries(principal.org.id, &endpoint.id, u32::MAX)
        .await?
        .iter()
        .any(|d| d.id == delivery);
    if !belongs {
        return Err(ApiError::NotFound(format!("no delivery {delivery:?} for this webhook")));
    }
    let d = state
        .store
        .retry_delivery(principal.org.id, &delivery, state.clock.now())
        .await?;
    state.writer.committed().notify_one();
    Ok(Json(json!(d)))
}

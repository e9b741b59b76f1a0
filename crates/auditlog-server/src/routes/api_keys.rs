//! API keys over HTTP: `GET/POST /v1/orgs/{org}/api-keys`,
//! `DELETE …/api-keys/{prefix}` (revoke). The secret is in the creation
//! answer and nowhere else, ever.

use auditlog_domain::api_key::{self, KeyPrefix, Scope};
use auditlog_domain::change::Change;
use auditlog_domain::entry::Resource;
use auditlog_domain::member::display_name;
use auditlog_domain::permissions::Action;
use auditlog_domain::store::{ApiKeyRecord, NewApiKey};
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::Principal;
use crate::body;
use crate::error::ApiError;
use crate::recorder::{commit, record_change};

fn key_json(k: &ApiKeyRecord) -> Value {
    json!({
        "prefix": k.prefix,
        "name": k.name,
        "scopes": k.scopes,
        "created_at": k.created_at,
        "last_used_at": k.last_used_at,
        "revoked_at": k.revoked_at,
    })
}

fn key_resource(prefix: &KeyPrefix, name: &str) -> Resource {
    Resource {
        kind: "api_key".into(),
        id: prefix.to_string(),
        name: Some(name.to_owned()),
    }
}

pub async fn list(State(state): State<AppState>, principal: Principal) -> Result<Json<Value>, ApiError> {
    principal.authorize(Action::ViewKeys)?;
    let keys: Vec<Value> = state
        .store
        .api_keys(principal.org.id)
        .await?
        .iter()
        .map(key_json)
        .collect();
    Ok(Json(json!({ "api_keys": keys })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    name: String,
    scopes: Vec<Scope>,
}

#[tracing::instrument(skip_all, fields(org = %principal.org.slug))]
pub async fn create(
    State(state): State<AppState>,
    principal: Principal,
    raw: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let req: NewKey = body::parse(raw, state.config.max_body_bytes)?;
    let mut scopes = req.scopes;
    scopes.sort();
    scopes.dedup();
    if scopes.is_empty() {
        return Err(ApiError::invalid("scopes", "empty", "a key needs at least one scope"));
    }
    principal.authorize(Action::CreateKey { scopes: scopes.clone() })?;
    let name =
        display_name("name", &req.name, 100).map_err(|e| ApiError::invalid("name", "invalid_name", e.to_string()))?;
    let key = api_key::generate();
    let now = state.clock.now();
    let scope_names: Vec<&str> = scopes.iter().map(|s| s.as_str()).collect();
    let entry = principal.entry(
        now,
        "api_key.created",
        key_resource(&key.prefix, &name),
        json!({"prefix": key.prefix.as_str(), "name": name, "scopes": scope_names}),
    );
    let new = NewApiKey {
        org_id: principal.org.id,
        prefix: key.prefix.clone(),
        name: name.clone(),
        scopes: scopes.clone(),
        hash: key.hash.clone(),
    };
    commit(&state, &principal, vec![Change::CreateKey(new)], vec![entry]).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "prefix": key.prefix,
            "name": name,
            "scopes": scopes,
            "created_at": now,
            "key": key.secret,
        })),
    ))
}

#[tracing::instrument(skip_all, fields(org = %principal.org.slug))]
pub async fn revoke(
    State(state): State<AppState>,
    principal: Principal,
    Path((_, prefix)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    principal.authorize(Action::RevokeKey)?;
    let not_found = || ApiError::NotFound(format!("no active API key {prefix:?} in this organization"));
    let prefix = KeyPrefix::parse(&prefix).ok_or_else(not_found)?;
    let key = state
        .store
        .api_key(&prefix)
        .await?
        .filter(|k| k.org_id == principal.org.id && k.revoked_at.is_none())
        .ok_or_else(not_found)?;
    let scope_names: Vec<&str> = key.scopes.iter().map(|s| s.as_str()).collect();
    let details = json!({"prefix": key.prefix.as_str(), "name": key.name, "scopes": scope_names});
    let change = Change::RevokeKey {
        prefix: key.prefix.clone(),
        at: state.clock.now(),
    };
    let what = key_resource(&key.prefix, &key.name);
    record_change(&state, &principal, change, "api_key.revoked", what, details).await?;
    state.keys.forget(key.prefix.as_str());
    Ok(StatusCode::NO_CONTENT)
}

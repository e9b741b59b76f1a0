//! API keys over HTTP: `GET/POST /v1/orgs/{org}/api-keys`,
//! `DELETE …/api-keys/{prefix}` (revoke). The secret is in the creation
//! answer and nowhere else, ever.

use auditlog_domain::api_key::{self, KeyPrefix, Scope};
use auditlog_domain::change::Change;
use auditlog_domain::entry::Resource;
use auditlog_domain::member::display_name;
use auditlog_domain::permissions::Action;
use auditlog_domain::store::{ApiKeyRecord, NewApiKey};
use auditlog_domain::{SubmittedBy, Timestamp};
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::http::auth::Principal;
use crate::http::body;
use crate::http::error::ApiError;
use crate::http::recorder::{commit, record_change};
use crate::http::state::AppState;

/// A key as listed: never its secret.
#[derive(Serialize, utoipa::ToSchema)]
pub struct KeyView {
    prefix: KeyPrefix,
    name: String,
    scopes: Vec<Scope>,
    created_at: Timestamp,
    /// Recorded at most once an hour.
    last_used_at: Option<Timestamp>,
    revoked_at: Option<Timestamp>,
    /// The credential that created it; absent for keys made before the
    /// service kept it.
    created_by: Option<SubmittedBy>,
}

fn key_view(k: &ApiKeyRecord) -> KeyView {
    KeyView {
        prefix: k.prefix.clone(),
        name: k.name.clone(),
        scopes: k.scopes.clone(),
        created_at: k.created_at,
        last_used_at: k.last_used_at,
        revoked_at: k.revoked_at,
        created_by: k.created_by.clone(),
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Keys {
    api_keys: Vec<KeyView>,
}

/// A new key, with its secret: shown this once.
#[derive(Serialize, utoipa::ToSchema)]
pub struct CreatedKey {
    pub(crate) prefix: KeyPrefix,
    pub(crate) name: String,
    pub(crate) scopes: Vec<Scope>,
    created_at: Timestamp,
    /// The secret, for `Authorization: Bearer …`; it is not stored and
    /// cannot be shown again.
    pub(crate) key: String,
}

fn key_resource(prefix: &KeyPrefix, name: &str) -> Resource {
    Resource {
        kind: "api_key".into(),
        id: prefix.to_string(),
        name: Some(name.to_owned()),
    }
}

/// The organization's keys, revoked ones included.
#[utoipa::path(
    get,
    path = "/v1/orgs/{org}/api-keys",
    operation_id = "list_api_keys",
    tag = "api-keys",
    params(crate::http::responses::OrgPath),
    responses(
        (status = 200, description = "The keys.", body = Keys),
        crate::http::responses::Denied,
    ),
    security(("api_key" = []), ("session" = [])),
)]
pub async fn list(State(state): State<AppState>, principal: Principal) -> Result<Json<Keys>, ApiError> {
    principal.authorize(Action::ViewKeys)?;
    let api_keys = state
        .store
        .api_keys(principal.org.id)
        .await?
        .iter()
        .map(key_view)
        .collect();
    Ok(Json(Keys { api_keys }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"name": "billing-service", "scopes": ["audit:write"]})))]
pub struct NewKey {
    #[schema(min_length = 1, max_length = 100)]
    name: String,
    /// Only scopes the creator holds: owners and admins hold every scope,
    /// members `audit:write`, a key its own.
    #[schema(min_items = 1)]
    scopes: Vec<Scope>,
}

/// Creates a key with scopes the caller holds (a 403 `scope_not_held`
/// names one it does not); the answer holds its secret, shown this once.
#[utoipa::path(
    post,
    path = "/v1/orgs/{org}/api-keys",
    operation_id = "create_api_key",
    tag = "api-keys",
    params(crate::http::responses::OrgPath),
    request_body = NewKey,
    responses(
        (status = 201, description = "Created.", body = CreatedKey),
        crate::http::responses::CreateRefused,
    ),
    security(("api_key" = []), ("session" = [], "csrf" = [])),
)]
#[tracing::instrument(skip_all, fields(org = %principal.org.slug))]
pub async fn create(
    State(state): State<AppState>,
    principal: Principal,
    raw: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<CreatedKey>), ApiError> {
    let req: NewKey = body::parse(raw, state.config.max_body_bytes)?;
    Ok((
        StatusCode::CREATED,
        Json(create_key(&state, &principal, &req.name, req.scopes).await?),
    ))
}

/// Creates a key named `name` with `scopes` the caller holds, recorded as
/// `api_key.created`: the API's and the console's way in.
pub async fn create_key(
    state: &AppState,
    principal: &Principal,
    name: &str,
    mut scopes: Vec<Scope>,
) -> Result<CreatedKey, ApiError> {
    scopes.sort();
    scopes.dedup();
    if scopes.is_empty() {
        return Err(ApiError::invalid("scopes", "empty", "a key needs at least one scope"));
    }
    principal.authorize(Action::CreateKey { scopes: scopes.clone() })?;
    let name = display_name("name", name, 100).map_err(|e| ApiError::invalid("name", "invalid_name", e.to_string()))?;
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
        created_by: Some(principal.submitted_by()),
    };
    commit(state, principal, vec![Change::CreateKey(new)], vec![entry]).await?;
    Ok(CreatedKey {
        prefix: key.prefix,
        name,
        scopes,
        created_at: now,
        key: key.secret,
    })
}

/// Revokes a key at once.
#[utoipa::path(
    delete,
    path = "/v1/orgs/{org}/api-keys/{prefix}",
    operation_id = "revoke_api_key",
    tag = "api-keys",
    params(
        crate::http::responses::OrgPath,
        ("prefix" = String, Path, description = "The key's public prefix, such as `lqt_ab12cd34`."),
    ),
    responses(
        (status = 204, description = "Revoked."),
        crate::http::responses::ActionRefused,
    ),
    security(("api_key" = []), ("session" = [], "csrf" = [])),
)]
#[tracing::instrument(skip_all, fields(org = %principal.org.slug))]
pub async fn revoke(
    State(state): State<AppState>,
    principal: Principal,
    Path((_, prefix)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    revoke_key(&state, &principal, &prefix).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Revokes the organization's active key `prefix`, recorded as
/// `api_key.revoked`.
pub async fn revoke_key(state: &AppState, principal: &Principal, prefix: &str) -> Result<(), ApiError> {
    principal.authorize(Action::RevokeKey)?;
    let not_found = || ApiError::NotFound(format!("no active API key {prefix:?} in this organization"));
    let prefix = KeyPrefix::parse(prefix).ok_or_else(not_found)?;
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
    record_change(state, principal, change, "api_key.revoked", what, details).await?;
    state.keys.forget(key.prefix.as_str());
    Ok(())
}

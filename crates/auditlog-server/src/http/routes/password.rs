//! A person changes their own password: `POST /v1/session/password`.
//!
//! The current password is required (a stolen session alone cannot lock
//! the person out), a wrong one counts as a failed sign-in under the
//! throttle, and every other session of the person ends, so whoever held
//! the old password is signed out everywhere.

use auditlog_domain::change::Change;
use auditlog_domain::entry::Resource;
use auditlog_domain::password;
use auditlog_domain::permissions::Authority;
use auditlog_domain::session::Session;
use auditlog_domain::store::AppendRequest;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, Method, StatusCode};
use serde::Deserialize;
use serde_json::json;

use crate::http::auth::{Credential, Principal, check_csrf, current_session};
use crate::http::body;
use crate::http::context::RequestContext;
use crate::http::error::ApiError;
use crate::http::state::AppState;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"current_password": "the old passphrase", "new_password": "a new, longer passphrase"})))]
pub struct PasswordChange {
    #[schema(format = Password)]
    current_password: String,
    #[schema(format = Password)]
    new_password: String,
}

/// Changes the signed-in person's password; their other sessions end.
#[utoipa::path(
    post,
    path = "/v1/session/password",
    operation_id = "change_password",
    tag = "session",
    request_body = PasswordChange,
    responses(
        (status = 204, description = "Changed; every other session of this person has ended."),
        (status = 400, response = crate::http::responses::BadRequest),
        (status = 401, response = crate::http::responses::Unauthenticated),
        (status = 403, response = crate::http::responses::Forbidden),
        (status = 409, response = crate::http::responses::Conflict),
        (status = 413, response = crate::http::responses::PayloadTooLarge),
        (status = 422, response = crate::http::responses::Unprocessable),
        (status = 429, response = crate::http::responses::TooManyRequests),
        (status = 500, response = crate::http::responses::Internal),
    ),
    security(("session" = [], "csrf" = [])),
)]
#[tracing::instrument(skip_all)]
pub async fn change_password(
    State(state): State<AppState>,
    ctx: RequestContext,
    method: Method,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> Result<StatusCode, ApiError> {
    let s = current_session(&state, &headers).await?;
    check_csrf(&s, &method, &headers)?;
    let req: PasswordChange = body::parse(raw, state.config.max_body_bytes)?;
    let old_hash = check_current(&state, &ctx, &s.email, req.current_password).await?;
    let new_hash = hash_new("new_password", req.new_password).await?;
    let change = Change::ChangePassword {
        email: s.email.clone(),
        old_hash,
        new_hash,
        keep: s.token_hash,
    };
    let mut requests = recorded(&state, &ctx, &s, change).await?.into_iter();
    // The change first: only once it holds do the other organizations
    // record it.
    if let Some(first) = requests.next() {
        state.writer.append(first).await?;
    }
    for other in requests {
        state.writer.append(other).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// A new password's argon2id hash, made off the async threads; a weak one
/// is refused naming `field`. Every route that sets a password uses it.
pub(crate) async fn hash_new(field: &str, password_text: String) -> Result<String, ApiError> {
    tokio::task::spawn_blocking(move || password::hash(&password_text))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(|e| ApiError::invalid(field, "weak_password", e.to_string()))
}

/// The stored hash, once the current password matches it. A mismatch is a
/// failed sign-in: the same throttle and delay, so a stolen session cannot
/// guess the password here faster than at the sign-in form.
async fn check_current(
    state: &AppState,
    ctx: &RequestContext,
    email: &str,
    current: String,
) -> Result<String, ApiError> {
    let now = state.clock.now();
    let ip_key = ctx.ip.map(|ip| ip.to_string()).unwrap_or_default();
    crate::http::state::Limiters::take(&state.limits.login_per_ip, &ip_key, now)?;
    state
        .login_throttle()?
        .check(email, &ip_key, now)
        .map_err(ApiError::TooManyRequests)?;
    let stored = state
        .store
        .user(email)
        .await?
        .and_then(|u| u.password_hash)
        .ok_or_else(|| ApiError::Conflict {
            code: "no_password",
            message: "this account has no password to change; use a reset token".into(),
        })?;
    let hash = stored.clone();
    let ok = tokio::task::spawn_blocking(move || password::verify(&current, &hash))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    if !ok {
        let delay = state.login_throttle()?.fail(email, &ip_key, now);
        tokio::time::sleep(delay).await;
        return Err(ApiError::forbidden("wrong_password", "the current password is wrong"));
    }
    Ok(stored)
}

/// The change, applied with its entry in the person's first organization,
/// and the same entry in each other one: every organization they belong to
/// can see that the credential of one of its members changed.
async fn recorded(
    state: &AppState,
    ctx: &RequestContext,
    s: &Session,
    change: Change,
) -> Result<Vec<AppendRequest>, ApiError> {
    let orgs = state.store.memberships(&s.email).await?;
    if orgs.is_empty() {
        return Err(ApiError::Conflict {
            code: "no_organization",
            message: "you belong to no organization, so there is no log to record this change in; ask an owner to invite you first".into(),
        });
    }
    let now = state.clock.now();
    let mut change = Some(change);
    Ok(orgs
        .into_iter()
        .map(|(org, role)| {
            let person = Principal {
                org,
                authority: Authority::User(role),
                credential: Credential::Session(s.clone()),
                ctx: ctx.clone(),
            };
            let entry = person.entry(
                now,
                "organization.member_password_changed",
                Resource {
                    kind: "member".into(),
                    id: s.email.clone(),
                    name: None,
                },
                json!({"member": s.email, "method": "change"}),
            );
            AppendRequest {
                org_id: person.org.id,
                changes: change.take().into_iter().collect(),
                entries: vec![entry],
            }
        })
        .collect())
}

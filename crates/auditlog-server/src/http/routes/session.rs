//! Signing in and out: `POST /v1/session`, `GET /v1/session`,
//! `DELETE /v1/session`.
//!
//! Failed sign-ins are limited per account and per client address and each
//! answer to a failure is delayed a little more; an unknown email costs the
//! same password check as a wrong password, so timing reveals nothing.

use auditlog_domain::member::normalise_email;
use auditlog_domain::password;
use auditlog_domain::session::{self, Session};
use auditlog_domain::sso::SignInMethod;
use auditlog_domain::{Org, Role, Timestamp};
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cookie::{Cookie, SameSite};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::http::auth::{SESSION_COOKIE, check_csrf, current_session};
use crate::http::body;
use crate::http::context::RequestContext;
use crate::http::error::ApiError;
use crate::http::sign_ins;
use crate::http::state::AppState;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"email": "li.wei@acme.com", "password": "correct horse battery staple"})))]
pub struct Login {
    email: String,
    #[schema(format = Password)]
    password: String,
    /// An owner's break-glass sign-in with a password where the
    /// organization enforces single sign-on; recorded as such.
    #[serde(default)]
    break_glass: bool,
}

/// The signed-in person and where they are a member.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SessionInfo {
    email: String,
    /// To send as `X-CSRF-Token` on requests that change state.
    csrf_token: String,
    expires_at: Timestamp,
    organizations: Vec<Membership>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Membership {
    slug: String,
    name: String,
    role: Role,
}

const WRONG: &str = "wrong email or password";

fn cookie_header(state: &AppState, value: &str, max_age_secs: i64) -> HeaderValue {
    let c = Cookie::build((SESSION_COOKIE, value.to_owned()))
        .http_only(true)
        .same_site(SameSite::Strict)
        .path("/")
        .secure(state.config.secure_cookies)
        .max_age(cookie::time::Duration::seconds(max_age_secs))
        .build();
    HeaderValue::from_str(&c.to_string()).unwrap_or(HeaderValue::from_static(""))
}

async fn describe(state: &AppState, s: &Session) -> Result<SessionInfo, ApiError> {
    let organizations = state
        .store
        .memberships(&s.email)
        .await?
        .into_iter()
        .map(|(org, role)| Membership {
            slug: org.slug,
            name: org.name,
            role,
        })
        .collect();
    Ok(SessionInfo {
        email: s.email.clone(),
        csrf_token: s.csrf_token.clone(),
        expires_at: s.expires_at,
        organizations,
    })
}

/// Checks an email and password under the login throttle and starts a
/// session; returns the cookie's token and the session. Shared by the API
/// and the sign-in form.
pub async fn sign_in(
    state: &AppState,
    ctx: &RequestContext,
    email: &str,
    password_text: String,
    break_glass: bool,
) -> Result<(String, Session), ApiError> {
    let now = state.clock.now();
    let email = normalise_email(email).unwrap_or_else(|_| email.trim().to_lowercase());
    let ip_key = ctx.ip.map(|ip| ip.to_string()).unwrap_or_default();
    crate::http::state::Limiters::take(&state.limits.login_per_ip, &ip_key, now)?;
    state
        .login_throttle()?
        .check(&email, &ip_key, now)
        .map_err(ApiError::TooManyRequests)?;
    // An account guessed at from many addresses is slowed for everyone,
    // its owner too, as refusing it would lock the owner out.
    let held = state.login_throttle()?.delay(&email, now);
    tokio::time::sleep(held).await;
    let user = state.store.user(&email).await?;
    let stored = user.and_then(|u| u.password_hash);
    let verified = tokio::task::spawn_blocking(move || match stored {
        Some(hash) => password::verify(&password_text, &hash),
        None => {
            // Same work as a real check, so timing does not reveal accounts.
            password::verify(&password_text, password::decoy_hash());
            false
        }
    })
    .await
    .map_err(|e| ApiError::Internal(format!("password check failed: {e}")))?;

    let orgs = state.store.memberships(&email).await?;
    let failed = |reason: &'static str| {
        let orgs: Vec<Org> = orgs.iter().map(|(o, _)| o.clone()).collect();
        let email = email.clone();
        async move { sign_ins::failed(state, ctx, &orgs, &email, SignInMethod::Password, reason, json!({})).await }
    };
    if !verified {
        let delay = state.login_throttle()?.fail(&email, &ip_key, now);
        // Recorded while the answer is held back, so that an account with
        // organizations to record in takes no longer to refuse than an
        // unknown email.
        tokio::join!(failed("wrong_password"), tokio::time::sleep(delay));
        return Err(ApiError::Unauthenticated(WRONG.into()));
    }
    state.login_throttle()?.succeed(&email, &ip_key);
    let origin = match sign_ins::password_origin(&orgs, break_glass) {
        Ok(origin) => origin,
        Err(e) => {
            failed(if break_glass {
                "break_glass_not_allowed"
            } else {
                "sso_required"
            })
            .await;
            return Err(e);
        }
    };
    let (token, s) = session::start(&email, now, origin);
    state.store.create_session(s.clone()).await?;
    if let Err(e) = sign_ins::signed_in(state, ctx, &s, &orgs).await {
        // Unrecorded, the sign-in does not happen.
        let _ = state.store.delete_session(&s.token_hash).await;
        return Err(e);
    }
    Ok((token, s))
}

/// The `Set-Cookie` value that hands a new session to the browser.
pub fn session_cookie(state: &AppState, token: &str, s: &Session) -> HeaderValue {
    let max_age = (s.expires_at.millis() - state.clock.now().millis()) / 1000;
    cookie_header(state, token, max_age.max(0))
}

/// The `Set-Cookie` value that removes the session cookie.
pub fn cleared_cookie(state: &AppState) -> HeaderValue {
    cookie_header(state, "", 0)
}

/// Signs in with an email and password and sets the session cookie.
/// Failures are limited per account and per address, each answer to one
/// delayed a little more.
#[utoipa::path(
    post,
    path = "/v1/session",
    operation_id = "sign_in",
    tag = "session",
    request_body = Login,
    responses(
        (status = 200, description = "Signed in.", body = SessionInfo,
            headers(("Set-Cookie" = String, description = "The session cookie, `auditlog_session`, HttpOnly, SameSite=Strict."))),
        (status = 400, response = crate::http::responses::BadRequest),
        (status = 401, response = crate::http::responses::Unauthenticated),
        (status = 413, response = crate::http::responses::PayloadTooLarge),
        (status = 429, response = crate::http::responses::TooManyRequests),
        (status = 500, response = crate::http::responses::Internal),
    ),
    security(()),
)]
#[tracing::instrument(skip_all)]
pub async fn login(
    State(state): State<AppState>,
    ctx: RequestContext,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let req: Login = body::parse(raw, state.config.max_body_bytes)?;
    let (token, s) = sign_in(&state, &ctx, &req.email, req.password, req.break_glass).await?;
    let body = describe(&state, &s).await?;
    let mut resp = (StatusCode::OK, Json(body)).into_response();
    resp.headers_mut()
        .insert(header::SET_COOKIE, session_cookie(&state, &token, &s));
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

/// The signed-in person.
#[utoipa::path(
    get,
    path = "/v1/session",
    operation_id = "get_session",
    tag = "session",
    responses(
        (status = 200, description = "The session.", body = SessionInfo),
        (status = 401, response = crate::http::responses::Unauthenticated),
        (status = 500, response = crate::http::responses::Internal),
    ),
    security(("session" = [])),
)]
pub async fn current(State(state): State<AppState>, headers: HeaderMap) -> Result<Json<SessionInfo>, ApiError> {
    let s = current_session(&state, &headers).await?;
    Ok(Json(describe(&state, &s).await?))
}

/// Signs out: the session ends and the cookie is cleared.
#[utoipa::path(
    delete,
    path = "/v1/session",
    operation_id = "sign_out",
    tag = "session",
    responses(
        (status = 204, description = "Signed out.",
            headers(("Set-Cookie" = String, description = "Clears the session cookie."))),
        crate::http::responses::Denied,
    ),
    security(("session" = [], "csrf" = [])),
)]
pub async fn logout(
    State(state): State<AppState>,
    ctx: RequestContext,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let s = current_session(&state, &headers).await?;
    check_csrf(&s, &method, &headers)?;
    state.store.delete_session(&s.token_hash).await?;
    sign_ins::signed_out(&state, &ctx, &s).await?;
    let mut resp = StatusCode::NO_CONTENT.into_response();
    resp.headers_mut().insert(header::SET_COOKIE, cleared_cookie(&state));
    Ok(resp)
}

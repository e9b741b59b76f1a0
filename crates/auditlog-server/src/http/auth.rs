//! Who is calling, for which organization, and what they may do.
//!
//! Two credentials:
//! - an API key, `Authorization: Bearer lqt_…`: format and checksum are
//!   checked before any look-up, then the stored hash is compared in
//!   constant time;
//! - a session cookie from `POST /v1/session`: the person must be a member
//!   of the organization in the path, and requests that change state must
//!   echo the session's CSRF token in `X-CSRF-Token`.
//!
//! [`Principal`] is an extractor for every `/v1/orgs/{org}/…` route;
//! handlers then ask [`Principal::authorize`] about one
//! [`Action`](auditlog_domain::permissions::Action), decided by the pure
//! permission rules of the domain.

use std::collections::HashMap;

use auditlog_domain::api_key::PresentedKey;
use auditlog_domain::change::Change;
use auditlog_domain::entry::{Actor, ActorType, Resource};
use auditlog_domain::permissions::{self, Action, Authority};
use auditlog_domain::session::{self, Session};
use auditlog_domain::sso;
use auditlog_domain::store::{ApiKeyRecord, AppendRequest};
use auditlog_domain::{NewEntry, Org, SubmittedBy, SubmitterKind, Timestamp};
use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, header};
use serde_json::json;
use subtle::ConstantTimeEq;

use crate::http::context::RequestContext;
use crate::http::error::ApiError;
use crate::http::state::AppState;

pub const SESSION_COOKIE: &str = "auditlog_session";
pub const CSRF_HEADER: &str = "x-csrf-token";
/// A key's last use is recorded at most this often.
const TOUCH_EVERY_MS: i64 = 60 * 60 * 1000;

#[derive(Debug, Clone)]
pub enum Credential {
    Key(ApiKeyRecord),
    Session(Session),
}

/// An authenticated caller acting on one organization.
#[derive(Debug, Clone)]
pub struct Principal {
    pub org: Org,
    pub authority: Authority,
    pub credential: Credential,
    pub ctx: RequestContext,
}

impl Principal {
    /// How the log names this caller.
    pub fn actor(&self) -> Actor {
        match &self.credential {
            Credential::Key(k) => Actor::api_key(k.prefix.as_str()),
            Credential::Session(s) => Actor {
                kind: ActorType::User,
                id: s.email.clone(),
            },
        }
    }

    pub fn authorize(&self, action: Action) -> Result<(), ApiError> {
        permissions::check(&self.authority, &action).map_err(|d| ApiError::Forbidden {
            code: d.code,
            message: d.message,
        })
    }

    /// The credential, as an entry's `submitted_by` names it.
    pub fn submitted_by(&self) -> SubmittedBy {
        match &self.credential {
            Credential::Key(k) => SubmittedBy::new(SubmitterKind::ApiKey, k.prefix.as_str()),
            Credential::Session(s) => SubmittedBy::new(SubmitterKind::Session, s.email.as_str()),
        }
    }

    /// A new entry done by this caller in this request.
    pub fn entry(&self, now: Timestamp, event: &str, resource: Resource, details: serde_json::Value) -> NewEntry {
        NewEntry {
            timestamp: now,
            actor: self.actor(),
            event: event.to_owned(),
            resource,
            details: details.as_object().cloned().unwrap_or_default(),
            ip_address: self.ctx.ip,
            user_agent: self.ctx.user_agent.clone(),
            request_id: self.ctx.request_id.clone(),
            idempotency_key: None,
            submitted_by: self.submitted_by(),
        }
    }
}

fn bearer(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value
        .to_str()
        .map_err(|_| ApiError::Unauthenticated("the Authorization header is not valid text".into()))?;
    match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => Ok(Some(token.trim())),
        _ => Err(ApiError::Unauthenticated(
            "expected Authorization: Bearer <API key>".into(),
        )),
    }
}

/// The session cookie's value, if the request carries one.
pub fn session_token(headers: &HeaderMap) -> Option<String> {
    cookie_value(headers, SESSION_COOKIE)
}

/// The value of the request's cookie `name`, if it carries one.
pub fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(cookie::Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_owned())
}

/// The live session named by the request's cookie.
pub async fn current_session(state: &AppState, headers: &HeaderMap) -> Result<Session, ApiError> {
    let token = session_token(headers)
        .ok_or_else(|| ApiError::Unauthenticated("sign in first (POST /v1/session) or send an API key".into()))?;
    state
        .store
        .session(&session::hash_token(&token), state.clock.now())
        .await?
        .ok_or_else(|| ApiError::Unauthenticated("the session has expired or was signed out; sign in again".into()))
}

/// Whether `sent` is the session's CSRF token, compared in constant time:
/// the one comparison behind the API's header and every page's form field.
pub fn csrf_matches(session: &Session, sent: &[u8]) -> bool {
    sent.ct_eq(session.csrf_token.as_bytes()).into()
}

/// Cookie-authenticated requests that change state must prove they come
/// from our own pages: the CSRF token is readable only by them.
pub fn check_csrf(session: &Session, method: &Method, headers: &HeaderMap) -> Result<(), ApiError> {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(());
    }
    let sent = headers.get(CSRF_HEADER).map(|v| v.as_bytes()).unwrap_or_default();
    if csrf_matches(session, sent) {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "csrf",
            format!("this request changes state and must carry the session's {CSRF_HEADER} header"),
        ))
    }
}

async fn key_principal(state: &AppState, token: &str, slug: &str) -> Result<(ApiKeyRecord, Org), ApiError> {
    let presented = PresentedKey::parse(token).map_err(|e| ApiError::Unauthenticated(e.to_string()))?;
    if let Some((key, org)) = state.keys.get(presented.prefix().as_str(), slug)
        && key.hash.matches(&presented.hash())
    {
        return Ok((key, org));
    }
    let key = state
        .store
        .api_key(presented.prefix())
        .await?
        .filter(|k| k.hash.matches(&presented.hash()) && k.revoked_at.is_none())
        .ok_or_else(|| ApiError::Unauthenticated("unknown or revoked API key".into()))?;
    // Whether the organization does not exist or is someone else's, the
    // answer is the same, so a key cannot probe for other organizations.
    let org = state
        .store
        .org_by_slug(slug)
        .await?
        .filter(|o| o.id == key.org_id)
        .ok_or_else(|| {
            ApiError::forbidden(
                "wrong_organization",
                format!("this API key does not belong to organization {slug:?}"),
            )
        })?;
    state.keys.put(&key, &org);
    Ok((key, org))
}

/// Records the key's use at most once an hour. Only the first request of
/// the hour waits for that commit; a lost race (another request recorded it
/// first) is dropped, and a failure to record never fails the request.
async fn touch_key(state: &AppState, principal: &Principal, key: &ApiKeyRecord) {
    let now = state.clock.now();
    if key
        .last_used_at
        .is_some_and(|t| now.millis() - t.millis() < TOUCH_EVERY_MS)
    {
        return;
    }
    let entry = principal.entry(
        now,
        "api_key.last_used_updated",
        Resource {
            kind: "api_key".into(),
            id: key.prefix.to_string(),
            name: Some(key.name.clone()),
        },
        json!({"prefix": key.prefix.as_str(), "last_used_at": now}),
    );
    let request = AppendRequest {
        org_id: key.org_id,
        changes: vec![Change::TouchKey {
            prefix: key.prefix.clone(),
            previous: key.last_used_at,
            at: now,
        }],
        entries: vec![entry],
    };
    if let Err(e) = state.writer.append(request).await {
        tracing::debug!(error = %e, "key use not recorded (recorded concurrently, or unavailable)");
    }
    // The cached copy still has the old last-use time.
    state.keys.forget(key.prefix.as_str());
}

/// Refused where single sign-on is enforced and the session did not come
/// through it.
pub fn sso_required(slug: &str) -> ApiError {
    ApiError::forbidden(
        "sso_required",
        format!(
            "organization {slug:?} requires single sign-on: sign in again through its identity provider (the sign-in page offers it)"
        ),
    )
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let Path(params) = Path::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::NotFound("no such endpoint".into()))?;
        let slug = params
            .get("org")
            .ok_or_else(|| ApiError::Internal("route without {org}".into()))?;
        let Ok(ctx) = RequestContext::from_request_parts(parts, state).await;
        if let Some(token) = bearer(&parts.headers)? {
            let (key, org) = key_principal(state, token, slug).await?;
            let principal = Principal {
                org,
                authority: Authority::Key(key.scopes.clone()),
                credential: Credential::Key(key.clone()),
                ctx,
            };
            touch_key(state, &principal, &key).await;
            return Ok(principal);
        }
        let session = current_session(state, &parts.headers).await?;
        check_csrf(&session, &parts.method, &parts.headers)?;
        let not_member =
            || ApiError::forbidden("not_a_member", format!("you are not a member of organization {slug:?}"));
        let org = state.store.org_by_slug(slug).await?.ok_or_else(not_member)?;
        let member = state
            .store
            .member(org.id, &session.email)
            .await?
            .ok_or_else(not_member)?;
        if !sso::admits(&org, member.role, session.origin) {
            return Err(sso_required(slug));
        }
        Ok(Principal {
            org,
            authority: Authority::User(member.role),
            credential: Credential::Session(session),
            ctx,
        })
    }
}

//! Accepting an invitation or a password reset:
//! `POST /v1/invitations/accept`.
//!
//! The token is a bearer credential for one email and one use. Whoever
//! holds a `Join` token may create the account it names, with their own
//! password, only if no account exists for that email; an existing account
//! joins only while signed in as itself (a session cookie, or its password
//! given here, checked under the sign-in throttle). So an inviter who keeps
//! the token can never reach an account that existed before, nor any other
//! organization's membership. A `PasswordReset` token sets a new password on
//! the account an owner reset.
//!
//! The token travels in the body, never the path, so it stays out of logs.

use auditlog_domain::change::{Acceptance, Change};
use auditlog_domain::entry::Resource;
use auditlog_domain::invitation::{self, Invitation, InvitationKind};
use auditlog_domain::permissions::Authority;
use auditlog_domain::session::{self, Session};
use auditlog_domain::sso::SessionOrigin;
use auditlog_domain::{Org, Role, Timestamp};
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::http::auth::{Credential, Principal, check_csrf, current_session};
use crate::http::body;
use crate::http::context::RequestContext;
use crate::http::error::ApiError;
use crate::http::recorder::commit;
use crate::http::routes::password::hash_new;
use crate::http::routes::session::{session_cookie, sign_in};
use crate::http::state::AppState;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"token": "inv_…", "password": "a passphrase of my own"})))]
pub struct Accept {
    /// The invitation or reset token, as the inviter passed it on.
    token: String,
    /// A new account's password, the existing account's password (to sign
    /// in and accept at once), or the new password of a reset. Absent when
    /// accepting while signed in.
    #[schema(format = Password)]
    password: Option<String>,
}

/// What accepting did.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Accepted {
    kind: InvitationKind,
    email: String,
    organization: String,
    role: Role,
    /// Set when this request also signed the person in (a new account, a
    /// password given, or a reset); the session cookie comes with it.
    #[serde(skip_serializing_if = "Option::is_none")]
    csrf_token: Option<String>,
}

pub(crate) fn invalid() -> ApiError {
    ApiError::Gone {
        code: "invitation_invalid",
        message: "this invitation is unknown, already used or expired; ask for a new one".into(),
    }
}

/// The usable invitation a token names, with its organization.
pub(crate) async fn find(state: &AppState, token: &str) -> Result<(Invitation, Org), ApiError> {
    let now = state.clock.now();
    let inv = state
        .store
        .invitation(&invitation::hash_token(token.trim()))
        .await?
        .filter(|i| i.usable(now))
        .ok_or_else(invalid)?;
    let org = state
        .store
        .orgs()
        .await?
        .into_iter()
        .find(|o| o.id == inv.org_id)
        .ok_or_else(invalid)?;
    Ok((inv, org))
}

/// Accepts an invitation to join an organization, or sets a new password
/// with a reset token.
#[utoipa::path(
    post,
    path = "/v1/invitations/accept",
    operation_id = "accept_invitation",
    tag = "session",
    request_body = Accept,
    responses(
        (status = 200, description = "Accepted.", body = Accepted),
        (status = 400, response = crate::http::responses::BadRequest),
        (status = 401, response = crate::http::responses::Unauthenticated),
        (status = 403, response = crate::http::responses::Forbidden),
        (status = 409, response = crate::http::responses::Conflict),
        (status = 410, response = crate::http::responses::Gone),
        (status = 413, response = crate::http::responses::PayloadTooLarge),
        (status = 422, response = crate::http::responses::Unprocessable),
        (status = 429, response = crate::http::responses::TooManyRequests),
        (status = 500, response = crate::http::responses::Internal),
    ),
    security((), ("session" = [], "csrf" = [])),
)]
#[tracing::instrument(skip_all)]
pub async fn accept(
    State(state): State<AppState>,
    ctx: RequestContext,
    method: Method,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let req: Accept = body::parse(raw, state.config.max_body_bytes)?;
    let signed_in = match crate::http::auth::session_token(&headers) {
        Some(_) => {
            let s = current_session(&state, &headers).await?;
            check_csrf(&s, &method, &headers)?;
            Some(s)
        }
        None => None,
    };
    let (inv, org, outcome) = perform(&state, &ctx, &req.token, signed_in, req.password).await?;
    Ok(answer(&state, &inv, &org, outcome))
}

/// Accepts `token` for the API and the page alike: as the signed-in
/// person, or with a password.
pub(crate) async fn perform(
    state: &AppState,
    ctx: &RequestContext,
    token: &str,
    signed_in: Option<Session>,
    password_text: Option<String>,
) -> Result<(Invitation, Org, Outcome), ApiError> {
    let (inv, org) = find(state, token).await?;
    let outcome = match inv.kind {
        InvitationKind::Join => join(state, ctx, &inv, &org, signed_in, password_text).await?,
        InvitationKind::PasswordReset => reset(state, ctx, &inv, &org, password_text).await?,
    };
    Ok((inv, org, outcome))
}

/// What acceptance left: the session it started, if it started one.
pub(crate) struct Outcome {
    pub started: Option<(String, Session)>,
    pub role: Role,
}

fn answer(state: &AppState, inv: &Invitation, org: &Org, outcome: Outcome) -> Response {
    let body = Accepted {
        kind: inv.kind,
        email: inv.email.clone(),
        organization: org.slug.clone(),
        role: outcome.role,
        csrf_token: outcome.started.as_ref().map(|(_, s)| s.csrf_token.clone()),
    };
    let mut resp = (StatusCode::OK, Json(body)).into_response();
    if let Some((token, s)) = &outcome.started {
        resp.headers_mut()
            .insert(header::SET_COOKIE, session_cookie(state, token, s));
    }
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// The person as the log names them, acting on `org` with `role`.
fn as_person(org: &Org, role: Role, s: Session, ctx: &RequestContext) -> Principal {
    Principal {
        org: org.clone(),
        authority: Authority::User(role),
        credential: Credential::Session(s),
        ctx: ctx.clone(),
    }
}

async fn join(
    state: &AppState,
    ctx: &RequestContext,
    inv: &Invitation,
    org: &Org,
    signed_in: Option<Session>,
    password_text: Option<String>,
) -> Result<Outcome, ApiError> {
    // `stored`: whether the session is in the store already (a sign-in
    // stores it; a new account's waits for the account to commit).
    let (session, new_account, started, stored) = match (signed_in, password_text) {
        (Some(s), None) if s.email == inv.email => (s, None, None, true),
        (Some(_), None) => {
            return Err(ApiError::forbidden(
                "wrong_account",
                format!("this invitation is for {}; sign in as them to accept it", inv.email),
            ));
        }
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(
                "password",
                "password_not_needed",
                "you are signed in: accept without a password",
            ));
        }
        (None, None) => {
            return Err(ApiError::invalid(
                "password",
                "password_required",
                "sign in first, or give a password: a new account's, or your existing account's",
            ));
        }
        (None, Some(p)) => match state.store.user(&inv.email).await? {
            Some(_) => {
                let (token, s) = sign_in(state, ctx, &inv.email, p, false).await?;
                (s.clone(), None, Some((token, s)), true)
            }
            None => {
                let hash = costly_hash(state, ctx, p).await?;
                let (token, s) = session::start(&inv.email, state.clock.now(), SessionOrigin::PASSWORD);
                (s.clone(), Some(hash), Some((token, s)), false)
            }
        },
    };
    let now = state.clock.now();
    let person = as_person(org, inv.role, session, ctx);
    let entry = person.entry(
        now,
        "organization.member_added",
        Resource::member(&inv.email),
        json!({"member": inv.email, "role": inv.role, "invited_by": inv.invited_by}),
    );
    let change = Change::AcceptInvitation(Acceptance {
        token_hash: inv.token_hash,
        email: inv.email.clone(),
        role: inv.role,
        new_account,
        at: now,
    });
    commit(state, &person, vec![change], vec![entry])
        .await
        .map_err(gone_if_used)?;
    if let Some((_, s)) = started.as_ref().filter(|_| !stored) {
        state.store.create_session(s.clone()).await?;
    }
    Ok(Outcome {
        started,
        role: inv.role,
    })
}

/// Hashes a password given on this route, which anyone holding a token
/// may call: each argon2 hash costs tens of MiB and milliseconds of CPU, so
/// it counts against the same per-address limit as a sign-in (which the
/// existing-account path takes through `sign_in`).
async fn costly_hash(state: &AppState, ctx: &RequestContext, password_text: String) -> Result<String, ApiError> {
    let ip_key = ctx.ip.map(|ip| ip.to_string()).unwrap_or_default();
    crate::http::state::Limiters::take(&state.limits.login_per_ip, &ip_key, state.clock.now())?;
    hash_new("password", password_text).await
}

/// A token used or expired between the look-up and the commit reads as
/// any other spent token.
fn gone_if_used(e: ApiError) -> ApiError {
    match e {
        ApiError::Conflict {
            code: "invitation_invalid",
            ..
        } => invalid(),
        other => other,
    }
}

async fn reset(
    state: &AppState,
    ctx: &RequestContext,
    inv: &Invitation,
    org: &Org,
    password_text: Option<String>,
) -> Result<Outcome, ApiError> {
    let p = password_text.ok_or_else(|| ApiError::invalid("password", "password_required", "give the new password"))?;
    let hash = costly_hash(state, ctx, p).await?;
    let now = state.clock.now();
    let (token, s) = session::start(&inv.email, now, SessionOrigin::PASSWORD);
    let role = state
        .store
        .member(org.id, &inv.email)
        .await?
        .map(|m| m.role)
        .unwrap_or(inv.role);
    let person = as_person(org, role, s.clone(), ctx);
    let entry = person.entry(
        now,
        "organization.member_password_changed",
        Resource::member(&inv.email),
        json!({"member": inv.email, "method": "reset"}),
    );
    let change = Change::CompleteReset {
        token_hash: inv.token_hash,
        email: inv.email.clone(),
        password_hash: hash,
        at: now,
    };
    commit(state, &person, vec![change], vec![entry])
        .await
        .map_err(gone_if_used)?;
    state.store.create_session(s.clone()).await?;
    Ok(Outcome {
        started: Some((token, s)),
        role,
    })
}

/// The answer an inviter gets: the same whether the person has an account
/// or not.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Issued {
    /// The single-use token, shown only now: pass it on to the person.
    pub(crate) token: String,
    /// The page where the person accepts it, relative to the service's
    /// address.
    pub(crate) accept_url: String,
    pub(crate) expires_at: Timestamp,
}

impl Issued {
    pub(crate) fn new(token: String, inv: &Invitation) -> Self {
        Self {
            accept_url: format!("/invitation?token={token}"),
            token,
            expires_at: inv.expires_at,
        }
    }
}

//! The page behind an invitation or reset link, `/invitation?token=…`:
//! join an organization (signed in as the invited person, or with a
//! password: an existing account's, or a new account's), or set a new
//! password with a reset. It shares the API's acceptance, so the rules and
//! what is recorded are the same.
//!
//! The token is in the query, never the path: request logs carry paths only.

use auditlog_domain::invitation::{Invitation, InvitationKind};
use auditlog_domain::session::Session;
use auditlog_domain::{Org, Role};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};

use super::layout::{message_page, page};
use super::{Failure, PostedForm, request_id};
use crate::http::auth::{csrf_matches, current_session, session_token};
use crate::http::context::RequestContext;
use crate::http::error::ApiError;
use crate::http::query_string::QueryPairs;
use crate::http::routes::invitations::{find, perform};
use crate::http::routes::session::session_cookie;
use crate::http::state::AppState;

fn spent() -> Response {
    message_page(
        StatusCode::GONE,
        "Invitation not usable",
        None,
        html! { p { "This invitation is unknown, already used or expired. Ask whoever sent it for a new one." } },
    )
}

/// The signed-in person, if any; a stale cookie counts as none.
async fn signed_in(state: &AppState, headers: &HeaderMap) -> Result<Option<Session>, ApiError> {
    if session_token(headers).is_none() {
        return Ok(None);
    }
    match current_session(state, headers).await {
        Ok(s) => Ok(Some(s)),
        Err(ApiError::Unauthenticated(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

pub async fn form(State(state): State<AppState>, headers: HeaderMap, QueryPairs(pairs): QueryPairs) -> Response {
    let token = pairs
        .iter()
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let found = match find(&state, &token).await {
        Ok(found) => found,
        Err(ApiError::Gone { .. }) => return spent(),
        Err(e) => return Failure::Internal(e, request_id(&headers)).into_response(),
    };
    let me = match signed_in(&state, &headers).await {
        Ok(me) => me,
        Err(e) => return Failure::Internal(e, request_id(&headers)).into_response(),
    };
    form_page(StatusCode::OK, &token, &found, me.as_ref(), None)
}

fn intro(inv: &Invitation, org: &Org) -> Markup {
    html! {
        @match inv.kind {
            InvitationKind::Join => p {
                "You are invited to join " strong { (org.name) } " as " strong { (inv.role.as_str()) }
                " with the email " strong { (inv.email) } "."
            },
            InvitationKind::PasswordReset => p {
                "Choose a new password for " strong { (inv.email) } "."
            },
        }
    }
}

fn form_page(
    status: StatusCode,
    token: &str,
    (inv, org): &(Invitation, Org),
    me: Option<&Session>,
    problem: Option<&str>,
) -> Response {
    let title = match inv.kind {
        InvitationKind::Join => "Accept invitation",
        InvitationKind::PasswordReset => "Reset password",
    };
    let body = html! {
        section.login {
            h1 { (title) }
            (intro(inv, org))
            @if let Some(p) = problem {
                p.alert role="alert" { (p) }
            }
            @match (inv.kind, me) {
                (InvitationKind::Join, Some(s)) if s.email == inv.email => (join_signed_in(token, s)),
                (InvitationKind::Join, Some(s)) => p.alert role="alert" {
                    "You are signed in as " (s.email) ". Sign out, then open this link again to accept it as " (inv.email) "."
                },
                (InvitationKind::Join, None) => (with_password(token, "Password", JOIN_HELP, "Accept")),
                (InvitationKind::PasswordReset, _) => (with_password(token, "New password", RESET_HELP, "Set password")),
            }
        }
    };
    let mut resp = (status, page(title, None, body)).into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

const JOIN_HELP: &str = "If you already have an auditlog account, enter its password. Otherwise choose a password \
                         of at least 12 characters for your new account.";
const RESET_HELP: &str = "At least 12 characters. Every other session of yours will end.";

fn join_signed_in(token: &str, s: &Session) -> Markup {
    html! {
        form method="post" action="/invitation" {
            input type="hidden" name="token" value=(token);
            input type="hidden" name="csrf_token" value=(s.csrf_token);
            button.primary type="submit" { "Join" }
        }
    }
}

fn with_password(token: &str, label: &str, help: &str, action: &str) -> Markup {
    html! {
        form method="post" action="/invitation" {
            input type="hidden" name="token" value=(token);
            label for="password" { (label) }
            input #password type="password" name="password" autocomplete="new-password" required
                aria-describedby="password-help";
            p #password-help.hint { (help) }
            button.primary type="submit" { (action) }
        }
    }
}

/// Where a new member lands: the Audit page if their role reads it.
fn landing(org: &Org, role: Role) -> String {
    if matches!(role, Role::Owner | Role::Admin) {
        format!("/orgs/{}/audit", org.slug)
    } else {
        "/".to_owned()
    }
}

pub async fn submit(State(state): State<AppState>, ctx: RequestContext, headers: HeaderMap, body: Bytes) -> Response {
    let form = PostedForm::parse(&body);
    let token = form.field("token").unwrap_or("").to_owned();
    let me = match signed_in(&state, &headers).await {
        Ok(me) => me,
        Err(e) => return Failure::Internal(e, request_id(&headers)).into_response(),
    };
    // A signed-in acceptance must come from our own form.
    let me = me.filter(|s| csrf_matches(s, form.get("csrf_token").as_bytes()));
    let password = form.field("password").filter(|p| !p.is_empty()).map(str::to_owned);
    let password = if me.is_some() { None } else { password };
    match perform(&state, &ctx, &token, me.clone(), password).await {
        Ok((_, org, outcome)) => {
            let mut resp = Redirect::to(&landing(&org, outcome.role)).into_response();
            if let Some((token, s)) = &outcome.started {
                resp.headers_mut()
                    .insert(header::SET_COOKIE, session_cookie(&state, token, s));
            }
            resp
        }
        Err(ApiError::Gone { .. }) => spent(),
        Err(e) => refused(&state, &token, me.as_ref(), e, &headers).await,
    }
}

/// The form again, saying what was wrong.
async fn refused(state: &AppState, token: &str, me: Option<&Session>, e: ApiError, headers: &HeaderMap) -> Response {
    let (status, problem) = match &e {
        ApiError::Unauthenticated(_) => (
            StatusCode::UNAUTHORIZED,
            "Wrong password for the existing account.".to_owned(),
        ),
        ApiError::TooManyRequests(secs) => (
            StatusCode::TOO_MANY_REQUESTS,
            format!("Too many failed attempts. Try again in {secs} seconds."),
        ),
        ApiError::Invalid(problems) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            problems.first().map(|p| p.message.clone()).unwrap_or_default(),
        ),
        ApiError::Forbidden { message, .. } | ApiError::Conflict { message, .. } => {
            (StatusCode::CONFLICT, message.clone())
        }
        _ => return Failure::Internal(e, request_id(headers)).into_response(),
    };
    match find(state, token).await {
        Ok(found) => form_page(status, token, &found, me, Some(&problem)),
        Err(_) => spent(),
    }
}

//! Signing in and out with HTML forms, sharing the API's password check,
//! throttle and session cookie.
//!
//! The session cookie is `SameSite=Strict`, and a post from a page of
//! another site never reaches these forms (sign-in CSRF, where an attacker
//! signs a victim into the attacker's account): `request_guard` refuses it
//! first. Sign-out additionally carries the session's CSRF token.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};

use auditlog_domain::Role;

use super::layout::{message_page, page};
use super::{Failure, PostedForm, request_id};
use crate::http::auth::{csrf_matches, current_session};
use crate::http::context::RequestContext;
use crate::http::error::ApiError;
use crate::http::query_string::QueryPairs;
use crate::http::routes::session::{cleared_cookie, session_cookie, sign_in};
use crate::http::state::{AppState, Limiters};

/// Where to go after signing in: only a path on this site, else the home
/// page.
pub(super) fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if is_local_path(n) => n.to_owned(),
        _ => "/".to_owned(),
    }
}

/// Percent-decodings looked through: more layers than this are refused
/// rather than peeled, as no link of ours is encoded so deeply.
const MAX_DECODINGS: usize = 3;

/// True for a path that every reader resolves on this site. Browsers drop
/// tabs and newlines anywhere in a URL and read `\` as `/`, so `/\t/evil`
/// and `/\\evil` are `//evil`, another host; proxies and frameworks may
/// decode `%2F` or `%5C` once or twice before anyone reads it. So the text
/// must be printable ASCII, and its path, as sent and after each decoding,
/// must hold no control character, backslash, `//` or non-ASCII look-alike
/// (such as `／`, U+FF0F).
fn is_local_path(raw: &str) -> bool {
    if !raw.bytes().all(|b| b.is_ascii_graphic()) {
        return false;
    }
    let mut layer = raw.to_owned();
    for _ in 0..=MAX_DECODINGS {
        if !is_plain_path(&layer) {
            return false;
        }
        match percent_decoded(&layer) {
            Some(next) if next == layer => return true,
            Some(next) => layer = next,
            // Bytes that are not UTF-8 (such as overlong `%C0%AF`).
            None => return false,
        }
    }
    false
}

/// One layer's rule: a path from the root, and before any query or
/// fragment nothing that ends it or starts another host.
fn is_plain_path(s: &str) -> bool {
    let path = s.split(['?', '#']).next().unwrap_or("");
    path.starts_with('/')
        && !path.contains("//")
        && path.chars().all(|c| c.is_ascii() && !c.is_ascii_control() && c != '\\')
        && !s.chars().any(char::is_control)
}

/// `%XX` sequences decoded (others kept as they are); `None` unless the
/// result is UTF-8.
fn percent_decoded(s: &str) -> Option<String> {
    let hex = |b: Option<&u8>| b.and_then(|&b| (b as char).to_digit(16));
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match (bytes[i], hex(bytes.get(i + 1)), hex(bytes.get(i + 2))) {
            (b'%', Some(high), Some(low)) => {
                out.push((high * 16 + low) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// What the second step offers a person: single sign-on per organization
/// that has it, and whether a password may still get them anywhere.
#[derive(Default)]
pub(super) struct Options {
    /// Organizations to sign in to through their provider: slug and name.
    pub sso: Vec<(String, String)>,
    /// Names of the person's organizations that refuse passwords. Where
    /// there are any, break-glass is offered whatever the person's role, so
    /// the page does not tell a stranger who owns what; the sign-in checks
    /// it.
    pub enforcing: Vec<String>,
}

/// Which step of the sign-in page to show.
enum Step<'a> {
    /// The email alone; with an organization's slug when the page was
    /// reached by its link (`/login?org=acme`).
    Email { org: Option<&'a str> },
    /// The ways in for that email.
    WaysIn(&'a Options),
}

fn form_page(status: StatusCode, email: &str, next: &str, problem: Option<&str>, step: Step) -> Response {
    let body: Markup = html! {
        section.login {
            h1 { span.logo aria-hidden="true" { "◆" } " Sign in to auditlog" }
            @if let Some(p) = problem {
                p.alert role="alert" { (p) }
            }
            @match step {
                Step::Email { org } => (email_step(email, next, org)),
                Step::WaysIn(options) => (ways_in(email, next, options)),
            }
        }
    };
    let mut resp = (status, page("Sign in", None, body)).into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

fn email_step(email: &str, next: &str, org: Option<&str>) -> Markup {
    html! {
        form method="post" action="/login" {
            input type="hidden" name="next" value=(next);
            @if let Some(org) = org {
                input type="hidden" name="org" value=(org);
            }
            label for="email" { "Email" }
            input #email type="email" name="email" value=(email) autocomplete="username" required autofocus;
            button.primary type="submit" { "Continue" }
        }
    }
}

fn ways_in(email: &str, next: &str, options: &Options) -> Markup {
    html! {
        @for (slug, name) in &options.sso {
            form.sso method="post" action="/sso/start" {
                input type="hidden" name="next" value=(next);
                input type="hidden" name="email" value=(email);
                input type="hidden" name="org" value=(slug);
                button.primary type="submit" { "Continue to " (name) " with single sign-on" }
            }
        }
        @if !options.enforcing.is_empty() {
            p.muted { (options.enforcing.join(", ")) " accepts only single sign-on." }
        }
        form method="post" action="/login" {
            input type="hidden" name="next" value=(next);
            label for="email" { "Email" }
            input #email type="email" name="email" value=(email) autocomplete="username" required readonly;
            label for="password" { "Password" }
            input #password type="password" name="password" autocomplete="current-password" required autofocus[options.sso.is_empty()];
            @if !options.enforcing.is_empty() {
                label.check for="break_glass" {
                    input #break_glass type="checkbox" name="break_glass" value="true";
                    " Break-glass (owners only): sign in with my password although single sign-on is required; this is recorded"
                }
            }
            button type="submit" class=[options.sso.is_empty().then_some("primary")] { "Sign in with password" }
        }
        p { a href=(format!("/login?{}", form_urlencoded::Serializer::new(String::new()).append_pair("next", next).finish())) { "Use another email" } }
    }
}

/// The ways in for `email`: the single sign-on of each of its
/// organizations that has it, and of `org` (a sign-in link such as
/// `/login?org=acme`, for people an organization provisions on first
/// sign-in).
async fn options_for(state: &AppState, email: &str, org: Option<&str>) -> Result<Options, ApiError> {
    let email = auditlog_domain::member::normalise_email(email).unwrap_or_else(|_| email.to_owned());
    let mut options = Options::default();
    let mut orgs: Vec<(auditlog_domain::Org, Option<Role>)> = state
        .store
        .memberships(&email)
        .await?
        .into_iter()
        .map(|(o, r)| (o, Some(r)))
        .collect();
    if let Some(slug) = org
        && !orgs.iter().any(|(o, _)| o.slug == slug)
        && let Some(o) = state.store.org_by_slug(slug).await?
    {
        orgs.push((o, None));
    }
    for (o, role) in orgs {
        let Some(sso) = o.sso.as_ref().filter(|s| s.client_secret_set) else {
            continue;
        };
        if sso.enforced && role.is_some() {
            options.enforcing.push(o.name.clone());
        }
        options.sso.push((o.slug.clone(), o.name.clone()));
    }
    Ok(options)
}

pub async fn form(QueryPairs(pairs): QueryPairs) -> Response {
    let get = |name: &str| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let next = safe_next(get("next"));
    // `/login?org=acme` then offers that organization's single sign-on.
    let org = get("org");
    form_page(StatusCode::OK, "", &next, None, Step::Email { org })
}

fn cross_site() -> Response {
    message_page(
        StatusCode::FORBIDDEN,
        "Refused",
        None,
        html! { p { "This form was sent from another site, so it was not accepted. Open auditlog directly and try again." } },
    )
}

pub async fn submit(State(state): State<AppState>, ctx: RequestContext, headers: HeaderMap, body: Bytes) -> Response {
    let form = PostedForm::parse(&body);
    let email = form.field("email").unwrap_or("").trim().to_owned();
    let next = safe_next(form.field("next"));
    let password = form.field("password").unwrap_or("").to_owned();
    let break_glass = form.field("break_glass") == Some("true");
    if email.is_empty() {
        return form_page(
            StatusCode::BAD_REQUEST,
            "",
            &next,
            Some("Enter your email."),
            Step::Email { org: form.field("org") },
        );
    }
    // The second step, with a problem to show or none.
    let ways_in = async |status, problem: Option<&str>| match options_for(&state, &email, form.field("org")).await {
        Ok(options) => form_page(status, &email, &next, problem, Step::WaysIn(&options)),
        Err(e) => Failure::Internal(e, request_id(&headers)).into_response(),
    };
    if password.is_empty() {
        // What the second step shows (which organizations have single
        // sign-on) is limited per address like the sign-ins themselves.
        let ip = ctx.ip.map(|ip| ip.to_string()).unwrap_or_default();
        if let Err(ApiError::TooManyRequests(secs)) = Limiters::take(&state.limits.login_per_ip, &ip, state.clock.now())
        {
            let problem = format!("Too many attempts. Try again in {secs} seconds.");
            return form_page(
                StatusCode::TOO_MANY_REQUESTS,
                &email,
                &next,
                Some(&problem),
                Step::Email { org: form.field("org") },
            );
        }
        return match form.field("password") {
            None => ways_in(StatusCode::OK, None).await,
            Some(_) => ways_in(StatusCode::BAD_REQUEST, Some("Enter your password.")).await,
        };
    }
    let again = async |status, problem: &str| ways_in(status, Some(problem)).await;
    match sign_in(&state, &ctx, &email, password, break_glass).await {
        Ok((token, session)) => {
            let mut resp = Redirect::to(&next).into_response();
            resp.headers_mut()
                .insert(header::SET_COOKIE, session_cookie(&state, &token, &session));
            resp
        }
        Err(ApiError::Unauthenticated(_)) => again(StatusCode::UNAUTHORIZED, "Wrong email or password.").await,
        Err(ApiError::Forbidden { message, .. }) => again(StatusCode::FORBIDDEN, &message).await,
        Err(ApiError::TooManyRequests(secs)) => {
            let problem = format!("Too many failed attempts. Try again in {secs} seconds.");
            again(StatusCode::TOO_MANY_REQUESTS, &problem).await
        }
        Err(e) => Failure::Internal(e, request_id(&headers)).into_response(),
    }
}

pub async fn logout(State(state): State<AppState>, ctx: RequestContext, headers: HeaderMap, body: Bytes) -> Response {
    let session = match current_session(&state, &headers).await {
        Ok(s) => s,
        // Already signed out: the goal is reached.
        Err(ApiError::Unauthenticated(_)) => return Redirect::to("/login").into_response(),
        Err(e) => return Failure::Internal(e, request_id(&headers)).into_response(),
    };
    let form = PostedForm::parse(&body);
    if !csrf_matches(&session, form.get("csrf_token").as_bytes()) {
        return cross_site();
    }
    if let Err(e) = state.store.delete_session(&session.token_hash).await {
        return Failure::Internal(e.into(), request_id(&headers)).into_response();
    }
    if let Err(e) = crate::http::sign_ins::signed_out(&state, &ctx, &session).await {
        return Failure::Internal(e, request_id(&headers)).into_response();
    }
    let mut resp = Redirect::to("/login").into_response();
    resp.headers_mut().insert(header::SET_COOKIE, cleared_cookie(&state));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_on_this_site() {
        for good in [
            "/",
            "/orgs/acme/audit?actor=a",
            "/orgs/acme/audit?q=actor%3Aa%40acme.com%20event%3Aapi_key.*&range=7d",
            "/orgs/acme/audit/entries/01a2187c-70b3-7753-bb28-de2034834006",
            // What follows `?` is data, not where the browser goes.
            "/orgs/acme/audit?q=resource%3Ahttps%3A%2F%2Fx.example",
            "/a%2Fb",
            "/@evil.example",
        ] {
            assert_eq!(safe_next(Some(good)), good);
        }
        assert_eq!(safe_next(None), "/");
    }

    /// Known ways round a same-origin check, each sent as the form field
    /// arrives (already form-decoded once).
    #[test]
    fn known_open_redirect_bypasses_fall_back_home() {
        for bad in [
            "",
            "orgs/acme",
            "https://evil.example/",
            "//evil.example/",
            "///evil.example/",
            "/\\evil.example",
            "\\\\evil.example",
            "/\t/evil.example/x",
            "/\n/evil.example",
            "/\r\n/evil.example",
            "\t//evil.example",
            " //evil.example",
            "/ /evil.example",
            "/\u{0}/evil.example",
            "/\u{7f}/evil.example",
            "/\u{85}/evil.example",
            "/%09/evil.example/x",
            "/%0a/evil.example",
            "/%0D%0A/evil.example",
            "/%2F/evil.example",
            "/%2f%2fevil.example",
            "%2F%2Fevil.example",
            "/%5Cevil.example",
            "/%5c%5cevil.example",
            "/%252F/evil.example",
            "/%255C/evil.example",
            "/%2509/evil.example",
            "/%25252F/evil.example",
            "/%2525252F/evil.example",
            "/%C0%AF/evil.example",
            "/%E2%80%8B/evil.example",
            "/\u{ff0f}evil.example",
            "/%EF%BC%8Fevil.example",
            "/\u{2215}evil.example",
            "/\u{29f5}evil.example",
            "/\u{3002}evil.example",
            "/orgs//evil.example",
            "/x?%0d%0aSet-Cookie:%20a=b",
        ] {
            assert_eq!(safe_next(Some(bad)), "/", "{bad:?}");
        }
    }
}

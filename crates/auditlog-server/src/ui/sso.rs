//! Signing in through an organization's identity provider: `POST
//! /sso/start` (a button of the sign-in page) sends the browser to the
//! provider (by a page that goes on by itself: see `layout::onward_page`), and `GET /sso/callback` takes it back, checks everything and
//! starts a session.
//!
//! Every way it can fail ends on a page that says what went wrong, with the
//! request id, starts no session, and is recorded as
//! `session.sign_in_failed` in the organization whose sign-in it was.

use auditlog_domain::change::Change;
use auditlog_domain::session;
use auditlog_domain::sso::{self as rules, Admission, Flow, Identity, SessionOrigin, SignInMethod, Taken};
use auditlog_domain::store::AppendRequest;
use auditlog_domain::{Org, Resource, Role};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use cookie::{Cookie, SameSite};
use maud::html;
use serde_json::json;

use super::PostedForm;
use super::layout::{message_page, onward_page};
use super::login::safe_next;
use super::request_id;
use crate::http::auth::cookie_value;
use crate::http::context::RequestContext;
use crate::http::error::ApiError;
use crate::http::query_string::QueryPairs;
use crate::http::routes::session::session_cookie;
use crate::http::sign_ins::{self, person};
use crate::http::state::{AppState, Limiters};
use crate::sso::provider::Client;
use crate::sso::{SsoError, flow, redirect_uri};

/// Why a sign-in through a provider ended without a session.
enum Failed {
    Sso(SsoError),
    Refused(rules::Refusal),
    /// Too many sign-ins from the client's address; retry after this many
    /// seconds. Not recorded: an address could fill the log with them.
    TooMany(u64),
    /// Ours, not the person's: the store, the public URL missing.
    Internal(ApiError),
}

impl From<SsoError> for Failed {
    fn from(e: SsoError) -> Self {
        Failed::Sso(e)
    }
}

impl From<ApiError> for Failed {
    fn from(e: ApiError) -> Self {
        Failed::Internal(e)
    }
}

impl Failed {
    fn reason(&self) -> &'static str {
        match self {
            Failed::Sso(e) => e.code(),
            Failed::Refused(r) => r.code(),
            Failed::TooMany(_) => "too_many_requests",
            Failed::Internal(_) => "internal",
        }
    }

    fn message(&self) -> String {
        match self {
            Failed::Sso(e) => e.to_string(),
            Failed::Refused(r) => r.to_string(),
            Failed::TooMany(secs) => format!("too many sign-ins from your address; try again in {secs} seconds"),
            Failed::Internal(_) => "the sign-in could not be completed on our side; try again in a moment".into(),
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            Failed::Sso(SsoError::Unreachable(_) | SsoError::NotAProvider(_)) => StatusCode::BAD_GATEWAY,
            Failed::Sso(SsoError::NoPublicUrl) => StatusCode::SERVICE_UNAVAILABLE,
            Failed::Sso(
                SsoError::UnknownState | SsoError::Replayed | SsoError::OtherBrowser | SsoError::NotConfigured,
            ) => StatusCode::BAD_REQUEST,
            Failed::TooMany(_) => StatusCode::TOO_MANY_REQUESTS,
            Failed::Internal(ApiError::Unavailable(_)) => StatusCode::SERVICE_UNAVAILABLE,
            Failed::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::UNAUTHORIZED,
        }
    }
}

/// The page a failed sign-in ends on; the failure is logged with the
/// request id the page shows.
fn failure_page(failed: &Failed, headers: &HeaderMap) -> Response {
    let id = request_id(headers);
    match failed {
        Failed::Internal(e) => tracing::error!(error = %e, "single sign-on failed"),
        other => tracing::warn!(reason = other.reason(), detail = %other.message(), "single sign-on refused"),
    }
    message_page(
        failed.status(),
        "Single sign-on did not work",
        None,
        html! {
            p role="alert" { (failed.message()) "." }
            @if let Some(id) = id {
                p.muted { "Request " code { (id) } "." }
            }
            p { a href="/login" { "Back to sign-in" } }
        },
    )
}

/// The organization's client at its provider, its secret opened.
struct Configured {
    org: Org,
    issuer: String,
    client_id: String,
    secret: String,
    redirect_uri: String,
}

impl Configured {
    async fn load(state: &AppState, org: Org) -> Result<Configured, Failed> {
        let Some(sso) = org.sso.clone() else {
            return Err(SsoError::NotConfigured.into());
        };
        let public = state.config.public_url.as_ref().ok_or(SsoError::NoPublicUrl)?;
        let sealed = state
            .store
            .sso_client_secret(org.id)
            .await
            .map_err(ApiError::from)?
            .ok_or(SsoError::NotConfigured)?;
        let secret = state
            .sealer
            .open(&sealed)
            .map_err(|e| ApiError::Internal(format!("the client secret cannot be opened: {e}")))?;
        Ok(Configured {
            issuer: sso.issuer,
            client_id: sso.client_id,
            secret: String::from_utf8_lossy(&secret).into_owned(),
            redirect_uri: redirect_uri(public),
            org,
        })
    }

    fn client(&self) -> Client<'_> {
        Client {
            issuer: &self.issuer,
            client_id: &self.client_id,
            client_secret: &self.secret,
            redirect_uri: &self.redirect_uri,
        }
    }
}

/// `POST /sso/start`: fields `org`, `email`, `next`.
pub async fn start(State(state): State<AppState>, ctx: RequestContext, headers: HeaderMap, body: Bytes) -> Response {
    let form = PostedForm::parse(&body);
    // A hint for the record only: the provider says who the person is.
    let email = auditlog_domain::member::normalise_email(form.field("email").unwrap_or("")).unwrap_or_default();
    let next = safe_next(form.field("next"));
    let ip = ctx.ip.map(|ip| ip.to_string()).unwrap_or_default();
    if let Err(ApiError::TooManyRequests(secs)) = Limiters::take(&state.limits.login_per_ip, &ip, state.clock.now()) {
        return failure_page(&Failed::TooMany(secs), &headers);
    }
    let org = match state.store.org_by_slug(form.field("org").unwrap_or("")).await {
        Ok(Some(org)) => org,
        Ok(None) => return failure_page(&SsoError::NotConfigured.into(), &headers),
        Err(e) => return failure_page(&Failed::Internal(e.into()), &headers),
    };
    match begin(&state, org.clone(), &email, &next).await {
        Ok((url, binding)) => {
            let mut resp = onward_page("On to your identity provider", url.as_str());
            resp.headers_mut()
                .insert(header::SET_COOKIE, binding_cookie(&state, &binding, 600));
            resp.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            resp
        }
        Err(failed) => {
            record_failure(&state, &ctx, &org, &email, &failed).await;
            failure_page(&failed, &headers)
        }
    }
}

async fn begin(state: &AppState, org: Org, email: &str, next: &str) -> Result<(reqwest::Url, String), Failed> {
    let configured = Configured::load(state, org).await?;
    let started = flow::start(email, next, &configured.org.slug);
    let url = state
        .sso
        .authorization_url(
            &configured.client(),
            &started.state,
            &started.secrets.nonce,
            &started.challenge,
        )
        .await?;
    state
        .store
        .begin_sso_flow(Flow {
            state_hash: flow::state_hash(&started.state),
            org_id: configured.org.id,
            sealed: flow::seal(&state.sealer, &started.secrets),
            expires_at: state.clock.now().plus_millis(rules::FLOW_TTL_MS),
        })
        .await
        .map_err(ApiError::from)?;
    Ok((url, started.binding))
}

fn binding_cookie(state: &AppState, value: &str, max_age_secs: i64) -> HeaderValue {
    let c = Cookie::build((flow::COOKIE, value.to_owned()))
        .http_only(true)
        .same_site(SameSite::Lax)
        .path("/sso/")
        .secure(state.config.secure_cookies)
        .max_age(cookie::time::Duration::seconds(max_age_secs))
        .build();
    HeaderValue::from_str(&c.to_string()).unwrap_or(HeaderValue::from_static(""))
}

/// `GET /sso/callback?code=…&state=…` (or `error=…`).
pub async fn callback(
    State(state): State<AppState>,
    ctx: RequestContext,
    headers: HeaderMap,
    QueryPairs(pairs): QueryPairs,
) -> Response {
    let get = |name: &str| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let taken = match get("state") {
        Some(s) => state.store.take_sso_flow(&flow::state_hash(s), state.clock.now()).await,
        None => Ok(Taken::Unknown),
    };
    let cleared = binding_cookie(&state, "", 0);
    let (flow, replayed) = match taken {
        Ok(Taken::Fresh(flow)) => (flow, false),
        Ok(Taken::Replayed(flow)) => (flow, true),
        // Nothing names an organization to record this in.
        Ok(Taken::Unknown) => return with_cookie(failure_page(&SsoError::UnknownState.into(), &headers), cleared),
        Err(e) => return with_cookie(failure_page(&Failed::Internal(e.into()), &headers), cleared),
    };
    let Some(secrets) = flow::open(&state.sealer, &flow.sealed) else {
        let e = ApiError::Internal("a sign-in flow cannot be opened".into());
        return with_cookie(failure_page(&Failed::Internal(e), &headers), cleared);
    };
    let org = match state.store.org_by_slug(&secrets.org).await {
        Ok(Some(org)) if org.id == flow.org_id => org,
        Ok(_) => return with_cookie(failure_page(&SsoError::NotConfigured.into(), &headers), cleared),
        Err(e) => return with_cookie(failure_page(&Failed::Internal(e.into()), &headers), cleared),
    };
    let email = secrets.email.clone();
    let result = if replayed {
        Err(SsoError::Replayed.into())
    } else if flow::same_browser(&secrets, cookie_value(&headers, flow::COOKIE).as_deref()) {
        finish(&state, &ctx, org.clone(), &secrets, get("code"), provider_error(&pairs)).await
    } else {
        Err(SsoError::OtherBrowser.into())
    };
    let resp = match result {
        Ok(resp) => resp,
        Err(failed) => {
            record_failure(&state, &ctx, &org, &email, &failed).await;
            failure_page(&failed, &headers)
        }
    };
    with_cookie(resp, cleared)
}

fn with_cookie(mut resp: Response, cookie: HeaderValue) -> Response {
    resp.headers_mut().append(header::SET_COOKIE, cookie);
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

fn provider_error(pairs: &[(String, String)]) -> Option<SsoError> {
    let get = |name: &str| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    get("error").map(|error| SsoError::ProviderError {
        error: error.chars().take(100).collect(),
        description: get("error_description").unwrap_or_default().chars().take(300).collect(),
    })
}

/// The code exchanged, the token checked, the person admitted (and added
/// when the organization provisions), the session started and recorded.
async fn finish(
    state: &AppState,
    ctx: &RequestContext,
    org: Org,
    secrets: &flow::Secrets,
    code: Option<&str>,
    provider_error: Option<SsoError>,
) -> Result<Response, Failed> {
    if let Some(e) = provider_error {
        return Err(e.into());
    }
    let code = code.ok_or_else(|| SsoError::InvalidToken("the provider sent no authorization code".into()))?;
    let configured = Configured::load(state, org).await?;
    let now_secs = state.clock.now().millis().div_euclid(1000);
    let claims = state
        .sso
        .sign_in(&configured.client(), code, &secrets.verifier, &secrets.nonce, now_secs)
        .await?;
    let org = configured.org;
    let sso = org.sso.clone().ok_or(SsoError::NotConfigured)?;
    let identity = Identity {
        email: claims.email,
        email_verified: claims.email_verified,
    };
    let role = match identity.email.as_deref().map(auditlog_domain::member::normalise_email) {
        Some(Ok(email)) => state
            .store
            .member(org.id, &email)
            .await
            .map_err(ApiError::from)?
            .map(|m| m.role),
        _ => None,
    };
    let admission = rules::admit(&sso, &identity, |_| role).map_err(Failed::Refused)?;
    let (token, session) = start_session(state, ctx, &org, &admission, role).await?;
    let target = if secrets.next == "/" {
        format!("/orgs/{}/audit", org.slug)
    } else {
        secrets.next.clone()
    };
    let mut resp = onward_page("Signed in", &target);
    resp.headers_mut()
        .insert(header::SET_COOKIE, session_cookie(state, &token, &session));
    Ok(resp)
}

/// Adds a provisioned person first, then starts the session and records
/// the sign-in, all in the organization whose provider vouched.
async fn start_session(
    state: &AppState,
    ctx: &RequestContext,
    org: &Org,
    admission: &Admission,
    role: Option<Role>,
) -> Result<(String, session::Session), Failed> {
    let now = state.clock.now();
    let email = admission.email();
    let (token, s) = session::start(email, now, SessionOrigin::sso(org.id));
    let mut changes = Vec::new();
    let mut entries = Vec::new();
    let role = match admission {
        Admission::Provision { role, .. } => {
            changes.push(Change::AddMember {
                email: email.to_owned(),
                role: *role,
            });
            entries.push(person(org, *role, &s, ctx).entry(
                now,
                "organization.member_provisioned",
                Resource::member(email),
                json!({"member": email, "role": role}),
            ));
            *role
        }
        Admission::Member { .. } => role.unwrap_or(Role::Viewer),
    };
    entries.push(person(org, role, &s, ctx).entry(
        now,
        "session.signed_in",
        Resource::member(email),
        json!({"member": email, "method": SignInMethod::Sso.as_str()}),
    ));
    state
        .writer
        .append(AppendRequest {
            org_id: org.id,
            changes,
            entries,
        })
        .await
        .map_err(ApiError::from)?;
    state.store.create_session(s.clone()).await.map_err(ApiError::from)?;
    Ok((token, s))
}

/// Records a failed sign-in. The email typed on the sign-in page is
/// anyone's to type, so it is kept as `email_given` and never made the
/// actor: only a person the provider vouched for (and acme then refused)
/// is named as the one who tried.
async fn record_failure(state: &AppState, ctx: &RequestContext, org: &Org, email_given: &str, failed: &Failed) {
    let mut extra = json!({"message": failed.message()});
    if !email_given.is_empty() {
        extra["email_given"] = json!(email_given);
    }
    if let Failed::Sso(SsoError::ProviderError { error, .. }) = failed {
        extra["provider_error"] = json!(error);
    }
    let vouched = match failed {
        Failed::Refused(rules::Refusal::DomainNotAllowed(email) | rules::Refusal::NotAMember(email)) => email,
        _ => "",
    };
    sign_ins::failed(
        state,
        ctx,
        std::slice::from_ref(org),
        vouched,
        SignInMethod::Sso,
        failed.reason(),
        extra,
    )
    .await;
}

//! The web UI: server-rendered pages for people, beside the JSON API.
//!
//! - [`login`]: sign-in and sign-out forms, email first.
//! - `sso`: signing in through an organization's identity provider.
//! - `invitation`: accepting an invitation or a password reset.
//! - [`audit`]: Platform → Audit, the filtered table, its pages and one
//!   entry.
//! - `members`, `api_keys`, `projects`, `webhooks` (one endpoint:
//!   `webhook`), `streams`, `settings`: the rest of Platform, managed in
//!   the browser through the API's own functions; [`console`] holds what
//!   they share (the role's permissions, forms and their CSRF token).
//! - [`filters`]: the page's filter form and URL, turned into the API's
//!   listing parameters.
//! - [`layout`]: the frame every page shares.
//! - [`assets`]: the embedded stylesheet and script.
//!
//! Every response carries a strict Content-Security-Policy (scripts only
//! from our own origin, no inline code, no framing); every value from the
//! log is escaped by the templates.

mod api_keys;
mod assets;
mod audit;
mod chart;
pub mod console;
mod extract;
pub mod filters;
mod invitation;
mod layout;
mod login;
mod members;
mod projects;
mod settings;
mod sso;
mod streams;
mod webhook;
mod webhooks;

use auditlog_domain::session::Session;
use auditlog_domain::{Org, Role};
use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use tower_http::set_header::SetResponseHeaderLayer;

use crate::http::auth::current_session;
use crate::http::context::REQUEST_ID;
use crate::http::error::ApiError;
use crate::http::state::AppState;

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/login", get(login::form).post(login::submit))
        .route("/logout", post(login::logout))
        .route("/invitation", get(invitation::form).post(invitation::submit))
        .route("/sso/start", post(sso::start))
        .route("/sso/callback", get(sso::callback))
        .route("/orgs/{org}/audit", get(audit::page))
        .route("/orgs/{org}/audit/entries/{id}", get(audit::entry))
        .route("/orgs/{org}/audit/chart", get(audit::chart_page))
        .route("/orgs/{org}/members", get(members::page).post(members::add))
        .route("/orgs/{org}/members/{email}/role", post(members::change_role))
        .route(
            "/orgs/{org}/members/{email}/remove",
            get(members::confirm_remove).post(members::remove),
        )
        .route("/orgs/{org}/api-keys", get(api_keys::page).post(api_keys::create))
        .route(
            "/orgs/{org}/api-keys/{prefix}/revoke",
            get(api_keys::confirm_revoke).post(api_keys::revoke),
        )
        .route("/orgs/{org}/projects", get(projects::page).post(projects::create))
        .route("/orgs/{org}/projects/{id}/rename", post(projects::rename))
        .route("/orgs/{org}/settings", get(settings::page))
        .route("/orgs/{org}/settings/name", post(settings::rename))
        .route("/orgs/{org}/settings/plan", post(settings::change_plan))
        .route("/orgs/{org}/settings/sso", post(settings::sso))
        .route("/orgs/{org}/webhooks", get(webhooks::page).post(webhooks::create))
        .route("/orgs/{org}/webhooks/{id}", get(webhook::page).post(webhook::save))
        .route("/orgs/{org}/webhooks/{id}/test", post(webhook::test))
        .route("/orgs/{org}/webhooks/{id}/replay", post(webhook::replay))
        .route("/orgs/{org}/webhooks/{id}/enable", post(webhook::enable))
        .route("/orgs/{org}/webhooks/{id}/disable", post(webhook::disable))
        .route(
            "/orgs/{org}/webhooks/{id}/rotate",
            get(webhook::confirm_rotate).post(webhook::rotate),
        )
        .route(
            "/orgs/{org}/webhooks/{id}/delete",
            get(webhook::confirm_delete).post(webhook::delete),
        )
        .route(
            "/orgs/{org}/webhooks/{id}/deliveries/{delivery}/redeliver",
            post(webhook::redeliver_one),
        )
        .route(
            "/orgs/{org}/projects/{id}/delete",
            get(projects::confirm_delete).post(projects::delete),
        )
        .route("/orgs/{org}/streams", get(streams::page).post(streams::create))
        .route("/orgs/{org}/streams/{id}/enable", post(streams::enable))
        .route("/orgs/{org}/streams/{id}/disable", post(streams::disable))
        .route(
            "/orgs/{org}/streams/{id}/delete",
            get(streams::confirm_delete).post(streams::delete),
        )
        .route("/assets/{name}", get(assets::serve))
        .layer(SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        ))
}

/// Why a page could not be shown, as a page.
pub enum Failure {
    /// Not signed in: to the sign-in page, then back here.
    SignIn {
        next: String,
    },
    Page(Box<Response>),
    Internal(ApiError, Option<String>),
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        match self {
            Failure::SignIn { next } => {
                let query = form_urlencoded::Serializer::new(String::new())
                    .append_pair("next", &next)
                    .finish();
                Redirect::to(&format!("/login?{query}")).into_response()
            }
            Failure::Page(resp) => *resp,
            Failure::Internal(e, request_id) => {
                tracing::error!(error = %e, "page failed");
                layout::internal_error_page(request_id.as_deref())
            }
        }
    }
}

fn request_id(headers: &HeaderMap) -> Option<String> {
    headers.get(REQUEST_ID).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

/// Pages that show the log, a secret once, or a person's own data are not
/// kept by the browser's cache.
pub fn no_store(mut resp: Response) -> Response {
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// A form post's fields, decoded.
pub struct PostedForm(Vec<(String, String)>);

impl PostedForm {
    pub fn parse(body: &[u8]) -> Self {
        Self(form_urlencoded::parse(body).into_owned().collect())
    }

    /// The first value of field `name`, if the form has one.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// The first value of field `name`, or "".
    pub fn get(&self, name: &str) -> &str {
        self.field(name).unwrap_or("")
    }

    /// Every value of field `name` (checkboxes).
    pub fn all(&self, name: &str) -> impl Iterator<Item = &str> {
        self.0.iter().filter(move |(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// The signed-in person and the organizations they belong to.
pub struct Viewer {
    pub session: Session,
    pub orgs: Vec<(Org, Role)>,
}

impl Viewer {
    /// The viewer of a page at `uri`; anyone else is sent to sign in.
    pub async fn of(state: &AppState, headers: &HeaderMap, uri: &Uri) -> Result<Self, Failure> {
        let next = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/").to_owned();
        let session = match current_session(state, headers).await {
            Ok(s) => s,
            Err(ApiError::Unauthenticated(_)) => return Err(Failure::SignIn { next }),
            Err(e) => return Err(Failure::Internal(e, request_id(headers))),
        };
        let orgs = state
            .store
            .memberships(&session.email)
            .await
            .map_err(|e| Failure::Internal(e.into(), request_id(headers)))?;
        Ok(Self { session, orgs })
    }

    pub fn nav<'a>(&'a self, current: Option<&'a str>) -> layout::Nav<'a> {
        layout::Nav {
            email: &self.session.email,
            csrf_token: &self.session.csrf_token,
            orgs: &self.orgs,
            current,
            page: "audit",
        }
    }
}

/// `/`: the first organization's Audit page, preferring one whose log the
/// viewer may read; its Members page for those who may read none.
async fn home(state: axum::extract::State<AppState>, headers: HeaderMap, uri: Uri) -> Result<Response, Failure> {
    let viewer = Viewer::of(&state, &headers, &uri).await?;
    let best = viewer
        .orgs
        .iter()
        .find(|(_, role)| matches!(role, Role::Owner | Role::Admin))
        .or(viewer.orgs.first());
    match best {
        Some((org, Role::Owner | Role::Admin)) => {
            Ok(Redirect::to(&format!("/orgs/{}/audit", org.slug)).into_response())
        }
        Some((org, _)) => Ok(Redirect::to(&format!("/orgs/{}/members", org.slug)).into_response()),
        None => Ok(layout::message_page(
            StatusCode::OK,
            "No organization yet",
            Some(&viewer.nav(None)),
            maud::html! {
                p { "You are signed in as " strong { (viewer.session.email) } ", but you are not a member of any organization." }
                p { "Ask an owner or admin of your organization to add you." }
            },
        )),
    }
}

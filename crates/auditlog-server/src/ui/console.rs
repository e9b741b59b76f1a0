//! What every page of one organization shares: who is looking and with
//! which role, what that role may do (and why not), and the forms' way in.
//!
//! A form post acts as the signed-in person through the same functions as
//! the JSON API (`http::routes::*`), so it is authorized by the same rules
//! and recorded as the same events, with `submitted_by` naming the session.
//! Every form carries the session's CSRF token in a hidden field, checked
//! here in constant time; the Origin guard in front of every route has
//! already refused posts from other sites.

use auditlog_domain::permissions::{self, Action, Authority};
use auditlog_domain::{Org, Role};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};

use super::layout::{self, Nav, message_page};
use super::{Failure, PostedForm, Viewer, no_store, request_id};
use crate::http::auth::{Credential, Principal, csrf_matches};
use crate::http::context::RequestContext;
use crate::http::error::ApiError;

/// A signed-in member looking at one of their organizations.
pub struct OrgPage {
    pub viewer: Viewer,
    pub org: Org,
    pub role: Role,
    /// The request's id, for the page that says our own failure.
    request_id: Option<String>,
}

impl OrgPage {
    /// The page of organization `slug` for the person signed in; a page
    /// that says why not when they are not a member or their session may
    /// not reach it.
    pub async fn load(
        state: &crate::http::state::AppState,
        headers: &HeaderMap,
        uri: &Uri,
        slug: &str,
    ) -> Result<Self, Failure> {
        let viewer = Viewer::of(state, headers, uri).await?;
        let Some((org, role)) = viewer.orgs.iter().find(|(o, _)| o.slug == slug).cloned() else {
            return Err(Failure::Page(Box::new(message_page(
                StatusCode::NOT_FOUND,
                "Organization not found",
                Some(&viewer.nav(None)),
                html! {
                    p { "There is no organization " code { (slug) } " that you are a member of." }
                    p { a href="/" { "Go to your organizations" } }
                },
            ))));
        };
        if !auditlog_domain::sso::admits(&org, role, viewer.session.origin) {
            return Err(Failure::Page(Box::new(message_page(
                StatusCode::FORBIDDEN,
                "Single sign-on required",
                Some(&viewer.nav(None)),
                html! {
                    p { strong { (org.name) } " accepts only sessions begun through its single sign-on." }
                    p { a href="/login" { "Sign in through its identity provider" } }
                },
            ))));
        }
        Ok(Self {
            viewer,
            org,
            role,
            request_id: request_id(headers),
        })
    }

    /// Our own failure, as the page that gives the request's id.
    pub fn failed(&self, e: impl Into<ApiError>) -> Failure {
        Failure::Internal(e.into(), self.request_id.clone())
    }

    /// An action's answer: the refusals a person can act on shown on the
    /// page; our own failures as the error page.
    pub fn outcome(&self, result: Result<Markup, ApiError>) -> Result<(StatusCode, Outcome), Failure> {
        match result {
            Ok(done) => Ok((StatusCode::OK, Outcome::Done(done))),
            Err(e @ (ApiError::Internal(_) | ApiError::Unavailable(_) | ApiError::Timeout(_))) => Err(self.failed(e)),
            Err(e) => Ok(Outcome::refused(&e)),
        }
    }

    /// The page, once `form` carries the session's CSRF token; otherwise
    /// the page that says it was refused, with a way `back`.
    pub fn posted(self, form: &PostedForm, back: &str) -> Result<Self, Failure> {
        if csrf_matches(&self.viewer.session, form.get("csrf_token").as_bytes()) {
            Ok(self)
        } else {
            Err(Failure::Page(Box::new(message_page(
                StatusCode::FORBIDDEN,
                "Refused",
                Some(&self.nav("")),
                html! {
                    p { "This form did not carry your session's token, so it was not accepted. Open the page again and retry." }
                    p { a href=(back) { "Back" } }
                },
            ))))
        }
    }

    pub fn slug(&self) -> &str {
        &self.org.slug
    }

    pub fn csrf_token(&self) -> &str {
        &self.viewer.session.csrf_token
    }

    /// `Ok` when the viewer's role allows `action`, otherwise the reason,
    /// for a control shown disabled.
    pub fn may(&self, action: &Action) -> Result<(), String> {
        permissions::check(&Authority::User(self.role), action).map_err(|d| d.message)
    }

    /// The viewer, as the API's functions take a caller.
    pub fn principal(&self, ctx: RequestContext) -> Principal {
        Principal {
            org: self.org.clone(),
            authority: Authority::User(self.role),
            credential: Credential::Session(self.viewer.session.clone()),
            ctx,
        }
    }

    /// The sidebar, with `page` (such as `members`) marked as current.
    pub fn nav(&self, page: &'static str) -> Nav<'_> {
        Nav {
            page,
            ..self.viewer.nav(Some(&self.org.slug))
        }
    }

    /// The page that says the viewer's role cannot see `what`, or `Ok`.
    pub fn require(&self, action: &Action, what: &str) -> Result<(), Failure> {
        let Err(reason) = self.may(action) else {
            return Ok(());
        };
        Err(Failure::Page(Box::new(message_page(
            StatusCode::FORBIDDEN,
            &format!("You cannot open {what}"),
            Some(&self.nav("")),
            html! {
                p { (reason) ". Your role in " strong { (self.org.name) } " is " strong { (self.role.as_str()) } "." }
                p { "Ask an owner or admin of " (self.org.name) " if you need access." }
            },
        ))))
    }

    /// What a link named, looked up; the page saying `missing` (with a way
    /// `back`) when it is not there.
    pub fn found<T>(
        &self,
        looked: Result<Option<T>, auditlog_domain::StoreError>,
        missing: String,
        back: &str,
    ) -> Result<T, Failure> {
        looked
            .map_err(|e| self.failed(e))?
            .ok_or_else(|| self.not_found(&missing, back))
    }

    /// The page that says the object a link named is not there.
    pub fn not_found(&self, message: &str, back: &str) -> Failure {
        Failure::Page(Box::new(message_page(
            StatusCode::NOT_FOUND,
            "Not found",
            Some(&self.nav("")),
            html! { p { (message) } p { a href=(back) { "Back" } } },
        )))
    }

    /// The page asking to confirm a change that cannot be undone: what it
    /// does, a button posting to `action`, and a way back to `cancel`.
    pub fn confirmation(
        &self,
        section: &'static str,
        title: &str,
        text: Markup,
        (action, button): (&str, &str),
        cancel: &str,
    ) -> Response {
        let main = html! {
            section.message {
                h1 { (title) }
                p { (text) }
                form method="post" action=(action) {
                    (self.csrf_field())
                    button.danger type="submit" { (button) }
                    " " a.button href=(cancel) { "Cancel" }
                }
            }
        };
        self.render(StatusCode::OK, title, section, main)
    }

    /// A whole page of this organization.
    pub fn render(&self, status: StatusCode, title: &str, page: &'static str, main: Markup) -> Response {
        no_store((status, layout::page(title, Some(&self.nav(page)), main)).into_response())
    }

    /// The hidden field every form of this page carries.
    pub fn csrf_field(&self) -> Markup {
        html! { input type="hidden" name="csrf_token" value=(self.csrf_token()); }
    }
}

/// What an action's answer tells the page above its table.
pub enum Outcome {
    Done(Markup),
    Refused(String),
}

impl Outcome {
    pub fn refused(e: &ApiError) -> (StatusCode, Self) {
        let (status, message) = e.for_people();
        (status, Outcome::Refused(message))
    }

    pub fn show(&self) -> Markup {
        match self {
            Outcome::Done(what) => html! { div.notice role="status" { (what) } },
            Outcome::Refused(why) => html! {
                div.alert role="alert" { p { strong { "Not done: " } (why) } }
            },
        }
    }
}

/// A table of the page's objects (`id`, a caption for screen readers, the
/// column headings), or `empty` when there are none.
pub fn list_table(id: &str, caption: &str, columns: &[&str], rows: Vec<Markup>, empty: &str) -> Markup {
    html! {
        @if rows.is_empty() {
            p.empty { (empty) }
        } @else {
            div.table-scroll {
                table.list id=(id) {
                    caption.visually-hidden { (caption) }
                    thead { tr { @for c in columns { th scope="col" { (c) } } } }
                    tbody { @for r in rows { (r) } }
                }
            }
        }
    }
}

/// The Audit page filtered to one object's entries.
pub fn trail_href(slug: &str, resource_type: &str, resource_id: &str) -> String {
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("resource_type", resource_type)
        .append_pair("resource_id", resource_id)
        .finish();
    format!("/orgs/{slug}/audit?{query}")
}

/// A control the viewer's role cannot use: shown disabled, with why.
pub fn disabled_because(reason: &str) -> Markup {
    html! { span.muted.reason { (reason) } }
}

/// A path segment of ours: what a person typed (an email) made safe to put
/// in a URL.
pub fn segment(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

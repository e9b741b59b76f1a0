//! The console's two ways into a handler, as axum extractors: an
//! organization's page for the person signed in ([`OrgPage`], from the
//! `{org}` in the path), and a form posted to it ([`Acting`]: the page once
//! the form's CSRF token is the session's, the form's fields, and the
//! request's context for the entries it records).

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, Uri};

use super::Failure;
use super::PostedForm;
use super::console::OrgPage;
use super::layout::message_page;
use crate::http::context::RequestContext;
use crate::http::state::AppState;

/// The largest form the console takes: its largest, the webhook form with
/// every event ticked or the stream form with its certificates and key, is
/// a few KiB (a CA bundle larger than this goes through the API).
const FORM_BYTES: usize = 64 * 1024;

/// The `{org}` of the path; a path without one is no page of ours.
pub(super) async fn slug(parts: &mut Parts, state: &AppState) -> Result<String, Failure> {
    let not_found = || {
        Failure::Page(Box::new(message_page(
            StatusCode::NOT_FOUND,
            "Not found",
            None,
            maud::html! { p { "There is no such page." } },
        )))
    };
    let Path(params) = Path::<HashMap<String, String>>::from_request_parts(parts, state)
        .await
        .map_err(|_| not_found())?;
    params.get("org").cloned().ok_or_else(not_found)
}

/// The organization's section a path belongs to (`/orgs/acme/members` for
/// `/orgs/acme/members/x/role`): where a signed-out poster comes back to.
fn section(path: &str) -> String {
    path.split('/').take(4).collect::<Vec<_>>().join("/")
}

impl FromRequestParts<AppState> for OrgPage {
    type Rejection = Failure;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Failure> {
        let slug = slug(parts, state).await?;
        OrgPage::load(state, &parts.headers, &parts.uri, &slug).await
    }
}

/// A form posted to an organization's page by the person signed in.
pub struct Acting {
    pub page: OrgPage,
    pub form: PostedForm,
    pub ctx: RequestContext,
}

impl FromRequest<AppState> for Acting {
    type Rejection = Failure;

    async fn from_request(req: Request<Body>, state: &AppState) -> Result<Self, Failure> {
        let (mut parts, body) = req.into_parts();
        let Ok(ctx) = RequestContext::from_request_parts(&mut parts, state).await;
        let slug = slug(&mut parts, state).await?;
        // Who posts is known before a byte of the form is read: a stranger's
        // body is never buffered.
        let back = section(parts.uri.path());
        let uri: Uri = back.parse().unwrap_or_else(|_| Uri::from_static("/"));
        let page = OrgPage::load(state, &parts.headers, &uri, &slug).await?;
        let too_large = || {
            Failure::Page(Box::new(message_page(
                StatusCode::PAYLOAD_TOO_LARGE,
                "Too large",
                None,
                maud::html! { p { "This form is larger than the service accepts." } },
            )))
        };
        let body = axum::body::to_bytes(body, FORM_BYTES).await.map_err(|_| too_large())?;
        let form = PostedForm::parse(&body);
        let page = page.posted(&form, &back)?;
        Ok(Self { page, form, ctx })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signed_out_poster_comes_back_to_the_section() {
        assert_eq!(section("/orgs/acme/members/a%40b/role"), "/orgs/acme/members");
        assert_eq!(section("/orgs/acme/projects"), "/orgs/acme/projects");
        assert_eq!(section("/orgs/acme/settings/plan"), "/orgs/acme/settings");
    }
}

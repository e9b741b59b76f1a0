//! The OpenAPI 3.1 document of the JSON API, served at
//! `GET /v1/openapi.json`.
//!
//! It is derived, not written: each handler carries its own
//! `#[utoipa::path]` (parameters, body, every answer it can give) and the
//! types it reads and answers with derive their schemas, so the document
//! changes with the code. The API's tests compare its operations with the
//! routes registered in [`crate::http::routes`], both ways, and check its
//! answers against a running server. The web pages are HTML for people
//! and are not in it.

use std::sync::LazyLock;

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::http::auth::SESSION_COOKIE;
use crate::http::error::ErrorBody;
use crate::http::responses::{
    BadRequest, Conflict, Forbidden, Gone, HeadersTooLarge, Internal, NotFound, PayloadTooLarge, TooManyRequests,
    Unauthenticated, Unavailable, Unprocessable, UnsupportedMediaType,
};
use crate::http::routes::{
    api_keys, catalog, entries, erasures, export, health, ingest, invitations, members, orgs, password, projects,
    proofs, session, streams, webhooks,
};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "auditlog",
        description = "A self-hosted audit log: record, filter, export and verify what happens in an organization.\n\n\
            Every refusal is a 4xx with the body `{\"error\": {\"code\", \"message\", \"details\"}}`; \
            a refused batch writes nothing. Authenticate with `Authorization: Bearer lqt_…` (an API key) \
            or with the session cookie of `POST /v1/session`, which must be accompanied by the session's \
            `X-CSRF-Token` on requests that change state.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    paths(
        health::healthz,
        health::readyz,
        health::metrics,
        openapi_json,
        catalog::get_catalog,
        proofs::signing_key,
        session::current,
        session::login,
        session::logout,
        password::change_password,
        invitations::accept,
        orgs::get_org,
        orgs::patch_org,
        members::list,
        members::add,
        members::change_role,
        members::remove,
        members::reset_password,
        erasures::erase,
        api_keys::list,
        api_keys::create,
        api_keys::revoke,
        projects::list,
        projects::create,
        projects::rename,
        projects::delete,
        streams::list,
        streams::create,
        streams::get_one,
        streams::update,
        streams::delete,
        webhooks::list,
        webhooks::create,
        webhooks::get_one,
        webhooks::update,
        webhooks::delete,
        webhooks::rotate_secret,
        webhooks::test,
        webhooks::deliveries,
        webhooks::retry,
        webhooks::replay,
        entries::list,
        ingest::ingest,
        entries::get_one,
        export::export,
        proofs::checkpoint,
        proofs::inclusion,
        proofs::consistency,
    ),
    components(schemas(ErrorBody), responses(
        BadRequest,
        Unauthenticated,
        Forbidden,
        NotFound,
        Conflict,
        Gone,
        PayloadTooLarge,
        Unprocessable,
        TooManyRequests,
        Internal,
        Unavailable,
        HeadersTooLarge,
        UnsupportedMediaType,
    )),
    modifiers(&Credentials, &EveryOperation),
    tags(
        (name = "operations", description = "Health, readiness, metrics and this document."),
        (name = "catalog", description = "The events the log accepts."),
        (name = "session", description = "Signing in and out of the web UI."),
        (name = "organization", description = "Name, plan and single sign-on."),
        (name = "members", description = "People and their roles."),
        (name = "api-keys", description = "Keys for services; the secret is shown once."),
        (name = "projects", description = "The organization's projects."),
        (name = "streams", description = "SIEM streams: every entry, in order, to a syslog receiver over TLS (RFC 5424, CEF or OCSF)."),
        (name = "webhooks", description = "Signed deliveries of new entries (Standard Webhooks)."),
        (name = "audit", description = "Recording, reading and exporting the log."),
        (name = "tamper-evidence", description = "Signed checkpoints and Merkle proofs (RFC 9162)."),
    ),
)]
pub struct ApiDoc;

/// The two credentials of [`crate::http::auth`]. A session needs the CSRF header
/// as well on requests that change state; those operations require both.
struct Credentials;

impl Modify for Credentials {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("lqt_…")
                    .description(Some(
                        "An API key of the organization in the path, with the scopes the operation needs.",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                SESSION_COOKIE,
                "The cookie set by POST /v1/session; the person must be a member of the organization in the path.",
            ))),
        );
        components.add_security_scheme(
            "csrf",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-CSRF-Token",
                "The session's csrf_token, required with the session cookie on requests that change state.",
            ))),
        );
    }
}

/// What every route can answer, whatever its handler: the header limit is
/// checked before any handler runs, and the time limit (or the store) can
/// end any request with a 503. `request_guard` refuses a change sent from
/// another site's page (403) and a body that is not JSON (415).
struct EveryOperation;

impl Modify for EveryOperation {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{Ref, RefOr};
        for item in doc.paths.paths.values_mut() {
            let operations = [
                (&mut item.get, false),
                (&mut item.put, true),
                (&mut item.post, true),
                (&mut item.delete, true),
                (&mut item.patch, true),
            ];
            for (operation, changes_state) in operations {
                let Some(operation) = operation else { continue };
                let takes_body = operation.request_body.is_some();
                let responses = &mut operation.responses.responses;
                for (status, response) in [("431", "HeadersTooLarge"), ("503", "Unavailable")] {
                    responses.insert(status.into(), RefOr::Ref(Ref::from_response_name(response)));
                }
                if changes_state && !responses.contains_key("403") {
                    responses.insert("403".into(), RefOr::Ref(Ref::from_response_name("Forbidden")));
                }
                if takes_body {
                    responses.insert(
                        "415".into(),
                        RefOr::Ref(Ref::from_response_name("UnsupportedMediaType")),
                    );
                }
            }
        }
    }
}

/// The document, serialized once.
static DOCUMENT: LazyLock<String> =
    LazyLock::new(|| ApiDoc::openapi().to_json().expect("the OpenAPI document serializes"));

/// This document.
#[utoipa::path(
    get,
    path = "/v1/openapi.json",
    tag = "operations",
    responses(
        (status = 200, description = "The OpenAPI 3.1 document of this API.", body = Object),
    )
)]
pub async fn openapi_json() -> Response {
    let mut resp = DOCUMENT.as_str().into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

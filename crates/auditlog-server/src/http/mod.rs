//! Everything HTTP: the JSON API's routes and the layers every request
//! passes (request ids, tracing, size and time limits, the body budget,
//! cross-site refusals), the caller's identity, errors and the OpenAPI
//! document. The web pages (`crate::ui`) are handed in as a router, so
//! they build on this module and this module knows nothing of them.
//!
//! - [`state`]: [`AppState`], what every handler can reach, and the rate
//!   limiters.
//! - [`auth`]: who is calling (API key or session), for which organization,
//!   and what they may do; [`key_cache`] the keys it remembers briefly.
//! - [`context`]: the client's address (trusted proxies), user agent and
//!   request id.
//! - [`error`]: the one API error type and its mapping to HTTP.
//! - [`routes`]: one module per group of endpoints.
//! - [`openapi`]: the OpenAPI document, derived from the handlers;
//!   [`responses`] the refusal sets and path parameters they share.
//! - [`recorder`]: the service's own actions, recorded with their changes.
//! - [`sign_ins`]: sign-ins as the log records them, and what a password
//!   may start where single sign-on is enforced.
//! - [`reads`]: reads of the log, handed to the read recorder.
//! - [`request_guard`]: state changes refused from other sites' pages, and
//!   JSON API bodies that are not JSON.
//! - [`body`]: JSON request bodies with the API's error format.
//! - [`body_gate`]: body size limits per route and the memory budget of
//!   bodies; [`guarded_body`] a body read under it and a minimum pace.
//! - [`known_parameters`]: unknown query parameters refused.
//! - [`query_string`]: reading repeatable query parameters.
//! - [`connections`]: the cap on open connections; [`server`] the
//!   listener's loop with its header-read timeout.

pub mod auth;
pub mod body;
pub mod body_gate;
pub mod connections;
pub mod context;
pub mod error;
pub mod guarded_body;
pub mod key_cache;
pub mod known_parameters;
pub mod openapi;
pub mod query_string;
pub mod reads;
pub mod recorder;
pub mod request_guard;
pub mod responses;
pub mod routes;
pub mod server;
pub mod sign_ins;
pub mod state;

use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::extract::State;
use axum::http::{HeaderName, HeaderValue, Request, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post};
use tower_http::request_id::{MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

use self::context::REQUEST_ID;
use self::error::ApiError;
use self::routes::{
    api_keys, catalog, entries, erasures, export, health, ingest, invitations, members, orgs, password, projects,
    proofs, session, streams, webhooks,
};
use self::state::AppState;

/// Request ids are UUIDv7, so they sort by time in logs.
#[derive(Clone, Copy)]
struct TimeOrderedId;

impl MakeRequestId for TimeOrderedId {
    fn make_request_id<B>(&mut self, _: &Request<B>) -> Option<RequestId> {
        HeaderValue::from_str(&uuid::Uuid::now_v7().to_string())
            .ok()
            .map(RequestId::new)
    }
}

/// Each request's span names its request id (set by the layer outside this
/// one), so every log line written while serving it, in text or JSON, can
/// be matched to the `X-Request-Id` its client saw. The path only: query
/// strings may hold people's names and addresses searched for.
fn request_span<B>(req: &Request<B>) -> tracing::Span {
    let id = req
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
}

/// Ends a request that has not produced its answer within the limit, with
/// a JSON 503 (a streamed export's body goes on past it: the limit is on
/// the answer's start).
async fn time_limit(State(limit): State<Duration>, req: axum::extract::Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(resp) => resp,
        Err(_) => ApiError::Timeout(limit.as_secs()).into_response(),
    }
}

/// Refuses a request whose headers (names, values and their separators)
/// exceed the limit with a JSON 431. hyper stops reading far larger ones
/// itself (see [`server`]), with a bare 431.
async fn header_limit(State(limit): State<usize>, req: axum::extract::Request, next: Next) -> Response {
    let size: usize = req.headers().iter().map(|(k, v)| k.as_str().len() + v.len() + 4).sum();
    if size > limit {
        return ApiError::HeadersTooLarge(limit).into_response();
    }
    next.run(req).await
}

/// The whole application: the API's routes and `pages` beside them,
/// inside the layers every request passes.
pub fn router(state: AppState, pages: Router<AppState>) -> Router {
    let max_body = state.config.max_body_bytes;
    let body_gate = std::sync::Arc::new(body_gate::BodyGate::new(&state.config));
    let request_timeout = state.config.request_timeout;
    let max_header_bytes = state.config.max_header_bytes;
    let request_id = HeaderName::from_static(REQUEST_ID);
    api()
        .merge(pages)
        .fallback(|| async { ApiError::NotFound("no such endpoint".into()) })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(middleware::from_fn_with_state(
            request_guard::RequestGuard::new(&state.config),
            request_guard::check,
        ))
        .with_state(state)
        .layer(middleware::from_fn_with_state(request_timeout, time_limit))
        .layer(DefaultBodyLimit::max(max_body))
        .layer(middleware::from_fn_with_state(body_gate, body_gate::gate))
        .layer(middleware::from_fn_with_state(max_header_bytes, header_limit))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(TraceLayer::new_for_http().make_span_with(request_span))
        .layer(SetRequestIdLayer::new(request_id, TimeOrderedId))
}

/// The JSON API's routes, each refusing query parameters it does not
/// know.
fn api() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .route("/v1/openapi.json", get(openapi::openapi_json))
        .route("/v1/audit/catalog", get(catalog::get_catalog))
        .route("/v1/orgs/{org}/audit/events", get(entries::list).post(ingest::ingest))
        .route("/v1/orgs/{org}/audit/events/{id}", get(entries::get_one))
        .route("/v1/orgs/{org}/audit/export", get(export::export))
        .route("/v1/orgs/{org}/audit/checkpoint", get(proofs::checkpoint))
        .route("/v1/orgs/{org}/audit/proofs/inclusion", get(proofs::inclusion))
        .route("/v1/orgs/{org}/audit/proofs/consistency", get(proofs::consistency))
        .route("/v1/audit/signing-key", get(proofs::signing_key))
        .route(
            "/v1/session",
            get(session::current).post(session::login).delete(session::logout),
        )
        .route("/v1/session/password", post(password::change_password))
        .route("/v1/invitations/accept", post(invitations::accept))
        .route("/v1/orgs/{org}", get(orgs::get_org).patch(orgs::patch_org))
        .route("/v1/orgs/{org}/members", get(members::list).post(members::add))
        .route(
            "/v1/orgs/{org}/members/{email}",
            patch(members::change_role).delete(members::remove),
        )
        .route(
            "/v1/orgs/{org}/members/{email}/password-reset",
            post(members::reset_password),
        )
        .route("/v1/orgs/{org}/erasures", post(erasures::erase))
        .route("/v1/orgs/{org}/api-keys", get(api_keys::list).post(api_keys::create))
        .route("/v1/orgs/{org}/api-keys/{prefix}", delete(api_keys::revoke))
        .route("/v1/orgs/{org}/projects", get(projects::list).post(projects::create))
        .route(
            "/v1/orgs/{org}/projects/{id}",
            patch(projects::rename).delete(projects::delete),
        )
        .route("/v1/orgs/{org}/streams", get(streams::list).post(streams::create))
        .route(
            "/v1/orgs/{org}/streams/{id}",
            get(streams::get_one).patch(streams::update).delete(streams::delete),
        )
        .route("/v1/orgs/{org}/webhooks", get(webhooks::list).post(webhooks::create))
        .route(
            "/v1/orgs/{org}/webhooks/{id}",
            get(webhooks::get_one).patch(webhooks::update).delete(webhooks::delete),
        )
        .route(
            "/v1/orgs/{org}/webhooks/{id}/rotate-secret",
            post(webhooks::rotate_secret),
        )
        .route("/v1/orgs/{org}/webhooks/{id}/test", post(webhooks::test))
        .route("/v1/orgs/{org}/webhooks/{id}/replay", post(webhooks::replay))
        .route("/v1/orgs/{org}/webhooks/{id}/deliveries", get(webhooks::deliveries))
        .route(
            "/v1/orgs/{org}/webhooks/{id}/deliveries/{delivery}/retry",
            post(webhooks::retry),
        )
        // On the API's routes only: the pages are not in the document.
        .route_layer(middleware::from_fn(known_parameters::refuse_unknown))
}

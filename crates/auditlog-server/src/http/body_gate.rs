//! The gate every request body passes: the size limit of its route, the
//! memory budget shared by all bodies in flight, and the pace a body must
//! keep (see [`guarded_body`](crate::http::guarded_body)).
//!
//! Routes anyone may call without signing in take small bodies only, so a
//! stranger cannot make the server hold megabytes; a declared length over a
//! route's limit is refused before a byte of the body is read. A body cut
//! off while being read (too large, too slow, no room) has its request
//! answered for that reason, whatever the handler made of the error.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::config::{BodyLimits, ServerConfig};
use crate::http::error::ApiError;
use crate::http::guarded_body::{Budget, Cut, GuardedBody, Pace, Ticket};

#[derive(Debug, Clone)]
pub struct BodyGate {
    budget: Budget,
    pace: Pace,
    /// For routes open to strangers.
    small: u64,
    /// For every other route.
    large: u64,
}

impl BodyGate {
    pub fn new(config: &ServerConfig) -> Self {
        let BodyLimits {
            small_bytes,
            budget_bytes,
            budget_wait,
            timeout,
            min_rate,
            rate_grace,
        } = config.bodies;
        Self {
            budget: Budget::new(budget_bytes, budget_wait),
            pace: Pace {
                timeout,
                min_rate,
                grace: rate_grace,
            },
            small: small_bytes as u64,
            large: config.max_body_bytes as u64,
        }
    }

    /// The largest body `path` takes.
    fn limit(&self, path: &str) -> u64 {
        if open_to_strangers(path) {
            self.small
        } else {
            self.large
        }
    }
}

/// Whether anyone may call `path` without being signed in (or merely
/// signed in, with no organization's role checked), so that its bodies are
/// only ever a few fields: sign-in and out (single sign-on too), password changes, invitations.
fn open_to_strangers(path: &str) -> bool {
    [
        "/v1/session",
        "/v1/invitations",
        "/invitations",
        "/login",
        "/logout",
        "/sso/",
    ]
    .iter()
    .any(|prefix| path.starts_with(prefix))
}

/// The length the client declared, when it declared one it can be held to
/// (hyper frames a chunked body by its chunks, whatever a length says).
fn declared_length(headers: &HeaderMap) -> Option<u64> {
    if headers.contains_key(header::TRANSFER_ENCODING) {
        return None;
    }
    headers.get(header::CONTENT_LENGTH)?.to_str().ok()?.trim().parse().ok()
}

fn has_body(headers: &HeaderMap) -> bool {
    headers.contains_key(header::TRANSFER_ENCODING) || declared_length(headers).is_some_and(|n| n > 0)
}

/// The middleware: refuses what is declared too large, wraps the body so
/// it is read under the budget and pace, and answers for the body if it
/// was cut off.
pub async fn gate(State(gate): State<Arc<BodyGate>>, req: Request, next: Next) -> Response {
    let limit = gate.limit(req.uri().path());
    if !has_body(req.headers()) {
        return next.run(req).await;
    }
    let declared = declared_length(req.headers());
    if declared.is_some_and(|n| n > limit) {
        return closing(ApiError::PayloadTooLarge(limit as usize));
    }
    let ticket = Arc::new(Ticket::default());
    let need = declared.unwrap_or(limit);
    let req = req.map(|body| {
        Body::new(GuardedBody::new(
            body,
            need,
            limit,
            gate.budget.clone(),
            gate.pace,
            ticket.clone(),
        ))
    });
    let resp = next.run(req).await;
    ticket.release();
    match ticket.cut() {
        None => resp,
        Some(Cut::TooLarge) => closing(ApiError::PayloadTooLarge(limit as usize)),
        Some(Cut::TooSlow) => closing(ApiError::BodyTimeout),
        Some(Cut::NoRoom) => closing(ApiError::Overloaded),
    }
}

/// The refusal, with the connection closed after it: the rest of the body
/// is never read, so the connection cannot carry another request.
fn closing(e: ApiError) -> Response {
    let mut resp = e.into_response();
    resp.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_open_to_strangers_take_small_bodies() {
        let gate = BodyGate::new(&ServerConfig::default());
        for open in [
            "/v1/session",
            "/v1/session/password",
            "/login",
            "/logout",
            "/v1/invitations/accept",
            "/invitations/abc",
        ] {
            assert_eq!(gate.limit(open), 8 * 1024, "{open}");
        }
        assert_eq!(gate.limit("/v1/orgs/acme/audit/events"), 20 * 1024 * 1024);
    }

    #[test]
    fn a_chunked_body_declares_no_length() {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("10"));
        assert_eq!(declared_length(&headers), Some(10));
        headers.insert(header::TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
        assert_eq!(declared_length(&headers), None);
        assert!(has_body(&headers));
        assert!(!has_body(&HeaderMap::new()));
    }
}

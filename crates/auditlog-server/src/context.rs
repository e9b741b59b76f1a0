//! Facts about the HTTP request that end up in entries: the client's
//! address, user agent and request id.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::HeaderValue;
use axum::http::request::Parts;

pub const REQUEST_ID: &str = "x-request-id";

#[derive(Debug, Clone)]
pub struct RequestContext {
    /// The direct peer's address. (Trusted-proxy handling of
    /// `X-Forwarded-For` belongs with the management API.)
    pub ip: Option<IpAddr>,
    pub request_id: Option<String>,
    pub user_agent: Option<String>,
}

/// Header text fit to record: printable ASCII, bounded.
fn recordable(v: Option<&HeaderValue>, max: usize) -> Option<String> {
    let s = v?.to_str().ok()?;
    (!s.is_empty() && s.len() <= max && s.bytes().all(|b| (0x20..0x7f).contains(&b))).then(|| s.to_owned())
}

impl<S: Send + Sync> FromRequestParts<S> for RequestContext {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let ip = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip().to_canonical());
        Ok(Self {
            ip,
            request_id: recordable(parts.headers.get(REQUEST_ID), 128),
            user_agent: recordable(parts.headers.get(axum::http::header::USER_AGENT), 512),
        })
    }
}

//! Facts about the HTTP request that end up in entries: the client's
//! address, user agent and request id.
//!
//! The client's address is the TCP peer's, unless the peer is one of the
//! operator's trusted proxies: then `X-Forwarded-For` is read from the right,
//! skipping trusted proxies, and the first other address is the client. A
//! client can put anything in that header, so only what trusted proxies
//! appended is believed.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue};
use ipnet::IpNet;

use crate::http::state::AppState;

pub const REQUEST_ID: &str = "x-request-id";

#[derive(Debug, Clone)]
pub struct RequestContext {
    pub ip: Option<IpAddr>,
    pub request_id: Option<String>,
    pub user_agent: Option<String>,
}

/// Header text fit to record: printable ASCII, bounded.
fn recordable(v: Option<&HeaderValue>, max: usize) -> Option<String> {
    let s = v?.to_str().ok()?;
    (!s.is_empty() && s.len() <= max && s.bytes().all(|b| (0x20..0x7f).contains(&b))).then(|| s.to_owned())
}

/// The client's address given the peer and the trusted proxies.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let mut client = peer;
    // Several X-Forwarded-For headers count as one list, in order.
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    for hop in hops.iter().rev() {
        match hop.parse::<IpAddr>() {
            Ok(ip) => {
                client = ip.to_canonical();
                if !is_trusted(&client) {
                    break;
                }
            }
            // An unreadable hop ends what can be believed.
            Err(_) => break,
        }
    }
    client
}

impl FromRequestParts<AppState> for RequestContext {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let ip = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| {
                client_ip(addr.ip().to_canonical(), &parts.headers, &state.config.trusted_proxies)
            });
        Ok(Self {
            ip,
            request_id: recordable(parts.headers.get(REQUEST_ID), 128),
            user_agent: recordable(parts.headers.get(axum::http::header::USER_AGENT), 512),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(xff: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in xff {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn untrusted_peers_are_the_client_whatever_they_claim() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        assert_eq!(
            client_ip(ip("203.0.113.5"), &headers(&["1.2.3.4"]), &trusted),
            ip("203.0.113.5")
        );
        assert_eq!(client_ip(ip("203.0.113.5"), &headers(&[]), &[]), ip("203.0.113.5"));
    }

    #[test]
    fn trusted_proxies_are_skipped_from_the_right() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap(), "192.168.1.1/32".parse().unwrap()];
        // spoofed, real client, inner proxy — seen by the outer proxy 10.0.0.1
        let h = headers(&["6.6.6.6, 198.51.100.7", "192.168.1.1"]);
        assert_eq!(client_ip(ip("10.0.0.1"), &h, &trusted), ip("198.51.100.7"));
        assert_eq!(client_ip(ip("10.0.0.1"), &headers(&[]), &trusted), ip("10.0.0.1"));
        assert_eq!(
            client_ip(ip("10.0.0.1"), &headers(&["junk, 10.0.0.9"]), &trusted),
            ip("10.0.0.9")
        );
        assert_eq!(
            client_ip(ip("10.0.0.1"), &headers(&["::ffff:198.51.100.8"]), &trusted),
            ip("198.51.100.8")
        );
    }
}

//! What every request that changes state must show before any route reads
//! it: that no page of another site sent it, and, on the JSON API, that its
//! body is JSON.
//!
//! Browsers let any page post to any site, with the user's cookies, as a
//! form (`application/x-www-form-urlencoded`, `multipart/form-data` or
//! `text/plain`) without asking the target first. Two defences close that:
//! a browser names the page's origin in `Origin` (or, failing that, says
//! `Sec-Fetch-Site: cross-site`), and an origin that is not this service's
//! is refused; and the JSON API takes only `application/json`, which no
//! form can send. Requests without either header are not a browser being
//! tricked (curl, servers with API keys) and are let through.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::config::ServerConfig;
use crate::http::error::ApiError;

/// What the guard needs to know about the service.
#[derive(Debug, Clone, Copy)]
pub struct RequestGuard {
    /// Served over HTTPS only. Otherwise the service cannot tell whether a
    /// TLS proxy stands in front of it, so either scheme is its own.
    https_only: bool,
}

impl RequestGuard {
    pub fn new(config: &ServerConfig) -> Self {
        Self {
            https_only: config.secure_cookies,
        }
    }

    fn admit(self, method: &Method, path: &str, headers: &HeaderMap) -> Result<(), ApiError> {
        if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE) {
            return Ok(());
        }
        self.same_site(headers)?;
        if path.starts_with("/v1/") {
            json_body(headers)?;
        }
        Ok(())
    }

    fn same_site(self, headers: &HeaderMap) -> Result<(), ApiError> {
        let Some(origin) = headers.get(header::ORIGIN) else {
            // Browsers too old for `Origin` on every post may still say this.
            return match headers.get("sec-fetch-site").map(HeaderValue::as_bytes) {
                Some(b"cross-site") => Err(ApiError::forbidden(
                    "cross_site_request",
                    "requests that change state are not accepted from pages of other sites",
                )),
                _ => Ok(()),
            };
        };
        if self.is_own(origin, headers.get(header::HOST)) {
            return Ok(());
        }
        Err(ApiError::forbidden(
            "cross_site_request",
            format!(
                "requests that change state are not accepted from pages of other sites; Origin {} is not this service's",
                shown(origin)
            ),
        ))
    }

    /// True when `origin` is this service as the request reached it: the
    /// same host and port as `Host`, with a scheme it is served on.
    fn is_own(self, origin: &HeaderValue, host: Option<&HeaderValue>) -> bool {
        // Exactly a serialized origin: no user, path or default port.
        let origin = origin.to_str().ok().and_then(|o| {
            url::Url::parse(o)
                .ok()
                .filter(|u| u.origin().ascii_serialization().eq_ignore_ascii_case(o))
        });
        let host = host
            .and_then(|h| h.to_str().ok())
            .and_then(|h| h.parse::<axum::http::uri::Authority>().ok());
        let (Some(origin), Some(host)) = (origin, host) else {
            return false;
        };
        let scheme_ok = match origin.scheme() {
            "https" => true,
            "http" => !self.https_only,
            _ => false,
        };
        // Without a port, `Host` and `Origin` both mean their scheme's
        // default one.
        let port_ok = match host.port_u16() {
            Some(port) => origin.port_or_known_default() == Some(port),
            None => origin.port().is_none(),
        };
        scheme_ok && port_ok && origin.host_str().is_some_and(|h| h.eq_ignore_ascii_case(host.host()))
    }
}

/// A body on the JSON API must say it is JSON (parameters such as
/// `charset` allowed); a request with no body need not say anything.
fn json_body(headers: &HeaderMap) -> Result<(), ApiError> {
    match headers.get(header::CONTENT_TYPE) {
        Some(v) if is_json(v) => Ok(()),
        Some(v) => Err(ApiError::UnsupportedMediaType(shown(v))),
        None if has_body(headers) => Err(ApiError::UnsupportedMediaType("missing".into())),
        None => Ok(()),
    }
}

fn is_json(v: &HeaderValue) -> bool {
    v.to_str()
        .ok()
        .and_then(|s| s.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"))
}

fn has_body(headers: &HeaderMap) -> bool {
    let length = headers.get(header::CONTENT_LENGTH).map(HeaderValue::as_bytes);
    headers.contains_key(header::TRANSFER_ENCODING) || length.is_some_and(|l| l != b"0")
}

/// A header's value fit to repeat in an error message: bounded, and
/// printable.
fn shown(v: &HeaderValue) -> String {
    let text = String::from_utf8_lossy(v.as_bytes());
    let text: String = text.chars().filter(|c| !c.is_control()).take(100).collect();
    format!("{text:?}")
}

/// The middleware: refuses what [`RequestGuard`] does not admit, before
/// the route (and its body) is touched.
pub async fn check(State(guard): State<RequestGuard>, req: Request, next: Next) -> Response {
    if let Err(refused) = guard.admit(req.method(), req.uri().path(), req.headers()) {
        return refused.into_response();
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAIN: RequestGuard = RequestGuard { https_only: false };
    const HTTPS: RequestGuard = RequestGuard { https_only: true };

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| (header::HeaderName::from_static(k), HeaderValue::from_static(v)))
            .collect()
    }

    fn code(r: Result<(), ApiError>) -> Option<&'static str> {
        r.err().map(|e| match e {
            ApiError::Forbidden { code, .. } => code,
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            other => panic!("unexpected {other:?}"),
        })
    }

    fn post(guard: RequestGuard, path: &str, pairs: &[(&'static str, &'static str)]) -> Option<&'static str> {
        code(guard.admit(&Method::POST, path, &headers(pairs)))
    }

    #[test]
    fn the_service_own_origin_is_admitted() {
        let own = [("host", "127.0.0.1:8080"), ("origin", "http://127.0.0.1:8080")];
        assert_eq!(post(PLAIN, "/login", &own), None);
        let proxied = [("host", "audit.example"), ("origin", "https://audit.example")];
        assert_eq!(post(PLAIN, "/login", &proxied), None);
        assert_eq!(post(HTTPS, "/login", &proxied), None);
        let explicit_port = [("host", "audit.example:443"), ("origin", "https://Audit.Example")];
        assert_eq!(post(HTTPS, "/login", &explicit_port), None);
        let v6 = [("host", "[::1]:8080"), ("origin", "http://[::1]:8080")];
        assert_eq!(post(PLAIN, "/login", &v6), None);
        assert_eq!(
            post(PLAIN, "/login", &[("host", "a.example")]),
            None,
            "no Origin: not a browser"
        );
    }

    #[test]
    fn other_origins_are_refused_on_every_change() {
        let host = ("host", "audit.example");
        for origin in [
            "https://evil.example",
            "null",
            "https://audit.example.evil.example",
            "https://audit.example:8443",
            "http://audit.example:443",
            "ftp://audit.example",
            "https://user@audit.example",
            "https://audit.example/",
            "https://audit.example:443",
            "",
        ] {
            let pairs = [host, ("origin", origin)];
            for method in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
                let r = PLAIN.admit(&method, "/v1/session", &headers(&pairs));
                assert_eq!(code(r), Some("cross_site_request"), "{method} from {origin:?}");
            }
            let read = PLAIN.admit(&Method::GET, "/v1/session", &headers(&pairs));
            assert!(read.is_ok(), "reads change nothing");
        }
        let downgraded = [host, ("origin", "http://audit.example")];
        assert_eq!(post(HTTPS, "/login", &downgraded), Some("cross_site_request"));
        assert_eq!(post(PLAIN, "/login", &downgraded), None);
        assert_eq!(
            post(PLAIN, "/login", &[("origin", "https://audit.example")]),
            Some("cross_site_request"),
            "no Host to compare with"
        );
    }

    #[test]
    fn fetch_metadata_stands_in_for_a_missing_origin() {
        let cross = [("host", "a.example"), ("sec-fetch-site", "cross-site")];
        assert_eq!(post(PLAIN, "/login", &cross), Some("cross_site_request"));
        for site in ["same-origin", "same-site", "none"] {
            let pairs = [("host", "a.example"), ("sec-fetch-site", site)];
            assert_eq!(post(PLAIN, "/login", &pairs), None, "{site}");
        }
    }

    #[test]
    fn the_json_api_takes_only_json() {
        for ok in [
            "application/json",
            "application/json; charset=utf-8",
            "Application/JSON;charset=UTF-8",
        ] {
            let pairs = [("content-type", ok), ("content-length", "2")];
            assert_eq!(post(PLAIN, "/v1/session", &pairs), None, "{ok}");
        }
        for bad in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "application/jsonx",
            "text/json",
            "application/json-patch+json",
            "",
        ] {
            let pairs = [("content-type", bad), ("content-length", "2")];
            assert_eq!(
                post(PLAIN, "/v1/session", &pairs),
                Some("unsupported_media_type"),
                "{bad}"
            );
        }
        let untyped = [("content-length", "2")];
        assert_eq!(post(PLAIN, "/v1/session", &untyped), Some("unsupported_media_type"));
        let chunked = [("transfer-encoding", "chunked")];
        assert_eq!(post(PLAIN, "/v1/session", &chunked), Some("unsupported_media_type"));
        assert_eq!(post(PLAIN, "/v1/orgs/acme/webhooks/w/test", &[]), None, "no body");
        assert_eq!(
            post(PLAIN, "/v1/orgs/acme/webhooks/w/test", &[("content-length", "0")]),
            None
        );
    }

    #[test]
    fn forms_post_to_the_pages() {
        let form = [
            ("host", "a.example"),
            ("origin", "http://a.example"),
            ("content-type", "application/x-www-form-urlencoded"),
            ("content-length", "20"),
        ];
        assert_eq!(post(PLAIN, "/login", &form), None);
        assert_eq!(post(PLAIN, "/logout", &form), None);
    }

    #[test]
    fn refusals_quote_the_header_safely() {
        let long = HeaderValue::from_str(&"application/".repeat(20)).unwrap();
        let shown = shown(&long);
        assert!(shown.len() < 110, "{shown}");
    }
}

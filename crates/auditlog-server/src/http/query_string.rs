//! Query strings as ordered `(key, value)` pairs, so a parameter may repeat
//! (`event=a&event=b`) and every unknown key can be named in the error.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

/// Every query parameter, percent-decoded, in order.
#[derive(Debug, Clone, Default)]
pub struct QueryPairs(pub Vec<(String, String)>);

/// Longer query strings are refused rather than parsed.
pub const MAX_QUERY_BYTES: usize = 8 * 1024;

impl<S: Send + Sync> FromRequestParts<S> for QueryPairs {
    type Rejection = crate::http::error::ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let q = parts.uri.query().unwrap_or("");
        if q.len() > MAX_QUERY_BYTES {
            return Err(crate::http::error::ApiError::bad_request(
                "query_too_long",
                format!("the query string is longer than {MAX_QUERY_BYTES} bytes"),
            ));
        }
        Ok(Self(
            form_urlencoded::parse(q.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        ))
    }
}

//! Refuses query parameters an operation does not take, on every JSON API
//! route, by the OpenAPI document's own list of each operation's
//! parameters.
//!
//! The listing, export and proof handlers name unknown parameters
//! themselves; the others read no query string, so without this a
//! misspelt or misplaced parameter (`?role=admin` on a member list) would
//! be ignored without a word. Taking the list from the document keeps the
//! two from drifting apart: a parameter the document lacks is refused.

use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

use auditlog_domain::ingest::Problem;
use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use utoipa::OpenApi;
use utoipa::openapi::path::ParameterIn;

use crate::http::error::ApiError;

/// Each operation's query parameters, by method and route path.
static QUERY_PARAMETERS: LazyLock<HashMap<(String, String), HashSet<String>>> = LazyLock::new(|| {
    let doc = crate::http::openapi::ApiDoc::openapi();
    let mut out = HashMap::new();
    for (path, item) in &doc.paths.paths {
        let operations = [
            ("GET", &item.get),
            ("PUT", &item.put),
            ("POST", &item.post),
            ("DELETE", &item.delete),
            ("PATCH", &item.patch),
        ];
        for (method, operation) in operations {
            let Some(operation) = operation else { continue };
            let names = operation
                .parameters
                .iter()
                .flatten()
                .filter(|p| matches!(p.parameter_in, ParameterIn::Query))
                .map(|p| p.name.clone())
                .collect();
            out.insert((method.to_owned(), path.clone()), names);
        }
    }
    out
});

pub async fn refuse_unknown(matched: Option<MatchedPath>, req: Request, next: Next) -> Response {
    if let (Some(path), Some(query)) = (matched, req.uri().query())
        && let Some(known) = QUERY_PARAMETERS.get(&(req.method().as_str().to_owned(), path.as_str().to_owned()))
    {
        let problems: Vec<Problem> = form_urlencoded::parse(query.as_bytes())
            .map(|(k, _)| k.into_owned())
            .filter(|k| !known.contains(k))
            .map(|k| {
                let expected = if known.is_empty() {
                    "this operation takes no query parameters".to_owned()
                } else {
                    let mut names: Vec<&str> = known.iter().map(String::as_str).collect();
                    names.sort_unstable();
                    format!("expected one of: {}", names.join(", "))
                };
                Problem {
                    index: None,
                    message: format!("unknown parameter {k:?}; {expected}"),
                    field: k,
                    code: "unknown_parameter",
                    position: None,
                    length: None,
                }
            })
            .collect();
        if let Some(first) = problems.first() {
            return ApiError::BadRequest {
                code: "invalid_query",
                message: first.message.clone(),
                details: problems,
            }
            .into_response();
        }
    }
    next.run(req).await
}

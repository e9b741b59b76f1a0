//! The one error type of the API and its mapping to HTTP, in one place.
//!
//! Every refusal is `{"error": {"code", "message", "details"}}` with a 4xx
//! status; internal failures are logged with their cause and shown only as
//! an opaque 500 (or 503 when waiting will help).

use auditlog_domain::StoreError;
use auditlog_domain::ingest::Problem;
use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::workers::checkpointer::ProofError;

/// The body of every refusal, and its schema in the OpenAPI document.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable and machine-readable, such as `validation_failed`,
    /// `invalid_query`, `unauthenticated` or `not_found`.
    #[schema(examples("validation_failed"))]
    pub code: &'static str,
    /// For people; may change between versions.
    pub message: String,
    /// One item per problem found (empty when there is nothing to add).
    pub details: Vec<Problem>,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed (JSON syntax, query parameters).
    #[error("{message}")]
    BadRequest {
        code: &'static str,
        message: String,
        details: Vec<Problem>,
    },
    /// Well-formed but refused by validation: every problem listed.
    #[error("the request was refused: {} problem(s)", .0.len())]
    Invalid(Vec<Problem>),
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{message}")]
    Forbidden { code: &'static str, message: String },
    #[error("{0}")]
    NotFound(String),
    /// The request is fine but the state does not allow it (a name taken,
    /// the last owner, a value changed meanwhile).
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// A single-use or expiring thing (an invitation) that is spent.
    #[error("{message}")]
    Gone { code: &'static str, message: String },
    #[error("this endpoint does not accept that method")]
    MethodNotAllowed,
    #[error("the request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    /// A body of a type this endpoint does not read (the type, quoted).
    #[error("this endpoint takes application/json; the request's Content-Type is {0}")]
    UnsupportedMediaType(String),
    #[error("the request headers are larger than {0} bytes")]
    HeadersTooLarge(usize),
    #[error("the request body did not arrive in time")]
    BodyTimeout,
    /// Request bodies in flight fill the server's memory budget.
    #[error("the server is reading as many request bodies as it can hold; retry shortly")]
    Overloaded,
    /// Too many attempts; retry after this many seconds.
    #[error("too many attempts; retry in {0} seconds")]
    TooManyRequests(u64),
    #[error("{0}")]
    Unavailable(String),
    /// The request did not finish in time; it may or may not have taken
    /// effect.
    #[error("the request did not finish within {0} seconds")]
    Timeout(u64),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::BadRequest {
            code,
            message: message.into(),
            details: Vec::new(),
        }
    }

    /// A well-formed request refused by validation, with one problem.
    pub fn invalid(field: &str, code: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid(vec![Problem::whole(field, code, message)])
    }

    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        Self::Forbidden {
            code,
            message: message.into(),
        }
    }

    /// The status and what to tell a person on a page: the message, and
    /// each problem's own where there are several.
    pub fn for_people(&self) -> (StatusCode, String) {
        let (status, _, message, details) = self.parts();
        match details {
            [_, _, ..] => {
                let each: Vec<&str> = details.iter().map(|p| p.message.as_str()).collect();
                (status, each.join("; "))
            }
            _ => (status, message),
        }
    }

    fn parts(&self) -> (StatusCode, &'static str, String, &[Problem]) {
        match self {
            ApiError::BadRequest { code, message, details } => {
                (StatusCode::BAD_REQUEST, code, message.clone(), details)
            }
            ApiError::Invalid(problems) => {
                let message = match problems.as_slice() {
                    [one] => one.message.clone(),
                    many => format!("{} problems; see details", many.len()),
                };
                // A forged service event is named as such, not as one more
                // validation failure, so a producer sees at once why.
                let code = if problems.iter().any(|p| p.code == "reserved_event") {
                    "reserved_event"
                } else {
                    "validation_failed"
                };
                (StatusCode::UNPROCESSABLE_ENTITY, code, message, problems)
            }
            ApiError::Unauthenticated(m) => (StatusCode::UNAUTHORIZED, "unauthenticated", m.clone(), &[]),
            ApiError::Forbidden { code, message } => (StatusCode::FORBIDDEN, code, message.clone(), &[]),
            ApiError::NotFound(m) => (StatusCode::NOT_FOUND, "not_found", m.clone(), &[]),
            ApiError::Conflict { code, message } => (StatusCode::CONFLICT, code, message.clone(), &[]),
            ApiError::Gone { code, message } => (StatusCode::GONE, code, message.clone(), &[]),
            ApiError::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                self.to_string(),
                &[],
            ),
            ApiError::PayloadTooLarge(_) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                self.to_string(),
                &[],
            ),
            ApiError::UnsupportedMediaType(_) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                self.to_string(),
                &[],
            ),
            ApiError::HeadersTooLarge(_) => (
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "headers_too_large",
                self.to_string(),
                &[],
            ),
            ApiError::BodyTimeout => (StatusCode::REQUEST_TIMEOUT, "body_timeout", self.to_string(), &[]),
            ApiError::Overloaded => (StatusCode::SERVICE_UNAVAILABLE, "overloaded", self.to_string(), &[]),
            ApiError::TooManyRequests(_) => (
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_requests",
                self.to_string(),
                &[],
            ),
            ApiError::Unavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the audit log cannot be written or read right now; nothing was recorded, retry later".into(),
                &[],
            ),
            ApiError::Timeout(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "timeout",
                format!(
                    "{self}; it may or may not have been recorded: retry, with the same idempotency_key to be sure \
                     it is recorded once"
                ),
                &[],
            ),
            ApiError::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "internal error; it has been logged".into(),
                &[],
            ),
        }
    }
}

impl From<ProofError> for ApiError {
    fn from(e: ProofError) -> Self {
        match e {
            ProofError::Store(e) => e.into(),
            ProofError::Broken(m) => ApiError::Internal(m),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(m) => ApiError::Unavailable(m),
            StoreError::NotFound(what) => ApiError::NotFound(format!("{what} not found")),
            StoreError::Conflict(what) => ApiError::Conflict {
                code: "conflict",
                message: format!("{what} already exists"),
            },
            StoreError::Rejected { code, message } => ApiError::Conflict { code, message },
            StoreError::Internal(m) => ApiError::Internal(m),
        }
    }
}

/// Seconds a client should wait before retrying after a 503.
const RETRY_AFTER_SECS: &str = "5";

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self {
            ApiError::Internal(cause) => tracing::error!(%cause, "internal error"),
            ApiError::Unavailable(cause) => tracing::warn!(%cause, "store unavailable"),
            _ => {}
        }
        let (status, code, message, details) = self.parts();
        let body = ErrorBody {
            error: ErrorDetail {
                code,
                message,
                details: details.to_vec(),
            },
        };
        let mut resp = (status, Json(body)).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_SECS));
        }
        if let ApiError::TooManyRequests(secs) = self {
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        resp
    }
}

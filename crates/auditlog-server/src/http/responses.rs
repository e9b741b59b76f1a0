//! What the OpenAPI annotations of many operations share, declared once:
//! the organization path parameter and the sets of refusals, each status
//! with its response. Handlers name them in `#[utoipa::path]`; the
//! document (`openapi`) lists the responses among its components.

use utoipa::ToResponse;

use crate::http::error::ErrorBody;

/// The organization a `/v1/orgs/{org}/…` operation acts in, declared once
/// for every such operation.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct OrgPath {
    /// The organization's slug.
    org: String,
}

/// Declares a set of refusals that operations share, so their
/// `responses(...)` name the set once instead of a row per status. Each
/// status refers to its response below.
macro_rules! refusals {
    ($(#[$doc:meta])* $name:ident: $($status:literal => $response:ident),+ $(,)?) => {
        $(#[$doc])*
        pub struct $name;

        impl utoipa::IntoResponses for $name {
            fn responses() -> std::collections::BTreeMap<String, utoipa::openapi::RefOr<utoipa::openapi::response::Response>> {
                [$((
                    $status.to_string(),
                    utoipa::openapi::RefOr::Ref(utoipa::openapi::Ref::from_response_name(stringify!($response))),
                )),+]
                .into_iter()
                .collect()
            }
        }
    };
}

refusals!(
    /// What any authenticated operation may answer.
    Denied: "401" => Unauthenticated, "403" => Forbidden, "500" => Internal
);
refusals!(
    /// An operation on one object, which may not exist.
    DeniedOrMissing: "401" => Unauthenticated, "403" => Forbidden, "404" => NotFound, "500" => Internal
);
refusals!(
    /// An action on one object that its state may not allow.
    ActionRefused: "401" => Unauthenticated, "403" => Forbidden, "404" => NotFound, "409" => Conflict,
        "500" => Internal
);
refusals!(
    /// A read with query parameters.
    ReadRefused: "400" => BadRequest, "401" => Unauthenticated, "403" => Forbidden, "500" => Internal
);
refusals!(
    /// An operation that creates from a JSON body.
    CreateRefused: "400" => BadRequest, "401" => Unauthenticated, "403" => Forbidden, "409" => Conflict,
        "413" => PayloadTooLarge, "422" => Unprocessable, "500" => Internal
);
refusals!(
    /// An operation that changes an object from a JSON body.
    UpdateRefused: "400" => BadRequest, "401" => Unauthenticated, "403" => Forbidden, "404" => NotFound,
        "409" => Conflict, "413" => PayloadTooLarge, "422" => Unprocessable, "500" => Internal
);

// The answers an operation may refuse with, one per status, each with the
// error body; operations list those they can give. They are never built:
// `ApiError` is what answers.

/// The request is malformed: a body that is not the JSON this operation
/// takes, or a query parameter that is unknown, repeated or invalid.
/// `details` names each problem.
#[derive(ToResponse)]
#[allow(dead_code)]
pub struct BadRequest(ErrorBody);

/// No credential, or an API key that is malformed, unknown or revoked, or a
/// session that has expired or was signed out.
#[derive(ToResponse)]
#[allow(dead_code)]
pub struct Unauthenticated(ErrorBody);

/// The credential may not do this: a key of another organization, a person
/// who is not a member, a missing scope or role, or a session request that
/// changes state without its CSRF token.
#[derive(ToResponse)]
#[allow(dead_code)]
pub struct Forbidden(ErrorBody);

/// No such object in this organization.
#[derive(ToResponse)]
#[allow(dead_code)]
pub struct NotFound(ErrorBody);

/// The request is fine but the state does not allow it: a name taken, the
/// last owner, a value changed meanwhile.
#[derive(ToResponse)]
#[allow(dead_code)]
pub struct Conflict(ErrorBody);

/// A single-use token (an invitation or reset) that is unknown, already
/// used or expired.
#[derive(ToResponse)]
#[allow(dead_code)]
pub struct Gone(ErrorBody);

/// The body is larger than the server accepts.
#[derive(ToResponse)]
#[allow(dead_code)]
pub struct PayloadTooLarge(ErrorBody);

/// Well-formed but refused by validation; `details` lists every problem
/// (with the event's `index` in a batch). Nothing was written.
#[derive(ToResponse)]
#[allow(dead_code)]
pub struct Unprocessable(ErrorBody);

/// Too many attempts; retry after the seconds in `Retry-After`.
#[derive(ToResponse)]
#[response(headers(("Retry-After" = u64, description = "Seconds to wait.")))]
#[allow(dead_code)]
pub struct TooManyRequests(ErrorBody);

/// An internal error; it has been logged, and nothing about it is shown.
#[derive(ToResponse)]
#[allow(dead_code)]
pub struct Internal(ErrorBody);

/// The store cannot be reached, or the request did not finish in time (it
/// may or may not have taken effect); retry after `Retry-After` seconds.
#[derive(ToResponse)]
#[response(headers(("Retry-After" = u64, description = "Seconds to wait.")))]
#[allow(dead_code)]
pub struct Unavailable(ErrorBody);

/// The request's headers are larger than the server accepts.
#[derive(ToResponse)]
#[allow(dead_code)]
pub struct HeadersTooLarge(ErrorBody);

/// The body is not `application/json` (with `Content-Type` saying so),
/// the only type the API reads.
#[derive(ToResponse)]
#[allow(dead_code)]
pub struct UnsupportedMediaType(ErrorBody);

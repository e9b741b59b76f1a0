//! Who is calling and what they may do.
//!
//! An API key arrives as `Authorization: Bearer lqt_…`. Its format and
//! checksum are checked before any look-up; then its hash is compared in
//! constant time with the stored one. A valid key used against another
//! organization gets 403, never that organization's data.

use auditlog_domain::Org;
use auditlog_domain::api_key::{PresentedKey, Scope};
use auditlog_domain::entry::Actor;
use auditlog_domain::store::ApiKeyRecord;
use axum::http::{HeaderMap, header};

use crate::AppState;
use crate::error::ApiError;

/// An authenticated caller acting on one organization.
#[derive(Debug, Clone)]
pub struct Principal {
    pub org: Org,
    pub key: ApiKeyRecord,
}

impl Principal {
    /// How the log names this caller.
    pub fn actor(&self) -> Actor {
        Actor::api_key(self.key.prefix.as_str())
    }

    pub fn require(&self, scope: Scope) -> Result<(), ApiError> {
        if self.key.scopes.contains(&scope) {
            Ok(())
        } else {
            Err(ApiError::forbidden(
                "missing_scope",
                format!("this API key lacks the {scope} scope"),
            ))
        }
    }
}

const UNKNOWN_KEY: &str = "unknown or revoked API key";

fn bearer(headers: &HeaderMap) -> Result<&str, ApiError> {
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or_else(|| ApiError::Unauthenticated("missing Authorization: Bearer <API key> header".into()))?;
    let value = value
        .to_str()
        .map_err(|_| ApiError::Unauthenticated("the Authorization header is not valid text".into()))?;
    let (scheme, token) = value
        .split_once(' ')
        .ok_or_else(|| ApiError::Unauthenticated("expected Authorization: Bearer <API key>".into()))?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(ApiError::Unauthenticated(
            "expected Authorization: Bearer <API key>".into(),
        ));
    }
    Ok(token.trim())
}

/// Authenticates the request's key for the organization named in the path
/// and checks it holds `scope`.
pub async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    org_slug: &str,
    scope: Scope,
) -> Result<Principal, ApiError> {
    let presented = PresentedKey::parse(bearer(headers)?).map_err(|e| ApiError::Unauthenticated(e.to_string()))?;
    let key = state
        .store
        .api_key(presented.prefix())
        .await?
        .filter(|k| k.hash.matches(&presented.hash()) && k.revoked_at.is_none())
        .ok_or_else(|| ApiError::Unauthenticated(UNKNOWN_KEY.into()))?;
    // Whether the organization does not exist or is someone else's, the
    // answer is the same, so a key cannot probe for other organizations.
    let org = state
        .store
        .org_by_slug(org_slug)
        .await?
        .filter(|o| o.id == key.org_id)
        .ok_or_else(|| {
            ApiError::forbidden(
                "wrong_organization",
                format!("this API key does not belong to organization {org_slug:?}"),
            )
        })?;
    let principal = Principal { org, key };
    principal.require(scope)?;
    Ok(principal)
}

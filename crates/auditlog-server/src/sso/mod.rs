//! Single sign-on through each organization's OpenID Connect provider: the
//! authorization code flow with PKCE, `state` and `nonce`.
//!
//! - [`provider`]: discovery, keys, the code exchange and the ID token's
//!   checks, under the operator's rules on where issuers may be.
//! - [`flow`]: what a sign-in carries from its start to its callback, and
//!   how it is bound to the browser that started it.
//!
//! Who a verified identity becomes (allowed domains, provisioning) and what
//! enforcement admits are the domain's rules, in `auditlog_domain::sso`.

pub mod flow;
pub mod provider;

use reqwest::Url;

/// Why a sign-in through a provider failed, before the person was known.
/// Each is shown on the page the browser lands on and recorded as the
/// failed sign-in's reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SsoError {
    #[error("the identity provider cannot be reached: {0}")]
    Unreachable(String),
    #[error("the issuer is not an OpenID Connect provider: {0}")]
    NotAProvider(String),
    #[error("the issuer is refused by this server's rules: {0}")]
    IssuerRefused(String),
    #[error("the identity provider refused the sign-in: {error} {description}")]
    ProviderError { error: String, description: String },
    #[error(
        "the identity provider refused the authorization code ({error}{}); check the client id and secret",
        if description.is_empty() { String::new() } else { format!(": {description}") }
    )]
    CodeRefused { error: String, description: String },
    #[error("the ID token's signature does not verify with the provider's published keys")]
    BadSignature,
    #[error("the ID token has expired or is not yet valid")]
    Expired,
    #[error("the ID token was issued for another application")]
    WrongAudience,
    #[error("the ID token was issued by another provider")]
    WrongIssuer,
    #[error("the ID token answers another sign-in (its nonce does not match)")]
    WrongNonce,
    #[error("the ID token is not valid: {0}")]
    InvalidToken(String),
    #[error("this sign-in link is not one of ours, or was swept long ago; start again")]
    UnknownState,
    #[error("this sign-in link was already used or has expired; start again")]
    Replayed,
    #[error("this sign-in was started in another browser; start again here")]
    OtherBrowser,
    #[error("the organization has no single sign-on configured")]
    NotConfigured,
    #[error("single sign-on is not available here: the operator has not set the service's public URL (--public-url)")]
    NoPublicUrl,
}

impl SsoError {
    /// The reason as recorded in `session.sign_in_failed`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unreachable(_) => "provider_unreachable",
            Self::NotAProvider(_) => "not_a_provider",
            Self::IssuerRefused(_) => "issuer_refused",
            Self::ProviderError { .. } => "provider_error",
            Self::CodeRefused { .. } => "code_refused",
            Self::BadSignature => "bad_signature",
            Self::Expired => "token_expired",
            Self::WrongAudience => "wrong_audience",
            Self::WrongIssuer => "wrong_issuer",
            Self::WrongNonce => "wrong_nonce",
            Self::InvalidToken(_) => "invalid_token",
            Self::UnknownState => "unknown_state",
            Self::Replayed => "replayed_state",
            Self::OtherBrowser => "other_browser",
            Self::NotConfigured => "not_configured",
            Self::NoPublicUrl => "no_public_url",
        }
    }
}

/// The service's public URL as the operator gives it: http or https, no
/// credentials, query or fragment; kept without a trailing slash.
pub fn parse_public_url(raw: &str) -> Result<Url, String> {
    let url = Url::parse(raw.trim()).map_err(|e| format!("not a URL ({e}); e.g. https://audit.example.com"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("must be http or https, not {}", url.scheme()));
    }
    if url.host().is_none() || !url.username().is_empty() || url.password().is_some() {
        return Err("must name a host and no credentials".into());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("must have no query or fragment".into());
    }
    Ok(url)
}

/// The redirect URI registered at providers: the public URL's
/// `/sso/callback`.
pub fn redirect_uri(public_url: &Url) -> String {
    format!("{}/sso/callback", public_url.as_str().trim_end_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_public_url_gives_the_redirect_uri() {
        for (given, want) in [
            ("https://audit.example.com", "https://audit.example.com/sso/callback"),
            ("https://audit.example.com/", "https://audit.example.com/sso/callback"),
            (
                "http://127.0.0.1:8080/auditlog/",
                "http://127.0.0.1:8080/auditlog/sso/callback",
            ),
        ] {
            assert_eq!(redirect_uri(&parse_public_url(given).unwrap()), want);
        }
        for bad in [
            "audit.example.com",
            "ftp://x.example",
            "https://u:p@x.example",
            "https://x.example/?a=b",
            "https://x.example/#f",
        ] {
            assert!(parse_public_url(bad).is_err(), "{bad}");
        }
    }
}

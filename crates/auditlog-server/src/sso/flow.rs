//! One sign-in from its start to its callback: the random `state`, `nonce`
//! and PKCE verifier, and the binding to the browser that started it.
//!
//! Only the SHA-256 of `state` is stored, with the rest sealed by the
//! server's key, so neither a database reader nor the provider can finish
//! someone else's sign-in. The browser gets a random binding in a cookie,
//! of which the flow keeps the hash: a callback URL opened in another
//! browser (sign-in CSRF, where an attacker makes a victim finish the
//! attacker's sign-in) does not match it.

use auditlog_domain::sealed::SecretSealer;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The cookie that binds a sign-in to its browser. `SameSite=Lax`: it must
/// come back on the provider's cross-site redirect to the callback.
pub const COOKIE: &str = "auditlog_sso";

/// What the callback needs, sealed into the stored flow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Secrets {
    pub nonce: String,
    pub verifier: String,
    /// SHA-256 of the browser's binding, base64url.
    pub binding_hash: String,
    /// The email the person gave on the sign-in page.
    pub email: String,
    /// Where to go once signed in (a local path, checked at the start).
    pub next: String,
    /// The organization's slug (the stored flow has its id).
    pub org: String,
}

/// A new sign-in: the `state` for the provider, the binding for the
/// browser's cookie, and the secrets to keep.
#[derive(Debug)]
pub struct Started {
    pub state: String,
    pub binding: String,
    pub challenge: String,
    pub secrets: Secrets,
}

fn random() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

fn sha256_b64(text: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(text.as_bytes()))
}

pub fn start(email: &str, next: &str, org: &str) -> Started {
    let binding = random();
    let verifier = random();
    Started {
        state: random(),
        challenge: challenge(&verifier),
        secrets: Secrets {
            nonce: random(),
            binding_hash: sha256_b64(&binding),
            verifier,
            email: email.to_owned(),
            next: next.to_owned(),
            org: org.to_owned(),
        },
        binding,
    }
}

/// RFC 7636's S256 code challenge of a verifier.
pub fn challenge(verifier: &str) -> String {
    sha256_b64(verifier)
}

/// The key a flow is stored under.
pub fn state_hash(state: &str) -> [u8; 32] {
    Sha256::digest(state.as_bytes()).into()
}

pub fn seal(sealer: &SecretSealer, secrets: &Secrets) -> Vec<u8> {
    sealer.seal(&serde_json::to_vec(secrets).unwrap_or_default())
}

pub fn open(sealer: &SecretSealer, sealed: &[u8]) -> Option<Secrets> {
    let plain = sealer.open(sealed).ok()?;
    serde_json::from_slice(&plain).ok()
}

/// Whether the browser's cookie is the one its sign-in started with.
pub fn same_browser(secrets: &Secrets, binding: Option<&str>) -> bool {
    binding.is_some_and(|b| sha256_b64(b).as_bytes().ct_eq(secrets.binding_hash.as_bytes()).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_challenge_is_rfc_7636s() {
        // RFC 7636, Appendix B.
        assert_eq!(
            challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn flows_are_random_sealed_and_bound_to_their_browser() {
        let sealer = SecretSealer::derive(&[7; 32]);
        let a = start("ada@acme.com", "/", "acme");
        let b = start("ada@acme.com", "/", "acme");
        assert_ne!(a.state, b.state);
        assert_ne!(a.secrets.nonce, b.secrets.nonce);
        assert_eq!(a.challenge, challenge(&a.secrets.verifier));
        let sealed = seal(&sealer, &a.secrets);
        assert!(!String::from_utf8_lossy(&sealed).contains(&a.secrets.verifier));
        assert_eq!(open(&sealer, &sealed), Some(a.secrets.clone()));
        assert!(same_browser(&a.secrets, Some(&a.binding)));
        assert!(!same_browser(&a.secrets, Some(&b.binding)));
        assert!(!same_browser(&a.secrets, None));
    }
}

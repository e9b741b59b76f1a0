//! Web sessions: a random token in an HttpOnly cookie, of which only the
//! SHA-256 is stored, plus a CSRF token that cookie-authenticated requests
//! that change state must echo in a header.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::Rng;
use sha2::{Digest, Sha256};

use crate::Timestamp;
use crate::sso::SessionOrigin;

/// Sessions last a working day; signing in again is cheap.
pub const SESSION_TTL_MS: i64 = 12 * 60 * 60 * 1000;

#[derive(Clone, PartialEq, Eq)]
pub struct Session {
    pub token_hash: [u8; 32],
    pub email: String,
    pub csrf_token: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    /// How it began, for organizations that enforce single sign-on.
    pub origin: SessionOrigin,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("email", &self.email)
            .field("expires_at", &self.expires_at)
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn hash_token(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// A new session and the cookie value that names it (shown once).
pub fn start(email: &str, now: Timestamp, origin: SessionOrigin) -> (String, Session) {
    let token = random_token();
    let session = Session {
        token_hash: hash_token(&token),
        email: email.to_owned(),
        csrf_token: random_token(),
        created_at: now,
        expires_at: now.plus_millis(SESSION_TTL_MS),
        origin,
    };
    (token, session)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_only_their_hash_is_kept() {
        let (t1, s1) = start("a@b.co", Timestamp(0), SessionOrigin::PASSWORD);
        let (t2, s2) = start("a@b.co", Timestamp(0), SessionOrigin::PASSWORD);
        assert_ne!(t1, t2);
        assert_ne!(s1.csrf_token, s2.csrf_token);
        assert_eq!(s1.token_hash, hash_token(&t1));
        assert_eq!(t1.len(), 43, "256 bits, base64url");
        assert_eq!(s1.expires_at, Timestamp(SESSION_TTL_MS));
        assert!(!format!("{s1:?}").contains(&s1.csrf_token));
    }
}

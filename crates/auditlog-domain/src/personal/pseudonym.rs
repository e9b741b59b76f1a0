//! Keyed pseudonyms of subjects: how the store names a person without
//! holding their email.
//!
//! A subject's key is found by its pseudonym, searches by a person match
//! pseudonyms (a blind index), and an erasure is recorded with the
//! pseudonym of whom it erased. Each is `HMAC-SHA256(pseudonym key,
//! context || subject)`: without the key, which lives outside the database
//! as the webhook sealing key does, a pseudonym cannot be tested against a
//! guessed email.

use ring::{hkdf, hmac};

use super::fields::Subject;

const SALT: &[u8] = b"auditlog";
const INFO: &[u8] = b"auditlog subject pseudonyms v1";
const CONTEXT: &[u8] = b"auditlog subject v1\0";

/// The key pseudonyms are made with, one per deployment.
pub struct PseudonymKey(hmac::Key);

impl std::fmt::Debug for PseudonymKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PseudonymKey(…)")
    }
}

/// A subject's pseudonym.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pseudonym(pub [u8; 32]);

impl PseudonymKey {
    /// The key derived (HKDF-SHA256) from `master`, the same secret the
    /// webhook sealing key comes from, under a context of its own.
    pub fn derive(master: &[u8]) -> Self {
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, SALT).extract(master);
        // HMAC-SHA256's key length is well under HKDF's limit.
        let okm = prk
            .expand(&[INFO], hmac::HMAC_SHA256)
            .expect("HKDF output length is valid");
        Self(hmac::Key::from(okm))
    }

    pub fn of(&self, subject: &Subject) -> Pseudonym {
        let mut ctx = hmac::Context::with_key(&self.0);
        ctx.update(CONTEXT);
        ctx.update(subject.as_str().as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(ctx.sign().as_ref());
        Pseudonym(out)
    }
}

impl Pseudonym {
    pub fn to_hex(&self) -> String {
        crate::merkle::hash_to_hex(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subject(s: &str) -> Subject {
        Subject::new(s).unwrap()
    }

    #[test]
    fn one_person_one_pseudonym_per_key() {
        let k = PseudonymKey::derive(&[7; 32]);
        let ada = k.of(&subject("ada@acme.com"));
        assert_eq!(ada, k.of(&subject(" ADA@acme.com")), "as accounts are named");
        assert_ne!(ada, k.of(&subject("bob@acme.com")));
        assert_ne!(ada, PseudonymKey::derive(&[8; 32]).of(&subject("ada@acme.com")));
        assert_eq!(ada.to_hex().len(), 64);
        assert!(!ada.to_hex().contains("ada"));
        assert_eq!(format!("{k:?}"), "PseudonymKey(…)");
    }

    #[test]
    fn the_derivation_is_pinned() {
        // Python: hmac.new(HKDF-SHA256(salt=b"auditlog", ikm=bytes(32*[7]),
        // info=b"auditlog subject pseudonyms v1", 32), b"auditlog subject v1\0ada@acme.com", sha256)
        let k = PseudonymKey::derive(&[7; 32]);
        assert_eq!(k.of(&subject("ada@acme.com")).to_hex(), PINNED);
    }

    const PINNED: &str = "199d85cdd04f89cf0e465b76e5ffe87a8850e7c919c57414d42d4f874670f912";
}

//! Webhook signing secrets sealed at rest.
//!
//! The service must read a webhook's secret to sign each delivery, so the
//! secret cannot be hashed like an API key; it is encrypted instead, with
//! ChaCha20-Poly1305 under a key derived (HKDF-SHA256) from a master secret
//! the operator holds outside the database. A copy of the database alone,
//! a backup say, then reveals no secret.
//!
//! A sealed value is `MAGIC || nonce || ciphertext || tag`. Values without
//! the magic are secrets written before sealing existed; they are read as
//! they are, and [`SecretSealer::needs_sealing`] finds them so the store can
//! seal them in place.

use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::hkdf;
use ring::rand::{SecureRandom, SystemRandom};

/// Marks a sealed value. Eight bytes, so a legacy 32-byte random secret
/// starts with it by chance with probability 2^-64.
const MAGIC: &[u8; 8] = b"alseal1:";
/// The derivation's context: a key for this purpose only.
const INFO: &[u8] = b"auditlog webhook signing secrets v1";
const SALT: &[u8] = b"auditlog";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    /// The value was sealed under another key, or has been altered.
    #[error("a sealed webhook secret cannot be opened: it was sealed under another key, or altered")]
    CannotOpen,
}

/// Seals and opens webhook secrets under one derived key.
pub struct SecretSealer {
    key: LessSafeKey,
    rng: SystemRandom,
}

impl std::fmt::Debug for SecretSealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretSealer(…)")
    }
}

struct KeyLen;

impl hkdf::KeyType for KeyLen {
    fn len(&self) -> usize {
        CHACHA20_POLY1305.key_len()
    }
}

impl SecretSealer {
    /// The sealer whose key is derived from `master` (at least 32 bytes of
    /// secret material, such as the checkpoint signing key's seed).
    pub fn derive(master: &[u8]) -> Self {
        Self::derive_for(master, INFO)
    }

    /// The sealer for another purpose (`info` names it), from the same
    /// master secret: a key of its own, so nothing sealed for one purpose
    /// opens as another's.
    pub fn derive_for(master: &[u8], info: &[u8]) -> Self {
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, SALT).extract(master);
        let mut bytes = [0u8; 32];
        // Both cannot fail: the output length is the algorithm's own and
        // well under HKDF's limit.
        let info = [info];
        let okm = prk.expand(&info, KeyLen).expect("HKDF output length is valid");
        okm.fill(&mut bytes).expect("HKDF fill of the key length");
        let key = UnboundKey::new(&CHACHA20_POLY1305, &bytes).expect("ChaCha20 key length");
        Self {
            key: LessSafeKey::new(key),
            rng: SystemRandom::new(),
        }
    }

    /// Encrypts `plain` under a fresh random nonce.
    pub fn seal(&self, plain: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        // The OS generator does not fail on any platform this runs on; were
        // it to, refusing to store the secret is right.
        self.rng.fill(&mut nonce).expect("the OS random generator failed");
        let mut sealed = Vec::with_capacity(MAGIC.len() + NONCE_LEN + plain.len() + CHACHA20_POLY1305.tag_len());
        sealed.extend_from_slice(MAGIC);
        sealed.extend_from_slice(&nonce);
        let mut body = plain.to_vec();
        self.key
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(MAGIC), &mut body)
            .expect("sealing fits in memory");
        sealed.extend_from_slice(&body);
        sealed
    }

    /// The secret in `stored`: decrypted if sealed, as it is if not.
    pub fn open(&self, stored: &[u8]) -> Result<Vec<u8>, SealError> {
        let Some(rest) = stored.strip_prefix(MAGIC.as_slice()) else {
            return Ok(stored.to_vec());
        };
        if rest.len() < NONCE_LEN + CHACHA20_POLY1305.tag_len() {
            return Err(SealError::CannotOpen);
        }
        let (nonce, body) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SealError::CannotOpen)?;
        let mut body = body.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(MAGIC), &mut body)
            .map_err(|_| SealError::CannotOpen)?;
        Ok(plain.to_vec())
    }

    /// True for a value stored before secrets were sealed.
    pub fn needs_sealing(stored: &[u8]) -> bool {
        !stored.starts_with(MAGIC)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_secrets_open_only_under_their_key_and_reveal_nothing() {
        let sealer = SecretSealer::derive(&[7u8; 32]);
        let secret = b"thirty-two bytes of secret here!";
        let sealed = sealer.seal(secret);
        assert!(!SecretSealer::needs_sealing(&sealed));
        assert!(
            !sealed.windows(8).any(|w| secret.windows(8).any(|s| s == w)),
            "no part of the secret appears in the sealed value"
        );
        assert_eq!(sealer.open(&sealed).unwrap(), secret);
        // A fresh nonce each time.
        assert_ne!(sealer.seal(secret), sealed);
        assert_eq!(
            SecretSealer::derive(&[8u8; 32]).open(&sealed),
            Err(SealError::CannotOpen)
        );
    }

    #[test]
    fn altered_or_truncated_values_are_refused() {
        let sealer = SecretSealer::derive(&[1u8; 32]);
        let mut sealed = sealer.seal(b"secret");
        let last = sealed.len() - 1;
        sealed[last] ^= 1;
        assert_eq!(sealer.open(&sealed), Err(SealError::CannotOpen));
        assert_eq!(sealer.open(&sealed[..MAGIC.len() + 3]), Err(SealError::CannotOpen));
    }

    #[test]
    fn values_stored_before_sealing_read_as_they_are() {
        let sealer = SecretSealer::derive(&[1u8; 32]);
        let legacy = vec![42u8; 32];
        assert!(SecretSealer::needs_sealing(&legacy));
        assert_eq!(sealer.open(&legacy).unwrap(), legacy);
    }
}

//! A subject's key and what is made from it: the salt of each personal
//! value, the commitment a leaf holds, the opening that proves a value, and
//! the sealed copy of the value the store keeps (see the module comment of
//! [`super`]).
//!
//! Everything derived from the key is bound to the entry id and the field
//! path, so a salt or a ciphertext cannot be moved to another entry or
//! field. Nothing here does I/O but [`SubjectKey::generate`], which asks the
//! operating system for randomness.

use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use uuid::Uuid;

/// Separates each use of the key, so no derived value can stand in for
/// another.
const SALT_CONTEXT: &[u8] = b"auditlog salt v1\0";
const SEAL_KEY_CONTEXT: &[u8] = b"auditlog seal key v1\0";
const NONCE_CONTEXT: &[u8] = b"auditlog seal nonce v1\0";
const COMMITMENT_CONTEXT: &[u8] = b"auditlog commitment v1\0";

/// One subject's secret, 32 random bytes. Destroying it is erasure.
#[derive(Clone, PartialEq, Eq)]
pub struct SubjectKey([u8; 32]);

impl std::fmt::Debug for SubjectKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SubjectKey(…)")
    }
}

/// A value's salt: secret while its subject's key exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Salt(pub [u8; 32]);

/// What a leaf holds in place of a personal value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Commitment(pub [u8; 32]);

/// A value with the salt that opens its commitment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opening {
    pub value: String,
    pub salt: Salt,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    #[error(
        "a sealed personal value cannot be opened: it was sealed under another key or for another field, or altered"
    )]
    CannotOpen,
    #[error("a sealed personal value is not UTF-8 text")]
    NotText,
}

impl SubjectKey {
    /// A new key from the operating system's random source.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        // The system's random source does not fail on the platforms we
        // build for; a key of zeros would be worse than stopping.
        SystemRandom::new()
            .fill(&mut bytes)
            .expect("the operating system's random source works");
        Self(bytes)
    }

    /// The key as stored.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The salt of the value at `path` in entry `entry`.
    pub fn salt(&self, entry: Uuid, path: &str) -> Salt {
        Salt(self.mac(SALT_CONTEXT, entry, path))
    }

    /// The commitment to `value` at `path` in entry `entry`.
    pub fn commit(&self, entry: Uuid, path: &str, value: &str) -> Commitment {
        commit(&self.salt(entry, path), value)
    }

    /// The opening of `value` at `path` in entry `entry`.
    pub fn opening(&self, entry: Uuid, path: &str, value: &str) -> Opening {
        Opening {
            value: value.to_owned(),
            salt: self.salt(entry, path),
        }
    }

    /// `value` encrypted and authenticated for `path` in entry `entry`:
    /// `ciphertext || tag`. The nonce is derived from the entry and path,
    /// each of which is sealed once under a key (entries never change), so
    /// no nonce is ever reused with a different value.
    pub fn seal(&self, entry: Uuid, path: &str, value: &str) -> Vec<u8> {
        let mut out = value.as_bytes().to_vec();
        // Sealing fails only for inputs over ChaCha20-Poly1305's limit of
        // 256 GiB; a value is capped far below that on ingest.
        self.aead()
            .seal_in_place_append_tag(self.nonce(entry, path), aad(entry, path), &mut out)
            .expect("a personal value is far below ChaCha20-Poly1305's limit");
        out
    }

    /// The value [`Self::seal`] sealed for `path` in entry `entry`.
    pub fn open(&self, entry: Uuid, path: &str, sealed: &[u8]) -> Result<String, OpenError> {
        let mut buf = sealed.to_vec();
        let plain = self
            .aead()
            .open_in_place(self.nonce(entry, path), aad(entry, path), &mut buf)
            .map_err(|_| OpenError::CannotOpen)?;
        String::from_utf8(plain.to_vec()).map_err(|_| OpenError::NotText)
    }

    fn mac(&self, context: &[u8], entry: Uuid, path: &str) -> [u8; 32] {
        let key = hmac::Key::new(hmac::HMAC_SHA256, &self.0);
        let mut ctx = hmac::Context::with_key(&key);
        ctx.update(context);
        ctx.update(entry.as_bytes());
        ctx.update(path.as_bytes());
        let tag = ctx.sign();
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        out
    }

    fn aead(&self) -> LessSafeKey {
        let key = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &self.0), SEAL_KEY_CONTEXT);
        // A 32-byte key is what ChaCha20-Poly1305 takes.
        LessSafeKey::new(UnboundKey::new(&CHACHA20_POLY1305, key.as_ref()).expect("a 32-byte key"))
    }

    fn nonce(&self, entry: Uuid, path: &str) -> Nonce {
        let mac = self.mac(NONCE_CONTEXT, entry, path);
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&mac[..NONCE_LEN]);
        Nonce::assume_unique_for_key(nonce)
    }
}

/// Binds a ciphertext to its entry and field.
fn aad(entry: Uuid, path: &str) -> Aad<Vec<u8>> {
    let mut bytes = entry.as_bytes().to_vec();
    bytes.extend_from_slice(path.as_bytes());
    Aad::from(bytes)
}

/// The commitment to `value` under `salt`.
pub fn commit(salt: &Salt, value: &str) -> Commitment {
    let mut h = Sha256::new();
    h.update(COMMITMENT_CONTEXT);
    h.update(salt.0);
    h.update(value.as_bytes());
    Commitment(h.finalize().into())
}

impl Opening {
    /// Does this opening fit `commitment`? Compared in constant time, as
    /// a verifier may be a service answering many guesses.
    pub fn opens(&self, commitment: &Commitment) -> bool {
        commit(&self.salt, &self.value).0.ct_eq(&commitment.0).into()
    }
}

impl Commitment {
    pub fn to_hex(&self) -> String {
        hex(&self.0)
    }

    pub fn from_hex(s: &str) -> Option<Self> {
        from_hex(s).map(Self)
    }
}

impl Salt {
    pub fn to_hex(&self) -> String {
        hex(&self.0)
    }

    pub fn from_hex(s: &str) -> Option<Self> {
        from_hex(s).map(Self)
    }
}

fn hex(bytes: &[u8; 32]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// 64 lowercase hex digits, as [`hex`] writes them, and nothing else.
fn from_hex(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 || !s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const E1: Uuid = Uuid::from_u128(1);
    const E2: Uuid = Uuid::from_u128(2);

    fn key(n: u8) -> SubjectKey {
        SubjectKey::from_bytes([n; 32])
    }

    #[test]
    fn an_opening_fits_its_commitment_and_nothing_else() {
        let k = key(1);
        let c = k.commit(E1, "actor.id", "alice@acme.com");
        assert!(k.opening(E1, "actor.id", "alice@acme.com").opens(&c));
        // A forged value, or the right value with the salt of another
        // entry, field or key, does not open it.
        assert!(!k.opening(E1, "actor.id", "mallory@acme.com").opens(&c));
        assert!(!k.opening(E2, "actor.id", "alice@acme.com").opens(&c));
        assert!(!k.opening(E1, "details.member", "alice@acme.com").opens(&c));
        assert!(!key(2).opening(E1, "actor.id", "alice@acme.com").opens(&c));
    }

    #[test]
    fn salts_differ_per_entry_field_and_key() {
        let k = key(1);
        let s = k.salt(E1, "ip_address");
        assert_eq!(s, k.salt(E1, "ip_address"), "derived, not random");
        assert_ne!(s, k.salt(E2, "ip_address"));
        assert_ne!(s, k.salt(E1, "user_agent"));
        assert_ne!(s, key(2).salt(E1, "ip_address"));
        // The same value in two entries has unrelated commitments, so a
        // reader cannot link them once the key is gone.
        assert_ne!(k.commit(E1, "actor.id", "a@x.io"), k.commit(E2, "actor.id", "a@x.io"));
    }

    #[test]
    fn commitment_matches_its_published_definition() {
        // What an independent verifier computes from an export.
        let salt = Salt([7; 32]);
        let mut h = Sha256::new();
        h.update(b"auditlog commitment v1\0");
        h.update([7u8; 32]);
        h.update(b"203.0.113.7");
        assert_eq!(commit(&salt, "203.0.113.7").0, <[u8; 32]>::from(h.finalize()));
    }

    #[test]
    fn sealed_values_open_only_with_their_key_entry_and_field() {
        let k = key(1);
        let sealed = k.seal(E1, "details.member", "bob@acme.com");
        assert!(!sealed.windows(3).any(|w| w == b"bob"), "the value is not in the clear");
        assert_eq!(k.open(E1, "details.member", &sealed).unwrap(), "bob@acme.com");
        assert_eq!(key(2).open(E1, "details.member", &sealed), Err(OpenError::CannotOpen));
        assert_eq!(k.open(E2, "details.member", &sealed), Err(OpenError::CannotOpen));
        assert_eq!(k.open(E1, "actor.id", &sealed), Err(OpenError::CannotOpen));
        let mut altered = sealed.clone();
        altered[0] ^= 1;
        assert_eq!(k.open(E1, "details.member", &altered), Err(OpenError::CannotOpen));
        assert_eq!(k.open(E1, "details.member", &[]), Err(OpenError::CannotOpen));
    }

    #[test]
    fn generated_keys_are_random() {
        assert_ne!(SubjectKey::generate(), SubjectKey::generate());
        assert_eq!(format!("{:?}", key(9)), "SubjectKey(…)", "a key never reaches a log");
    }

    #[test]
    fn hex_round_trips_and_refuses_anything_else() {
        let c = key(3).commit(E1, "actor.id", "x");
        assert_eq!(Commitment::from_hex(&c.to_hex()), Some(c));
        assert_eq!(Salt::from_hex(&"ab".repeat(32)), Some(Salt([0xab; 32])));
        for bad in [
            "",
            &"ab".repeat(31),
            &"AB".repeat(32),
            &"zz".repeat(32),
            &"ab".repeat(33),
        ] {
            assert_eq!(Commitment::from_hex(bad), None, "{bad}");
        }
        assert_eq!(Commitment::from_hex(&format!("+{}", "a".repeat(63))), None);
    }
}

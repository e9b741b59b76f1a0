//! A subject's key and what is made from it: the salt of each entry's
//! values of that person, the commitment a leaf holds for each value, the
//! opening that proves one, and the sealed copy of the values the store
//! keeps (see the module comment of [`super`]).
//!
//! One salt and one sealed copy per entry and subject, not per value: the
//! writer makes them for every entry it commits, and an entry's values of
//! one person (actor, IP address, user agent, submitter) are erased
//! together anyway. Each commitment still covers one value, under its
//! path, so a value cannot be moved to another field. Nothing here does
//! I/O but [`SubjectKey::generate`], which asks the operating system for
//! randomness.

use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use crate::merkle::hash_to_hex;

/// Separates each use of the key, so no derived value can stand in for
/// another.
const SALT_CONTEXT: &[u8] = b"auditlog salt v1\0";
const SEAL_KEY_CONTEXT: &[u8] = b"auditlog seal key v1\0";
const COMMITMENT_CONTEXT: &[u8] = b"auditlog commitment v1\0";

/// One subject's secret, 32 random bytes, with what is derived from it
/// made once. Destroying the secret is erasure.
#[derive(Clone)]
pub struct SubjectKey {
    secret: [u8; 32],
    mac: hmac::Key,
    seal: LessSafeKey,
}

impl std::fmt::Debug for SubjectKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SubjectKey(…)")
    }
}

impl PartialEq for SubjectKey {
    fn eq(&self, other: &Self) -> bool {
        self.secret.ct_eq(&other.secret).into()
    }
}

impl Eq for SubjectKey {}

/// The salt of one subject's values in one entry: secret while the key
/// exists.
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
        "sealed personal values cannot be opened: they were sealed under another key or for another entry, or altered"
    )]
    CannotOpen,
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
        Self::from_bytes(bytes)
    }

    /// The key as stored.
    pub fn from_bytes(secret: [u8; 32]) -> Self {
        let mac = hmac::Key::new(hmac::HMAC_SHA256, &secret);
        let seal_key = hmac::sign(&mac, SEAL_KEY_CONTEXT);
        // A 32-byte key is what ChaCha20-Poly1305 takes.
        let seal = LessSafeKey::new(UnboundKey::new(&CHACHA20_POLY1305, seal_key.as_ref()).expect("a 32-byte key"));
        Self { secret, mac, seal }
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.secret
    }

    /// The salt of this subject's values in entry `entry`.
    pub fn salt(&self, entry: Uuid) -> Salt {
        let mut ctx = hmac::Context::with_key(&self.mac);
        ctx.update(SALT_CONTEXT);
        ctx.update(entry.as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(ctx.sign().as_ref());
        Salt(out)
    }

    /// This subject's values of entry `entry` (as the caller encodes them)
    /// encrypted and authenticated: `ciphertext || tag`, bound to the entry.
    pub fn seal(&self, entry: Uuid, plain: &[u8]) -> Vec<u8> {
        let mut out = plain.to_vec();
        // Sealing fails only past ChaCha20-Poly1305's limit of 256 GiB; an
        // entry is capped far below that on ingest.
        self.seal
            .seal_in_place_append_tag(self.nonce(entry), Aad::from(entry.as_bytes()), &mut out)
            .expect("an entry is far below ChaCha20-Poly1305's limit");
        out
    }

    /// What [`Self::seal`] sealed for entry `entry`.
    pub fn open(&self, entry: Uuid, sealed: &[u8]) -> Result<Vec<u8>, OpenError> {
        let mut buf = sealed.to_vec();
        let plain = self
            .seal
            .open_in_place(self.nonce(entry), Aad::from(entry.as_bytes()), &mut buf)
            .map_err(|_| OpenError::CannotOpen)?;
        Ok(plain.to_vec())
    }

    /// The nonce of the entry's sealed values: the head of its salt. A nonce
    /// must never repeat under one key, and each entry is sealed once per
    /// subject (entries never change); it is never stored, and a salt an
    /// export reveals says nothing about the sealing key.
    fn nonce(&self, entry: Uuid) -> Nonce {
        let salt = self.salt(entry);
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&salt.0[..NONCE_LEN]);
        Nonce::assume_unique_for_key(nonce)
    }
}

/// The commitment to `value` at `path` under `salt`:
/// `SHA-256(context || salt || len(path) as u32 big-endian || path || value)`.
/// The length keeps a path and a value from trading bytes.
pub fn commit(salt: &Salt, path: &str, value: &str) -> Commitment {
    let mut h = Sha256::new();
    h.update(COMMITMENT_CONTEXT);
    h.update(salt.0);
    h.update((path.len() as u32).to_be_bytes());
    h.update(path.as_bytes());
    h.update(value.as_bytes());
    Commitment(h.finalize().into())
}

impl Opening {
    /// Does this opening fit `commitment` at `path`? Compared in constant
    /// time, as a verifier may be a service answering many guesses.
    pub fn opens(&self, path: &str, commitment: &Commitment) -> bool {
        commit(&self.salt, path, &self.value).0.ct_eq(&commitment.0).into()
    }
}

impl Commitment {
    pub fn to_hex(&self) -> String {
        hash_to_hex(&self.0)
    }

    pub fn from_hex(s: &str) -> Option<Self> {
        from_hex(s).map(Self)
    }
}

impl Salt {
    pub fn to_hex(&self) -> String {
        hash_to_hex(&self.0)
    }

    pub fn from_hex(s: &str) -> Option<Self> {
        from_hex(s).map(Self)
    }
}

/// 64 lowercase hex digits, as [`hash_to_hex`] writes them, and nothing else.
fn from_hex(s: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    let decoded = base16ct::lower::decode(s, &mut out).ok()?;
    (decoded.len() == 32).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const E1: Uuid = Uuid::from_u128(1);
    const E2: Uuid = Uuid::from_u128(2);

    fn key(n: u8) -> SubjectKey {
        SubjectKey::from_bytes([n; 32])
    }

    fn opening(k: &SubjectKey, entry: Uuid, value: &str) -> Opening {
        Opening {
            value: value.into(),
            salt: k.salt(entry),
        }
    }

    #[test]
    fn an_opening_fits_its_commitment_and_nothing_else() {
        let k = key(1);
        let c = commit(&k.salt(E1), "actor.id", "alice@acme.com");
        assert!(opening(&k, E1, "alice@acme.com").opens("actor.id", &c));
        // A forged value, or the right value with the salt of another
        // entry or key, or at another path, does not open it.
        assert!(!opening(&k, E1, "mallory@acme.com").opens("actor.id", &c));
        assert!(!opening(&k, E2, "alice@acme.com").opens("actor.id", &c));
        assert!(!opening(&key(2), E1, "alice@acme.com").opens("actor.id", &c));
        assert!(!opening(&k, E1, "alice@acme.com").opens("details.member", &c));
    }

    #[test]
    fn a_path_and_a_value_cannot_trade_bytes() {
        let salt = key(1).salt(E1);
        assert_ne!(commit(&salt, "details.a", "bx"), commit(&salt, "details.ab", "x"));
    }

    #[test]
    fn salts_differ_per_entry_and_key() {
        let k = key(1);
        let s = k.salt(E1);
        assert_eq!(s, k.salt(E1), "derived, not random");
        assert_ne!(s, k.salt(E2));
        assert_ne!(s, key(2).salt(E1));
        // The same value in two entries has unrelated commitments, so a
        // reader cannot link them once the key is gone.
        assert_ne!(
            commit(&k.salt(E1), "actor.id", "a@x.io"),
            commit(&k.salt(E2), "actor.id", "a@x.io")
        );
    }

    #[test]
    fn commitment_matches_its_published_definition() {
        // What an independent verifier computes from an export.
        let salt = Salt([7; 32]);
        let mut h = Sha256::new();
        h.update(b"auditlog commitment v1\0");
        h.update([7u8; 32]);
        h.update([0, 0, 0, 10]);
        h.update(b"ip_address");
        h.update(b"203.0.113.7");
        assert_eq!(
            commit(&salt, "ip_address", "203.0.113.7").0,
            <[u8; 32]>::from(h.finalize())
        );
    }

    #[test]
    fn sealed_values_open_only_with_their_key_and_entry() {
        let k = key(1);
        let sealed = k.seal(E1, br#"{"details.member":"bob@acme.com"}"#);
        assert!(
            !sealed.windows(3).any(|w| w == b"bob"),
            "the values are not in the clear"
        );
        assert_eq!(k.open(E1, &sealed).unwrap(), br#"{"details.member":"bob@acme.com"}"#);
        assert_eq!(key(2).open(E1, &sealed), Err(OpenError::CannotOpen));
        assert_eq!(k.open(E2, &sealed), Err(OpenError::CannotOpen));
        let mut altered = sealed.clone();
        altered[0] ^= 1;
        assert_eq!(k.open(E1, &altered), Err(OpenError::CannotOpen));
        assert_eq!(k.open(E1, &[]), Err(OpenError::CannotOpen));
    }

    #[test]
    fn generated_keys_are_random_and_never_printed() {
        let k = SubjectKey::generate();
        assert_ne!(k, SubjectKey::generate());
        assert_eq!(SubjectKey::from_bytes(*k.as_bytes()), k, "stored and read back");
        assert_eq!(format!("{:?}", key(9)), "SubjectKey(…)");
    }

    #[test]
    fn hex_round_trips_and_refuses_anything_else() {
        let c = commit(&key(3).salt(E1), "actor.id", "x");
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

//! API keys: `lqt_<prefix>_<secret><checksum>`.
//!
//! - `prefix`: 8 lower-case letters and digits, public; `lqt_<prefix>` is how
//!   the log names the key as an actor.
//! - `secret`: 44 base62 characters (about 262 bits) from the OS's CSPRNG.
//! - `checksum`: CRC32 of everything before it, as 6 base62 characters, the
//!   way GitHub's tokens carry one: a mistyped or truncated key is refused
//!   without a database look-up, and secret scanners can recognise real keys.
//!
//! Only the SHA-256 of the whole key is stored; comparison is constant-time.
//! A fast hash is right here, unlike for passwords: the secret has 262 bits of
//! entropy, so there is nothing for a slow hash to protect against.

use std::fmt;
use std::str::FromStr;

use rand::RngExt;
use rand::distr::Alphanumeric;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub const KEY_PREFIX: &str = "lqt_";
const PREFIX_LEN: usize = 8;
const SECRET_LEN: usize = 44;
const CHECKSUM_LEN: usize = 6;
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Scope {
    #[serde(rename = "audit:write")]
    AuditWrite,
    #[serde(rename = "audit:read")]
    AuditRead,
    #[serde(rename = "admin")]
    Admin,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::AuditWrite => "audit:write",
            Scope::AuditRead => "audit:read",
            Scope::Admin => "admin",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown scope {0:?}: expected audit:write, audit:read or admin")]
pub struct UnknownScope(pub String);

impl FromStr for Scope {
    type Err = UnknownScope;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "audit:write" => Ok(Scope::AuditWrite),
            "audit:read" => Ok(Scope::AuditRead),
            "admin" => Ok(Scope::Admin),
            _ => Err(UnknownScope(s.to_owned())),
        }
    }
}

/// Why a presented key was refused before any look-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyFormatError {
    #[error("an API key starts with lqt_")]
    NotAKey,
    #[error("the API key is malformed or truncated")]
    Malformed,
    #[error("the API key's checksum does not match: it was mistyped or truncated")]
    BadChecksum,
}

/// A key's public part: `lqt_ab12cd34`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KeyPrefix(String);

impl KeyPrefix {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn parse(s: &str) -> Option<Self> {
        let rest = s.strip_prefix(KEY_PREFIX)?;
        (rest.len() == PREFIX_LEN && rest.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()))
            .then(|| Self(s.to_owned()))
    }
}

impl fmt::Display for KeyPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A full key as presented by a client, format-checked.
#[derive(Clone, PartialEq, Eq)]
pub struct PresentedKey {
    prefix: KeyPrefix,
    full: String,
}

impl fmt::Debug for PresentedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PresentedKey({}_…)", self.prefix)
    }
}

fn base62_u32(mut n: u32) -> String {
    let mut out = [b'0'; CHECKSUM_LEN];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn checksum(body: &str) -> String {
    base62_u32(crc32fast::hash(body.as_bytes()))
}

impl PresentedKey {
    pub fn parse(s: &str) -> Result<Self, KeyFormatError> {
        if !s.starts_with(KEY_PREFIX) {
            return Err(KeyFormatError::NotAKey);
        }
        let want_len = KEY_PREFIX.len() + PREFIX_LEN + 1 + SECRET_LEN + CHECKSUM_LEN;
        if s.len() != want_len || !s.is_ascii() {
            return Err(KeyFormatError::Malformed);
        }
        let prefix_end = KEY_PREFIX.len() + PREFIX_LEN;
        let prefix = KeyPrefix::parse(&s[..prefix_end]).ok_or(KeyFormatError::Malformed)?;
        if s.as_bytes()[prefix_end] != b'_' || !s[prefix_end + 1..].bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(KeyFormatError::Malformed);
        }
        let (body, sum) = s.split_at(s.len() - CHECKSUM_LEN);
        if checksum(body) != sum {
            return Err(KeyFormatError::BadChecksum);
        }
        Ok(Self {
            prefix,
            full: s.to_owned(),
        })
    }

    pub fn prefix(&self) -> &KeyPrefix {
        &self.prefix
    }

    pub fn hash(&self) -> KeyHash {
        KeyHash::of(&self.full)
    }
}

/// SHA-256 of a whole key: what the store keeps.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyHash(pub [u8; 32]);

impl fmt::Debug for KeyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyHash(…)")
    }
}

impl KeyHash {
    pub fn of(full_key: &str) -> Self {
        Self(Sha256::digest(full_key.as_bytes()).into())
    }

    /// Constant-time equality, so response timing says nothing about how
    /// much of a guessed key was right.
    pub fn matches(&self, other: &KeyHash) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

/// A freshly made key: the secret text is shown once and then only its hash
/// exists.
pub struct GeneratedKey {
    pub prefix: KeyPrefix,
    pub secret: String,
    pub hash: KeyHash,
}

impl fmt::Debug for GeneratedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GeneratedKey({}_…)", self.prefix)
    }
}

pub fn generate() -> GeneratedKey {
    let mut rng = rand::rng();
    let prefix_body: String = (0..PREFIX_LEN)
        .map(|_| {
            let c = rng.sample(Alphanumeric) as char;
            c.to_ascii_lowercase()
        })
        .collect();
    let secret_body: String = (0..SECRET_LEN).map(|_| rng.sample(Alphanumeric) as char).collect();
    let body = format!("{KEY_PREFIX}{prefix_body}_{secret_body}");
    let secret = format!("{body}{}", checksum(&body));
    GeneratedKey {
        prefix: KeyPrefix(format!("{KEY_PREFIX}{prefix_body}")),
        hash: KeyHash::of(&secret),
        secret,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_parse_and_hash_to_what_is_stored() {
        let k = generate();
        assert!(k.secret.starts_with(&format!("{}_", k.prefix)));
        assert_eq!(k.prefix.as_str().len(), 12);
        let p = PresentedKey::parse(&k.secret).unwrap();
        assert_eq!(p.prefix(), &k.prefix);
        assert!(p.hash().matches(&k.hash));
        assert!(
            !format!("{p:?}{k:?}").contains(&k.secret[14..]),
            "Debug never shows the secret"
        );
    }

    #[test]
    fn secrets_carry_at_least_256_bits() {
        let bits = SECRET_LEN as f64 * 62f64.log2();
        assert!(bits >= 256.0, "{bits}");
    }

    #[test]
    fn keys_are_unique() {
        let a = generate();
        let b = generate();
        assert_ne!(a.secret, b.secret);
        assert!(!a.hash.matches(&b.hash));
    }

    #[test]
    fn a_mistyped_key_fails_its_checksum() {
        let k = generate().secret;
        let i = 20;
        let c = k.as_bytes()[i];
        let swapped = if c == b'a' { 'b' } else { 'a' };
        let typo = format!("{}{}{}", &k[..i], swapped, &k[i + 1..]);
        assert_eq!(PresentedKey::parse(&typo), Err(KeyFormatError::BadChecksum));
    }

    #[test]
    fn malformed_keys_are_refused() {
        let k = generate().secret;
        assert_eq!(PresentedKey::parse("Bearer x"), Err(KeyFormatError::NotAKey));
        assert_eq!(PresentedKey::parse(&k[..k.len() - 1]), Err(KeyFormatError::Malformed));
        assert_eq!(PresentedKey::parse(&format!("{k}x")), Err(KeyFormatError::Malformed));
        let upper_prefix = format!("lqt_ABCDEFGH{}", &k[12..]);
        assert_eq!(PresentedKey::parse(&upper_prefix), Err(KeyFormatError::Malformed));
        let non_ascii = format!("{}é{}", &k[..20], &k[22..]);
        assert!(PresentedKey::parse(&non_ascii).is_err());
    }

    #[test]
    fn checksum_is_six_base62_characters() {
        assert_eq!(base62_u32(0), "000000");
        assert_eq!(base62_u32(61), "00000z");
        assert_eq!(base62_u32(u32::MAX).len(), 6);
    }

    #[test]
    fn scopes_parse_and_print() {
        for s in [Scope::AuditWrite, Scope::AuditRead, Scope::Admin] {
            assert_eq!(s.as_str().parse::<Scope>().unwrap(), s);
        }
        assert!("audit:delete".parse::<Scope>().is_err());
    }

    #[test]
    fn prefixes_parse_only_in_their_exact_form() {
        assert!(KeyPrefix::parse("lqt_ab12cd34").is_some());
        for bad in ["lqt_ab12cd3", "lqt_ab12cd345", "lqt_AB12cd34", "xyz_ab12cd34"] {
            assert!(KeyPrefix::parse(bad).is_none(), "{bad}");
        }
    }
}

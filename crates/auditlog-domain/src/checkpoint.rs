//! Signed checkpoints: an organization's tree size and root hash in the C2SP
//! `tlog-checkpoint` format, signed with Ed25519 as a C2SP signed note, so
//! that existing verifiers (Go's `golang.org/x/mod/sumdb/note` and the tools
//! built on it) can check ours.
//!
//! ```text
//! auditlog.example.com/acme                        origin: the log and organization
//! 12                                               tree size, in decimal
//! PAb5plclr2BSYfY2ZyyWINQJcx2JpFHXRV/pxK4WeCk=     root hash, base64
//!                                                  a blank line
//! — auditlog.example.com/acme T4bONUCypBq2oN/L…    one line per signature
//! ```
//!
//! A signature line is an em dash (U+2014), a space, the key name, a space,
//! and the base64 of the 4-byte key id followed by the 64-byte signature of
//! the text above the blank line. The key id is the first 4 bytes of
//! `SHA-256(key name || "\n" || 0x01 || public key)`; a verifier key is written
//! `<name>+<8 hex digits of the id>+<base64(0x01 || public key)>`.
//!
//! The key name is the signer's choice: C2SP recommends the origin, which one
//! service key can follow for every organization with [`SigningKey::with_name`].
//!
//! Parsing is strict where we are the only writer (exactly three body lines,
//! canonical numbers and base64) and lenient where the specification asks it
//! to be (signatures by other keys, such as witness cosignatures, are
//! ignored).

use std::fmt;
use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, Signer};
use rand::Rng;
use sha2::{Digest, Sha256};

use crate::merkle::Hash;

/// The signed-note signature type of Ed25519.
const ED25519: u8 = 0x01;
/// The specification asks verifiers to accept at least 16 signatures and to
/// bound them; golang.org/x/mod/sumdb/note stops at 100.
const MAX_SIGNATURES: usize = 100;
const SIGNATURE_PREFIX: &str = "\u{2014} ";
const PRIVATE_KEY_PREFIX: &str = "PRIVATE+KEY+";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    #[error("invalid origin {0:?}: it must be non-empty, on one line, without control characters")]
    BadOrigin(String),
    #[error("invalid key name {0:?}: it must be non-empty, without spaces, '+' or control characters")]
    BadKeyName(String),
    #[error("malformed verifier key: {0}")]
    BadVerifierKey(&'static str),
    #[error("malformed signing key: {0}")]
    BadSigningKey(&'static str),
    #[error("malformed note text: {0}")]
    BadNoteText(&'static str),
    #[error("malformed signed note: {0}")]
    MalformedNote(&'static str),
    #[error("the note has no signature by key {0}")]
    NoSignatureByKey(String),
    #[error("the note is signed by {name} with key id {found:08x}, not {expected:08x}: a different key of that name")]
    WrongKeyId { name: String, expected: u32, found: u32 },
    #[error("the note is signed with key id {id:08x} under the name {found}, not {expected}")]
    WrongKeyName { expected: String, found: String, id: u32 },
    #[error("the signature by {0} does not verify: the note was altered, or signed by another key")]
    BadSignature(String),
    #[error("malformed checkpoint: {0}")]
    MalformedCheckpoint(&'static str),
    #[error("the tree size {0:?} is not a decimal number without leading zeros")]
    BadTreeSize(String),
    #[error("the root hash {0:?} is not the canonical base64 of 32 bytes")]
    BadRootHash(String),
}

/// The characters signed notes may not contain (newlines aside): the ASCII
/// controls, as the specification says, and no more.
fn is_ascii_control(c: char) -> bool {
    c < ' '
}

/// The first line of a checkpoint: which log, and here which organization,
/// it is about. Verifiers must compare it with the origin they expect.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Origin(String);

impl Origin {
    /// Any non-empty text without control characters (a newline would end
    /// the line). C2SP recommends, without requiring, a schema-less URL with
    /// no spaces or `+`, such as what [`Origin::for_org`] makes.
    pub fn new(origin: impl Into<String>) -> Result<Self, CheckpointError> {
        let origin = origin.into();
        if origin.is_empty() || origin.chars().any(is_ascii_control) {
            return Err(CheckpointError::BadOrigin(origin));
        }
        Ok(Self(origin))
    }

    /// `<log name>/<org slug>`, e.g. `auditlog.example.com/acme`.
    pub fn for_org(log_name: &str, org_slug: &str) -> Result<Self, CheckpointError> {
        Self::new(format!("{log_name}/{org_slug}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A tree head: the log `origin` had `size` entries, with this `root`
/// ([`crate::merkle::root_from_frontier`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: Origin,
    pub size: u64,
    pub root: Hash,
}

impl Checkpoint {
    /// The note text that gets signed: origin, size and base64 root, each
    /// ending in a newline.
    pub fn body(&self) -> String {
        format!("{}\n{}\n{}\n", self.origin, self.size, STANDARD.encode(self.root))
    }

    /// Reads a checkpoint body, refusing anything [`Checkpoint::body`] would
    /// not have written (which includes the optional extension lines C2SP
    /// allows: we never write them, and no one can audit them).
    fn parse_body(text: &str) -> Result<Self, CheckpointError> {
        let Some(body) = text.strip_suffix('\n') else {
            return Err(CheckpointError::MalformedCheckpoint(
                "the text does not end with a newline",
            ));
        };
        let lines: Vec<&str> = body.split('\n').collect();
        let &[origin, size, root] = lines.as_slice() else {
            return Err(CheckpointError::MalformedCheckpoint(if lines.len() < 3 {
                "missing lines: it needs an origin, a tree size and a root hash"
            } else {
                "extra lines after the root hash"
            }));
        };
        let origin = Origin::new(origin).map_err(|_| CheckpointError::MalformedCheckpoint("the origin is empty"))?;
        // u64's own parser would take "+12" and "012".
        let canonical =
            !size.is_empty() && size.bytes().all(|b| b.is_ascii_digit()) && (size == "0" || !size.starts_with('0'));
        let size = if canonical { size.parse::<u64>().ok() } else { None }
            .ok_or_else(|| CheckpointError::BadTreeSize(size.to_owned()))?;
        let root_hash = STANDARD
            .decode(root)
            .ok()
            .and_then(|b| Hash::try_from(b).ok())
            .filter(|h| STANDARD.encode(h) == root)
            .ok_or_else(|| CheckpointError::BadRootHash(root.to_owned()))?;
        Ok(Self {
            origin,
            size,
            root: root_hash,
        })
    }
}

/// The signed-note key id of an Ed25519 key: the first four bytes, big-endian,
/// of `SHA-256(name || "\n" || 0x01 || public key)`.
pub fn key_id(name: &str, public_key: &[u8; 32]) -> u32 {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update([ED25519]);
    h.update(public_key);
    let digest = h.finalize();
    u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
}

fn check_key_name(name: &str) -> Result<(), CheckpointError> {
    if name.is_empty()
        || name
            .chars()
            .any(|c| c.is_whitespace() || is_ascii_control(c) || c == '+')
    {
        return Err(CheckpointError::BadKeyName(name.to_owned()));
    }
    Ok(())
}

/// The checkpoint signing key: an Ed25519 key and the name its signatures
/// carry. The secret is wiped from memory when dropped and never shown by
/// `Debug`.
#[derive(Clone)]
pub struct SigningKey {
    name: String,
    key: ed25519_dalek::SigningKey,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("name", &self.name)
            .field("key_id", &format_args!("{:08x}", self.key_id()))
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// A new key from 32 random bytes of the operating system.
    pub fn generate(name: &str) -> Result<Self, CheckpointError> {
        let mut seed = [0u8; 32];
        rand::rng().fill_bytes(&mut seed);
        Self::from_seed(name, &seed)
    }

    /// The key whose RFC 8032 private key (the seed) is these 32 bytes.
    pub fn from_seed(name: &str, seed: &[u8; 32]) -> Result<Self, CheckpointError> {
        check_key_name(name)?;
        Ok(Self {
            name: name.to_owned(),
            key: ed25519_dalek::SigningKey::from_bytes(seed),
        })
    }

    /// The 32-byte seed, to store the key.
    pub fn seed(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    /// The same key under another name, e.g. one per organization's origin:
    /// the key id changes with the name, so each gets its own verifier key.
    pub fn with_name(&self, name: &str) -> Result<Self, CheckpointError> {
        check_key_name(name)?;
        Ok(Self {
            name: name.to_owned(),
            key: self.key.clone(),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn public_key(&self) -> [u8; 32] {
        self.key.verifying_key().to_bytes()
    }

    pub fn key_id(&self) -> u32 {
        key_id(&self.name, &self.public_key())
    }

    /// What verifiers are given: see [`VerifierKey`].
    pub fn verifier_key(&self) -> VerifierKey {
        VerifierKey {
            name: self.name.clone(),
            id: self.key_id(),
            key: self.key.verifying_key(),
        }
    }

    /// `PRIVATE+KEY+<name>+<hex id>+<base64(0x01 || seed)>`, the text form of
    /// golang.org/x/mod/sumdb/note's signer keys: a key file an operator can
    /// make with Go's `note.GenerateKey`, or use with Go's tools.
    pub fn to_private_key_text(&self) -> String {
        let mut key = vec![ED25519];
        key.extend_from_slice(&self.seed());
        format!(
            "{PRIVATE_KEY_PREFIX}{}+{:08x}+{}",
            self.name,
            self.key_id(),
            STANDARD.encode(&key)
        )
    }

    /// Reads [`SigningKey::to_private_key_text`]'s form, checking its key id.
    pub fn from_private_key_text(text: &str) -> Result<Self, CheckpointError> {
        let bad = CheckpointError::BadSigningKey;
        let rest = text
            .strip_prefix(PRIVATE_KEY_PREFIX)
            .ok_or(bad("it does not start with PRIVATE+KEY+"))?;
        let (name, id, key) = split_key_text(rest).ok_or(bad("it is not PRIVATE+KEY+<name>+<id>+<key>"))?;
        let key = STANDARD.decode(key).map_err(|_| bad("the key is not base64"))?;
        let seed: [u8; 32] = match key.split_first() {
            Some((&ED25519, seed)) => seed.try_into().map_err(|_| bad("an Ed25519 seed is 32 bytes"))?,
            _ => return Err(bad("the key is not an Ed25519 key")),
        };
        let signer = Self::from_seed(name, &seed)?;
        if signer.key_id() != id {
            return Err(bad("the key id does not match the name and key"));
        }
        Ok(signer)
    }
}

/// `<name>+<id>+<key>` with the id as 8 lowercase hex digits; the key may
/// contain `+` (base64) but the name may not, so the first two split.
fn split_key_text(text: &str) -> Option<(&str, u32, &str)> {
    let (name, rest) = text.split_once('+')?;
    let (id, key) = rest.split_once('+')?;
    let hex = id.len() == 8 && id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    let id = u32::from_str_radix(id, 16).ok().filter(|_| hex)?;
    check_key_name(name).ok()?;
    Some((name, id, key))
}

/// A public key as checkpoint verifiers are given it:
/// `<name>+<hex key id>+<base64(0x01 || public key)>`, e.g.
/// `PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifierKey {
    name: String,
    id: u32,
    key: ed25519_dalek::VerifyingKey,
}

impl VerifierKey {
    /// Reads the text form, checking that the id belongs to the name and key.
    pub fn parse(text: &str) -> Result<Self, CheckpointError> {
        let bad = CheckpointError::BadVerifierKey;
        let (name, id, key) = split_key_text(text).ok_or(bad("it is not <name>+<8 hex digit id>+<base64 key>"))?;
        let key = STANDARD.decode(key).map_err(|_| bad("the key is not base64"))?;
        let public: [u8; 32] = match key.split_first() {
            Some((&ED25519, public)) => public
                .try_into()
                .map_err(|_| bad("an Ed25519 public key is 32 bytes"))?,
            _ => return Err(bad("the key is not an Ed25519 key")),
        };
        if key_id(name, &public) != id {
            return Err(bad("the key id does not match the name and key"));
        }
        let key = ed25519_dalek::VerifyingKey::from_bytes(&public).map_err(|_| bad("not an Ed25519 public key"))?;
        Ok(Self {
            name: name.to_owned(),
            id,
            key,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn key_id(&self) -> u32 {
        self.id
    }

    pub fn public_key(&self) -> [u8; 32] {
        self.key.to_bytes()
    }
}

impl fmt::Display for VerifierKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut key = vec![ED25519];
        key.extend_from_slice(self.key.as_bytes());
        write!(f, "{}+{:08x}+{}", self.name, self.id, STANDARD.encode(&key))
    }
}

impl FromStr for VerifierKey {
    type Err = CheckpointError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// Signs a checkpoint: the note text a verifier is given.
pub fn sign(checkpoint: &Checkpoint, key: &SigningKey) -> String {
    // A checkpoint body always satisfies the note text rules.
    sign_note(&checkpoint.body(), key).unwrap_or_else(|_| unreachable!("checkpoint bodies are valid note text"))
}

/// Checks a checkpoint note against the key given in its text form, and
/// reads it. The caller still compares the origin with the one it expects.
pub fn parse_and_verify(note: &str, verifier_key: &str) -> Result<Checkpoint, CheckpointError> {
    verify(note, &VerifierKey::parse(verifier_key)?)
}

/// [`parse_and_verify`] with a key already read.
pub fn verify(note: &str, key: &VerifierKey) -> Result<Checkpoint, CheckpointError> {
    Checkpoint::parse_body(open_note(note, key)?)
}

/// Signs any note text (non-empty, ending in a newline, no control
/// characters but newlines): the text, a blank line, one signature line.
pub fn sign_note(text: &str, key: &SigningKey) -> Result<String, CheckpointError> {
    if text.is_empty() || !text.ends_with('\n') {
        return Err(CheckpointError::BadNoteText("it must end with a newline"));
    }
    if text.chars().any(|c| is_ascii_control(c) && c != '\n') {
        return Err(CheckpointError::BadNoteText("it has control characters"));
    }
    let signature: Signature = key.key.sign(text.as_bytes());
    let mut blob = key.key_id().to_be_bytes().to_vec();
    blob.extend_from_slice(&signature.to_bytes());
    Ok(format!(
        "{text}\n{SIGNATURE_PREFIX}{} {}\n",
        key.name,
        STANDARD.encode(&blob)
    ))
}

/// Checks a signed note and returns its text, per the C2SP signed-note rules:
/// signatures by other keys are ignored, every signature by this key (same
/// name and id) must verify, and at least one must be there.
pub fn open_note<'a>(note: &'a str, key: &VerifierKey) -> Result<&'a str, CheckpointError> {
    let malformed = CheckpointError::MalformedNote;
    if note.chars().any(|c| is_ascii_control(c) && c != '\n') {
        return Err(malformed("it has control characters"));
    }
    if !note.ends_with('\n') {
        return Err(malformed("it does not end with a newline"));
    }
    // The text is everything up to the last blank line.
    let split = note
        .rfind("\n\n")
        .ok_or(malformed("no blank line between the text and the signatures"))?;
    let (text, signatures) = (&note[..split + 1], &note[split + 2..]);
    if signatures.is_empty() {
        return Err(malformed("no signature lines"));
    }

    let mut ours = Vec::new();
    let (mut same_name, mut same_id) = (None, None);
    // The split was at the last blank line, so what follows is whole lines.
    let lines = signatures.strip_suffix('\n').unwrap_or(signatures);
    for (count, line) in lines.split('\n').enumerate() {
        if count == MAX_SIGNATURES {
            return Err(malformed("too many signatures"));
        }
        let line = line
            .strip_prefix(SIGNATURE_PREFIX)
            .ok_or(malformed("a signature line does not start with an em dash and a space"))?;
        let (name, blob) = line
            .split_once(' ')
            .ok_or(malformed("a signature line has no space after the key name"))?;
        check_key_name(name).map_err(|_| malformed("a signature line has an invalid key name"))?;
        let blob = STANDARD
            .decode(blob)
            .map_err(|_| malformed("a signature is not base64"))?;
        if blob.len() < 5 {
            return Err(malformed("a signature is shorter than a key id and one byte"));
        }
        let id = u32::from_be_bytes([blob[0], blob[1], blob[2], blob[3]]);
        match (name == key.name, id == key.id) {
            (true, true) => ours.push(blob),
            (true, false) => same_name = same_name.or(Some(id)),
            (false, true) => same_id = same_id.or(Some(name)),
            (false, false) => {}
        }
    }

    if ours.is_empty() {
        return Err(match (same_name, same_id) {
            (Some(found), _) => CheckpointError::WrongKeyId {
                name: key.name.clone(),
                expected: key.id,
                found,
            },
            (None, Some(found)) => CheckpointError::WrongKeyName {
                expected: key.name.clone(),
                found: found.to_owned(),
                id: key.id,
            },
            (None, None) => CheckpointError::NoSignatureByKey(key.name.clone()),
        });
    }
    for blob in ours {
        let signature = <[u8; 64]>::try_from(&blob[4..])
            .map(|b| Signature::from_bytes(&b))
            .map_err(|_| CheckpointError::BadSignature(key.name.clone()))?;
        key.key
            .verify_strict(text.as_bytes(), &signature)
            .map_err(|_| CheckpointError::BadSignature(key.name.clone()))?;
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::{EMPTY_ROOT, leaf_hash};

    // golang.org/x/mod/sumdb/note, note_test.go: a signer key, its verifier
    // key, and the note Go signs with it. Matching them byte for byte shows
    // our key ids, key texts and signature lines are the ones Go reads.
    const GO_SIGNER: &str = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
    const GO_VERIFIER: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    const GO_TEXT: &str = "If you think cryptography is the answer to your problem,\n\
                           then you don't know what your problem is.\n";
    const GO_SIG: &str = "\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
    const GO_ENOCH_VERIFIER: &str = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop";
    const GO_ENOCH_SIG: &str = "\u{2014} EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n";

    fn key() -> SigningKey {
        SigningKey::from_seed("auditlog.example.com/acme", &[7; 32]).unwrap()
    }

    fn checkpoint() -> Checkpoint {
        Checkpoint {
            origin: Origin::for_org("auditlog.example.com", "acme").unwrap(),
            size: 12,
            root: leaf_hash(b"root"),
        }
    }

    #[test]
    fn interoperates_with_go_signed_notes() {
        let signer = SigningKey::from_private_key_text(GO_SIGNER).unwrap();
        assert_eq!(signer.name(), "PeterNeumann");
        assert_eq!(signer.key_id(), 0xc74f20a3);
        assert_eq!(signer.to_private_key_text(), GO_SIGNER);
        assert_eq!(signer.verifier_key().to_string(), GO_VERIFIER);

        // Ed25519 is deterministic: the same text and key give Go's note.
        let note = sign_note(GO_TEXT, &signer).unwrap();
        assert_eq!(note, format!("{GO_TEXT}\n{GO_SIG}"));

        let peter = VerifierKey::parse(GO_VERIFIER).unwrap();
        assert_eq!(open_note(&note, &peter), Ok(GO_TEXT));
        // A second signature, by a key we were not given, is ignored...
        let both = format!("{GO_TEXT}\n{GO_SIG}{GO_ENOCH_SIG}");
        assert_eq!(open_note(&both, &peter), Ok(GO_TEXT));
        // ...and is checked when that is the key we are given.
        let enoch = VerifierKey::parse(GO_ENOCH_VERIFIER).unwrap();
        assert_eq!(open_note(&both, &enoch), Ok(GO_TEXT));
        let forged = GO_ENOCH_SIG.replace("rwz+eBzm", "rwz+eBzn");
        assert_eq!(
            open_note(&format!("{GO_TEXT}\n{GO_SIG}{forged}"), &enoch),
            Err(CheckpointError::BadSignature("EnochRoot".into()))
        );
        // Go's own malformed notes (note_test.go, TestOpen).
        for bad in [
            GO_TEXT.to_owned(),
            format!("{GO_TEXT}\n"),
            format!("{GO_TEXT}\n{}", GO_SIG.trim_end()),
            format!("\u{1}{GO_TEXT}\n{GO_SIG}"),
            format!(
                "{GO_TEXT}\n\u{2014} Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
            ),
            format!("{GO_TEXT}\n{GO_SIG}Unexpected line.\n"),
            format!("{GO_TEXT}\n{}", GO_SIG.repeat(101)),
        ] {
            assert!(
                matches!(open_note(&bad, &peter), Err(CheckpointError::MalformedNote(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn go_verifier_keys_must_be_exact() {
        // As Go's TestNewVerifier: every proper substring, and every single
        // byte changed, is refused.
        let b = GO_VERIFIER.as_bytes();
        for i in 0..b.len() {
            for j in i + 1..=b.len() {
                if (i, j) != (0, b.len()) {
                    assert!(
                        VerifierKey::parse(&GO_VERIFIER[i..j]).is_err(),
                        "{}",
                        &GO_VERIFIER[i..j]
                    );
                }
            }
            let mut changed = b.to_vec();
            changed[i] += 1;
            let changed = String::from_utf8(changed).unwrap();
            assert!(VerifierKey::parse(&changed).is_err(), "{changed}");
        }
        // Wrong-length key and unknown algorithm, each with a matching id.
        assert!(
            VerifierKey::parse("PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==").is_err()
        );
        assert!(VerifierKey::parse("PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW").is_err());
        // Go's signer key text, likewise for every changed byte.
        let s = GO_SIGNER.as_bytes();
        for i in 0..s.len() {
            let mut changed = s.to_vec();
            changed[i] += 1;
            let changed = String::from_utf8(changed).unwrap();
            assert!(SigningKey::from_private_key_text(&changed).is_err(), "{changed}");
        }
    }

    #[test]
    fn a_checkpoint_note_has_the_c2sp_shape_and_is_pinned() {
        let note = sign(&checkpoint(), &key());
        // Also produced, byte for byte, by Python's `cryptography` package
        // from the same seed, name and text.
        assert_eq!(
            note,
            "auditlog.example.com/acme\n12\nPAb5plclr2BSYfY2ZyyWINQJcx2JpFHXRV/pxK4WeCk=\n\n\
             \u{2014} auditlog.example.com/acme \
             T4bONUCypBq2oN/LMt4UytoyJDhQPbQHDRAztPV6i6TNYjQJMLO/cCstOW5vfoj9t+y/wSqvm4eVehFH8SQhb/SCIwY=\n"
        );
        let mut lines = note.lines();
        assert_eq!(lines.next(), Some("auditlog.example.com/acme"));
        assert_eq!(lines.next(), Some("12"));
        assert_eq!(lines.next(), Some(STANDARD.encode(leaf_hash(b"root")).as_str()));
        assert_eq!(lines.next(), Some(""));
        let signature = lines.next().unwrap();
        assert!(signature.starts_with("\u{2014} auditlog.example.com/acme "));
        let blob = STANDARD.decode(signature.rsplit(' ').next().unwrap()).unwrap();
        assert_eq!(blob.len(), 4 + 64);
        assert_eq!(blob[..4], key().key_id().to_be_bytes());
        assert_eq!(lines.next(), None);
    }

    #[test]
    fn signed_checkpoints_verify_and_read_back() {
        let k = key();
        for cp in [
            checkpoint(),
            Checkpoint {
                size: 0,
                root: EMPTY_ROOT,
                ..checkpoint()
            },
            Checkpoint {
                size: u64::MAX,
                ..checkpoint()
            },
        ] {
            let note = sign(&cp, &k);
            assert_eq!(parse_and_verify(&note, &k.verifier_key().to_string()), Ok(cp));
        }
        let generated = SigningKey::generate("auditlog.example.com").unwrap();
        let again = SigningKey::from_seed(generated.name(), &generated.seed()).unwrap();
        assert_eq!(again.verifier_key(), generated.verifier_key());
        assert_eq!(
            verify(&sign(&checkpoint(), &generated), &again.verifier_key()),
            Ok(checkpoint())
        );
        assert_ne!(
            generated.seed(),
            SigningKey::generate("auditlog.example.com").unwrap().seed()
        );
    }

    #[test]
    fn the_key_id_follows_the_signed_note_specification() {
        let k = key();
        let mut input = b"auditlog.example.com/acme\n\x01".to_vec();
        input.extend_from_slice(&k.public_key());
        let digest = Sha256::digest(&input);
        assert_eq!(k.key_id().to_be_bytes(), digest[..4]);
        let text = k.verifier_key().to_string();
        assert_eq!(
            text,
            format!(
                "auditlog.example.com/acme+{:08x}+{}",
                k.key_id(),
                STANDARD.encode([&[1u8][..], &k.public_key()].concat())
            )
        );
        assert_eq!(text.parse::<VerifierKey>(), Ok(k.verifier_key()));
        // Renaming the same key changes its id, so verifier keys do not mix.
        let renamed = k.with_name("auditlog.example.com/globex").unwrap();
        assert_eq!(renamed.public_key(), k.public_key());
        assert_ne!(renamed.key_id(), k.key_id());
    }

    #[test]
    fn the_wrong_key_is_named_as_such() {
        let note = sign(&checkpoint(), &key());
        let k = key().verifier_key();

        let other_key = SigningKey::from_seed(k.name(), &[8; 32]).unwrap();
        assert_eq!(
            verify(&note, &other_key.verifier_key()),
            Err(CheckpointError::WrongKeyId {
                name: k.name().into(),
                expected: other_key.key_id(),
                found: k.key_id()
            })
        );
        let other_name = key().with_name("auditlog.example.com/globex").unwrap();
        assert_eq!(
            verify(&note, &other_name.verifier_key()),
            Err(CheckpointError::NoSignatureByKey("auditlog.example.com/globex".into()))
        );
        // Same id under another name: a relabelled signature line.
        let relabelled = note.replace("\u{2014} auditlog.example.com/acme ", "\u{2014} someone.else ");
        assert_eq!(
            verify(&relabelled, &k),
            Err(CheckpointError::WrongKeyName {
                expected: k.name().into(),
                found: "someone.else".into(),
                id: k.key_id()
            })
        );
        // A forged signature line claiming our name and id.
        let forger = SigningKey::from_seed(k.name(), &[9; 32]).unwrap();
        let forged = sign(&checkpoint(), &forger);
        let (text, line) = forged.rsplit_once("\n\n").unwrap();
        let blob = STANDARD.decode(line.trim_end().rsplit(' ').next().unwrap()).unwrap();
        let mut with_our_id = k.key_id().to_be_bytes().to_vec();
        with_our_id.extend_from_slice(&blob[4..]);
        let forged = format!("{text}\n\n\u{2014} {} {}\n", k.name(), STANDARD.encode(&with_our_id));
        assert_eq!(verify(&forged, &k), Err(CheckpointError::BadSignature(k.name().into())));
        // And a good signature next to a bad one of ours is still refused.
        let (_, good_line) = note.rsplit_once("\n\n").unwrap();
        let both = format!("{forged}{good_line}");
        assert_eq!(verify(&both, &k), Err(CheckpointError::BadSignature(k.name().into())));
    }

    #[test]
    fn any_change_to_a_signed_checkpoint_is_refused() {
        let note = sign(&checkpoint(), &key());
        let k = key().verifier_key();
        let root = STANDARD.encode(leaf_hash(b"root"));
        for (what, changed) in [
            ("size", note.replacen("\n12\n", "\n13\n", 1)),
            ("origin", note.replacen("acme\n", "acmf\n", 1)),
            ("root", note.replacen(&root[..4], "AAAA", 1)),
            ("signature", {
                let (text, line) = note.rsplit_once(' ').unwrap();
                let mut blob = STANDARD.decode(line.trim_end()).unwrap();
                blob[40] ^= 1;
                format!("{text} {}\n", STANDARD.encode(&blob))
            }),
        ] {
            assert_ne!(changed, note, "{what}");
            assert_eq!(
                verify(&changed, &k),
                Err(CheckpointError::BadSignature(k.name().into())),
                "{what}"
            );
        }
        // Every single byte flipped, wherever it is, is refused one way or another.
        let bytes = note.as_bytes();
        for i in 0..bytes.len() {
            let mut changed = bytes.to_vec();
            changed[i] ^= 0x01;
            if let Ok(changed) = String::from_utf8(changed) {
                assert!(verify(&changed, &k).is_err(), "byte {i} changed: {changed:?}");
            }
        }
    }

    /// Signs `body` as note text and checks how the checkpoint reader takes it:
    /// these are all validly signed, so only the body rules can refuse them.
    fn read_signed(body: &str) -> Result<Checkpoint, CheckpointError> {
        verify(&sign_note(body, &key()).unwrap(), &key().verifier_key())
    }

    #[test]
    fn checkpoint_bodies_must_be_exactly_what_we_write() {
        let root = STANDARD.encode(leaf_hash(b"root"));
        assert_eq!(
            read_signed(&format!("auditlog.example.com/acme\n12\n{root}\n")),
            Ok(checkpoint())
        );

        for size in [
            "012",
            "+12",
            "-1",
            " 12",
            "12 ",
            "1_2",
            "0x0c",
            "1e1",
            "",
            "18446744073709551616",
            "١٢",
        ] {
            assert_eq!(
                read_signed(&format!("auditlog.example.com/acme\n{size}\n{root}\n")),
                Err(CheckpointError::BadTreeSize(size.into())),
                "{size:?}"
            );
        }
        assert_eq!(
            read_signed(&format!("o\n0\n{}\n", STANDARD.encode(EMPTY_ROOT))).map(|c| c.size),
            Ok(0)
        );

        let unpadded = root.trim_end_matches('=').to_owned();
        // The last base64 digit of 32 bytes carries two unused bits; setting
        // them spells the same bytes non-canonically.
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut loose = root.clone().into_bytes();
        let digit = ALPHABET.iter().position(|&c| c == loose[42]).unwrap();
        loose[42] = ALPHABET[digit | 1];
        let loose = String::from_utf8(loose).unwrap();
        let short = STANDARD.encode([0u8; 31]);
        let url_safe = base64::engine::general_purpose::URL_SAFE.encode([0xfbu8; 32]);
        for bad_root in [
            unpadded.as_str(),
            loose.as_str(),
            short.as_str(),
            url_safe.as_str(),
            "",
            "not base64!",
        ] {
            assert_eq!(
                read_signed(&format!("auditlog.example.com/acme\n12\n{bad_root}\n")),
                Err(CheckpointError::BadRootHash(bad_root.into())),
                "{bad_root:?}"
            );
        }

        for (body, why) in [
            ("auditlog.example.com/acme\n12\n", "missing lines"),
            ("auditlog.example.com/acme\n", "missing lines"),
            (
                &*format!("auditlog.example.com/acme\n12\n{root}\nextension\n"),
                "extra lines",
            ),
            (&*format!("\n12\n{root}\n"), "the origin is empty"),
        ] {
            match read_signed(body) {
                Err(CheckpointError::MalformedCheckpoint(msg)) => assert!(msg.contains(why), "{msg}"),
                other => panic!("{body:?} gave {other:?}"),
            }
        }
    }

    #[test]
    fn notes_must_be_well_formed() {
        let note = sign(&checkpoint(), &key());
        let k = key().verifier_key();
        let (text, line) = note.rsplit_once("\n\n").unwrap();
        for (bad, why) in [
            (note.trim_end().to_owned(), "newline"),
            (note.replacen("\n\n", "\n", 1), "blank line"),
            (format!("{text}\n\n"), "no signature lines"),
            (note.replacen('\u{2014}', "-", 1), "em dash"),
            (note.replacen("\u{2014} ", "\u{2014}", 1), "em dash"),
            (format!("{note}trailing\n"), "em dash"),
            (note.replacen("acme\n12", "acme\r\n12", 1), "control"),
            (note.replacen("acme ", "acme\t", 1), "control"),
            (
                format!("{text}\n\n\u{2014} {}", &line[4..].replacen(' ', "  ", 1)),
                "base64",
            ),
        ] {
            match verify(&bad, &k) {
                Err(CheckpointError::MalformedNote(msg)) => assert!(msg.contains(why), "{bad:?}: {msg}"),
                other => panic!("{bad:?} gave {other:?}"),
            }
        }
        // An extra blank line moves the text's end: well formed, but what
        // was signed is not what is there.
        assert_eq!(
            verify(&format!("{text}\n\n\n{line}"), &k),
            Err(CheckpointError::BadSignature(k.name().into()))
        );
        assert!(matches!(
            sign_note("no newline", &key()),
            Err(CheckpointError::BadNoteText(_))
        ));
        assert!(matches!(sign_note("", &key()), Err(CheckpointError::BadNoteText(_))));
        assert!(matches!(
            sign_note("a\tb\n", &key()),
            Err(CheckpointError::BadNoteText(_))
        ));
    }

    #[test]
    fn names_and_origins_are_checked() {
        for name in ["", "two words", "a+b", "tab\there", "new\nline"] {
            assert_eq!(
                SigningKey::from_seed(name, &[1; 32]).map(|_| ()),
                Err(CheckpointError::BadKeyName(name.into()))
            );
        }
        for origin in ["", "two\nlines", "nul\0", "cr\r"] {
            assert_eq!(Origin::new(origin), Err(CheckpointError::BadOrigin(origin.into())));
        }
        assert_eq!(
            Origin::for_org("auditlog.example.com", "acme").unwrap().as_str(),
            "auditlog.example.com/acme"
        );
        assert!(!format!("{:?}", key()).contains(&STANDARD.encode(key().seed())));
        assert!(format!("{:?}", key()).contains(&format!("{:08x}", key().key_id())));
    }
}

//! Personal data in entries, and how it can be erased without breaking a
//! proof.
//!
//! An entry's Merkle leaf commits to everything it records, and every
//! checkpoint commits to the leaves; deleting or rewriting a value would
//! break every proof that covers it. So the leaf does not commit to a
//! personal value itself but to a commitment to it:
//!
//! ```text
//! salt       = HMAC-SHA256(subject key, "auditlog salt v1" 0x00 entry id (16 bytes))
//! commitment = SHA-256("auditlog commitment v1" 0x00 salt len(path) (u32, big-endian) path value)
//! ```
//!
//! The salt is secret and derived from a key of the person the value
//! belongs to (the *subject*), one key per subject and organization, and
//! one salt per entry and subject. While the key exists the service can
//! give the value and its salt (the *opening*), and anyone can check the
//! pair against the commitment in the leaf. Destroying the key destroys
//! every salt of that person at once: what remains, the commitment, hides
//! the value (a 256-bit secret salt leaves nothing to guess against) and
//! still fits the leaf, so every checkpoint and proof signed before or
//! after still verifies.
//!
//! The stored values themselves are sealed under the same key
//! (ChaCha20-Poly1305, [`SubjectKey::seal`]), one sealed copy per entry and
//! subject, so destroying the key also makes the stored ciphertext
//! unreadable, in the database and in any backup taken without the key.
//!
//! - [`fields`]: which values of an entry are personal, and whose.
//! - [`subject_key`]: a subject's key; salts, commitments, openings, sealing.
//! - [`pseudonym`]: keyed pseudonyms that name a subject without their email.
//! - [`disclosure`]: how an export shows each personal value (opened, or
//!   erased) and the commitments a verifier rebuilds from it.
//! - [`policy`]: the deployment's keys and rules, as a store applies them
//!   to rows.
//! - [`sealing`]: what the writer keeps for an entry's personal values, and
//!   how a reader restores them or shows them erased.

pub mod disclosure;
pub mod fields;
pub mod policy;
pub mod pseudonym;
pub mod sealing;
pub mod subject_key;

pub use disclosure::{Disclosure, DisclosureError, commitments_from};
pub use fields::{FieldPath, PersonalValue, Subject, personal_values};
pub use policy::{IndexTokens, KeyError, PersonalData, Stored, decode_commitments, encode_commitments, restore};
pub use pseudonym::{Pseudonym, PseudonymKey};
pub use sealing::{ERASED, Sealed, UnsealError, Unsealed, seal, unseal};
pub use subject_key::{Commitment, OpenError, Opening, Salt, SubjectKey, commit};

#[cfg(test)]
pub(crate) mod test_entries {
    //! The entry the tests of personal data start from.

    use crate::entry::{Actor, ActorType, Resource, SubmittedBy, SubmitterKind};
    use crate::{Entry, OrgId, Timestamp};

    /// An admin (ada, signed in) making a member (bob) an owner: two people
    /// in one entry.
    pub fn role_change() -> Entry {
        Entry {
            id: uuid::Uuid::from_u128(5),
            org_id: OrgId(1),
            seq: 9,
            timestamp: Timestamp(0),
            received_at: Timestamp(1),
            actor: Actor {
                kind: ActorType::User,
                id: "ada@acme.com".into(),
            },
            event: "organization.member_role_changed".into(),
            resource: Resource::member("bob@acme.com"),
            details: serde_json::from_str(r#"{"member":"bob@acme.com","old_role":"admin","new_role":"owner"}"#)
                .unwrap(),
            ip_address: Some("203.0.113.7".parse().unwrap()),
            user_agent: Some("Firefox/140".into()),
            request_id: Some("r-1".into()),
            idempotency_key: None,
            submitted_by: Some(SubmittedBy::new(SubmitterKind::Session, "ada@acme.com")),
            canonical_version: 3,
            personal: Default::default(),
        }
    }
}

//! How an export shows each personal value of a version-3 entry, and the
//! commitments a verifier rebuilds from that to recompute the leaf.
//!
//! Beside the entry, an export gives one disclosure per personal path:
//!
//! - `{"salt": "<hex>"}`: the value is in the entry as recorded, and this
//!   salt opens its commitment;
//! - `{"commitment": "<hex>", "erased": true}`: the subject was erased; the
//!   entry shows a placeholder and the commitment alone stands in the leaf.
//!
//! Either way the verifier rebuilds the leaf's bytes; a value that is not
//! the recorded one gives another commitment, so another leaf, and its
//! inclusion proof fails.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::fields::FieldPath;
use super::subject_key::{Commitment, Salt, commit};
use crate::canonical::Fields;

/// One personal value as an export shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Disclosure {
    Opened { salt: String },
    Erased { commitment: String, erased: bool },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DisclosureError {
    #[error("{0:?} is not a field that can hold personal data")]
    UnknownPath(String),
    #[error("{0}: the salt or commitment is not 64 lowercase hex digits")]
    BadHex(String),
    #[error("{0}: a salt is given but the entry holds no value there")]
    MissingValue(String),
    #[error("{0}: a commitment without a value must say \"erased\": true")]
    NotErased(String),
}

/// The commitments that stand in the leaf for `fields`, from an export's
/// disclosures (path → disclosure).
pub fn commitments_from(
    fields: &Fields,
    disclosures: &BTreeMap<String, Disclosure>,
) -> Result<Vec<(FieldPath, Commitment)>, DisclosureError> {
    disclosures
        .iter()
        .map(|(text, disclosure)| {
            let path = FieldPath::parse(text).ok_or_else(|| DisclosureError::UnknownPath(text.clone()))?;
            let bad_hex = || DisclosureError::BadHex(text.clone());
            let commitment = match disclosure {
                Disclosure::Opened { salt } => {
                    let salt = Salt::from_hex(salt).ok_or_else(bad_hex)?;
                    let value = path
                        .value_in(fields)
                        .ok_or_else(|| DisclosureError::MissingValue(text.clone()))?;
                    commit(&salt, text, &value)
                }
                Disclosure::Erased { erased: false, .. } => return Err(DisclosureError::NotErased(text.clone())),
                Disclosure::Erased { commitment, .. } => Commitment::from_hex(commitment).ok_or_else(bad_hex)?,
            };
            Ok((path, commitment))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::{SubmittedBy, SubmitterKind};
    use crate::personal::{SubjectKey, commit, personal_values};
    use crate::{Catalog, Entry};

    /// A member removed by an admin over IPv6, with no user agent.
    fn entry() -> Entry {
        let mut e = crate::personal::test_entries::role_change();
        e.event = "organization.member_removed".into();
        e.details = serde_json::from_str(r#"{"member":"bob@acme.com","role":"viewer"}"#).unwrap();
        e.ip_address = Some("2001:db8::1".parse().unwrap());
        e.user_agent = None;
        e.request_id = None;
        e
    }

    /// What the writer commits to, and the export of it with bob erased.
    fn recorded(e: &Entry) -> (Vec<(FieldPath, Commitment)>, BTreeMap<String, Disclosure>) {
        let fields = Fields::of(e);
        let mut commitments = Vec::new();
        let mut export = BTreeMap::new();
        for v in personal_values(&fields, &Catalog::builtin()) {
            let bob = v.subject.as_str() == "bob@acme.com";
            let key = SubjectKey::from_bytes([if bob { 2 } else { 1 }; 32]);
            let path = v.path.as_str().into_owned();
            let c = commit(&key.salt(e.id), &path, &v.value);
            let shown = if bob {
                Disclosure::Erased {
                    commitment: c.to_hex(),
                    erased: true,
                }
            } else {
                Disclosure::Opened {
                    salt: key.salt(e.id).to_hex(),
                }
            };
            export.insert(path, shown);
            commitments.push((v.path, c));
        }
        (commitments, export)
    }

    #[test]
    fn a_verifier_rebuilds_the_leaf_from_openings_and_erased_commitments() {
        let e = entry();
        let (commitments, export) = recorded(&e);
        let leaf = Fields::of(&e).with_commitments(&commitments).leaf_hash();
        let mut shown = e.clone();
        shown.resource.id = "(erased)".into();
        shown.details.insert("member".into(), "(erased)".into());
        let rebuilt = commitments_from(&Fields::of(&shown), &export).unwrap();
        assert_eq!(Fields::of(&shown).with_commitments(&rebuilt).leaf_hash(), leaf);
        // The JSON an export carries reads back the same.
        let json = serde_json::to_string(&export).unwrap();
        assert!(
            json.contains(r#""details.member":{"commitment":"#) && json.contains(r#""erased":true"#),
            "{json}"
        );
        assert_eq!(
            serde_json::from_str::<BTreeMap<String, Disclosure>>(&json).unwrap(),
            export
        );
    }

    #[test]
    fn a_forged_value_fails_where_the_real_one_opens() {
        let e = entry();
        let (commitments, export) = recorded(&e);
        let leaf = Fields::of(&e).with_commitments(&commitments).leaf_hash();
        for forge in [
            |e: &mut Entry| e.actor.id = "mallory@acme.com".into(),
            |e: &mut Entry| e.ip_address = Some("192.0.2.1".parse().unwrap()),
            |e: &mut Entry| e.submitted_by = Some(SubmittedBy::new(SubmitterKind::Session, "eve@acme.com")),
        ] {
            let mut forged = e.clone();
            forge(&mut forged);
            let rebuilt = commitments_from(&Fields::of(&forged), &export).unwrap();
            assert_ne!(Fields::of(&forged).with_commitments(&rebuilt).leaf_hash(), leaf);
        }
    }

    #[test]
    fn malformed_disclosures_are_named() {
        let e = entry();
        let fields = Fields::of(&e);
        let one = |path: &str, d: Disclosure| commitments_from(&fields, &BTreeMap::from([(path.to_owned(), d)]));
        let salt = || Disclosure::Opened { salt: "00".repeat(32) };
        assert_eq!(one("event", salt()), Err(DisclosureError::UnknownPath("event".into())));
        assert_eq!(
            one("user_agent", salt()),
            Err(DisclosureError::MissingValue("user_agent".into()))
        );
        assert_eq!(
            one("actor.id", Disclosure::Opened { salt: "xyz".into() }),
            Err(DisclosureError::BadHex("actor.id".into()))
        );
        let unerased = Disclosure::Erased {
            commitment: "00".repeat(32),
            erased: false,
        };
        assert_eq!(
            one("actor.id", unerased),
            Err(DisclosureError::NotErased("actor.id".into()))
        );
        assert!(one("details.member", salt()).is_ok());
        assert_eq!(
            one("details.role", salt()).unwrap()[0].0,
            FieldPath::Detail("role".into()),
            "any text detail can be opened; the leaf says which were committed"
        );
    }
}

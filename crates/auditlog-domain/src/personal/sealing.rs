//! An entry's personal values on their way into the store and back out:
//! what the writer commits to and keeps for them, and how a reader restores
//! them, or shows them erased.
//!
//! The writer groups an entry's personal values by person: for each, one
//! salt, one commitment per value and one sealed copy of the person's
//! values (a JSON object from path to value). The store keeps the sealed
//! copies by pseudonym, so an erasure finds and deletes them, and the
//! commitments beside the entry, so an erased value can still be shown as
//! its commitment. The entry's own row holds no personal value.

use std::collections::BTreeMap;

use uuid::Uuid;

use super::disclosure::Disclosure;
use super::fields::{FieldPath, PersonalValue, Subject};
use super::pseudonym::Pseudonym;
use super::subject_key::{Commitment, SubjectKey, commit};
use crate::Entry;

/// What an erased value shows in place of text. Optional fields (the IP
/// address, user agent and resource name) show as absent instead.
pub const ERASED: &str = "[erased]";

/// What the writer keeps for one entry's personal values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    /// What stands in the leaf for each value (canonical version 3).
    pub commitments: Vec<(FieldPath, Commitment)>,
    /// Each person's values, sealed under their key.
    pub parts: Vec<(Pseudonym, Vec<u8>)>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnsealError {
    #[error("the sealed personal values of entry {0} are not what the writer seals")]
    Malformed(Uuid),
}

/// Seals `values` of entry `entry`; `key_for` gives each person's
/// pseudonym and key (the store's, made when first needed).
pub fn seal<E>(
    entry: Uuid,
    values: &[PersonalValue],
    mut key_for: impl FnMut(&Subject) -> Result<(Pseudonym, SubjectKey), E>,
) -> Result<Sealed, E> {
    let mut commitments = Vec::with_capacity(values.len());
    let mut parts = Vec::new();
    let mut people: Vec<&Subject> = values.iter().map(|v| &v.subject).collect();
    people.sort();
    people.dedup();
    for person in people {
        let (pseudonym, key) = key_for(person)?;
        let salt = key.salt(entry);
        let mut plain = BTreeMap::new();
        for v in values.iter().filter(|v| &v.subject == person) {
            let path = v.path.as_str();
            commitments.push((v.path.clone(), commit(&salt, &path, &v.value)));
            plain.insert(path, v.value.as_ref());
        }
        // A map of strings always serialises.
        let plain = serde_json::to_vec(&plain).expect("a map of strings serialises");
        parts.push((pseudonym, key.seal(entry, &plain)));
    }
    commitments.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(Sealed { commitments, parts })
}

/// An entry's personal values as a reader gets them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsealed {
    /// How an export discloses each value.
    pub shown: BTreeMap<String, Disclosure>,
    /// Sealed parts whose key exists that did not open for this entry:
    /// altered, or moved from another entry's row. Their values show
    /// erased, so the leaf rebuilds from the commitments beside the row; a
    /// moved row then fails its proof, and the reader is told to look.
    pub unopened: usize,
}

/// Restores the personal values of `entry`, read from the store with
/// none, from its sealed parts; values whose person's key is gone (`None`
/// from `key_for`), or whose part does not open, show as [`ERASED`].
pub fn unseal(
    entry: &mut Entry,
    sealed: &Sealed,
    mut key_for: impl FnMut(&Pseudonym) -> Option<SubjectKey>,
) -> Result<Unsealed, UnsealError> {
    let mut shown = BTreeMap::new();
    let mut unopened = 0;
    for (pseudonym, part) in &sealed.parts {
        let Some(key) = key_for(pseudonym) else { continue };
        let Ok(plain) = key.open(entry.id, part) else {
            unopened += 1;
            continue;
        };
        let values: BTreeMap<String, String> =
            serde_json::from_slice(&plain).map_err(|_| UnsealError::Malformed(entry.id))?;
        let salt = key.salt(entry.id).to_hex();
        for (path, value) in values {
            let at = FieldPath::parse(&path).ok_or(UnsealError::Malformed(entry.id))?;
            at.set(entry, Some(value))?;
            shown.insert(path, Disclosure::Opened { salt: salt.clone() });
        }
    }
    for (path, commitment) in &sealed.commitments {
        let text = path.as_str().into_owned();
        if shown.contains_key(&text) {
            continue;
        }
        path.set(entry, None)?;
        let erased = Disclosure::Erased {
            commitment: commitment.to_hex(),
            erased: true,
        };
        shown.insert(text, erased);
    }
    Ok(Unsealed { shown, unopened })
}

impl FieldPath {
    /// Puts `value` at this path of `entry`, or shows it erased (`None`).
    /// `Malformed` when the value does not fit (an IP address that does
    /// not parse, a submitter the entry lacks).
    pub fn set(&self, entry: &mut Entry, value: Option<String>) -> Result<(), UnsealError> {
        let malformed = UnsealError::Malformed(entry.id);
        let text = |v: Option<String>| v.unwrap_or_else(|| ERASED.to_owned());
        match self {
            FieldPath::ActorId => entry.actor.id = text(value),
            FieldPath::IpAddress => entry.ip_address = value.map(|v| v.parse()).transpose().map_err(|_| malformed)?,
            FieldPath::UserAgent => entry.user_agent = value,
            FieldPath::SubmittedById => entry.submitted_by.as_mut().ok_or(malformed)?.id = text(value),
            FieldPath::ResourceId => entry.resource.id = text(value),
            FieldPath::ResourceName => entry.resource.name = value,
            FieldPath::Detail(key) => {
                entry.details.insert(key.clone(), text(value).into());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::Catalog;
    use crate::canonical::Fields;
    use crate::personal::test_entries::role_change;
    use crate::personal::{PseudonymKey, commitments_from, personal_values};

    /// A store's keys, by pseudonym.
    struct Keys {
        pseudonyms: PseudonymKey,
        by: HashMap<Pseudonym, SubjectKey>,
    }

    impl Keys {
        fn new() -> Self {
            Self {
                pseudonyms: PseudonymKey::derive(&[3; 32]),
                by: HashMap::new(),
            }
        }

        fn key_for(&mut self, s: &Subject) -> Result<(Pseudonym, SubjectKey), ()> {
            let p = self.pseudonyms.of(s);
            Ok((p, self.by.entry(p).or_insert_with(SubjectKey::generate).clone()))
        }
    }

    /// What the store holds for the entry: the sealed values, and the row
    /// with every personal value as a reader first sees it (erased).
    fn write(e: &Entry, keys: &mut Keys) -> (Sealed, Entry) {
        let values = personal_values(&Fields::of(e), &Catalog::builtin());
        let sealed = seal(e.id, &values, |s| keys.key_for(s)).unwrap();
        let mut row = e.clone();
        for (path, _) in &sealed.commitments {
            path.set(&mut row, None).unwrap();
        }
        (sealed, row)
    }

    /// A verifier given `row` and `shown` (an export) rebuilds the leaf the
    /// writer made for `e`.
    fn assert_leaf_rebuilds(e: &Entry, sealed: &Sealed, row: &Entry, shown: &BTreeMap<String, Disclosure>) {
        let leaf = Fields::of(e).with_commitments(&sealed.commitments).leaf_hash();
        let rebuilt = commitments_from(&Fields::of(row), shown).unwrap();
        assert_eq!(Fields::of(row).with_commitments(&rebuilt).leaf_hash(), leaf);
    }

    #[test]
    fn a_reader_gets_every_value_back_while_the_keys_exist() {
        let e = role_change();
        let mut keys = Keys::new();
        let (sealed, mut row) = write(&e, &mut keys);
        assert_eq!(sealed.parts.len(), 2, "one sealed copy per person");
        assert_eq!(sealed.commitments.len(), 6);
        let shown = unseal(&mut row, &sealed, |p| keys.by.get(p).cloned()).unwrap().shown;
        assert_eq!(row, e);
        assert!(shown.values().all(|d| matches!(d, Disclosure::Opened { .. })));
        assert_leaf_rebuilds(&e, &sealed, &row, &shown);
    }

    #[test]
    fn erasing_the_member_leaves_the_admin_and_every_proof() {
        let e = role_change();
        let mut keys = Keys::new();
        let (sealed, mut row) = write(&e, &mut keys);
        let bob = keys.pseudonyms.of(&Subject::new("bob@acme.com").unwrap());
        keys.by.remove(&bob);
        let shown = unseal(&mut row, &sealed, |p| keys.by.get(p).cloned()).unwrap().shown;
        // Field by field: bob is gone, ada and everything else stay.
        assert_eq!(row.resource.id, ERASED);
        assert_eq!(row.resource.name, None);
        assert_eq!(row.details["member"], ERASED);
        assert_eq!(row.details["new_role"], "owner");
        assert_eq!(row.actor.id, "ada@acme.com");
        assert_eq!(row.ip_address, e.ip_address);
        assert_eq!(row.user_agent, e.user_agent);
        assert_eq!(row.submitted_by, e.submitted_by);
        assert_eq!(
            (row.event.as_str(), row.seq, row.request_id.as_deref()),
            ("organization.member_role_changed", 9, Some("r-1"))
        );
        assert!(matches!(
            shown["details.member"],
            Disclosure::Erased { erased: true, .. }
        ));
        assert!(matches!(shown["actor.id"], Disclosure::Opened { .. }));
        assert!(!serde_json::to_string(&row).unwrap().contains("bob"));
        // The leaf rebuilds from what is left.
        assert_leaf_rebuilds(&e, &sealed, &row, &shown);
    }

    #[test]
    fn sealed_values_of_another_entry_or_altered_stay_sealed_and_are_counted() {
        let e = role_change();
        let mut keys = Keys::new();
        let (sealed, row) = write(&e, &mut keys);
        // Moved to another entry's row: nothing opens, everything reads
        // erased, and that row's leaf (another id) no longer rebuilds.
        let mut other = row.clone();
        other.id = Uuid::from_u128(6);
        let got = unseal(&mut other, &sealed, |p| keys.by.get(p).cloned()).unwrap();
        assert_eq!(got.unopened, 2);
        assert_eq!((other.actor.id.as_str(), other.resource.id.as_str()), (ERASED, ERASED));
        // One part altered: its person reads erased, the other opens.
        let mut altered = sealed.clone();
        let bob = keys.pseudonyms.of(&Subject::new("bob@acme.com").unwrap());
        altered.parts.iter_mut().find(|(p, _)| *p == bob).unwrap().1[0] ^= 1;
        let mut row2 = row.clone();
        let got = unseal(&mut row2, &altered, |p| keys.by.get(p).cloned()).unwrap();
        assert_eq!(
            (got.unopened, row2.actor.id.as_str(), row2.resource.id.as_str()),
            (1, "ada@acme.com", ERASED)
        );
    }

    #[test]
    fn a_value_that_does_not_fit_its_field_is_named() {
        let mut e = role_change();
        let bad = Err(UnsealError::Malformed(e.id));
        assert_eq!(FieldPath::IpAddress.set(&mut e, Some("not an ip".into())), bad);
        e.submitted_by = None;
        assert_eq!(FieldPath::SubmittedById.set(&mut e, None), bad);
        assert_eq!(FieldPath::IpAddress.set(&mut e, None), Ok(()));
        assert_eq!(e.ip_address, None, "an erased optional shows as absent");
    }

    #[test]
    fn a_key_that_cannot_be_had_stops_the_write() {
        let e = role_change();
        let values = personal_values(&Fields::of(&e), &Catalog::builtin());
        assert_eq!(
            seal(e.id, &values, |_| Err::<(Pseudonym, SubjectKey), _>("store down")),
            Err("store down")
        );
        assert_eq!(
            seal(e.id, &[], |_| Err::<(Pseudonym, SubjectKey), _>("unused"))
                .unwrap()
                .parts,
            []
        );
    }
}

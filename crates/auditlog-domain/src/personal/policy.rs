//! The deployment's personal-data keys and rules, as a store applies them:
//! which values of an entry are personal (the catalog), the pseudonyms
//! that name their people, the key that wraps each person's key at rest,
//! and the forms an entry takes on its way into a row and back.
//!
//! Every key here is derived from the master secret the operator keeps
//! outside the database (the checkpoint signing key's seed), so a copy of
//! the database alone opens no personal value: the subject keys in it are
//! sealed under a key it does not hold.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::disclosure::Disclosure;
use super::fields::{FieldPath, Subject, personal_values};
use super::pseudonym::{Pseudonym, PseudonymKey};
use super::sealing::{ERASED, Sealed, UnsealError, seal, unseal};
use super::subject_key::{Commitment, SubjectKey};
use crate::canonical::Fields;
use crate::filter::Filter;
use crate::merkle::Hash;
use crate::sealed::SecretSealer;
use crate::{Catalog, Entry};

/// The context the subject keys' wrapping key is derived under.
const KEY_WRAP_INFO: &[u8] = b"auditlog subject keys v1";

/// Starts a blind-index token in an identifier column. A control
/// character: ingest refuses them in every value, so no client can write
/// a token, or a value a filter would take for one.
const INDEX_MARK: char = '\u{1}';

/// The personal-data keys and rules of one deployment.
pub struct PersonalData {
    catalog: Arc<Catalog>,
    pseudonyms: PseudonymKey,
    wrap: SecretSealer,
}

impl std::fmt::Debug for PersonalData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PersonalData(…)")
    }
}

/// A subject key stored under another master secret, or altered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "a subject key in the database cannot be opened: it was sealed under another signing key (the master secret), \
     or altered"
)]
pub struct KeyError;

/// The blind-index tokens a filter's person ids also match: a person's id
/// is stored as their token in entries written with personal values
/// sealed, and as itself in older ones and wherever it is nobody's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IndexTokens {
    pub actor: Option<String>,
    pub resource_id: Option<String>,
    pub submitted_by: Option<String>,
}

/// What the writer stores for a new entry.
#[derive(Debug)]
pub struct Stored {
    /// The entry's row: no personal value, a blind-index token in each
    /// identifier column that held one.
    pub row: Entry,
    pub sealed: Sealed,
    /// The entry's version-3 leaf.
    pub leaf: Hash,
}

impl PersonalData {
    /// The keys derived from `master` (see [`PseudonymKey::derive`]), with
    /// `catalog`'s marks of personal details and resources.
    pub fn new(master: &[u8], catalog: Arc<Catalog>) -> Self {
        Self {
            catalog,
            pseudonyms: PseudonymKey::derive(master),
            wrap: SecretSealer::derive_for(master, KEY_WRAP_INFO),
        }
    }

    pub fn pseudonym(&self, subject: &Subject) -> Pseudonym {
        self.pseudonyms.of(subject)
    }

    /// The token that stands in an identifier column (actor, resource id,
    /// submitter id) for the person `id` names: what a filter by that id
    /// also matches, and what an erasure removes.
    pub fn index_of(&self, id: &str) -> Option<String> {
        Subject::new(id).map(|s| index_token(&self.pseudonym(&s)))
    }

    /// The tokens of each person id `filter` names.
    pub fn tokens_for(&self, filter: &Filter) -> IndexTokens {
        IndexTokens {
            actor: filter.actor.as_deref().and_then(|a| self.index_of(a)),
            resource_id: filter.resource_id.as_deref().and_then(|r| self.index_of(r)),
            submitted_by: filter.submitted_by.as_ref().and_then(|b| self.index_of(&b.id)),
        }
    }

    /// The token of a pseudonym (see [`Self::index_of`]).
    pub fn token(&self, pseudonym: &Pseudonym) -> String {
        index_token(pseudonym)
    }

    /// A subject key as the database keeps it.
    pub fn wrap_key(&self, key: &SubjectKey) -> Vec<u8> {
        self.wrap.seal(key.as_bytes())
    }

    pub fn unwrap_key(&self, wrapped: &[u8]) -> Result<SubjectKey, KeyError> {
        let plain = self.wrap.open(wrapped).map_err(|_| KeyError)?;
        let secret: [u8; 32] = plain.try_into().map_err(|_| KeyError)?;
        Ok(SubjectKey::from_bytes(secret))
    }

    /// What a store can know of `entry` before it holds any key, without
    /// sealing it: whose keys sealing it needs, and the details its row
    /// will hold as JSON (a personal detail's place holds [`ERASED`]
    /// whatever the key), exactly as [`Self::seal`]'s row has them.
    pub fn before_sealing(&self, entry: &Entry) -> (Vec<Pseudonym>, String) {
        let values = personal_values(&Fields::of(entry), &self.catalog);
        let mut subjects: Vec<&Subject> = values.iter().map(|v| &v.subject).collect();
        subjects.sort();
        subjects.dedup();
        let people = subjects.into_iter().map(|s| self.pseudonym(s)).collect();
        let mut details = std::borrow::Cow::Borrowed(&entry.details);
        for v in &values {
            if let FieldPath::Detail(key) = &v.path {
                details.to_mut().insert(key.clone(), ERASED.into());
            }
        }
        // A map of JSON values always serialises.
        let json = serde_json::to_string(details.as_ref()).unwrap_or_else(|_| "{}".into());
        (people, json)
    }

    /// Seals `entry`'s personal values, as the writer built it (canonical
    /// version 3), with each person's key from `key_for` (the store's, made
    /// when first needed). `entry` gains its disclosures (each value
    /// opened), which is how the writer hands it back.
    pub fn seal<E>(
        &self,
        entry: &mut Entry,
        mut key_for: impl FnMut(&Pseudonym) -> Result<SubjectKey, E>,
    ) -> Result<Stored, E> {
        let fields = Fields::of(entry);
        let values = personal_values(&fields, &self.catalog);
        let mut keys: HashMap<Subject, (Pseudonym, SubjectKey)> = HashMap::new();
        let sealed = seal(entry.id, &values, |s| {
            let p = self.pseudonym(s);
            let key = key_for(&p)?;
            keys.insert(s.clone(), (p, key.clone()));
            Ok((p, key))
        })?;
        let leaf = fields.with_commitments(&sealed.commitments).leaf_hash();
        let mut row = entry.clone();
        let mut personal = BTreeMap::new();
        // One salt per person and entry (see `subject_key`), so its hex
        // once per person.
        let mut salts: HashMap<&Subject, String> = HashMap::new();
        for v in &values {
            let (pseudonym, key) = &keys[&v.subject];
            let salt = salts
                .entry(&v.subject)
                .or_insert_with(|| key.salt(entry.id).to_hex())
                .clone();
            personal.insert(v.path.as_str().into_owned(), Disclosure::Opened { salt });
            let token = matches!(
                v.path,
                FieldPath::ActorId | FieldPath::ResourceId | FieldPath::SubmittedById
            )
            .then(|| index_token(pseudonym));
            // The path was read from this entry, so it fits it.
            let _ = v.path.set(&mut row, token);
        }
        entry.personal = personal;
        Ok(Stored { row, sealed, leaf })
    }
}

/// Restores the personal values of `row`, read from the store with its
/// commitments as erased disclosures, from its sealed `parts`; those whose
/// person's key is gone (`None` from `key_for`) stay erased. A process
/// without the master secret restores with no keys at all: every sealed
/// value reads as erased, and the leaf still rebuilds from the commitments
/// (`auditlog check` on a backup kept apart from its key). Returns how many
/// parts did not open (see [`super::sealing::Unsealed::unopened`]).
pub fn restore(
    row: &mut Entry,
    parts: Vec<(Pseudonym, Vec<u8>)>,
    key_for: impl FnMut(&Pseudonym) -> Option<SubjectKey>,
) -> Result<usize, UnsealError> {
    let malformed = UnsealError::Malformed(row.id);
    let commitments = std::mem::take(&mut row.personal)
        .into_iter()
        .map(|(path, d)| match d {
            Disclosure::Erased { commitment, .. } => {
                Some((FieldPath::parse(&path)?, Commitment::from_hex(&commitment)?))
            }
            Disclosure::Opened { .. } => None,
        })
        .collect::<Option<Vec<_>>>()
        .ok_or(malformed)?;
    let sealed = Sealed { commitments, parts };
    let unsealed = unseal(row, &sealed, key_for)?;
    row.personal = unsealed.shown;
    Ok(unsealed.unopened)
}

fn index_token(pseudonym: &Pseudonym) -> String {
    format!("{INDEX_MARK}{}", pseudonym.to_hex())
}

/// The commitments as a store keeps them beside the row: for each, the
/// path's length (u16, big-endian), the path, and the 32-byte commitment.
pub fn encode_commitments(commitments: &[(FieldPath, Commitment)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(commitments.len() * 48);
    for (path, c) in commitments {
        let path = path.as_str();
        // Paths are catalog names and detail keys, far under 64 KiB.
        out.extend_from_slice(&(path.len() as u16).to_be_bytes());
        out.extend_from_slice(path.as_bytes());
        out.extend_from_slice(&c.0);
    }
    out
}

/// Reads [`encode_commitments`]'s bytes back, as the erased disclosures a
/// row starts from; `None` when they are not what it writes.
pub fn decode_commitments(mut bytes: &[u8]) -> Option<BTreeMap<String, Disclosure>> {
    let mut out = BTreeMap::new();
    while !bytes.is_empty() {
        let (len, rest) = bytes.split_first_chunk::<2>()?;
        let len = u16::from_be_bytes(*len) as usize;
        let (path, rest) = (rest.get(..len)?, rest.get(len..)?);
        let (c, rest) = rest.split_first_chunk::<32>()?;
        let path = std::str::from_utf8(path).ok()?;
        FieldPath::parse(path)?;
        let erased = Disclosure::Erased {
            commitment: Commitment(*c).to_hex(),
            erased: true,
        };
        out.insert(path.to_owned(), erased);
        bytes = rest;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canonical::entry_leaf_hash;
    use crate::personal::ERASED;
    use crate::personal::test_entries::role_change;

    /// A store: keys by pseudonym, wrapped; the row and its parts.
    struct Db {
        keys: HashMap<Pseudonym, Vec<u8>>,
    }

    fn data() -> PersonalData {
        PersonalData::new(&[9; 32], Arc::new(Catalog::builtin()))
    }

    fn write(p: &PersonalData, db: &mut Db, e: &mut Entry) -> Stored {
        p.seal(e, |ps| {
            let wrapped = db
                .keys
                .entry(*ps)
                .or_insert_with(|| p.wrap_key(&SubjectKey::generate()));
            p.unwrap_key(wrapped)
        })
        .unwrap()
    }

    /// The row as a store reads it back, restored.
    fn read(p: &PersonalData, db: &Db, stored: &Stored) -> Entry {
        let mut row = stored.row.clone();
        row.personal = decode_commitments(&encode_commitments(&stored.sealed.commitments)).unwrap();
        restore(&mut row, stored.sealed.parts.clone(), |ps| {
            db.keys.get(ps).map(|w| p.unwrap_key(w).unwrap())
        })
        .unwrap();
        row
    }

    #[test]
    fn the_row_holds_tokens_and_placeholders_and_reads_back_whole() {
        let p = data();
        let mut db = Db { keys: HashMap::new() };
        let mut e = role_change();
        let written = e.clone();
        let stored = write(&p, &mut db, &mut e);
        let row = &stored.row;
        assert_eq!(Some(row.actor.id.clone()), p.index_of("ADA@acme.com "));
        assert_eq!(Some(row.resource.id.clone()), p.index_of("bob@acme.com"));
        assert_eq!(row.details["member"], ERASED);
        assert_eq!((row.ip_address, row.user_agent.as_deref()), (None, None));
        assert!(!format!("{row:?}").contains("acme"), "no personal value in the row");
        assert_eq!(
            stored.leaf,
            entry_leaf_hash(&e),
            "the handed-back entry proves its leaf"
        );
        let back = read(&p, &db, &stored);
        assert_eq!(back, e);
        assert_eq!(
            Entry {
                personal: BTreeMap::new(),
                ..back
            },
            written
        );
    }

    #[test]
    fn an_erased_person_reads_as_placeholders_and_the_leaf_still_holds() {
        let p = data();
        let mut db = Db { keys: HashMap::new() };
        let mut e = role_change();
        let stored = write(&p, &mut db, &mut e);
        db.keys.remove(&p.pseudonym(&Subject::new("bob@acme.com").unwrap()));
        let back = read(&p, &db, &stored);
        assert_eq!(back.resource.id, ERASED);
        assert_eq!(back.actor.id, "ada@acme.com");
        assert!(matches!(
            back.personal["resource.id"],
            Disclosure::Erased { erased: true, .. }
        ));
        assert_eq!(entry_leaf_hash(&back), stored.leaf);
    }

    #[test]
    fn an_operators_marks_are_sealed_like_the_built_in_ones() {
        let mut catalog = Catalog::builtin();
        let marks = "[personal]\ndetails = [\"email\"]\n[categories]\nticket = \"T\"\n[[event]]\n\
                     name = \"ticket.assigned\"\ndescription = \"d\"\npersonal_resource = true\n";
        catalog.extend_from_toml("ops.toml", marks).unwrap();
        let p = PersonalData::new(&[9; 32], Arc::new(catalog));
        let mut db = Db { keys: HashMap::new() };
        let mut e = role_change();
        e.event = "ticket.assigned".into();
        e.resource.id = "carol@acme.com".into();
        e.details.insert("email".into(), "dave@acme.com".into());
        let stored = write(&p, &mut db, &mut e);
        assert_eq!(stored.row.details["email"], ERASED);
        assert_eq!(Some(stored.row.resource.id.clone()), p.index_of("carol@acme.com"));
        assert!(e.personal.contains_key("details.email") && e.personal.contains_key("resource.id"));
        let plain = PersonalData::new(&[9; 32], Arc::new(Catalog::builtin()));
        let mut unmarked = role_change();
        unmarked.event = "ticket.assigned".into();
        unmarked.details.insert("email".into(), "dave@acme.com".into());
        let stored = write(&plain, &mut db, &mut unmarked);
        assert_eq!(
            stored.row.details["email"], "dave@acme.com",
            "without the mark, not personal"
        );
    }

    #[test]
    fn before_sealing_names_the_people_and_the_row_details_sealing_makes() {
        let p = data();
        let mut db = Db { keys: HashMap::new() };
        let mut e = role_change();
        let (mut people, details) = p.before_sealing(&e);
        people.sort();
        let stored = write(&p, &mut db, &mut e);
        let mut sealed_for: Vec<Pseudonym> = stored.sealed.parts.iter().map(|(p, _)| *p).collect();
        sealed_for.sort();
        assert_eq!(people, sealed_for);
        assert_eq!(details, stored.row.details_json());
    }

    #[test]
    fn keys_open_only_under_their_master_secret() {
        let p = data();
        let key = SubjectKey::generate();
        let wrapped = p.wrap_key(&key);
        assert_eq!(p.unwrap_key(&wrapped), Ok(key));
        let other = PersonalData::new(&[8; 32], Arc::new(Catalog::builtin()));
        assert_eq!(other.unwrap_key(&wrapped), Err(KeyError));
    }

    #[test]
    fn commitments_round_trip_and_garbage_is_refused() {
        let c = vec![
            (FieldPath::ActorId, Commitment([1; 32])),
            (FieldPath::Detail("e-mail".into()), Commitment([2; 32])),
        ];
        let back = decode_commitments(&encode_commitments(&c)).unwrap();
        assert_eq!(back.len(), 2);
        assert!(
            matches!(&back["details.e-mail"], Disclosure::Erased { commitment, .. } if *commitment == Commitment([2; 32]).to_hex())
        );
        let bytes = encode_commitments(&c);
        assert_eq!(decode_commitments(&bytes[..bytes.len() - 1]), None);
        assert_eq!(decode_commitments(&[0, 3, b'x', b'y', b'z']), None);
        assert_eq!(decode_commitments(&[]), Some(BTreeMap::new()));
    }
}

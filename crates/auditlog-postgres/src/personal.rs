//! Personal data on PostgreSQL, laid out as the SQLite store's `personal`:
//! each person's key (`subject_keys`), each entry's sealed values
//! (`personal_parts`), restoring them as entries are read, and erasing a
//! person.
//!
//! Sealing itself happens in `append`, under the organization's log head;
//! this module gives it the keys, a batch of people at a time, so a batch
//! costs one round trip for its keys rather than one per person.

use std::collections::HashMap;

use auditlog_domain::personal::{ERASED, PersonalData, Pseudonym, SubjectKey};
use auditlog_domain::{Entry, OrgId, StoreError};
use deadpool_postgres::{GenericClient, Transaction};
use tokio_postgres::{Row, Statement};

use crate::db;
use crate::error::Failure;
use crate::rows::{bad, get};

/// The keys of some people, locked `FOR KEY SHARE`: an erasure deletes the
/// key first, so it waits for every transaction sealing with it, and then
/// finds their parts.
pub const READ_KEYS: &str = "SELECT k.org_id, k.pseudonym, k.wrapped FROM subject_keys k \
     JOIN unnest($1::bigint[], $2::bytea[]) AS u (org_id, pseudonym) \
         ON k.org_id = u.org_id AND k.pseudonym = u.pseudonym \
     FOR KEY SHARE OF k";

/// New keys; those another transaction made meanwhile are left as they
/// are, and read again.
pub const MAKE_KEYS: &str = "INSERT INTO subject_keys (org_id, pseudonym, wrapped, created_at) \
     SELECT o, p, w, $4 FROM unnest($1::bigint[], $2::bytea[], $3::bytea[]) AS u (o, p, w) \
     ON CONFLICT (org_id, pseudonym) DO NOTHING RETURNING org_id, pseudonym";

pub const INSERT_PARTS: &str = "INSERT INTO personal_parts (org_id, seq, pseudonym, sealed) \
     SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bytea[], $4::bytea[])";

/// The parts of some entries with their people's keys, if they still have
/// them: one statement, so one snapshot of both.
const PARTS_OF: &str = "SELECT p.org_id, p.seq, p.pseudonym, p.sealed, k.wrapped \
     FROM (SELECT DISTINCT * FROM unnest($1::bigint[], $2::bigint[])) AS u (org_id, seq) \
     JOIN personal_parts p ON p.org_id = u.org_id AND p.seq = u.seq \
     LEFT JOIN subject_keys k ON k.org_id = p.org_id AND k.pseudonym = p.pseudonym";

/// What an entry sealed by the writer stores beside its row.
#[derive(Debug)]
pub struct SealedRow {
    /// The row: no personal value, a blind-index token in each identifier
    /// column that held one.
    pub row: Entry,
    /// `personal::encode_commitments` of the entry's commitments.
    pub commitments: Vec<u8>,
    pub parts: Vec<(Pseudonym, Vec<u8>)>,
}

/// Inserts the parts of `sealed`, whose rows are being inserted.
pub async fn insert_parts(tx: &Transaction<'_>, insert: &Statement, sealed: &[SealedRow]) -> Result<(), Failure> {
    let (mut org, mut seq, mut pseudonym, mut part) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for s in sealed {
        for (p, bytes) in &s.parts {
            org.push(s.row.org_id.0);
            seq.push(s.row.seq);
            pseudonym.push(&p.0[..]);
            part.push(bytes.as_slice());
        }
    }
    if !org.is_empty() {
        tx.execute(insert, &[&org, &seq, &pseudonym, &part]).await?;
    }
    Ok(())
}

/// The keys one transaction has read or made. Only ever kept for one
/// transaction, and cleared after a request's changes (an erasure among
/// them) and a savepoint rolled back (which released their locks).
#[derive(Default)]
pub struct Keys(HashMap<(OrgId, Pseudonym), SubjectKey>);

impl Keys {
    pub fn clear(&mut self) {
        self.0.clear();
    }

    pub fn get(&self, org: OrgId, pseudonym: &Pseudonym) -> Option<SubjectKey> {
        self.0.get(&(org, *pseudonym)).cloned()
    }

    /// Reads, or makes and stores, the keys of `wanted` not held yet.
    pub async fn ensure(
        &mut self,
        tx: &Transaction<'_>,
        (read, make): (&Statement, &Statement),
        personal: &PersonalData,
        wanted: Vec<(OrgId, Pseudonym)>,
        now: i64,
    ) -> Result<(), Failure> {
        let mut missing: Vec<(OrgId, Pseudonym)> = wanted.into_iter().filter(|k| !self.0.contains_key(k)).collect();
        missing.sort_unstable_by_key(|(org, p)| (org.0, p.0));
        missing.dedup();
        if missing.is_empty() {
            return Ok(());
        }
        self.read(tx, read, personal, &missing).await?;
        missing.retain(|k| !self.0.contains_key(k));
        if missing.is_empty() {
            return Ok(());
        }
        let made: Vec<SubjectKey> = missing.iter().map(|_| SubjectKey::generate()).collect();
        let wrapped: Vec<Vec<u8>> = made.iter().map(|k| personal.wrap_key(k)).collect();
        let orgs: Vec<i64> = missing.iter().map(|(org, _)| org.0).collect();
        let pseudonyms: Vec<&[u8]> = missing.iter().map(|(_, p)| &p.0[..]).collect();
        let stored = tx.query(make, &[&orgs, &pseudonyms, &wrapped, &now]).await?;
        let mut made: HashMap<(OrgId, Pseudonym), SubjectKey> = missing.iter().copied().zip(made).collect();
        for r in &stored {
            let at = (OrgId(get(r, 0)?), pseudonym_at(r, 1)?);
            if let Some(key) = made.remove(&at) {
                self.0.insert(at, key);
            }
        }
        // Whatever was not stored, another transaction stored first.
        let taken: Vec<(OrgId, Pseudonym)> = made.into_keys().collect();
        if !taken.is_empty() {
            self.read(tx, read, personal, &taken).await?;
            if taken.iter().any(|k| !self.0.contains_key(k)) {
                return Err(StoreError::Internal("a subject key was neither found nor made".into()).into());
            }
        }
        Ok(())
    }

    async fn read(
        &mut self,
        tx: &Transaction<'_>,
        read: &Statement,
        personal: &PersonalData,
        keys: &[(OrgId, Pseudonym)],
    ) -> Result<(), Failure> {
        let orgs: Vec<i64> = keys.iter().map(|(org, _)| org.0).collect();
        let pseudonyms: Vec<&[u8]> = keys.iter().map(|(_, p)| &p.0[..]).collect();
        for r in tx.query(read, &[&orgs, &pseudonyms]).await? {
            let key = personal
                .unwrap_key(get(&r, 2)?)
                .map_err(|e| StoreError::Internal(e.to_string()))?;
            self.0.insert((OrgId(get(&r, 0)?), pseudonym_at(&r, 1)?), key);
        }
        Ok(())
    }
}

fn pseudonym_at(r: &Row, i: usize) -> Result<Pseudonym, StoreError> {
    let bytes: &[u8] = get(r, i)?;
    Ok(Pseudonym(
        bytes.try_into().map_err(|_| bad("a pseudonym is not 32 bytes"))?,
    ))
}

/// Each entry's parts, and the keys of their people (`None` once erased).
type Found = (
    HashMap<(i64, i64), Vec<(Pseudonym, Vec<u8>)>>,
    HashMap<(i64, Pseudonym), Option<SubjectKey>>,
);

/// Restores the personal values of `entries`, as read from their rows,
/// with one query for all of them (none when no entry is of version 3).
pub async fn restore<C: GenericClient>(
    c: &C,
    personal: Option<&PersonalData>,
    entries: &mut [Entry],
) -> Result<(), Failure> {
    let (orgs, seqs): (Vec<i64>, Vec<i64>) = entries
        .iter()
        .filter(|e| e.canonical_version >= 3)
        .map(|e| (e.org_id.0, e.seq))
        .unzip();
    if orgs.is_empty() {
        return Ok(());
    }
    // Without the master secret every sealed value reads as erased (see
    // `personal::restore`): nothing to fetch.
    let (parts, keys) = match personal {
        Some(personal) => parts_of(c, personal, &orgs, &seqs).await?,
        None => Default::default(),
    };
    for entry in entries.iter_mut().filter(|e| e.canonical_version >= 3) {
        let org = entry.org_id.0;
        // Cloned: the same entry may be here twice.
        let mine = parts.get(&(org, entry.seq)).cloned().unwrap_or_default();
        let unopened = auditlog_domain::personal::restore(entry, mine, |p| keys.get(&(org, *p)).cloned().flatten())
            .map_err(|e| StoreError::Internal(e.to_string()))?;
        if unopened > 0 {
            // Altered or moved in the database: read as erased; the proofs
            // of a moved row fail.
            tracing::warn!(
                org,
                seq = entry.seq,
                unopened,
                "sealed personal values of this entry do not open for it"
            );
        }
    }
    Ok(())
}

async fn parts_of<C: GenericClient>(
    c: &C,
    personal: &PersonalData,
    orgs: &[i64],
    seqs: &[i64],
) -> Result<Found, Failure> {
    let (mut parts, mut keys): Found = Default::default();
    for r in db::query(c, PARTS_OF, &[&orgs, &seqs]).await? {
        let (org, seq, pseudonym): (i64, i64, Pseudonym) = (get(&r, 0)?, get(&r, 1)?, pseudonym_at(&r, 2)?);
        if let std::collections::hash_map::Entry::Vacant(slot) = keys.entry((org, pseudonym)) {
            // A key sealed under another master secret reads as no key: its
            // values show erased and the entry's other values still read.
            let key = get::<Option<&[u8]>>(&r, 4)?.and_then(|w| match personal.unwrap_key(w) {
                Ok(key) => Some(key),
                Err(e) => {
                    tracing::warn!(org, error = %e, "a subject key does not open under this signing key");
                    None
                }
            });
            slot.insert(key);
        }
        parts.entry((org, seq)).or_default().push((pseudonym, get(&r, 3)?));
    }
    Ok((parts, keys))
}

/// How many entries hold values of `pseudonym` that can still be opened.
pub async fn subject_entries<C: GenericClient>(c: &C, org: OrgId, pseudonym: &Pseudonym) -> Result<u64, Failure> {
    let r = db::query_one(
        c,
        "SELECT count(*) FROM personal_parts WHERE org_id = $1 AND pseudonym = $2",
        &[&org.0, &&pseudonym.0[..]],
    )
    .await?;
    Ok(get::<i64>(&r, 0)?.max(0) as u64)
}

/// Erases `pseudonym` in `org` inside the open transaction: its key, its
/// sealed values, and its blind-index `token` in the identifier columns of
/// its entries. Refused, writing nothing the caller's savepoint keeps,
/// when the person has other than `expected` entries: ingest added one
/// since the caller counted, and the count it records would be wrong.
pub async fn erase(
    tx: &Transaction<'_>,
    org: OrgId,
    pseudonym: &Pseudonym,
    token: &str,
    expected: u64,
) -> Result<(), Failure> {
    let p = &pseudonym.0[..];
    // First, so it waits for every append still sealing with the key
    // (they hold it FOR KEY SHARE), and the statements below see their
    // parts.
    db::execute(
        tx,
        "DELETE FROM subject_keys WHERE org_id = $1 AND pseudonym = $2",
        &[&org.0, &p],
    )
    .await?;
    // The seqs as an array, so each partition is probed by its primary
    // key rather than scanned.
    db::execute(
        tx,
        "UPDATE entries SET \
             actor = CASE WHEN actor = $3 THEN $4 ELSE actor END, \
             resource_id = CASE WHEN resource_id = $3 THEN $4 ELSE resource_id END, \
             submitted_by_id = CASE WHEN submitted_by_id = $3 THEN $4 ELSE submitted_by_id END \
         WHERE org_id = $1 AND seq = ANY (ARRAY(SELECT seq FROM personal_parts WHERE org_id = $1 AND pseudonym = $2))",
        &[&org.0, &p, &token, &ERASED],
    )
    .await?;
    let deleted = db::execute(
        tx,
        "DELETE FROM personal_parts WHERE org_id = $1 AND pseudonym = $2",
        &[&org.0, &p],
    )
    .await?;
    if deleted != expected {
        return Err(StoreError::Rejected {
            code: "subject_changed",
            message: format!(
                "the subject's entries changed while being erased ({expected} counted, {deleted} found); try again"
            ),
        }
        .into());
    }
    Ok(())
}

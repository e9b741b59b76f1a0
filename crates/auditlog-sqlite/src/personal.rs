//! Personal data on SQLite: each person's key (`subject_keys`), each
//! entry's sealed values (`personal_parts`), restoring them as entries are
//! read, and erasing a person.

use std::collections::HashMap;

use auditlog_domain::personal::{self, PersonalData, Pseudonym, Stored, SubjectKey};
use auditlog_domain::{Entry, OrgId, StoreError};
use r2d2_sqlite::rusqlite::{self, Connection, OptionalExtension, params};

use crate::rows::db_err;

/// The keys one transaction has read or made, so an entry's second person
/// and the next entries of the same people cost no query. Only ever kept
/// for one transaction (a savepoint rolled back clears it): an erasure
/// committed in between must be seen.
#[derive(Default)]
pub(crate) struct Keys(HashMap<(OrgId, Pseudonym), SubjectKey>);

impl Keys {
    pub(crate) fn clear(&mut self) {
        self.0.clear();
    }

    /// `pseudonym`'s key in `org`, made and stored if it has none.
    pub(crate) fn get_or_make(
        &mut self,
        conn: &Connection,
        personal: &PersonalData,
        org: OrgId,
        pseudonym: &Pseudonym,
        now: i64,
    ) -> rusqlite::Result<SubjectKey> {
        if let Some(key) = self.0.get(&(org, *pseudonym)) {
            return Ok(key.clone());
        }
        let key = match read_key(conn, personal, org, pseudonym)? {
            Some(key) => key,
            None => {
                let key = SubjectKey::generate();
                conn.prepare_cached(
                    "INSERT INTO subject_keys (org_id, pseudonym, wrapped, created_at) VALUES (?1, ?2, ?3, ?4)",
                )?
                .execute(params![org.0, &pseudonym.0[..], personal.wrap_key(&key), now])?;
                key
            }
        };
        self.0.insert((org, *pseudonym), key.clone());
        Ok(key)
    }
}

/// `pseudonym`'s key in `org` as stored (sealed), if it has one (none once
/// erased).
fn wrapped_key(conn: &Connection, org: OrgId, pseudonym: &Pseudonym) -> rusqlite::Result<Option<Vec<u8>>> {
    conn.prepare_cached("SELECT wrapped FROM subject_keys WHERE org_id = ?1 AND pseudonym = ?2")?
        .query_row(params![org.0, &pseudonym.0[..]], |r| r.get(0))
        .optional()
}

/// `pseudonym`'s key for sealing: one that does not open under this
/// master secret stops the write, as sealing more under it would spread it.
fn read_key(
    conn: &Connection,
    personal: &PersonalData,
    org: OrgId,
    pseudonym: &Pseudonym,
) -> rusqlite::Result<Option<SubjectKey>> {
    wrapped_key(conn, org, pseudonym)?
        .map(|w| personal.unwrap_key(&w))
        .transpose()
        .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
}

/// `pseudonym`'s key for reading: one sealed under another master secret
/// reads as none, so its values show erased and the entry's others still
/// read, and the operator is told.
fn readable_key(
    conn: &Connection,
    personal: &PersonalData,
    org: OrgId,
    pseudonym: &Pseudonym,
) -> Result<Option<SubjectKey>, StoreError> {
    let wrapped = wrapped_key(conn, org, pseudonym).map_err(db_err)?;
    Ok(wrapped.and_then(|w| match personal.unwrap_key(&w) {
        Ok(key) => Some(key),
        Err(e) => {
            tracing::warn!(org = org.0, error = %e, "a subject key does not open under this signing key");
            None
        }
    }))
}

/// Stores the sealed values of the entry whose row was just inserted.
pub(crate) fn insert_parts(conn: &Connection, org: OrgId, seq: i64, stored: &Stored) -> rusqlite::Result<()> {
    let mut insert =
        conn.prepare_cached("INSERT INTO personal_parts (org_id, seq, pseudonym, sealed) VALUES (?1, ?2, ?3, ?4)")?;
    for (pseudonym, sealed) in &stored.sealed.parts {
        insert.execute(params![org.0, seq, &pseudonym.0[..], sealed])?;
    }
    Ok(())
}

/// Restores the personal values of `entries`, all of `org`, as read from
/// their rows. Keys are read once per call. Without the master secret
/// every sealed value reads as erased (see `personal::restore`).
pub(crate) fn restore(
    conn: &Connection,
    personal: Option<&PersonalData>,
    entries: &mut [Entry],
) -> Result<(), StoreError> {
    let mut keys: HashMap<(OrgId, Pseudonym), Option<SubjectKey>> = HashMap::new();
    let mut page = match personal {
        Some(_) => parts_of_page(conn, entries).map_err(db_err)?,
        None => HashMap::new(),
    };
    for entry in entries.iter_mut().filter(|e| e.canonical_version >= 3) {
        let org = entry.org_id;
        let parts = match personal {
            Some(personal) => {
                let parts = page.remove(&(org, entry.seq)).unwrap_or_default();
                for (p, _) in &parts {
                    if let std::collections::hash_map::Entry::Vacant(slot) = keys.entry((org, *p)) {
                        slot.insert(readable_key(conn, personal, org, p)?);
                    }
                }
                parts
            }
            None => Vec::new(),
        };
        let unopened = personal::restore(entry, parts, |p| keys.get(&(org, *p)).cloned().flatten())
            .map_err(|e| StoreError::Internal(e.to_string()))?;
        warn_unopened(entry, unopened);
    }
    Ok(())
}

/// Sealed values that do not open for their entry were altered or moved
/// in the database: they read as erased, and whoever runs the service is
/// told (`auditlog check` and `verify` name a moved row by its proof).
pub(crate) fn warn_unopened(entry: &Entry, unopened: usize) {
    if unopened > 0 {
        tracing::warn!(
            org = entry.org_id.0,
            seq = entry.seq,
            unopened,
            "sealed personal values of this entry do not open for it: altered or moved in the database"
        );
    }
}

type Parts = HashMap<(OrgId, i64), Vec<(Pseudonym, Vec<u8>)>>;

/// A page's seqs this many times sparser than its length or more are read
/// one by one: a range read would pass over more rows than it keeps.
const DENSE: i64 = 4;
/// Seqs per listed read.
const SPARSE: usize = 64;

/// The sealed parts of the version-3 entries among `entries`, by
/// organization and seq: one range read of the primary key when they are
/// one organization's and close together (an export's pages, a listing),
/// else one read each.
fn parts_of_page(conn: &Connection, entries: &[Entry]) -> rusqlite::Result<Parts> {
    let sealed: Vec<(OrgId, i64)> = entries
        .iter()
        .filter(|e| e.canonical_version >= 3)
        .map(|e| (e.org_id, e.seq))
        .collect();
    let mut out = Parts::new();
    let Some(&(org, _)) = sealed.first() else {
        return Ok(out);
    };
    let (lo, hi) = sealed
        .iter()
        .fold((i64::MAX, i64::MIN), |(lo, hi), (_, s)| (lo.min(*s), hi.max(*s)));
    if sealed.iter().all(|(o, _)| *o == org) && hi - lo < DENSE * sealed.len() as i64 {
        let wanted: std::collections::HashSet<i64> = sealed.iter().map(|(_, s)| *s).collect();
        let mut s = conn.prepare_cached(
            "SELECT seq, pseudonym, sealed FROM personal_parts WHERE org_id = ?1 AND seq BETWEEN ?2 AND ?3",
        )?;
        for row in s.query_map(params![org.0, lo, hi], part_at)? {
            let (seq, part) = row?;
            if wanted.contains(&seq) {
                out.entry((org, seq)).or_default().push(part);
            }
        }
        return Ok(out);
    }
    // Sparse or mixed: one statement per organization and up to SPARSE
    // seqs, padded with the last so every statement is the same one.
    let placeholders: Vec<String> = (2..SPARSE + 2).map(|i| format!("?{i}")).collect();
    let mut s = conn.prepare_cached(&format!(
        "SELECT seq, pseudonym, sealed FROM personal_parts WHERE org_id = ?1 AND seq IN ({})",
        placeholders.join(", ")
    ))?;
    let mut by_org: HashMap<OrgId, Vec<i64>> = HashMap::new();
    for (org, seq) in sealed {
        by_org.entry(org).or_default().push(seq);
    }
    for (org, seqs) in by_org {
        for chunk in seqs.chunks(SPARSE) {
            let last = chunk[chunk.len() - 1];
            let padded = chunk.iter().copied().chain(std::iter::repeat(last)).take(SPARSE);
            let bound: Vec<i64> = std::iter::once(org.0).chain(padded).collect();
            for row in s.query_map(rusqlite::params_from_iter(bound), part_at)? {
                let (seq, part) = row?;
                out.entry((org, seq)).or_default().push(part);
            }
        }
    }
    Ok(out)
}

fn part_at(r: &rusqlite::Row<'_>) -> rusqlite::Result<(i64, (Pseudonym, Vec<u8>))> {
    let p: Vec<u8> = r.get(1)?;
    let p: [u8; 32] = p
        .try_into()
        .map_err(|_| crate::rows::bad_column(1, "a pseudonym is not 32 bytes"))?;
    Ok((r.get(0)?, (Pseudonym(p), r.get(2)?)))
}

/// How many entries hold values of `pseudonym` that can still be opened.
pub(crate) fn subject_entries(conn: &Connection, org: OrgId, pseudonym: &Pseudonym) -> rusqlite::Result<u64> {
    conn.prepare_cached("SELECT count(*) FROM personal_parts WHERE org_id = ?1 AND pseudonym = ?2")?
        .query_row(params![org.0, &pseudonym.0[..]], |r| r.get::<_, i64>(0))
        .map(|n| n.max(0) as u64)
}

/// Erases `pseudonym` in `org` inside the open transaction: its key, its
/// sealed values, and its blind-index `token` in the identifier columns of
/// its entries. Refused, writing nothing the caller's savepoint keeps,
/// when the person has other than `expected` entries: ingest added one
/// since the caller counted, and the count it records would be wrong.
pub(crate) fn erase(
    conn: &Connection,
    org: OrgId,
    pseudonym: &Pseudonym,
    token: &str,
    expected: u64,
) -> Result<(), StoreError> {
    let p = &pseudonym.0[..];
    conn.execute(
        "DELETE FROM subject_keys WHERE org_id = ?1 AND pseudonym = ?2",
        params![org.0, p],
    )
    .map_err(db_err)?;
    // One statement per column, each touching only the rows that hold the
    // token and so only its own index: setting all three columns on every
    // row of the person would rewrite both indexes for each of them.
    for (column, rows) in [
        (
            "actor",
            "SELECT seq FROM entries INDEXED BY entries_by_actor WHERE org_id = ?1 AND actor = ?3",
        ),
        (
            "resource_id",
            "SELECT seq FROM entries INDEXED BY entries_by_resource_id WHERE org_id = ?1 AND resource_id = ?3",
        ),
        // No index of its own: the person's parts name the rows.
        (
            "submitted_by_id",
            "SELECT seq FROM personal_parts WHERE org_id = ?1 AND pseudonym = ?2",
        ),
    ] {
        conn.execute(
            &format!("UPDATE entries SET {column} = ?4 WHERE org_id = ?1 AND {column} = ?3 AND seq IN ({rows})"),
            params![org.0, p, token, auditlog_domain::personal::ERASED],
        )
        .map_err(db_err)?;
    }
    let deleted = conn
        .execute(
            "DELETE FROM personal_parts WHERE org_id = ?1 AND pseudonym = ?2",
            params![org.0, p],
        )
        .map_err(db_err)? as u64;
    if deleted != expected {
        return Err(StoreError::Rejected {
            code: "subject_changed",
            message: format!(
                "the subject's entries changed while being erased ({expected} counted, {deleted} found); try again"
            ),
        });
    }
    Ok(())
}

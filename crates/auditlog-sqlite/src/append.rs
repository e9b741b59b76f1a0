//! Appending to the logs inside the writer's transaction, laid out as the
//! PostgreSQL store's `append`: each request's changes in a savepoint,
//! then its entries with their sequence numbers, idempotency replays and
//! webhook outbox rows, then the tree grown by the new leaves and the
//! heads moved.

use std::collections::HashMap;

use auditlog_domain::canonical::Fields;
use auditlog_domain::leaf_hasher::{LeafSink, with_leaf_hasher};
use auditlog_domain::personal::{PersonalData, encode_commitments};
use auditlog_domain::store::{AppendRequest, Appended, RequestResult};
use auditlog_domain::webhook::Endpoint;
use auditlog_domain::{Entry, OrgId, StoreError, Timestamp};
use r2d2_sqlite::rusqlite::{self, OptionalExtension, params};
use uuid::Uuid;

use crate::rows::{self, db_err, entry_from_row};
use crate::{changes, personal, schema, tree};

/// The organization's webhook endpoints, read once per transaction.
fn endpoints_of<'a>(
    tx: &rusqlite::Transaction<'_>,
    org: OrgId,
    cache: &'a mut HashMap<OrgId, Vec<Endpoint>>,
) -> Result<&'a [Endpoint], rusqlite::Error> {
    if let std::collections::hash_map::Entry::Vacant(slot) = cache.entry(org) {
        let mut s = tx.prepare_cached(&format!(
            "SELECT {} FROM webhooks WHERE org_id = ?1 AND enabled",
            rows::WEBHOOK_COLUMNS
        ))?;
        let list = s
            .query_map([org.0], |r| rows::webhook_at(r, 0))?
            .collect::<Result<Vec<_>, _>>()?;
        slot.insert(list);
    }
    Ok(cache.get(&org).map(Vec::as_slice).unwrap_or_default())
}

/// A store error raised where SQLite's are expected; `db_err` gives its
/// message back as an internal error.
fn store_err(e: StoreError) -> rusqlite::Error {
    rusqlite::Error::ToSqlConversionFailure(Box::new(e))
}

/// Where each organization's log stood before a transaction and after it.
struct Heads {
    heads: HashMap<OrgId, i64>,
    /// Only for the organizations whose tree grows.
    sizes_before: HashMap<OrgId, i64>,
}

/// The per-transaction state of an append.
#[derive(Default)]
struct Batch<'a, 's> {
    heads: HashMap<OrgId, i64>,
    /// Per organization: its log size before this transaction.
    sizes_before: HashMap<OrgId, i64>,
    /// Entries of this transaction by idempotency key, so a key repeated
    /// within one batch also yields the first entry.
    fresh: HashMap<(OrgId, String), Entry>,
    endpoints: HashMap<OrgId, Vec<Endpoint>>,
    /// Where new entries go to have their leaves hashed; `None` when the
    /// store keeps no tree.
    leaves: Option<&'s mut LeafSink<'a>>,
    /// How personal values are sealed; `None` writes version 2.
    personal: Option<&'a PersonalData>,
    keys: personal::Keys,
}

fn append_entries<'a>(
    tx: &rusqlite::Transaction<'_>,
    req: &'a AppendRequest,
    received_at: Timestamp,
    batch: &mut Batch<'a, '_>,
) -> Result<Vec<Appended>, rusqlite::Error> {
    let Batch {
        heads,
        sizes_before,
        fresh,
        endpoints,
        leaves,
        personal,
        keys,
    } = batch;
    let org = req.org_id;
    let mut outbox = tx.prepare_cached(
        "INSERT INTO deliveries (org_id, id, webhook_id, seq, status, attempts, next_attempt_at, created_at) \
         VALUES (?1, ?2, ?3, ?4, 'pending', 0, ?5, ?5)",
    )?;
    let mut insert = tx.prepare_cached(schema::INSERT_ENTRY)?;
    let mut by_key = tx.prepare_cached(&format!(
        "SELECT {} FROM entries WHERE org_id = ?1 AND idempotency_key = ?2",
        rows::ENTRY_COLUMNS
    ))?;
    let mut head_of = tx.prepare_cached("SELECT size FROM log_heads WHERE org_id = ?1")?;
    let mut results = Vec::with_capacity(req.entries.len());
    for new in &req.entries {
        if let Some(key) = &new.idempotency_key {
            if let Some(e) = fresh.get(&(org, key.clone())) {
                results.push(Appended {
                    entry: e.clone(),
                    replayed: true,
                });
                continue;
            }
            if let Some(mut e) = by_key.query_row(params![org.0, key], entry_from_row).optional()? {
                personal::restore(tx, *personal, std::slice::from_mut(&mut e)).map_err(store_err)?;
                results.push(Appended {
                    entry: e,
                    replayed: true,
                });
                continue;
            }
        }
        let seq = match heads.get_mut(&org) {
            Some(h) => {
                *h += 1;
                *h
            }
            None => {
                let size: i64 = head_of.query_row([org.0], |r| r.get(0))?;
                heads.insert(org, size + 1);
                if leaves.is_some() {
                    sizes_before.insert(org, size);
                }
                size + 1
            }
        };
        let id = Uuid::now_v7();
        let mut entry = new.to_entry(org, id, seq, received_at);
        match personal {
            Some(p) => {
                let stored = p.seal(&mut entry, |ps| keys.get_or_make(tx, p, org, ps, received_at.millis()))?;
                if let Some(leaves) = leaves {
                    leaves.push_hash(org, stored.leaf);
                }
                let commitments = encode_commitments(&stored.sealed.commitments);
                rows::insert_entry(&mut insert, &stored.row, Some(&commitments))?;
                personal::insert_parts(tx, org, seq, &stored)?;
            }
            None => {
                entry.canonical_version = 2;
                if let Some(leaves) = leaves {
                    leaves.push(org, Fields::of_new(new, id, seq, received_at));
                }
                rows::insert_entry(&mut insert, &entry, None)?;
            }
        }
        // The outbox row commits with the entry or not at all.
        for endpoint in endpoints_of(tx, org, endpoints)?
            .iter()
            .filter(|e| e.wants(&entry.event))
        {
            let id = format!("dlv_{}", Uuid::now_v7().simple());
            outbox.execute(params![org.0, id, endpoint.id, seq, received_at.millis()])?;
        }
        if let Some(key) = &new.idempotency_key {
            fresh.insert((org, key.clone()), entry.clone());
        }
        results.push(Appended { entry, replayed: false });
    }
    Ok(results)
}

/// Runs every request in the open transaction and grows each organization's
/// tree by the entries it added, their leaves hashed beside the inserts
/// (see [`auditlog_domain::leaf_hasher`]).
pub(crate) fn append_in_tx(
    tx: &rusqlite::Transaction<'_>,
    requests: &[AppendRequest],
    received_at: Timestamp,
    tree: bool,
    personal: Option<&PersonalData>,
) -> Result<Vec<RequestResult>, StoreError> {
    let (written, mut leaves) = if tree {
        let expected = requests.iter().map(|r| r.entries.len()).sum();
        with_leaf_hasher(expected, |sink| {
            append_requests(tx, requests, received_at, Some(sink), personal)
        })
    } else {
        (
            append_requests(tx, requests, received_at, None, personal),
            HashMap::new(),
        )
    };
    let (out, batch) = written?;
    for (org, size_before) in &batch.sizes_before {
        let leaves = leaves.remove(org).unwrap_or_default();
        tree::grow(tx, *org, *size_before as u64, &leaves).map_err(db_err)?;
    }
    let mut set_head = tx
        .prepare_cached("UPDATE log_heads SET size = ?2 WHERE org_id = ?1")
        .map_err(db_err)?;
    for (org, size) in batch.heads {
        set_head.execute(params![org.0, size]).map_err(db_err)?;
    }
    Ok(out)
}

/// Runs every request in the open transaction. A request with changes runs
/// inside a savepoint, so a refused change takes back only its own request.
fn append_requests<'a>(
    tx: &rusqlite::Transaction<'_>,
    requests: &'a [AppendRequest],
    received_at: Timestamp,
    leaves: Option<&mut LeafSink<'a>>,
    personal: Option<&'a PersonalData>,
) -> Result<(Vec<RequestResult>, Heads), StoreError> {
    let mut state = Batch {
        leaves,
        personal,
        ..Batch::default()
    };
    let batch = &mut state;
    let mut out = Vec::with_capacity(requests.len());
    for req in requests {
        if req.changes.is_empty() {
            out.push(Ok(append_entries(tx, req, received_at, batch).map_err(db_err)?));
            continue;
        }
        tx.execute_batch("SAVEPOINT request").map_err(db_err)?;
        let applied = req
            .changes
            .iter()
            .try_for_each(|change| changes::apply(tx, req.org_id, change, received_at.millis()));
        // A change to webhooks alters which endpoints this batch fans out to;
        // an erasure, or a savepoint rolled back, which keys exist.
        batch.endpoints.remove(&req.org_id);
        batch.keys.clear();
        match applied {
            Ok(()) => {
                let appended = append_entries(tx, req, received_at, batch).map_err(db_err)?;
                tx.execute_batch("RELEASE request").map_err(db_err)?;
                out.push(Ok(appended));
            }
            Err(e @ (StoreError::Rejected { .. } | StoreError::Conflict(_) | StoreError::NotFound(_))) => {
                tx.execute_batch("ROLLBACK TO request; RELEASE request")
                    .map_err(db_err)?;
                batch.keys.clear();
                out.push(Err(e));
            }
            Err(e) => return Err(e),
        }
    }
    let Batch {
        heads, sizes_before, ..
    } = state;
    Ok((out, Heads { heads, sizes_before }))
}

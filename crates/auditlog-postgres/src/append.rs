//! The writer's transaction: changes, entries, their deliveries and the
//! Merkle tree, committed together.
//!
//! Any number of processes may append at once. The transaction first locks
//! the log head of every organization it writes to (`FOR UPDATE`, in
//! org_id order so two transactions cannot wait on each other); from then on
//! it alone assigns those organizations' sequence numbers, grows their trees
//! and checks their idempotency keys, and later statements (READ COMMITTED)
//! see everything the previous holder committed. A call spanning several
//! organizations first takes only the heads no one holds (`SKIP LOCKED`) and
//! leaves the others to a second transaction (see `PostgresStore::append`).
//!
//! New rows are buffered and written with one multi-row insert per table, not
//! one round trip per entry; the buffer is flushed before each change, so a
//! change sees the batch's earlier entries and deliveries as it would have
//! one by one (a deleted endpoint takes its pending deliveries with it).

use std::collections::HashMap;
use std::net::IpAddr;

use auditlog_domain::canonical::entry_leaf_hash;
use auditlog_domain::merkle::Hash;
use auditlog_domain::store::{AppendRequest, Appended, RequestResult};
use auditlog_domain::webhook::Endpoint;
use auditlog_domain::{Entry, OrgId, StoreError, Timestamp};
use deadpool_postgres::Transaction;
use uuid::Uuid;

use crate::error::Failure;
use crate::rows::{ENTRY_COLUMNS, WEBHOOK_COLUMNS, entry_at, get, qualified, webhook_at};
use crate::{changes, db, tree};

/// The channel `pg_notify` signals on when deliveries were written.
pub const DELIVERIES_CHANNEL: &str = "auditlog_deliveries";

/// Rows waiting for their multi-row insert.
#[derive(Default)]
struct Buffer {
    entries: Vec<Entry>,
    /// (org, id, webhook id, seq, entry ts)
    deliveries: Vec<(i64, String, String, i64, i64)>,
}

/// The per-transaction state of an append.
#[derive(Default)]
struct Batch {
    /// Each organization's head as this transaction moves it.
    heads: HashMap<OrgId, i64>,
    /// Each organization's head when the transaction locked it.
    sizes_before: HashMap<OrgId, i64>,
    /// Entries of this transaction by idempotency key, so a key repeated
    /// within one batch also yields the first entry.
    fresh: HashMap<(OrgId, String), Entry>,
    endpoints: HashMap<OrgId, Vec<Endpoint>>,
    buffer: Buffer,
    wrote_deliveries: bool,
}

/// Locks the log heads of `orgs`, in order, and returns their sizes: all of
/// them, waiting for any another transaction holds, or with
/// [`Heads::FreeOnly`] only those no other transaction holds.
async fn lock_heads(tx: &Transaction<'_>, orgs: &[i64], mode: Heads) -> Result<HashMap<OrgId, i64>, Failure> {
    let sql = match mode {
        Heads::Wait => "SELECT org_id, size FROM log_heads WHERE org_id = ANY($1) ORDER BY org_id FOR UPDATE",
        Heads::FreeOnly => {
            "SELECT org_id, size FROM log_heads WHERE org_id = ANY($1) ORDER BY org_id FOR UPDATE SKIP LOCKED"
        }
    };
    let rows = db::query(tx, sql, &[&orgs]).await?;
    let mut heads = HashMap::with_capacity(rows.len());
    for r in rows {
        heads.insert(OrgId(get(&r, 0)?), get(&r, 1)?);
    }
    if mode == Heads::Wait
        && let Some(missing) = orgs.iter().find(|o| !heads.contains_key(&OrgId(**o)))
    {
        return Err(StoreError::NotFound(format!("organization {missing}")).into());
    }
    Ok(heads)
}

/// The organization's enabled endpoints, read once per transaction (and
/// again after a change, which may have altered them).
async fn endpoints_of<'a>(
    tx: &Transaction<'_>,
    org: OrgId,
    cache: &'a mut HashMap<OrgId, Vec<Endpoint>>,
) -> Result<&'a [Endpoint], Failure> {
    if let std::collections::hash_map::Entry::Vacant(slot) = cache.entry(org) {
        let rows = db::query(
            tx,
            &format!("SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE org_id = $1 AND enabled"),
            &[&org.0],
        )
        .await?;
        let list = rows.iter().map(|r| webhook_at(r, 0)).collect::<Result<Vec<_>, _>>()?;
        slot.insert(list);
    }
    Ok(cache.get(&org).map(Vec::as_slice).unwrap_or_default())
}

/// The entries already recorded under any of `keys`, by key.
async fn by_keys(tx: &Transaction<'_>, org: OrgId, keys: &[&str]) -> Result<HashMap<String, Entry>, Failure> {
    if keys.is_empty() {
        return Ok(HashMap::new());
    }
    let rows = db::query(
        tx,
        &format!(
            "SELECT {} FROM entry_keys k JOIN entries e ON e.org_id = k.org_id AND e.seq = k.seq AND e.ts = k.ts \
             WHERE k.org_id = $1 AND k.idempotency_key = ANY($2)",
            qualified("e", ENTRY_COLUMNS)
        ),
        &[&org.0, &keys],
    )
    .await?;
    let mut found = HashMap::with_capacity(rows.len());
    for r in rows {
        let e = entry_at(&r, 0)?;
        if let Some(key) = e.idempotency_key.clone() {
            found.insert(key, e);
        }
    }
    Ok(found)
}

/// Turns one request's entries into rows in the buffer (or replays).
async fn append_entries(
    tx: &Transaction<'_>,
    req: &AppendRequest,
    received_at: Timestamp,
    batch: &mut Batch,
) -> Result<Vec<Appended>, Failure> {
    let org = req.org_id;
    let keys: Vec<&str> = req
        .entries
        .iter()
        .filter_map(|e| e.idempotency_key.as_deref())
        .filter(|k| !batch.fresh.contains_key(&(org, (*k).to_owned())))
        .collect();
    let recorded = by_keys(tx, org, &keys).await?;
    let mut results = Vec::with_capacity(req.entries.len());
    for new in &req.entries {
        if let Some(key) = &new.idempotency_key {
            let earlier = batch
                .fresh
                .get(&(org, key.clone()))
                .cloned()
                .or_else(|| recorded.get(key).cloned());
            if let Some(entry) = earlier {
                results.push(Appended { entry, replayed: true });
                continue;
            }
        }
        let head = batch
            .heads
            .get_mut(&org)
            .ok_or_else(|| StoreError::Internal(format!("organization {} was not locked", org.0)))?;
        *head += 1;
        let entry = Entry {
            id: Uuid::now_v7(),
            org_id: org,
            seq: *head,
            timestamp: new.timestamp,
            received_at,
            actor: new.actor.clone(),
            event: new.event.clone(),
            resource: new.resource.clone(),
            details: new.details.clone(),
            ip_address: new.ip_address,
            user_agent: new.user_agent.clone(),
            request_id: new.request_id.clone(),
            idempotency_key: new.idempotency_key.clone(),
        };
        // The outbox rows commit with the entry or not at all.
        for endpoint in endpoints_of(tx, org, &mut batch.endpoints)
            .await?
            .iter()
            .filter(|e| e.wants(&entry.event))
        {
            let id = format!("dlv_{}", Uuid::now_v7().simple());
            batch
                .buffer
                .deliveries
                .push((org.0, id, endpoint.id.clone(), entry.seq, entry.timestamp.millis()));
        }
        if let Some(key) = &new.idempotency_key {
            batch.fresh.insert((org, key.clone()), entry.clone());
        }
        batch.buffer.entries.push(entry.clone());
        results.push(Appended { entry, replayed: false });
    }
    Ok(results)
}

/// Writes the buffered rows, one statement per table, sent together
/// (pipelined): no table's rows depend on another's.
async fn flush(tx: &Transaction<'_>, buffer: &mut Buffer, received_at: Timestamp) -> Result<(), Failure> {
    let entries = std::mem::take(&mut buffer.entries);
    let deliveries = std::mem::take(&mut buffer.deliveries);
    futures_util::future::try_join(
        flush_entries(tx, &entries, received_at),
        flush_deliveries(tx, &deliveries, received_at),
    )
    .await?;
    Ok(())
}

async fn flush_entries(tx: &Transaction<'_>, entries: &[Entry], received_at: Timestamp) -> Result<(), Failure> {
    if !entries.is_empty() {
        let mut org = Vec::with_capacity(entries.len());
        let mut seq = Vec::with_capacity(entries.len());
        let mut ts = Vec::with_capacity(entries.len());
        let mut id = Vec::with_capacity(entries.len());
        let mut actor_type = Vec::with_capacity(entries.len());
        let mut actor = Vec::with_capacity(entries.len());
        let mut event = Vec::with_capacity(entries.len());
        let mut resource_type = Vec::with_capacity(entries.len());
        let mut resource_id = Vec::with_capacity(entries.len());
        let mut resource_name = Vec::with_capacity(entries.len());
        let mut details = Vec::with_capacity(entries.len());
        let mut ip: Vec<Option<IpAddr>> = Vec::with_capacity(entries.len());
        let mut user_agent = Vec::with_capacity(entries.len());
        let mut request_id = Vec::with_capacity(entries.len());
        let mut key = Vec::with_capacity(entries.len());
        for e in entries {
            org.push(e.org_id.0);
            seq.push(e.seq);
            ts.push(e.timestamp.millis());
            id.push(e.id);
            actor_type.push(e.actor.kind.as_str());
            actor.push(e.actor.id.as_str());
            event.push(e.event.as_str());
            resource_type.push(e.resource.kind.as_str());
            resource_id.push(e.resource.id.as_str());
            resource_name.push(e.resource.name.as_deref());
            details.push(e.details_json());
            ip.push(e.ip_address);
            user_agent.push(e.user_agent.as_deref());
            request_id.push(e.request_id.as_deref());
            key.push(e.idempotency_key.as_deref());
        }
        let keyed: Vec<usize> = (0..entries.len()).filter(|&i| key[i].is_some()).collect();
        let pick_i64 = |v: &[i64]| keyed.iter().map(|&i| v[i]).collect::<Vec<i64>>();
        let keys: Vec<&str> = keyed.iter().filter_map(|&i| key[i]).collect();
        let (key_org, key_seq, key_ts) = (pick_i64(&org), pick_i64(&seq), pick_i64(&ts));
        let keying = async {
            if keys.is_empty() {
                return Ok(0);
            }
            db::execute(
                tx,
                "INSERT INTO entry_keys (org_id, idempotency_key, seq, ts) \
                 SELECT * FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::bigint[])",
                &[&key_org, &keys, &key_seq, &key_ts],
            )
            .await
        };
        futures_util::future::try_join3(
            db::execute(
                tx,
                "INSERT INTO entries (org_id, seq, ts, received_at, id, actor_type, actor, event, resource_type, \
                 resource_id, resource_name, details, ip_address, user_agent, request_id, idempotency_key) \
                 SELECT o, s, t, $4, i, at, a, ev, rt, ri, rn, d::json, ip, ua, rq, k \
                 FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $5::uuid[], $6::text[], $7::text[], $8::text[], \
                             $9::text[], $10::text[], $11::text[], $12::text[], $13::inet[], $14::text[], $15::text[], \
                             $16::text[]) \
                      AS u (o, s, t, i, at, a, ev, rt, ri, rn, d, ip, ua, rq, k)",
                &[
                    &org,
                    &seq,
                    &ts,
                    &received_at.millis(),
                    &id,
                    &actor_type,
                    &actor,
                    &event,
                    &resource_type,
                    &resource_id,
                    &resource_name,
                    &details,
                    &ip,
                    &user_agent,
                    &request_id,
                    &key,
                ],
            ),
            db::execute(
                tx,
                "INSERT INTO entry_ids (org_id, id, seq, ts) \
                 SELECT * FROM unnest($1::bigint[], $2::uuid[], $3::bigint[], $4::bigint[])",
                &[&org, &id, &seq, &ts],
            ),
            keying,
        )
        .await?;
    }
    Ok(())
}

async fn flush_deliveries(
    tx: &Transaction<'_>,
    deliveries: &[(i64, String, String, i64, i64)],
    received_at: Timestamp,
) -> Result<(), Failure> {
    if !deliveries.is_empty() {
        let (mut org, mut id, mut webhook, mut seq, mut ts) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (o, i, w, s, t) in deliveries {
            org.push(*o);
            id.push(i.as_str());
            webhook.push(w.as_str());
            seq.push(*s);
            ts.push(*t);
        }
        db::execute(
            tx,
            "INSERT INTO deliveries (org_id, id, webhook_id, seq, entry_ts, status, attempts, next_attempt_at, \
             created_at) \
             SELECT o, i, w, s, t, 'pending', 0, $6, $6 \
             FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[], $5::bigint[]) AS u (o, i, w, s, t)",
            &[&org, &id, &webhook, &seq, &ts, &received_at.millis()],
        )
        .await?;
    }
    Ok(())
}

/// Runs every request in the open transaction. A request with changes runs
/// inside a savepoint, so a refused change takes back only its own request.
/// The leaf hashes of each organization's new entries, in sequence order.
fn leaves_by_org(out: &[RequestResult]) -> HashMap<OrgId, Vec<Hash>> {
    let mut leaves: HashMap<OrgId, Vec<Hash>> = HashMap::new();
    for appended in out.iter().flatten().flatten().filter(|a| !a.replayed) {
        leaves
            .entry(appended.entry.org_id)
            .or_default()
            .push(entry_leaf_hash(&appended.entry));
    }
    leaves
}

/// How an append takes the organizations' log heads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heads {
    /// Every organization's, waiting for those another transaction holds.
    Wait,
    /// Only those no other transaction holds (`SKIP LOCKED`); the requests
    /// of the others are left out.
    FreeOnly,
}

/// Appends `requests`, or with [`Heads::FreeOnly`] those of organizations
/// whose heads were free: which requests were taken, and their results in
/// order.
pub async fn append_taking(
    tx: &Transaction<'_>,
    requests: &[AppendRequest],
    received_at: Timestamp,
    mode: Heads,
) -> Result<(Vec<bool>, Vec<RequestResult>), Failure> {
    let mut orgs: Vec<i64> = requests.iter().map(|r| r.org_id.0).collect();
    orgs.sort_unstable();
    orgs.dedup();
    let heads = lock_heads(tx, &orgs, mode).await?;
    let taken: Vec<bool> = requests.iter().map(|r| heads.contains_key(&r.org_id)).collect();
    let mine: Vec<&AppendRequest> = requests
        .iter()
        .zip(&taken)
        .filter(|(_, t)| **t)
        .map(|(r, _)| r)
        .collect();
    if mine.is_empty() {
        return Ok((taken, Vec::new()));
    }
    let results = append_in_tx(tx, &mine, heads, received_at).await?;
    Ok((taken, results))
}

/// Appends `requests`, whose organizations' log heads this transaction has
/// locked (`heads`, their sizes).
async fn append_in_tx(
    tx: &Transaction<'_>,
    requests: &[&AppendRequest],
    heads: HashMap<OrgId, i64>,
    received_at: Timestamp,
) -> Result<Vec<RequestResult>, Failure> {
    let mut batch = Batch {
        sizes_before: heads.clone(),
        heads,
        ..Batch::default()
    };
    let mut out = Vec::with_capacity(requests.len());
    for req in requests {
        if req.changes.is_empty() {
            out.push(Ok(append_entries(tx, req, received_at, &mut batch).await?));
            continue;
        }
        batch.wrote_deliveries |= !batch.buffer.deliveries.is_empty();
        flush(tx, &mut batch.buffer, received_at).await?;
        tx.batch_execute("SAVEPOINT request").await?;
        let mut applied = Ok(());
        for change in &req.changes {
            applied = changes::apply(tx, req.org_id, change, received_at.millis()).await;
            if applied.is_err() {
                break;
            }
        }
        // A change to webhooks alters which endpoints this batch fans out to.
        batch.endpoints.remove(&req.org_id);
        match applied {
            Ok(()) => {
                let appended = append_entries(tx, req, received_at, &mut batch).await?;
                tx.batch_execute("RELEASE SAVEPOINT request").await?;
                out.push(Ok(appended));
            }
            Err(Failure::Store(
                e @ (StoreError::Rejected { .. } | StoreError::Conflict(_) | StoreError::NotFound(_)),
            )) => {
                tx.batch_execute("ROLLBACK TO SAVEPOINT request; RELEASE SAVEPOINT request")
                    .await?;
                out.push(Err(e));
            }
            Err(e) => return Err(e),
        }
    }
    batch.wrote_deliveries |= !batch.buffer.deliveries.is_empty();
    let (moved, sizes): (Vec<i64>, Vec<i64>) = batch
        .heads
        .iter()
        .filter(|(org, size)| batch.sizes_before.get(org) != Some(size))
        .map(|(org, size)| (org.0, *size))
        .unzip();
    let Batch {
        buffer,
        sizes_before,
        wrote_deliveries,
        ..
    } = &mut batch;
    let wrote_deliveries = *wrote_deliveries;
    // What is left goes out at once, pipelined on the connection: the last
    // rows, each tree's frontier and new nodes, the new heads and the
    // notification need nothing from each other's answers. With the
    // organizations' log heads locked, every round trip is time another
    // replica waits. The rows are sent first, and the leaves hashed while
    // PostgreSQL inserts them.
    let flushing = flush(tx, buffer, received_at);
    let out_ref = &out;
    let growing = async move {
        let leaves = leaves_by_org(out_ref);
        futures_util::future::try_join_all(leaves.iter().map(|(org, leaves)| {
            let size_before = sizes_before.get(org).copied().unwrap_or_default();
            tree::grow(tx, *org, size_before as u64, leaves)
        }))
        .await
    };
    let heading = async {
        if !moved.is_empty() {
            db::execute(
                tx,
                "UPDATE log_heads h SET size = u.size FROM unnest($1::bigint[], $2::bigint[]) AS u (org_id, size) \
                 WHERE h.org_id = u.org_id",
                &[&moved, &sizes],
            )
            .await?;
        }
        if wrote_deliveries {
            // Delivered to listeners on commit, and not at all on rollback.
            db::execute(tx, "SELECT pg_notify($1, '')", &[&DELIVERIES_CHANNEL]).await?;
        }
        Ok::<(), Failure>(())
    };
    futures_util::future::try_join3(flushing, growing, heading).await?;
    Ok(out)
}

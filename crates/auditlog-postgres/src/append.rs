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
//! leaves the others to a second transaction (see `PostgresStore::append`);
//! when it finds every head held, it waits for them itself.
//!
//! While a head is locked, every round trip to this process is time the
//! other replicas wait (which is also why appends run on a runtime of their
//! own, see [`crate::apart`]), so an append without changes makes two: the lock,
//! sent together with the reads that follow it (the organizations'
//! endpoints, the entries already recorded under the batch's idempotency
//! keys, the head's stored tree frontier), then every write together with
//! the commit (see [`db::commit_pipelined`]). Statements sent together run
//! one after another in the order sent, so each read sees what the previous
//! holder of the lock committed.
//!
//! New rows are written with one multi-row insert per table, not one round
//! trip per entry, from the results the call returns (the entries are not
//! copied again for it). The entries themselves (ids, the caller's fields,
//! the details' JSON) are made while the lock is being asked for, so under
//! it only their sequence numbers are set. A request with changes writes
//! the rows before it first
//! and runs in a savepoint, so a change sees the batch's earlier entries and
//! deliveries as it would have one by one (a deleted endpoint takes its
//! pending deliveries with it).
//!
//! With personal data (see `personal`), each new entry is sealed under the
//! lock, where its sequence number, which its leaf commits to, is known;
//! its row, commitments and parts are what is written, and its leaf is the
//! one sealing hashed. Before the lock, each entry's people and its row's
//! details are worked out (`PersonalData::before_sealing`): the keys of a
//! run of requests are then read (or made) in one round trip under the
//! lock, and read again after a request's changes, which may have erased
//! someone.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use auditlog_domain::canonical::entry_leaf_hash;
use auditlog_domain::merkle::{Frontier, Hash};
use auditlog_domain::personal::{PersonalData, Pseudonym, encode_commitments};
use auditlog_domain::store::{AppendRequest, Appended, RequestResult};
use auditlog_domain::webhook::Endpoint;
use auditlog_domain::{Entry, OrgId, StoreError, Timestamp};
use deadpool_postgres::{GenericClient, Transaction};
use tokio_postgres::Statement;
use uuid::Uuid;

use crate::changes;
use crate::db::{self, Ended};
use crate::error::Failure;
use crate::personal::{self, Keys, SealedRow};
use crate::rows::{ENTRY_COLUMNS, WEBHOOK_COLUMNS, entry_at, get, qualified, webhook_at};
use crate::tree::{self, Growth};

/// The channel `pg_notify` signals on when deliveries were written.
pub const DELIVERIES_CHANNEL: &str = "auditlog_deliveries";

/// The statements of an append, prepared before its lock is taken (once per
/// connection; later they come from the connection's cache), so that none
/// costs a round trip under the lock and statements sent together go out in
/// the order they are written.
struct Statements {
    lock_wait: Statement,
    lock_free: Statement,
    endpoints: Statement,
    recorded: Statement,
    entries: Statement,
    ids: Statement,
    keys: Statement,
    deliveries: Statement,
    nodes: Statement,
    tiles: Statement,
    heads: Statement,
    notify: Statement,
    read_keys: Statement,
    make_keys: Statement,
    parts: Statement,
}

const LOCK_WAIT: &str =
    "SELECT org_id, size, frontier FROM log_heads WHERE org_id = ANY($1) ORDER BY org_id FOR UPDATE";
const LOCK_FREE: &str =
    "SELECT org_id, size, frontier FROM log_heads WHERE org_id = ANY($1) ORDER BY org_id FOR UPDATE SKIP LOCKED";

impl Statements {
    async fn prepare(tx: &Transaction<'_>) -> Result<Self, Failure> {
        let endpoints = format!("SELECT org_id, {WEBHOOK_COLUMNS} FROM webhooks WHERE org_id = ANY($1) AND enabled");
        let recorded = format!(
            "SELECT {} FROM unnest($1::bigint[], $2::text[]) AS u (org_id, idempotency_key) \
             JOIN entry_keys k ON k.org_id = u.org_id AND k.idempotency_key = u.idempotency_key \
             JOIN entries e ON e.org_id = k.org_id AND e.seq = k.seq AND e.ts = k.ts",
            qualified("e", ENTRY_COLUMNS)
        );
        let sql: [&str; 15] = [
            LOCK_WAIT,
            LOCK_FREE,
            &endpoints,
            &recorded,
            "INSERT INTO entries (org_id, seq, ts, received_at, id, actor_type, actor, event, resource_type, \
             resource_id, resource_name, details, ip_address, user_agent, request_id, idempotency_key, \
             submitted_by_kind, submitted_by_id, canonical_version, commitments) \
             SELECT o, s, t, $4, i, at, a, ev, rt, ri, rn, d::json, ip, ua, rq, k, bk, bi, cv, cm \
             FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $5::uuid[], $6::text[], $7::text[], $8::text[], \
                         $9::text[], $10::text[], $11::text[], $12::text[], $13::inet[], $14::text[], $15::text[], \
                         $16::text[], $17::text[], $18::text[], $19::smallint[], $20::bytea[]) \
                  AS u (o, s, t, i, at, a, ev, rt, ri, rn, d, ip, ua, rq, k, bk, bi, cv, cm)",
            "INSERT INTO entry_ids (org_id, id, seq, ts) \
             SELECT * FROM unnest($1::bigint[], $2::uuid[], $3::bigint[], $4::bigint[])",
            "INSERT INTO entry_keys (org_id, idempotency_key, seq, ts) \
             SELECT * FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::bigint[])",
            "INSERT INTO deliveries (org_id, id, webhook_id, seq, entry_ts, status, attempts, next_attempt_at, \
             created_at) \
             SELECT o, i, w, s, t, 'pending', 0, $6, $6 \
             FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[], $5::bigint[]) AS u (o, i, w, s, t)",
            tree::INSERT_NODES,
            tree::EXTEND_TILES,
            "UPDATE log_heads h SET size = u.size, frontier = u.frontier \
             FROM unnest($1::bigint[], $2::bigint[], $3::bytea[]) AS u (org_id, size, frontier) \
             WHERE h.org_id = u.org_id",
            "SELECT pg_notify($1, '')",
            personal::READ_KEYS,
            personal::MAKE_KEYS,
            personal::INSERT_PARTS,
        ];
        let prepared = futures_util::future::try_join_all(sql.iter().map(|s| tx.prepare_cached(s))).await?;
        // Fields are evaluated in the order written, which is the order of `sql`.
        let mut prepared = prepared.into_iter();
        let mut next = || {
            prepared
                .next()
                .ok_or_else(|| Failure::from(StoreError::Internal("an append statement was not prepared".into())))
        };
        Ok(Self {
            lock_wait: next()?,
            lock_free: next()?,
            endpoints: next()?,
            recorded: next()?,
            entries: next()?,
            ids: next()?,
            keys: next()?,
            deliveries: next()?,
            nodes: next()?,
            tiles: next()?,
            heads: next()?,
            notify: next()?,
            read_keys: next()?,
            make_keys: next()?,
            parts: next()?,
        })
    }
}

/// A locked log head.
struct Head {
    size: i64,
    /// The tree's frontier as stored with the head, if it was.
    frontier: Option<Vec<u8>>,
}

/// What waits for its multi-row insert: the new entries of the requests
/// from `requests_flushed` on (in the call's results), and deliveries.
#[derive(Default)]
struct Buffer {
    /// How many of the call's requests have had their rows written.
    requests_flushed: usize,
    /// (org, id, webhook id, seq, entry ts)
    deliveries: Vec<(i64, String, String, i64, i64)>,
    /// Whether an earlier flush wrote deliveries.
    flushed_deliveries: bool,
    /// With personal data, what the new entries store in place of the
    /// entries handed back, in the same order.
    sealed: Vec<SealedRow>,
}

impl Buffer {
    /// Whether the transaction writes any deliveries, flushed or not yet.
    fn has_deliveries(&self) -> bool {
        self.flushed_deliveries || !self.deliveries.is_empty()
    }
}

/// What is made of a request's entries before the lock, besides the
/// entries: each one's details as its row stores them (JSON), and the
/// people whose keys sealing it needs (none without personal data).
#[derive(Default)]
struct Prepared {
    details: Vec<String>,
    people: Vec<Vec<Pseudonym>>,
}

/// A request this transaction took, with what was prepared of it.
#[derive(Clone, Copy)]
struct Taken<'r> {
    request: &'r AppendRequest,
    prepared: &'r Prepared,
}

/// A request's entries made ready before the lock, as they will be stored
/// but for their sequence numbers (and, with personal data, their
/// sealing): the work of an entry that does not need the head.
fn ready(request: &AppendRequest, received_at: Timestamp, personal: Option<&PersonalData>) -> (Vec<Entry>, Prepared) {
    let mut entries = Vec::with_capacity(request.entries.len());
    let mut prepared = Prepared::default();
    for new in &request.entries {
        // Its sequence number is set under the lock.
        let mut entry = new.to_entry(request.org_id, Uuid::now_v7(), 0, received_at);
        let (details, people) = match personal {
            Some(p) => {
                let (people, details) = p.before_sealing(&entry);
                (details, people)
            }
            None => {
                entry.canonical_version = 2;
                (entry.details_json(), Vec::new())
            }
        };
        entries.push(entry);
        prepared.details.push(details);
        prepared.people.push(people);
    }
    (entries, prepared)
}

/// What the transaction read once it held the heads.
struct Locked {
    heads: HashMap<OrgId, Head>,
    endpoints: HashMap<OrgId, Vec<Endpoint>>,
    recorded: HashMap<(OrgId, String), Entry>,
}

/// The per-transaction state of an append.
struct Batch<'p> {
    /// Each organization's head as this transaction moves it.
    heads: HashMap<OrgId, i64>,
    /// Entries recorded before this transaction under the idempotency keys
    /// of its requests.
    recorded: HashMap<(OrgId, String), Entry>,
    /// Entries of this transaction by idempotency key, so a key repeated
    /// within one batch also yields the first entry.
    fresh: HashMap<(OrgId, String), Entry>,
    /// Each organization's enabled endpoints; read again after a change.
    endpoints: HashMap<OrgId, Vec<Endpoint>>,
    buffer: Buffer,
    /// How personal values are sealed; `None` writes version 2.
    personal: Option<&'p PersonalData>,
    keys: Keys,
    /// With personal data, each organization's new leaves in sequence
    /// order, as sealing hashed them.
    leaves: HashMap<OrgId, Vec<Hash>>,
}

/// Locks the log heads of `orgs`, in order: all of them, or with
/// [`Heads::FreeOnly`] those no other transaction holds.
async fn lock_heads(
    tx: &Transaction<'_>,
    st: &Statements,
    orgs: &[i64],
    mode: Heads,
) -> Result<HashMap<OrgId, Head>, Failure> {
    let lock = match mode {
        Heads::Wait => &st.lock_wait,
        Heads::FreeOnly => &st.lock_free,
    };
    let rows = tx.query(lock, &[&orgs]).await?;
    let mut heads = HashMap::with_capacity(rows.len());
    for r in rows {
        heads.insert(
            OrgId(get(&r, 0)?),
            Head {
                size: get(&r, 1)?,
                frontier: get(&r, 2)?,
            },
        );
    }
    if mode == Heads::Wait
        && let Some(missing) = orgs.iter().find(|o| !heads.contains_key(&OrgId(**o)))
    {
        return Err(StoreError::NotFound(format!("organization {missing}")).into());
    }
    Ok(heads)
}

/// The enabled endpoints of `orgs`, every organization present.
async fn endpoints_of_all(
    tx: &Transaction<'_>,
    st: &Statements,
    orgs: &[i64],
) -> Result<HashMap<OrgId, Vec<Endpoint>>, Failure> {
    let rows = tx.query(&st.endpoints, &[&orgs]).await?;
    let mut out: HashMap<OrgId, Vec<Endpoint>> = orgs.iter().map(|o| (OrgId(*o), Vec::new())).collect();
    for r in rows {
        out.entry(OrgId(get(&r, 0)?)).or_default().push(webhook_at(&r, 1)?);
    }
    Ok(out)
}

/// The organization's enabled endpoints, read again after a change (which
/// may have altered them) and otherwise taken from the batch.
async fn endpoints_of<'a>(
    tx: &Transaction<'_>,
    st: &Statements,
    org: OrgId,
    cache: &'a mut HashMap<OrgId, Vec<Endpoint>>,
) -> Result<&'a [Endpoint], Failure> {
    if !cache.contains_key(&org) {
        let read = endpoints_of_all(tx, st, &[org.0]).await?;
        cache.extend(read);
    }
    Ok(cache.get(&org).map(Vec::as_slice).unwrap_or_default())
}

/// The entries already recorded under any of the requests' idempotency
/// keys, by organization and key.
async fn recorded_under(
    tx: &Transaction<'_>,
    st: &Statements,
    requests: &[AppendRequest],
) -> Result<HashMap<(OrgId, String), Entry>, Failure> {
    let (orgs, keys): (Vec<i64>, Vec<&str>) = requests
        .iter()
        .flat_map(|r| {
            r.entries
                .iter()
                .filter_map(move |e| e.idempotency_key.as_deref().map(|k| (r.org_id.0, k)))
        })
        .unzip();
    if keys.is_empty() {
        return Ok(HashMap::new());
    }
    let rows = tx.query(&st.recorded, &[&orgs, &keys]).await?;
    let mut found = HashMap::with_capacity(rows.len());
    for r in rows {
        let e = entry_at(&r, 0)?;
        if let Some(key) = e.idempotency_key.clone() {
            found.insert((e.org_id, key), e);
        }
    }
    Ok(found)
}

/// Gives one request's entries their sequence numbers and deliveries (or
/// finds what they replay); the results, one per entry in order, are what
/// the rows are written from.
async fn append_entries(
    tx: &Transaction<'_>,
    st: &Statements,
    req: &AppendRequest,
    ready: Vec<Entry>,
    batch: &mut Batch<'_>,
) -> Result<Vec<Appended>, Failure> {
    let org = req.org_id;
    let replays = replays_of(tx, req, batch).await?;
    let mut results = Vec::with_capacity(req.entries.len());
    for (new, mut entry) in req.entries.iter().zip(ready) {
        if let Some(key) = &new.idempotency_key {
            let slot = (org, key.clone());
            if let Some(entry) = batch.fresh.get(&slot).or_else(|| replays.get(key)) {
                results.push(Appended {
                    entry: entry.clone(),
                    replayed: true,
                });
                continue;
            }
        }
        let head = batch
            .heads
            .get_mut(&org)
            .ok_or_else(|| StoreError::Internal(format!("organization {} was not locked", org.0)))?;
        *head += 1;
        entry.seq = *head;
        if let Some(personal) = batch.personal {
            seal(personal, &mut entry, batch)?;
        }
        // The outbox rows commit with the entry or not at all.
        for endpoint in endpoints_of(tx, st, org, &mut batch.endpoints)
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
        results.push(Appended { entry, replayed: false });
    }
    Ok(results)
}

/// The entries recorded before this transaction that `req` replays, by
/// idempotency key, their personal values restored as they stand now
/// (after the changes of earlier requests, an erasure among them).
async fn replays_of(
    tx: &Transaction<'_>,
    req: &AppendRequest,
    batch: &Batch<'_>,
) -> Result<HashMap<String, Entry>, Failure> {
    let keys: HashSet<&str> = req
        .entries
        .iter()
        .filter_map(|new| new.idempotency_key.as_deref())
        .collect();
    let mut found: Vec<Entry> = keys
        .into_iter()
        .filter_map(|key| batch.recorded.get(&(req.org_id, key.to_owned())).cloned())
        .collect();
    if found.is_empty() {
        return Ok(HashMap::new());
    }
    personal::restore(tx, batch.personal, &mut found).await?;
    Ok(found
        .into_iter()
        .filter_map(|e| Some((e.idempotency_key.clone()?, e)))
        .collect())
}

/// Seals a new entry, whose sequence number is set, with the keys
/// [`fetch_keys`] read: the entry gains its disclosures, the batch its
/// row and leaf.
fn seal(personal: &PersonalData, entry: &mut Entry, batch: &mut Batch<'_>) -> Result<(), Failure> {
    let org = entry.org_id;
    let keys = &batch.keys;
    let stored = personal.seal(entry, |p| {
        keys.get(org, p)
            .ok_or_else(|| StoreError::Internal("a subject key was not read before sealing".into()))
    })?;
    batch.leaves.entry(org).or_default().push(stored.leaf);
    batch.buffer.sealed.push(SealedRow {
        commitments: encode_commitments(&stored.sealed.commitments),
        parts: stored.sealed.parts,
        row: stored.row,
    });
    Ok(())
}

/// Reads, or makes, the keys of the people of `run`'s entries, but for
/// those that replay an entry.
async fn fetch_keys(
    tx: &Transaction<'_>,
    st: &Statements,
    run: &[Taken<'_>],
    batch: &mut Batch<'_>,
    received_at: Timestamp,
) -> Result<(), Failure> {
    let Some(personal) = batch.personal else {
        return Ok(());
    };
    let mut keyed: HashSet<(OrgId, &str)> = HashSet::new();
    let mut wanted = Vec::new();
    for taken in run {
        let org = taken.request.org_id;
        for (new, people) in taken.request.entries.iter().zip(&taken.prepared.people) {
            if let Some(key) = new.idempotency_key.as_deref() {
                let slot = (org, key.to_owned());
                let replays = batch.recorded.contains_key(&slot) || batch.fresh.contains_key(&slot);
                if replays || !keyed.insert((org, key)) {
                    continue;
                }
            }
            wanted.extend(people.iter().map(|p| (org, *p)));
        }
    }
    let statements = (&st.read_keys, &st.make_keys);
    batch
        .keys
        .ensure(tx, statements, personal, wanted, received_at.millis())
        .await
}

/// Writes the rows waiting in `buffer`, one statement per table, sent
/// together: no table's rows depend on another's. `out` holds the results
/// of the first requests of `requests`, each request with its entries'
/// details as JSON. Each statement goes out when the returned future is
/// first polled.
async fn flush(
    tx: &Transaction<'_>,
    st: &Statements,
    buffer: &mut Buffer,
    requests: &[Taken<'_>],
    out: &[RequestResult],
    received_at: Timestamp,
) -> Result<(), Failure> {
    buffer.flushed_deliveries = buffer.has_deliveries();
    let from = std::mem::replace(&mut buffer.requests_flushed, out.len());
    let mut rows: Vec<NewRow<'_>> = Vec::new();
    for (taken, result) in requests[from..].iter().zip(&out[from..]) {
        let Ok(appended) = result else { continue };
        rows.extend(
            appended
                .iter()
                .zip(taken.prepared.details.iter())
                .filter(|(a, _)| !a.replayed)
                .map(|(a, d)| (&a.entry, d.as_str(), None)),
        );
    }
    let sealed = std::mem::take(&mut buffer.sealed);
    if !sealed.is_empty() {
        if sealed.len() != rows.len() {
            return Err(
                StoreError::Internal(format!("{} new entries but {} sealed rows", rows.len(), sealed.len())).into(),
            );
        }
        for (row, s) in rows.iter_mut().zip(&sealed) {
            *row = (&s.row, row.1, Some(s.commitments.as_slice()));
        }
    }
    let deliveries = std::mem::take(&mut buffer.deliveries);
    futures_util::future::try_join3(
        flush_entries(tx, st, &rows, received_at),
        personal::insert_parts(tx, &st.parts, &sealed),
        flush_deliveries(tx, st, &deliveries, received_at),
    )
    .await?;
    Ok(())
}

/// A new entry's row: the entry as stored, its details as JSON and, for
/// a sealed one, its encoded commitments.
type NewRow<'a> = (&'a Entry, &'a str, Option<&'a [u8]>);

/// Writes `entries`.
async fn flush_entries(
    tx: &Transaction<'_>,
    st: &Statements,
    entries: &[NewRow<'_>],
    received_at: Timestamp,
) -> Result<(), Failure> {
    if entries.is_empty() {
        return Ok(());
    }
    let c = Columns::of(entries);
    let keyed: Vec<usize> = (0..entries.len()).filter(|&i| c.key[i].is_some()).collect();
    let pick_i64 = |v: &[i64]| keyed.iter().map(|&i| v[i]).collect::<Vec<i64>>();
    let keys: Vec<&str> = keyed.iter().filter_map(|&i| c.key[i]).collect();
    let (key_org, key_seq, key_ts) = (pick_i64(&c.org), pick_i64(&c.seq), pick_i64(&c.ts));
    let keying = async {
        if keys.is_empty() {
            return Ok(0);
        }
        tx.execute(&st.keys, &[&key_org, &keys, &key_seq, &key_ts]).await
    };
    let received = received_at.millis();
    futures_util::future::try_join3(
        tx.execute(&st.entries, &c.params(&received)),
        tx.execute(&st.ids, &[&c.org, &c.id, &c.seq, &c.ts]),
        keying,
    )
    .await?;
    Ok(())
}

/// Entries as one array per column, for the multi-row insert's `unnest`.
struct Columns<'a> {
    org: Vec<i64>,
    seq: Vec<i64>,
    ts: Vec<i64>,
    id: Vec<uuid::Uuid>,
    actor_type: Vec<&'a str>,
    actor: Vec<&'a str>,
    event: Vec<&'a str>,
    resource_type: Vec<&'a str>,
    resource_id: Vec<&'a str>,
    resource_name: Vec<Option<&'a str>>,
    details: Vec<&'a str>,
    ip: Vec<Option<IpAddr>>,
    user_agent: Vec<Option<&'a str>>,
    request_id: Vec<Option<&'a str>>,
    key: Vec<Option<&'a str>>,
    by_kind: Vec<Option<&'a str>>,
    by_id: Vec<Option<&'a str>>,
    version: Vec<i16>,
    commitments: Vec<Option<&'a [u8]>>,
}

impl<'a> Columns<'a> {
    fn of(entries: &[NewRow<'a>]) -> Self {
        let mut c = Columns {
            org: Vec::with_capacity(entries.len()),
            seq: Vec::with_capacity(entries.len()),
            ts: Vec::with_capacity(entries.len()),
            id: Vec::with_capacity(entries.len()),
            actor_type: Vec::with_capacity(entries.len()),
            actor: Vec::with_capacity(entries.len()),
            event: Vec::with_capacity(entries.len()),
            resource_type: Vec::with_capacity(entries.len()),
            resource_id: Vec::with_capacity(entries.len()),
            resource_name: Vec::with_capacity(entries.len()),
            details: Vec::with_capacity(entries.len()),
            ip: Vec::with_capacity(entries.len()),
            user_agent: Vec::with_capacity(entries.len()),
            request_id: Vec::with_capacity(entries.len()),
            key: Vec::with_capacity(entries.len()),
            by_kind: Vec::with_capacity(entries.len()),
            by_id: Vec::with_capacity(entries.len()),
            version: Vec::with_capacity(entries.len()),
            commitments: Vec::with_capacity(entries.len()),
        };
        for &(e, details_json, commitments) in entries {
            c.push(e, details_json);
            c.commitments.push(commitments);
        }
        c
    }

    fn push(&mut self, e: &'a Entry, details_json: &'a str) {
        self.org.push(e.org_id.0);
        self.seq.push(e.seq);
        self.ts.push(e.timestamp.millis());
        self.id.push(e.id);
        self.actor_type.push(e.actor.kind.as_str());
        self.actor.push(e.actor.id.as_str());
        self.event.push(e.event.as_str());
        self.resource_type.push(e.resource.kind.as_str());
        self.resource_id.push(e.resource.id.as_str());
        self.resource_name.push(e.resource.name.as_deref());
        self.details.push(details_json);
        self.ip.push(e.ip_address);
        self.user_agent.push(e.user_agent.as_deref());
        self.request_id.push(e.request_id.as_deref());
        self.key.push(e.idempotency_key.as_deref());
        self.by_kind.push(e.submitted_by.as_ref().map(|b| b.kind.as_str()));
        self.by_id.push(e.submitted_by.as_ref().map(|b| b.id.as_str()));
        self.version.push(i16::from(e.canonical_version));
    }

    /// The entries statement's parameters, in its order.
    fn params<'s>(&'s self, received_at: &'s i64) -> [&'s (dyn tokio_postgres::types::ToSql + Sync); 20] {
        [
            &self.org,
            &self.seq,
            &self.ts,
            received_at,
            &self.id,
            &self.actor_type,
            &self.actor,
            &self.event,
            &self.resource_type,
            &self.resource_id,
            &self.resource_name,
            &self.details,
            &self.ip,
            &self.user_agent,
            &self.request_id,
            &self.key,
            &self.by_kind,
            &self.by_id,
            &self.version,
            &self.commitments,
        ]
    }
}

async fn flush_deliveries(
    tx: &Transaction<'_>,
    st: &Statements,
    deliveries: &[(i64, String, String, i64, i64)],
    received_at: Timestamp,
) -> Result<(), Failure> {
    if deliveries.is_empty() {
        return Ok(());
    }
    let (mut org, mut id, mut webhook, mut seq, mut ts) = (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (o, i, w, s, t) in deliveries {
        org.push(*o);
        id.push(i.as_str());
        webhook.push(w.as_str());
        seq.push(*s);
        ts.push(*t);
    }
    tx.execute(&st.deliveries, &[&org, &id, &webhook, &seq, &ts, &received_at.millis()])
        .await?;
    Ok(())
}

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
/// order. Commits the transaction itself when it wrote anything.
pub async fn append_taking(
    tx: &Transaction<'_>,
    requests: &[AppendRequest],
    received_at: Timestamp,
    mode: Heads,
    personal: Option<&PersonalData>,
) -> Result<((Vec<bool>, Vec<RequestResult>), Ended), Failure> {
    let st = Statements::prepare(tx).await?;
    let mut orgs: Vec<i64> = requests.iter().map(|r| r.org_id.0).collect();
    orgs.sort_unstable();
    orgs.dedup();
    let (st, orgs) = (&st, &orgs);
    // The lock first; the reads behind it run once it is granted.
    let lock_and_read = |mode| async move {
        let (heads, endpoints, recorded) = futures_util::future::try_join3(
            lock_heads(tx, st, orgs, mode),
            endpoints_of_all(tx, st, orgs),
            recorded_under(tx, st, requests),
        )
        .await?;
        Ok::<_, Failure>(Locked {
            heads,
            endpoints,
            recorded,
        })
    };
    // The entries are made ready while the lock is asked for, in time this
    // replica would otherwise spend waiting, not holding the heads. The
    // yield lets the connection send the lock first.
    let make_ready = async {
        tokio::task::yield_now().await;
        requests
            .iter()
            .map(|r| ready(r, received_at, personal))
            .unzip::<_, _, Vec<_>, Vec<_>>()
    };
    let (locked, (entries, prepared)) = futures_util::future::join(lock_and_read(mode), make_ready).await;
    let mut locked = locked?;
    if locked.heads.is_empty() && mode == Heads::FreeOnly {
        // Every head was held (under load, by a replica whose batch spans
        // the same organizations): this transaction waits for them all
        // rather than ending and leaving them to a second one. It holds no
        // head, so it cannot deadlock; the reads are made again behind the
        // lock, since the holders may have changed what they returned.
        locked = lock_and_read(Heads::Wait).await?;
    }
    let taken: Vec<bool> = requests.iter().map(|r| locked.heads.contains_key(&r.org_id)).collect();
    let (mine, entries): (Vec<Taken<'_>>, Vec<Vec<Entry>>) = requests
        .iter()
        .zip(&prepared)
        .zip(entries)
        .zip(&taken)
        .filter(|(_, t)| **t)
        .map(|(((request, prepared), e), _)| (Taken { request, prepared }, e))
        .unzip();
    if mine.is_empty() {
        return Ok(((taken, Vec::new()), Ended::Open));
    }
    let (results, ended) = append_in_tx(tx, st, &mine, entries, locked, received_at, personal).await?;
    Ok(((taken, results), ended))
}

/// Appends `requests` (their entries made `ready`, in the same order),
/// whose organizations' log heads this transaction has locked, and
/// commits.
async fn append_in_tx(
    tx: &Transaction<'_>,
    st: &Statements,
    requests: &[Taken<'_>],
    ready: Vec<Vec<Entry>>,
    locked: Locked,
    received_at: Timestamp,
    personal: Option<&PersonalData>,
) -> Result<(Vec<RequestResult>, Ended), Failure> {
    let Locked {
        heads,
        endpoints,
        recorded,
    } = locked;
    let mut batch = Batch {
        heads: heads.iter().map(|(org, h)| (*org, h.size)).collect(),
        recorded,
        fresh: HashMap::new(),
        endpoints,
        buffer: Buffer::default(),
        personal,
        keys: Keys::default(),
        leaves: HashMap::new(),
    };
    let out = append_requests(tx, st, requests, ready, &mut batch, received_at).await?;
    let moved: Vec<(OrgId, &Head)> = heads
        .iter()
        .filter(|(org, head)| batch.heads.get(org) != Some(&head.size))
        .map(|(org, head)| (*org, head))
        .collect();
    if moved.is_empty() {
        // No new entry, so no delivery either (replays, changes alone,
        // refused changes): the runner commits what the changes'
        // savepoints kept, if anything.
        return Ok((out, Ended::Open));
    }
    // Frontiers not stored with their heads (written before they were, or
    // imported) are read from the tree, one more round trip, once.
    let mut frontiers = HashMap::with_capacity(moved.len());
    for (org, head) in &moved {
        let frontier = tree::frontier(tx, *org, head.size as u64, head.frontier.as_deref()).await?;
        frontiers.insert(*org, frontier);
    }
    commit_with_tree(tx, st, batch, frontiers, (requests, &out), received_at).await?;
    Ok((out, Ended::Committed))
}

/// Appends each request in turn, those with changes each under a
/// savepoint; the results, one per request.
async fn append_requests(
    tx: &Transaction<'_>,
    st: &Statements,
    requests: &[Taken<'_>],
    ready: Vec<Vec<Entry>>,
    batch: &mut Batch<'_>,
    received_at: Timestamp,
) -> Result<Vec<RequestResult>, Failure> {
    let mut out = Vec::with_capacity(requests.len());
    // Requests before this one have their people's keys read.
    let mut keyed = 0;
    for (i, (taken, ready)) in requests.iter().zip(ready).enumerate() {
        let req = taken.request;
        if req.changes.is_empty() {
            if i >= keyed {
                // The run of requests without changes from here on: their
                // keys cannot change before the next change.
                keyed = (i..requests.len())
                    .find(|&j| !requests[j].request.changes.is_empty())
                    .unwrap_or(requests.len());
                fetch_keys(tx, st, &requests[i..keyed], batch, received_at).await?;
            }
            out.push(Ok(append_entries(tx, st, req, ready, batch).await?));
            continue;
        }
        flush(tx, st, &mut batch.buffer, requests, &out, received_at).await?;
        let result = with_changes(tx, st, *taken, ready, batch, received_at).await?;
        out.push(result);
    }
    Ok(out)
}

/// A request with changes: applied under a savepoint, so a change refused
/// by a rule undoes its request alone and answers it with the refusal.
async fn with_changes(
    tx: &Transaction<'_>,
    st: &Statements,
    taken: Taken<'_>,
    ready: Vec<Entry>,
    batch: &mut Batch<'_>,
    received_at: Timestamp,
) -> Result<RequestResult, Failure> {
    let req = taken.request;
    tx.batch_execute("SAVEPOINT request").await?;
    let mut applied = Ok(());
    for change in &req.changes {
        applied = changes::apply(tx, req.org_id, change, received_at.millis()).await;
        if applied.is_err() {
            break;
        }
    }
    // A change to webhooks alters which endpoints this batch fans out to;
    // an erasure, or a savepoint rolled back, which keys exist.
    batch.endpoints.remove(&req.org_id);
    batch.keys.clear();
    match applied {
        Ok(()) => {
            fetch_keys(tx, st, std::slice::from_ref(&taken), batch, received_at).await?;
            let appended = append_entries(tx, st, req, ready, batch).await?;
            tx.batch_execute("RELEASE SAVEPOINT request").await?;
            Ok(Ok(appended))
        }
        Err(Failure::Store(e @ (StoreError::Rejected { .. } | StoreError::Conflict(_) | StoreError::NotFound(_)))) => {
            tx.batch_execute("ROLLBACK TO SAVEPOINT request; RELEASE SAVEPOINT request")
                .await?;
            batch.keys.clear();
            Ok(Err(e))
        }
        Err(e) => Err(e),
    }
}

/// Sends what is left of the batch's rows, grows each moved
/// organization's tree from its `frontiers`, moves the heads, and commits,
/// all pipelined: the rows go first, and the leaves are hashed while
/// PostgreSQL inserts them.
async fn commit_with_tree(
    tx: &Transaction<'_>,
    st: &Statements,
    batch: Batch<'_>,
    frontiers: HashMap<OrgId, Frontier>,
    (requests, out): (&[Taken<'_>], &[RequestResult]),
    received_at: Timestamp,
) -> Result<(), Failure> {
    let Batch {
        heads: sizes,
        mut buffer,
        personal,
        leaves: sealed_leaves,
        ..
    } = batch;
    let wrote_deliveries = buffer.has_deliveries();
    let rows = flush(tx, st, &mut buffer, requests, out, received_at);
    let rest = async move {
        // The rows' statements are queued on the connection; let its task
        // (on this thread, appends having a runtime of their own) write
        // them out before the hashing takes the thread.
        tokio::task::yield_now().await;
        let leaves = match personal {
            Some(_) => sealed_leaves,
            None => leaves_by_org(out),
        };
        let mut growth = Growth::default();
        for (org, frontier) in frontiers {
            let new = leaves.get(&org).map(Vec::as_slice).unwrap_or_default();
            let size = sizes.get(&org).copied().unwrap_or_default();
            if new.len() as i64 != size - frontier.size() as i64 {
                return Err(Failure::Store(StoreError::Internal(format!(
                    "organization {} moved by {} entries but has {} new leaves",
                    org.0,
                    size - frontier.size() as i64,
                    new.len()
                ))));
            }
            growth.grow(org, frontier, new);
        }
        let notify = async {
            if wrote_deliveries {
                // Delivered to listeners on commit, and not at all on rollback.
                tx.execute(&st.notify, &[&DELIVERIES_CHANNEL]).await?;
            }
            Ok::<(), tokio_postgres::Error>(())
        };
        futures_util::future::try_join4(
            growth.write(tx, &st.nodes, &st.tiles),
            tx.execute(&st.heads, &[&growth.orgs, &growth.sizes, &growth.frontiers]),
            notify,
            db::commit_pipelined(tx),
        )
        .await?;
        Ok::<(), Failure>(())
    };
    futures_util::future::try_join(rows, rest).await?;
    Ok(())
}

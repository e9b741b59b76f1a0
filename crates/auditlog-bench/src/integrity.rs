//! Section 7, `auditlog bench integrity`: what tamper evidence costs ingest. The same
//! rows are appended through `Store::append` in 1000-entry transactions to
//! two fresh databases, one keeping the Merkle tree (leaf hashing of the
//! canonical bytes, perfect-node inserts) and one without it, in
//! alternating rounds so both see the same machine.
//!
//! `Store::append` rather than HTTP: without the request path around it
//! the integrity work is the largest share it can be, so the ratio is the
//! conservative one.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use auditlog_domain::canonical::entry_leaf_hash;
use auditlog_domain::store::AppendRequest;
use auditlog_domain::{Clock, Entry, NewEntry, Org, OrgId, Store, SystemClock};
use auditlog_sqlite::SqliteStore;

use crate::AnyError;

const TX_ROWS: usize = 1000;
/// Rows per round; rounds alternate between the two stores.
const ROUND_ROWS: usize = 10_000;
/// The most the tree may cost, as a share of throughput without it.
const TARGET_COST: f64 = 0.15;

pub struct IntegrityFigures {
    pub rows: usize,
    pub with_tree: Duration,
    pub without_tree: Duration,
    /// Canonical bytes and SHA-256 of every row, on one thread, alone.
    pub hashing: Duration,
}

impl IntegrityFigures {
    fn rate(&self, d: Duration) -> f64 {
        self.rows as f64 / d.as_secs_f64().max(1e-9)
    }

    /// The share of throughput the tree costs.
    pub fn cost(&self) -> f64 {
        1.0 - self.rate(self.with_tree) / self.rate(self.without_tree)
    }

    pub fn missed(&self) -> bool {
        self.cost() >= TARGET_COST
    }
}

async fn fresh(path: &Path, tree: bool) -> Result<(Arc<dyn Store>, Org), AnyError> {
    crate::harness::remove_database(path)?;
    let store: Arc<dyn Store> = Arc::new(if tree {
        SqliteStore::open(path)?
    } else {
        SqliteStore::open_without_tree(path)?
    });
    let org = crate::harness::bench_org(store.as_ref()).await?;
    Ok((store, org))
}

async fn append_round(store: &dyn Store, org: &Org, rows: &[NewEntry]) -> Result<Duration, AnyError> {
    let started = Instant::now();
    for chunk in rows.chunks(TX_ROWS) {
        let received = SystemClock.now();
        for r in store
            .append(vec![AppendRequest::entries(org.id, chunk.to_vec())], received)
            .await?
        {
            r?;
        }
    }
    Ok(started.elapsed())
}

/// How long the leaf hashes of these rows take on one core, as entries.
fn hashing_alone(rows: &[NewEntry]) -> Duration {
    let entries: Vec<Entry> = rows
        .iter()
        .zip(1..)
        .map(|(n, seq)| Entry {
            id: uuid::Uuid::now_v7(),
            org_id: OrgId(1),
            seq,
            timestamp: n.timestamp,
            received_at: n.timestamp,
            actor: n.actor.clone(),
            event: n.event.clone(),
            resource: n.resource.clone(),
            details: n.details.clone(),
            ip_address: n.ip_address,
            user_agent: n.user_agent.clone(),
            request_id: n.request_id.clone(),
            idempotency_key: None,
            submitted_by: Some(n.submitted_by.clone()),
            canonical_version: auditlog_domain::canonical::CURRENT_VERSION,
            personal: Default::default(),
        })
        .collect();
    let started = Instant::now();
    for e in &entries {
        std::hint::black_box(entry_leaf_hash(e));
    }
    started.elapsed()
}

pub async fn measure(dir: &Path, rows: &[NewEntry]) -> Result<IntegrityFigures, AnyError> {
    let (with, with_org) = fresh(&dir.join("bench-tree.db"), true).await?;
    let (without, without_org) = fresh(&dir.join("bench-no-tree.db"), false).await?;
    let mut figures = IntegrityFigures {
        rows: 0,
        with_tree: Duration::ZERO,
        without_tree: Duration::ZERO,
        hashing: hashing_alone(rows),
    };
    // One untimed round each first: a fresh file's first pages and WAL
    // cost more, and that is not what is being compared.
    let warm = &rows[..rows.len().min(ROUND_ROWS)];
    append_round(with.as_ref(), &with_org, warm).await?;
    append_round(without.as_ref(), &without_org, warm).await?;
    for (i, round) in rows.chunks(ROUND_ROWS).enumerate() {
        // Alternate which goes first, so neither always follows the other's
        // writeback.
        if i % 2 == 0 {
            figures.with_tree += append_round(with.as_ref(), &with_org, round).await?;
            figures.without_tree += append_round(without.as_ref(), &without_org, round).await?;
        } else {
            figures.without_tree += append_round(without.as_ref(), &without_org, round).await?;
            figures.with_tree += append_round(with.as_ref(), &with_org, round).await?;
        }
        figures.rows += round.len();
    }
    crate::harness::progress(format!(
        "    with the tree {:.0} rows/s, without {:.0} rows/s: cost {:.1}%; hashing alone {:.2} µs/row",
        figures.rate(figures.with_tree),
        figures.rate(figures.without_tree),
        figures.cost() * 100.0,
        figures.hashing.as_secs_f64() * 1e6 / figures.rows.max(1) as f64
    ));
    Ok(figures)
}

pub fn render(f: &IntegrityFigures) -> String {
    let verdict = if f.missed() { "MISS" } else { "PASS" };
    format!(
        "## 7. Tamper evidence\n\n\
         The same {rows} rows appended through `Store::append` in {TX_ROWS}-entry transactions to two \
         fresh databases, one keeping the Merkle tree (canonical bytes and SHA-256 leaf of every entry, \
         hashed on a second thread beside the row inserts; leaf tiles and perfect-node inserts; all in \
         the entries' transaction) and one without, in alternating rounds of {ROUND_ROWS} after one \
         untimed round each.\n\n\
         | Store | Elapsed | Append rate |\n| --- | --- | --- |\n\
         | without the tree (baseline) | {wo:.2} s | {wor:.0} rows/s |\n\
         | with the tree | {w:.2} s | {wr:.0} rows/s |\n\n\
         | Figure | Result | Target | Verdict |\n| --- | --- | --- | --- |\n\
         | Throughput the tree costs | {cost:.1}% | < {target:.0}% | {verdict} |\n\
         | Canonical bytes + SHA-256 alone, one core | {hash_us:.2} µs per entry | — | — |\n\
         | Append time per entry without the tree | {row_us:.2} µs | — | — |\n",
        rows = f.rows,
        wo = f.without_tree.as_secs_f64(),
        wor = f.rate(f.without_tree),
        w = f.with_tree.as_secs_f64(),
        wr = f.rate(f.with_tree),
        cost = f.cost() * 100.0,
        target = TARGET_COST * 100.0,
        hash_us = f.hashing.as_secs_f64() * 1e6 / f.rows.max(1) as f64,
        row_us = f.without_tree.as_secs_f64() * 1e6 / f.rows.max(1) as f64,
    )
}

//! `auditlog check`: proves a database at rest (a live one, or a restored
//! backup) is the log that was signed, without an export. For each
//! organization it reads every entry in `seq` order, recomputes its leaf,
//! compares it with the stored tree, rebuilds the root and holds it against
//! the stored tree and the latest checkpoint, whose signature it checks
//! with the service's key (see `auditlog_domain::log_check`).
//!
//! Reading is all it does: no entry, node or checkpoint is written.

use std::collections::HashMap;
use std::sync::Arc;

use auditlog_domain::canonical::entry_leaf_hash;
use auditlog_domain::checkpoint::{self, VerifierKey};
use auditlog_domain::filter::{Filter, Page};
use auditlog_domain::log_check::{LogCheck, ReadEntry, SignedRoot, Verdict};
use auditlog_domain::merkle::{self, Frontier, Hash, NodeId};
use auditlog_domain::{Entry, Org, Store};
use indicatif::{ProgressBar, ProgressStyle};

use crate::backend::{self, AnyError};
use crate::cli::CheckArgs;

/// Entries read at a time: large enough that a page's query and its tiles
/// cost little per entry, small enough to hold a few MiB.
const PAGE: u32 = 5_000;

/// One organization's outcome, with how its checkpoint's signature fared.
struct OrgReport {
    slug: String,
    verdict: Verdict,
    signature: Signature,
}

impl OrgReport {
    /// The log agrees with itself and its checkpoint, and no signature
    /// failed to verify.
    fn passed(&self) -> bool {
        self.verdict.passed() && !matches!(self.signature, Signature::Invalid(_))
    }
}

enum Signature {
    Valid,
    Invalid(String),
    NotChecked,
    NoCheckpoint,
}

/// Checks every organization (or the one asked for); prints a report and
/// answers whether all passed.
pub async fn run(args: CheckArgs) -> Result<bool, AnyError> {
    let key = verifier_key(&args)?;
    let store = backend::open_keyed(&args.db.database, args.signing_key.as_deref(), false).await?;
    let orgs: Vec<Org> = store
        .orgs()
        .await?
        .into_iter()
        .filter(|o| args.org.as_ref().is_none_or(|s| *s == o.slug))
        .collect();
    if let Some(slug) = &args.org
        && orgs.is_empty()
    {
        return Err(format!("no organization {slug:?} in this database").into());
    }
    let mut total = 0;
    for org in &orgs {
        total += store.log_size(org.id).await? as u64;
    }
    let bar = progress_bar(total);
    let mut reports = Vec::with_capacity(orgs.len());
    for org in &orgs {
        reports.push(check_org(&store, org, key.as_ref(), &bar).await?);
    }
    bar.finish_and_clear();
    print_reports(&reports, key.is_some());
    Ok(reports.iter().all(OrgReport::passed))
}

fn progress_bar(total: u64) -> ProgressBar {
    let bar = ProgressBar::new(total);
    if let Ok(style) =
        ProgressStyle::with_template("{spinner} checked {pos}/{len} entries [{bar:40}] {per_sec} {eta} left")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// The verifier key from `--key`, or from the signing key file if one is
/// there to read; `None` when there is neither.
fn verifier_key(args: &CheckArgs) -> Result<Option<VerifierKey>, AnyError> {
    if let Some(k) = &args.key {
        return crate::verify::verifier_key(k).map(Some);
    }
    let path = match &args.signing_key {
        Some(p) => p.clone(),
        None if backend::is_postgres(&args.db.database) => return Ok(None),
        None => crate::signing_key::path(None, &args.db.database)?,
    };
    match crate::signing_key::read(&path)? {
        Some(key) => Ok(Some(key.verifier_key())),
        None if args.signing_key.is_some() => Err(format!("the signing key {} does not exist", path.display()).into()),
        None => Ok(None),
    }
}

async fn check_org(
    store: &Arc<dyn Store>,
    org: &Org,
    key: Option<&VerifierKey>,
    bar: &ProgressBar,
) -> Result<OrgReport, AnyError> {
    // The checkpoint first, then the size: on a live database entries go
    // on arriving, and the check covers the log as it stood at `size`,
    // which the checkpoint read before it cannot exceed.
    let (signed, signature) = signed_root(store.as_ref(), org, key).await?;
    let size = store.log_size(org.id).await? as u64;
    let start = start_frontier(store.as_ref(), org, size).await?;
    let mut check = LogCheck::new(size, start, signed);
    // Reading the next page overlaps hashing this one: each takes about
    // half the time, and they run on different cores.
    let mut next = prefetch(store, org, check.read_up_to(), size);
    loop {
        let (entries, stored) = next.await??;
        let Some(last) = entries.last().map(|e| e.seq) else {
            break;
        };
        next = prefetch(store, org, last, size);
        let page: Vec<ReadEntry> = entries
            .iter()
            .map(|e| ReadEntry {
                seq: e.seq,
                leaf: entry_leaf_hash(e),
                stored_leaf: stored.get(&leaf_id(e.seq)).copied(),
            })
            .collect();
        check.page(&page);
        bar.inc(page.len() as u64);
    }
    let stored_root = stored_root(store.as_ref(), org, size).await?;
    Ok(OrgReport {
        slug: org.slug.clone(),
        verdict: check.finish(stored_root),
        signature,
    })
}

/// The tree's leaf of the entry with sequence number `seq` (from 1).
fn leaf_id(seq: i64) -> NodeId {
    NodeId::leaf(seq as u64 - 1)
}

/// A page of entries and the stored leaves for them, read in the background.
type PageRead = tokio::task::JoinHandle<Result<(Vec<Entry>, HashMap<NodeId, Hash>), AnyError>>;

/// Starts reading the entries after `after`, up to `size`, and the leaves
/// the stored tree holds for them.
fn prefetch(store: &Arc<dyn Store>, org: &Org, after: i64, size: u64) -> PageRead {
    let (store, org) = (store.clone(), org.id);
    tokio::spawn(async move {
        let filter = Filter::in_order(after, Some(size as i64));
        let entries = store.list(org, &filter, Page::first(PAGE)).await?;
        let ids = entries.iter().map(|e| leaf_id(e.seq)).collect();
        let stored = store.tree_nodes(org, ids).await?;
        Ok((entries, stored))
    })
}

/// The latest checkpoint's size and root: the signed ones when a key can
/// check the signature, else the stored ones.
async fn signed_root(
    store: &dyn Store,
    org: &Org,
    key: Option<&VerifierKey>,
) -> Result<(Option<SignedRoot>, Signature), AnyError> {
    let Some(cp) = store.checkpoint(org.id, None).await? else {
        return Ok((None, Signature::NoCheckpoint));
    };
    let stored = SignedRoot {
        size: cp.size,
        root: cp.root,
    };
    let Some(key) = key else {
        return Ok((Some(stored), Signature::NotChecked));
    };
    Ok(match checkpoint::verify(&cp.note, key) {
        Ok(signed) => (
            Some(SignedRoot {
                size: signed.size,
                root: signed.root,
            }),
            Signature::Valid,
        ),
        Err(e) => (Some(stored), Signature::Invalid(e.to_string())),
    })
}

/// The stored frontier just below the oldest entry left: retention purged
/// what is before it, and the tree it kept is where the rebuild starts.
async fn start_frontier(store: &dyn Store, org: &Org, size: u64) -> Result<Frontier, AnyError> {
    let oldest = store.list(org.id, &Filter::in_order(0, None), Page::first(1)).await?;
    let purged = oldest.first().map_or(size, |e| e.seq as u64 - 1);
    if purged == 0 {
        return Ok(Frontier::empty());
    }
    let ids = merkle::frontier_ids(purged);
    let nodes = store.tree_nodes(org.id, ids.clone()).await?;
    let hashes: Option<Vec<Hash>> = ids.iter().map(|id| nodes.get(id).copied()).collect();
    let hashes = hashes.ok_or_else(|| {
        format!(
            "{}: the stored tree lacks the nodes of its first {purged} entries, which retention purged",
            org.slug
        )
    })?;
    Ok(Frontier::new(purged, hashes)?)
}

/// The stored tree's root at `size`, if the store holds what makes it.
async fn stored_root(store: &dyn Store, org: &Org, size: u64) -> Result<Option<Hash>, AnyError> {
    let nodes = store.tree_nodes(org.id, merkle::frontier_ids(size)).await?;
    Ok(merkle::root_at(size, |id| nodes.get(&id).copied()).ok())
}

fn print_reports(reports: &[OrgReport], keyed: bool) {
    for r in reports {
        let v = &r.verdict;
        let root = match v.root_matches {
            Some(true) => "root matches the stored tree",
            Some(false) => "ROOT DIFFERS from the stored tree",
            None => "root not rebuilt",
        };
        let checkpoint = match (v.checkpoint_size, v.checkpoint_matches) {
            (None, _) => "no checkpoint yet".to_owned(),
            (Some(size), Some(true)) => format!("checkpoint at size {size} matches"),
            (Some(size), Some(false)) => format!("CHECKPOINT AT SIZE {size} DIFFERS"),
            (Some(size), None) => format!("checkpoint at size {size} not compared"),
        };
        let signature = match &r.signature {
            Signature::Valid => "signature valid".to_owned(),
            Signature::Invalid(e) => format!("SIGNATURE INVALID: {e}"),
            Signature::NotChecked => "signature not checked (no key)".to_owned(),
            Signature::NoCheckpoint => "nothing signed".to_owned(),
        };
        let status = if r.passed() { "ok" } else { "FAILED" };
        println!(
            "{status} {}: {} entries, tree size {}, {} expired by retention; {root}; {checkpoint} ({signature})",
            r.slug, v.entries, v.tree_size, v.expired
        );
        if let Some(p) = &v.first_problem {
            println!("  first problem: {p} ({} in all)", v.problems);
        }
    }
    let failed = reports.iter().filter(|r| !r.passed()).count();
    if !keyed {
        println!("note: no verifier key, so checkpoint signatures were not checked (pass --key)");
    }
    println!("{} organizations checked, {failed} failed", reports.len());
}

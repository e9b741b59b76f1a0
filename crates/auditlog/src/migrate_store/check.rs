//! Checking a copy against its source, through the `Store` trait on both
//! sides: per organization the log size, the Merkle root at that size from
//! each side's stored tree, the latest checkpoint, and every entry's leaf
//! hash recomputed from what each side returns; then every table's row
//! count. Each difference is one finding.

use std::collections::BTreeMap;

use auditlog_domain::canonical::entry_leaf_hash;
use auditlog_domain::filter::{Filter, Page};
use auditlog_domain::merkle::{self, Hash};
use auditlog_domain::{Org, Store, StoreError};

/// Entries compared per page.
const PAGE: u32 = 1000;

/// What the check found: lines that held and lines that did not.
#[derive(Debug, Default)]
pub struct Verdict {
    pub held: Vec<String>,
    pub differences: Vec<String>,
}

async fn root(store: &dyn Store, org: &Org, size: u64) -> Result<Option<Hash>, StoreError> {
    let nodes = store.tree_nodes(org.id, merkle::frontier_ids(size)).await?;
    Ok(merkle::root_at(size, |id| nodes.get(&id).copied()).ok())
}

/// Every entry of `org`, oldest first, in pages from both stores: their
/// leaf hashes must agree one by one. Returns how many were compared.
async fn compare_entries(
    source: &dyn Store,
    target: &dyn Store,
    org: &Org,
    verdict: &mut Verdict,
) -> Result<u64, StoreError> {
    let mut after = 0;
    let mut compared = 0;
    loop {
        let (filter, page) = (Filter::in_order(after, None), Page::first(PAGE));
        let (mine, theirs) = (
            source.list(org.id, &filter, page).await?,
            target.list(org.id, &filter, page).await?,
        );
        for pair in mine.iter().zip(&theirs) {
            match pair {
                (s, t) if s.seq != t.seq => {
                    verdict.differences.push(format!(
                        "{}: after seq {after} the source has seq {}, the copy seq {}",
                        org.slug, s.seq, t.seq
                    ));
                    return Ok(compared);
                }
                (s, t) if entry_leaf_hash(s) != entry_leaf_hash(t) => verdict.differences.push(format!(
                    "{}: entry seq {} hashes differently in the copy",
                    org.slug, s.seq
                )),
                _ => {}
            }
            compared += 1;
        }
        if mine.len() != theirs.len() {
            verdict.differences.push(format!(
                "{}: after seq {after} the source lists {} entries, the copy {}",
                org.slug,
                mine.len(),
                theirs.len()
            ));
            return Ok(compared);
        }
        match mine.last() {
            Some(last) if mine.len() == PAGE as usize => after = last.seq,
            _ => return Ok(compared),
        }
    }
}

/// Compares the copy with its source.
pub async fn check(
    source: &dyn Store,
    target: &dyn Store,
    source_counts: &BTreeMap<&'static str, i64>,
    target_counts: &BTreeMap<&'static str, i64>,
) -> Result<Verdict, StoreError> {
    let mut v = Verdict::default();
    let target_orgs = target.orgs().await?;
    for org in source.orgs().await? {
        let Some(copy) = target_orgs.iter().find(|o| o.id == org.id) else {
            v.differences
                .push(format!("{}: organization missing from the copy", org.slug));
            continue;
        };
        if copy != &org {
            v.differences
                .push(format!("{}: the organization's settings differ in the copy", org.slug));
        }
        let size = source.log_size(org.id).await?;
        let copied_size = target.log_size(org.id).await?;
        if size != copied_size {
            v.differences.push(format!(
                "{}: log size {size} in the source, {copied_size} in the copy",
                org.slug
            ));
            continue;
        }
        let (root_s, root_t) = (
            root(source, &org, size as u64).await?,
            root(target, &org, size as u64).await?,
        );
        match (root_s, root_t) {
            (Some(a), Some(b)) if a == b => {}
            (Some(_), None) => v
                .differences
                .push(format!("{}: the copy's tree lacks nodes for size {size}", org.slug)),
            _ => v
                .differences
                .push(format!("{}: Merkle root at size {size} differs", org.slug)),
        }
        let (cp_s, cp_t) = (
            source.checkpoint(org.id, None).await?,
            target.checkpoint(org.id, None).await?,
        );
        if cp_s != cp_t {
            v.differences
                .push(format!("{}: the latest checkpoint differs in the copy", org.slug));
        }
        let compared = compare_entries(source, target, &org, &mut v).await?;
        v.held.push(format!(
            "{}: log size {size}, root {}, {} entries compared, latest checkpoint {}",
            org.slug,
            root_t.map(|r| merkle::hash_to_hex(&r)).unwrap_or_else(|| "?".into()),
            compared,
            cp_t.map(|c| format!("at size {}", c.size))
                .unwrap_or_else(|| "none".into()),
        ));
    }
    for (table, n) in source_counts {
        match target_counts.get(table) {
            Some(m) if m == n => v.held.push(format!("{table}: {n} rows")),
            other => v.differences.push(format!(
                "{table}: {n} rows in the source, {} in the copy",
                other.map(i64::to_string).unwrap_or_else(|| "none".into())
            )),
        }
    }
    Ok(v)
}

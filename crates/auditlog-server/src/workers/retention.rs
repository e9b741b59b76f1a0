//! The retention purger: deletes entries older than each organization's
//! plan allows, and records `audit_log.retention_purged` for each
//! organization it removed anything from.
//!
//! A pass first lets the store drop whole units of expired entries
//! ([`Store::drop_expired_partitions`]: PostgreSQL's monthly partitions
//! whose every row is past its organization's cutoff), then deletes what is
//! left before each cutoff a small batch per transaction, so ingest never
//! waits long behind it. Each organization's figures from both steps make
//! one entry per pass.
//!
//! [`purge_once`] is one pass over every organization, called directly by
//! tests with a manual clock; [`run`] repeats it at start and then every
//! interval until shutdown.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use auditlog_domain::entry::Resource;
use auditlog_domain::store::{AppendRequest, Job, Purged};
use auditlog_domain::{Clock, NewEntry, Org, OrgId, Store, StoreError, Timestamp};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;
use crate::workers::writer::Writer;

/// How the purger runs.
#[derive(Debug, Clone)]
pub struct RetentionConfig {
    /// How often the purger looks for expired entries (it also runs at start).
    pub interval: Duration,
    /// Entries deleted per transaction; small, so ingest never waits long.
    pub batch: u32,
    /// Whether the purger runs on its own; tests that drive passes
    /// themselves turn it off, so its pass at start cannot race theirs.
    pub background: bool,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(15 * 60),
            batch: 500,
            background: true,
        }
    }
}

/// What one pass removed from one organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgPurge {
    pub org: String,
    pub purged: Purged,
}

/// Deletes the organization's entries before `cutoff`, batch by batch,
/// adding each batch to `total` as it commits, so what was deleted is
/// recorded even if a later batch fails.
async fn purge_rows(
    store: &dyn Store,
    org: OrgId,
    cutoff: Timestamp,
    batch: u32,
    total: &mut Purged,
) -> Result<(), StoreError> {
    loop {
        let p = store.purge_before(org, cutoff, batch).await?;
        total.add(p);
        if p.count < u64::from(batch) {
            return Ok(());
        }
        // Let queued ingest commit between batches.
        tokio::task::yield_now().await;
    }
}

async fn record(
    writer: &Writer,
    clock: &dyn Clock,
    org: &Org,
    cutoff: Timestamp,
    total: Purged,
) -> Result<(), StoreError> {
    let entry = NewEntry::by_system(
        clock.now(),
        "audit_log.retention_purged",
        Resource {
            kind: "audit_log".into(),
            id: org.slug.clone(),
            name: None,
        },
        json!({
            "cutoff": cutoff,
            "first_seq": total.first_seq,
            "last_seq": total.last_seq,
            "count": total.count,
            "retention_days": org.retention_days(),
            "plan": org.plan,
        }),
    );
    writer.append(AppendRequest::entries(org.id, vec![entry])).await?;
    tracing::info!(org = %org.slug, count = total.count, %cutoff, "purged entries past retention");
    Ok(())
}

/// One pass over every organization, unless another replica sharing the
/// database is making one (then nothing, as its pass covers this one's).
///
/// An organization whose purge fails still gets its entry for what was
/// removed before the failure, and the others are purged; the first error
/// is returned at the end.
pub async fn purge_once(
    store: &dyn Store,
    writer: &Writer,
    clock: &dyn Clock,
    batch: u32,
) -> Result<Vec<OrgPurge>, StoreError> {
    let mut out = Vec::new();
    let Some(_lease) = store.try_lease(Job::Retention).await? else {
        return Ok(out);
    };
    // One instant for the pass, so the bulk step and the row-by-row one
    // work to the same cutoffs.
    let now = clock.now();
    let orgs = store.orgs().await?;
    let cutoffs: HashMap<OrgId, Timestamp> = orgs.iter().map(|o| (o.id, o.retention_cutoff(now))).collect();
    let mut dropped = match store.drop_expired_partitions(&cutoffs).await {
        Ok(dropped) => dropped,
        Err(e) => {
            tracing::warn!(error = %e, "dropping expired partitions failed; purging row by row");
            HashMap::new()
        }
    };
    let mut first_error = None;
    for org in orgs {
        let cutoff = cutoffs[&org.id];
        let mut total = dropped.remove(&org.id).unwrap_or_default();
        if let Err(e) = purge_rows(store, org.id, cutoff, batch, &mut total).await {
            tracing::warn!(org = %org.slug, error = %e, "purging entries past retention failed");
            first_error.get_or_insert(e);
        }
        if total.count == 0 {
            continue;
        }
        if let Err(e) = record(writer, clock, &org, cutoff, total).await {
            first_error.get_or_insert(e);
        }
        out.push(OrgPurge {
            org: org.slug,
            purged: total,
        });
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

pub async fn run(
    store: Arc<dyn Store>,
    writer: Writer,
    clock: Arc<dyn Clock>,
    config: RetentionConfig,
    metrics: Metrics,
    shutdown: CancellationToken,
) {
    if !config.background {
        return;
    }
    loop {
        match purge_once(store.as_ref(), &writer, clock.as_ref(), config.batch).await {
            Ok(purged) => {
                metrics
                    .purged_entries
                    .inc_by(purged.iter().map(|p| p.purged.count).sum());
            }
            Err(e) => tracing::warn!(error = %e, "retention pass failed; retrying at the next interval"),
        }
        if let Err(e) = crate::workers::sessions::end_expired(store.as_ref(), &writer, clock.as_ref()).await {
            tracing::warn!(error = %e, "ending expired sessions failed; retrying at the next interval");
        }
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(config.interval) => {}
        }
    }
    tracing::debug!("retention purger stopped");
}

//! The retention purger: deletes entries older than each organization's
//! plan allows, a small batch per transaction so ingest never waits long
//! behind it, and records `audit_log.retention_purged` whenever it removed
//! anything.
//!
//! [`purge_once`] is one pass over every organization, called directly by
//! tests with a manual clock; [`run`] repeats it at start and then every
//! interval until shutdown.

use std::sync::Arc;

use auditlog_domain::entry::Resource;
use auditlog_domain::store::{AppendRequest, Job, Purged};
use auditlog_domain::{Clock, NewEntry, Org, Store, StoreError};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::config::RetentionConfig;
use crate::writer::Writer;

/// What one pass removed from one organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgPurge {
    pub org: String,
    pub purged: Purged,
}

async fn purge_org(
    store: &dyn Store,
    writer: &Writer,
    clock: &dyn Clock,
    org: &Org,
    batch: u32,
) -> Result<Purged, StoreError> {
    let cutoff = org.retention_cutoff(clock.now());
    let mut total = Purged::default();
    loop {
        let p = store.purge_before(org.id, cutoff, batch).await?;
        total.count += p.count;
        total.first_seq = match (total.first_seq, p.first_seq) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        total.last_seq = total.last_seq.max(p.last_seq);
        if p.count < u64::from(batch) {
            break;
        }
        // Let queued ingest commit between batches.
        tokio::task::yield_now().await;
    }
    if total.count > 0 {
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
    }
    Ok(total)
}

/// One pass over every organization, unless another replica sharing the
/// database is making one (then nothing, as its pass covers this one's).
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
    for org in store.orgs().await? {
        let purged = purge_org(store, writer, clock, &org, batch).await?;
        if purged.count > 0 {
            out.push(OrgPurge { org: org.slug, purged });
        }
    }
    Ok(out)
}

pub async fn run(
    store: Arc<dyn Store>,
    writer: Writer,
    clock: Arc<dyn Clock>,
    config: RetentionConfig,
    shutdown: CancellationToken,
) {
    loop {
        if let Err(e) = purge_once(store.as_ref(), &writer, clock.as_ref(), config.batch).await {
            tracing::warn!(error = %e, "retention pass failed; retrying at the next interval");
        }
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(config.interval) => {}
        }
    }
    tracing::debug!("retention purger stopped");
}

//! The recorder of reads of the log (`audit_log.viewed`), one entry per
//! look (see [`auditlog_domain::read_audit`]); `http::reads` hands it each
//! read a handler answered.
//!
//! A read never fails, nor waits, because recording it did: its entry goes
//! to a recorder task and the read is answered at once. The recorder
//! gathers what arrives within [`GATHER`] (up to [`BATCH`] entries) and
//! commits it through the writer in one request per organization, so a
//! reader paging through many new queries costs one commit per batch, not
//! one per query. If a batch cannot be committed (the database refuses
//! writes), the failure is logged, counted in
//! `auditlog_read_audit_failures_total`, and its looks are forgotten so the
//! next read of each is recorded. On shutdown the recorder commits what it
//! holds before the writer drains.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use auditlog_domain::read_audit::{Dedup, Read};
use auditlog_domain::store::AppendRequest;
use auditlog_domain::{NewEntry, OrgId, Timestamp};
use tokio::sync::mpsc;

use crate::metrics::Metrics;
use crate::workers::writer::Writer;

/// Looks remembered per process: far more than the principals reading in
/// ten minutes, a few MiB at most.
const REMEMBERED: usize = 50_000;
/// How long the recorder gathers records before committing them.
pub const GATHER: Duration = Duration::from_millis(50);
/// The most records committed together.
const BATCH: usize = 500;
/// Records waiting for the recorder; past this, a read's record is dropped
/// (and counted) rather than queued without bound.
const QUEUE: usize = 10_000;

/// A look's record on its way to the recorder, with what forgets it if the
/// commit fails.
#[derive(Debug)]
struct Pending {
    org: OrgId,
    who: String,
    read: Read,
    entry: NewEntry,
}

#[derive(Debug)]
pub struct ReadAudit {
    dedup: Mutex<Dedup>,
    queue: mpsc::Sender<Pending>,
    metrics: Metrics,
}

impl ReadAudit {
    /// The recorder and its task, which ends once every sender is gone and
    /// what it holds is committed.
    pub fn spawn(writer: Writer, metrics: Metrics) -> (std::sync::Arc<Self>, tokio::task::JoinHandle<()>) {
        let (queue, rx) = mpsc::channel(QUEUE);
        let audit = std::sync::Arc::new(Self {
            dedup: Mutex::new(Dedup::new(REMEMBERED)),
            queue,
            metrics: metrics.clone(),
        });
        let task = tokio::spawn(run(rx, writer, metrics, std::sync::Arc::downgrade(&audit)));
        (audit, task)
    }

    fn forget(&self, failed: &[Pending]) {
        if let Ok(mut d) = self.dedup.lock() {
            for p in failed {
                d.forget(p.org, &p.who, &p.read);
            }
        }
    }

    /// Queues the record of `read` by `who` unless it belongs to a look
    /// already recorded; `entry` makes the record only when it is new.
    /// Returns at once.
    pub fn note(&self, org: OrgId, who: String, read: Read, now: Timestamp, entry: impl FnOnce(&Read) -> NewEntry) {
        let new = self
            .dedup
            .lock()
            .map(|mut d| d.is_new_look(org, &who, &read, now))
            .unwrap_or(true);
        if !new {
            return;
        }
        let entry = entry(&read);
        if let Err(e) = self.queue.try_send(Pending { org, who, read, entry }) {
            self.metrics.read_audit_failures.inc();
            tracing::warn!("a read of the log was answered but not recorded: the recorder's queue is full");
            let (mpsc::error::TrySendError::Full(p) | mpsc::error::TrySendError::Closed(p)) = e;
            self.forget(&[p]);
        }
    }
}

async fn run(mut rx: mpsc::Receiver<Pending>, writer: Writer, metrics: Metrics, audit: std::sync::Weak<ReadAudit>) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        let deadline = tokio::time::Instant::now() + GATHER;
        while batch.len() < BATCH {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(p)) => batch.push(p),
                Ok(None) | Err(_) => break,
            }
        }
        commit(&writer, &metrics, &audit, batch).await;
    }
}

/// Commits a batch, one request per organization.
async fn commit(writer: &Writer, metrics: &Metrics, audit: &std::sync::Weak<ReadAudit>, batch: Vec<Pending>) {
    let mut by_org: HashMap<OrgId, Vec<Pending>> = HashMap::new();
    for p in batch {
        by_org.entry(p.org).or_default().push(p);
    }
    for (org, pending) in by_org {
        let entries = pending.iter().map(|p| p.entry.clone()).collect();
        if let Err(e) = writer.append(AppendRequest::entries(org, entries)).await {
            metrics.read_audit_failures.inc_by(pending.len() as u64);
            tracing::warn!(error = %e, reads = pending.len(), "reads of the log were answered but not recorded");
            if let Some(audit) = audit.upgrade() {
                audit.forget(&pending);
            }
        }
    }
}

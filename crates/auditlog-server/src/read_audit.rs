//! Recording reads of the log (`audit_log.viewed`), one entry per look
//! (see [`auditlog_domain::read_audit`]).
//!
//! A read never fails because recording it did, and waits for its record
//! at most [`RECORD_WAIT`]: the first read of a look waits for its entry's
//! commit (so whoever reads the log next sees it), page-turns and repeats
//! wait for nothing. A commit slower than that goes on in the background
//! while the read is answered. If it cannot be committed (the database
//! refuses writes), the failure is logged with the request id, counted in
//! `auditlog_read_audit_failures_total`, and the look is forgotten so the
//! next read of it is recorded.

use std::time::Duration;

use std::sync::Mutex;

use auditlog_domain::read_audit::{Dedup, Read};
use auditlog_domain::store::AppendRequest;

use crate::AppState;
use crate::auth::Principal;

/// Looks remembered per process: far more than the principals reading in
/// ten minutes, a few MiB at most.
const REMEMBERED: usize = 50_000;

/// The longest a read waits for its record's commit.
pub const RECORD_WAIT: Duration = Duration::from_secs(1);

#[derive(Debug)]
pub struct ReadAudit {
    dedup: Mutex<Dedup>,
}

impl Default for ReadAudit {
    fn default() -> Self {
        Self {
            dedup: Mutex::new(Dedup::new(REMEMBERED)),
        }
    }
}

/// Records `read` by `principal` unless it belongs to a look already
/// recorded; returns once committed, or after [`RECORD_WAIT`].
pub async fn record(state: &AppState, principal: &Principal, read: Read) {
    if !state.config.record_reads {
        return;
    }
    let now = state.clock.now();
    let who = principal.submitted_by().to_text();
    let org = principal.org.id;
    let new = state
        .reads
        .dedup
        .lock()
        .map(|mut d| d.is_new_look(org, &who, &read, now))
        .unwrap_or(true);
    if !new {
        return;
    }
    let (resource, details) = read.recorded();
    let entry = principal.entry(now, "audit_log.viewed", resource, details);
    let state = state.clone();
    let commit = tokio::spawn(async move {
        if let Err(e) = state.writer.append(AppendRequest::entries(org, vec![entry])).await {
            state.config.metrics.read_audit_failures.inc();
            tracing::warn!(error = %e, "a read of the log was answered but not recorded");
            if let Ok(mut d) = state.reads.dedup.lock() {
                d.forget(org, &who, &read);
            }
        }
    });
    // Dropping the handle on a timeout leaves the commit running.
    let _ = tokio::time::timeout(RECORD_WAIT, commit).await;
}

//! Recording reads of the log (`audit_log.viewed`), one entry per look
//! (see [`auditlog_domain::read_audit`]).
//!
//! A read never fails, nor waits, because recording it did: the entry is
//! committed by the writer in the background, after the answer is on its
//! way. If it cannot be committed (the database refuses writes), the
//! failure is logged with the request id, counted in
//! `auditlog_read_audit_failures_total`, and the look is forgotten so the
//! next read of it is recorded.

use std::sync::Mutex;

use auditlog_domain::read_audit::{Dedup, Read};
use auditlog_domain::store::AppendRequest;

use crate::AppState;
use crate::auth::Principal;

/// Looks remembered per process: far more than the principals reading in
/// ten minutes, a few MiB at most.
const REMEMBERED: usize = 50_000;

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
/// recorded; returns at once.
pub fn record(state: &AppState, principal: &Principal, read: Read) {
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
    tokio::spawn(async move {
        if let Err(e) = state.writer.append(AppendRequest::entries(org, vec![entry])).await {
            state.config.metrics.read_audit_failures.inc();
            tracing::warn!(error = %e, "a read of the log was answered but not recorded");
            if let Ok(mut d) = state.reads.dedup.lock() {
                d.forget(org, &who, &read);
            }
        }
    });
}

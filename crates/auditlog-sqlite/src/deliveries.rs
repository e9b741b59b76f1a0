//! Webhook deliveries inside the writer's transaction, laid out as the
//! PostgreSQL store's `deliveries`: claiming the due ones under a lease,
//! and recording how each attempt went.

use std::collections::HashMap;

use auditlog_domain::pattern::{EventPattern, selects};
use auditlog_domain::store::{AttemptResult, Delivery, DueDelivery, RecordedAttempt, Replay};
use auditlog_domain::webhook::Endpoint;
use auditlog_domain::{Entry, OrgId, StoreError, Timestamp};
use r2d2_sqlite::rusqlite::{self, OptionalExtension, Transaction, params};

use crate::rows::{self, db_err, entry_from_row};
use auditlog_domain::personal::PersonalData;

/// Leases up to `limit` due deliveries until `lease_until`, each with its
/// entry and endpoint. A delivery whose endpoint or entry is gone fails
/// for good instead of coming due again.
pub fn claim(
    tx: &Transaction<'_>,
    now: Timestamp,
    lease_until: Timestamp,
    limit: u32,
    personal: Option<&PersonalData>,
) -> Result<Vec<DueDelivery>, StoreError> {
    let claimed = lease_due(tx, now, lease_until, limit)?;
    let mut related = Related::new(tx, personal)?;
    let mut orphaned = tx
        .prepare_cached(
            "UPDATE deliveries SET status = 'failed', next_attempt_at = NULL, \
             last_error = 'the endpoint or the entry no longer exists' WHERE org_id = ?1 AND id = ?2",
        )
        .map_err(db_err)?;
    let mut out = Vec::with_capacity(claimed.len());
    for (org, delivery) in claimed {
        match (
            related.entry(org, delivery.seq)?,
            related.endpoint(org, &delivery.webhook_id)?,
        ) {
            (Some(entry), Some(endpoint)) => out.push(DueDelivery {
                org_id: OrgId(org),
                delivery,
                endpoint,
                entry,
            }),
            _ => {
                orphaned.execute(params![org, delivery.id]).map_err(db_err)?;
            }
        }
    }
    Ok(out)
}

/// Moves the due deliveries' next attempt to the lease's end, so no other
/// round claims them meanwhile.
fn lease_due(
    tx: &Transaction<'_>,
    now: Timestamp,
    lease_until: Timestamp,
    limit: u32,
) -> Result<Vec<(i64, Delivery)>, StoreError> {
    let mut s = tx
        .prepare_cached(&format!(
            "UPDATE deliveries SET next_attempt_at = ?2 WHERE rowid IN (SELECT rowid FROM deliveries \
             WHERE status = 'pending' AND next_attempt_at <= ?1 ORDER BY next_attempt_at LIMIT ?3) \
             RETURNING org_id, {}",
            rows::DELIVERY_COLUMNS
        ))
        .map_err(db_err)?;
    let rows = s
        .query_map(params![now.millis(), lease_until.millis(), limit], |r| {
            Ok((r.get(0)?, rows::delivery_at(r, 1)?))
        })
        .map_err(db_err)?;
    rows.collect::<Result<_, _>>().map_err(db_err)
}

/// The entries and endpoints of one round's deliveries: an entry fanned
/// out to several endpoints, and an endpoint with many deliveries, are
/// each read once.
struct Related<'t> {
    conn: &'t Transaction<'t>,
    personal: Option<&'t PersonalData>,
    entry_q: rusqlite::CachedStatement<'t>,
    hook_q: rusqlite::CachedStatement<'t>,
    entries: HashMap<(i64, i64), Option<Entry>>,
    hooks: HashMap<(i64, String), Option<Endpoint>>,
}

impl<'t> Related<'t> {
    fn new(tx: &'t Transaction<'t>, personal: Option<&'t PersonalData>) -> Result<Self, StoreError> {
        let entry_q = tx
            .prepare_cached(&format!(
                "SELECT {} FROM entries WHERE org_id = ?1 AND seq = ?2",
                rows::ENTRY_COLUMNS
            ))
            .map_err(db_err)?;
        let hook_q = tx
            .prepare_cached(&format!(
                "SELECT {} FROM webhooks WHERE org_id = ?1 AND id = ?2",
                rows::WEBHOOK_COLUMNS
            ))
            .map_err(db_err)?;
        Ok(Self {
            conn: tx,
            personal,
            entry_q,
            hook_q,
            entries: HashMap::new(),
            hooks: HashMap::new(),
        })
    }

    fn entry(&mut self, org: i64, seq: i64) -> Result<Option<Entry>, StoreError> {
        if let Some(e) = self.entries.get(&(org, seq)) {
            return Ok(e.clone());
        }
        let mut e = self
            .entry_q
            .query_row(params![org, seq], entry_from_row)
            .optional()
            .map_err(db_err)?;
        crate::personal::restore(self.conn, self.personal, e.as_mut_slice())?;
        self.entries.insert((org, seq), e.clone());
        Ok(e)
    }

    fn endpoint(&mut self, org: i64, id: &str) -> Result<Option<Endpoint>, StoreError> {
        let key = (org, id.to_owned());
        if let Some(h) = self.hooks.get(&key) {
            return Ok(h.clone());
        }
        let h = self
            .hook_q
            .query_row(params![org, id], |r| rows::webhook_at(r, 0))
            .optional()
            .map_err(db_err)?;
        self.hooks.insert(key, h.clone());
        Ok(h)
    }
}

/// Records each attempt; answers, per attempt, since when its endpoint has
/// been failing (`None` after a success, or when the delivery is gone).
pub fn record(tx: &Transaction<'_>, attempts: &[RecordedAttempt]) -> Result<Vec<Option<Timestamp>>, StoreError> {
    let mut update = tx
        .prepare_cached(
            "UPDATE deliveries SET attempts = attempts + 1, last_attempt_at = ?3, last_status = ?4, \
             last_latency_ms = ?5, last_error = ?6, status = ?7, next_attempt_at = ?8 \
             WHERE org_id = ?1 AND id = ?2 RETURNING webhook_id",
        )
        .map_err(db_err)?;
    let mut out = Vec::with_capacity(attempts.len());
    for recorded in attempts {
        let attempt = &recorded.attempt;
        let (status, next) = attempt.result.stored();
        let webhook_id: Option<String> = update
            .query_row(
                params![
                    recorded.org_id.0,
                    recorded.delivery_id,
                    attempt.at.millis(),
                    attempt.status,
                    attempt.latency_ms as i64,
                    attempt.error,
                    status.as_str(),
                    next.map(Timestamp::millis)
                ],
                |r| r.get(0),
            )
            .optional()
            .map_err(db_err)?;
        // None: deleted with its endpoint or purged meanwhile.
        let failing_since = match webhook_id {
            Some(webhook_id) => endpoint_health(tx, recorded.org_id, &webhook_id, attempt.result, attempt.at)?,
            None => None,
        };
        out.push(failing_since);
    }
    Ok(out)
}

/// Clears the endpoint's failure after a success, or marks since when it
/// fails; answers the latter.
fn endpoint_health(
    tx: &Transaction<'_>,
    org: OrgId,
    webhook_id: &str,
    result: AttemptResult,
    at: Timestamp,
) -> Result<Option<Timestamp>, StoreError> {
    if result == AttemptResult::Delivered {
        // Successes, the common case, write only when clearing a failure.
        tx.prepare_cached(
            "UPDATE webhooks SET failing_since = NULL \
             WHERE org_id = ?1 AND id = ?2 AND failing_since IS NOT NULL",
        )
        .and_then(|mut s| s.execute(params![org.0, webhook_id]))
        .map_err(db_err)?;
        return Ok(None);
    }
    let failing_since: Option<i64> = tx
        .prepare_cached(
            "UPDATE webhooks SET failing_since = coalesce(failing_since, ?3) \
             WHERE org_id = ?1 AND id = ?2 RETURNING failing_since",
        )
        .and_then(|mut s| {
            s.query_row(params![org.0, webhook_id, at.millis()], |r| r.get(0))
                .optional()
        })
        .map_err(db_err)?
        .flatten();
    Ok(failing_since.map(Timestamp))
}

/// Queues new deliveries to endpoint `hook` of the entries from seq
/// `from` on that `patterns` select, looking at `limit` entries at most.
pub fn replay(
    tx: &Transaction<'_>,
    org: OrgId,
    hook: &str,
    patterns: &[EventPattern],
    (from, limit): (i64, u32),
    now: Timestamp,
) -> Result<Replay, StoreError> {
    let mut entries = tx
        .prepare_cached("SELECT seq, event FROM entries WHERE org_id = ?1 AND seq >= ?2 ORDER BY seq LIMIT ?3")
        .map_err(db_err)?;
    let looked: Vec<(i64, String)> = entries
        .query_map(params![org.0, from, limit], |r| Ok((r.get(0)?, r.get(1)?)))
        .map_err(db_err)?
        .collect::<Result<_, _>>()
        .map_err(db_err)?;
    let mut insert = tx
        .prepare_cached(
            "INSERT INTO deliveries (org_id, id, webhook_id, seq, status, attempts, next_attempt_at, created_at) \
             VALUES (?1, ?2, ?3, ?4, 'pending', 0, ?5, ?5)",
        )
        .map_err(db_err)?;
    let mut queued = 0;
    for (seq, _) in looked.iter().filter(|(_, event)| selects(patterns, event)) {
        let id = format!("dlv_{}", uuid::Uuid::now_v7().simple());
        insert
            .execute(params![org.0, id, hook, seq, now.millis()])
            .map_err(db_err)?;
        queued += 1;
    }
    Ok(Replay {
        queued,
        through: looked.last().map(|(seq, _)| *seq),
    })
}

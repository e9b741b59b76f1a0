//! The webhook outbox: claiming due deliveries and recording attempts.
//!
//! Dispatchers of several replicas claim from the same table: `FOR UPDATE
//! SKIP LOCKED` lets each take rows the others are not taking, without
//! waiting on them, and the lease written with the claim keeps a claimed
//! delivery from being due again until it expires.

use std::collections::HashMap;

use auditlog_domain::pattern::{EventPattern, selects};
use auditlog_domain::personal::PersonalData;
use auditlog_domain::store::{AttemptResult, Delivery, DueDelivery, RecordedAttempt, Replay};
use auditlog_domain::webhook::Endpoint;
use auditlog_domain::{Entry, OrgId, Timestamp};
use deadpool_postgres::Transaction;

use crate::db;
use crate::error::Failure;
use crate::rows::{
    DELIVERY_COLUMNS, ENTRY_COLUMNS, WEBHOOK_COLUMNS, delivery_at, entry_at, get, qualified, webhook_at,
};

/// A leased delivery: when it was due, its organization, its entry's
/// timestamp (the partition key) and the delivery.
type Claimed = (i64, OrgId, i64, Delivery);

/// Leases up to `limit` due deliveries until `lease_until`, each with its
/// entry and endpoint. A delivery whose endpoint or entry is gone fails
/// for good instead of coming due again.
pub async fn claim(
    tx: &Transaction<'_>,
    now: Timestamp,
    lease_until: Timestamp,
    limit: u32,
    personal: Option<&PersonalData>,
) -> Result<Vec<DueDelivery>, Failure> {
    let claimed = lease_due(tx, now, lease_until, limit).await?;
    if claimed.is_empty() {
        return Ok(Vec::new());
    }
    let entries = entries_of(tx, &claimed, personal).await?;
    let endpoints = endpoints_of(tx, &claimed).await?;
    let mut out = Vec::with_capacity(claimed.len());
    let (mut orphan_org, mut orphan_id) = (Vec::new(), Vec::new());
    for (_, org, _, delivery) in claimed {
        let entry = entries.get(&(org.0, delivery.seq)).cloned();
        let endpoint = endpoints.get(&(org.0, delivery.webhook_id.clone())).cloned();
        match (entry, endpoint) {
            (Some(entry), Some(endpoint)) => out.push(DueDelivery {
                org_id: org,
                delivery,
                endpoint,
                entry,
            }),
            _ => {
                orphan_org.push(org.0);
                orphan_id.push(delivery.id);
            }
        }
    }
    if !orphan_id.is_empty() {
        db::execute(
            tx,
            "UPDATE deliveries d SET status = 'failed', next_attempt_at = NULL, \
             last_error = 'the endpoint or the entry no longer exists' \
             FROM unnest($1::bigint[], $2::text[]) AS k (org_id, id) WHERE d.org_id = k.org_id AND d.id = k.id",
            &[&orphan_org, &orphan_id],
        )
        .await?;
    }
    Ok(out)
}

/// Moves the due deliveries' next attempt to the lease's end, oldest due
/// first, skipping rows another replica is claiming.
async fn lease_due(
    tx: &Transaction<'_>,
    now: Timestamp,
    lease_until: Timestamp,
    limit: u32,
) -> Result<Vec<Claimed>, Failure> {
    let rows = db::query(
        tx,
        &format!(
            "WITH due AS (SELECT org_id, id, next_attempt_at AS due_at FROM deliveries \
                 WHERE status = 'pending' AND next_attempt_at <= $1 \
                 ORDER BY next_attempt_at LIMIT $3 FOR UPDATE SKIP LOCKED) \
             UPDATE deliveries d SET next_attempt_at = $2 FROM due \
             WHERE d.org_id = due.org_id AND d.id = due.id \
             RETURNING due.due_at, d.org_id, d.entry_ts, {}",
            qualified("d", DELIVERY_COLUMNS)
        ),
        &[&now.millis(), &lease_until.millis(), &i64::from(limit)],
    )
    .await?;
    let mut claimed: Vec<Claimed> = Vec::with_capacity(rows.len());
    for r in &rows {
        claimed.push((get(r, 0)?, OrgId(get(r, 1)?), get(r, 2)?, delivery_at(r, 3)?));
    }
    // RETURNING follows no order; the oldest due go first.
    claimed.sort_by(|a, b| (a.0, &a.3.id).cmp(&(b.0, &b.3.id)));
    Ok(claimed)
}

/// The claimed deliveries' entries, each read once however many
/// deliveries share it, their personal values restored.
async fn entries_of(
    tx: &Transaction<'_>,
    claimed: &[Claimed],
    personal: Option<&PersonalData>,
) -> Result<HashMap<(i64, i64), Entry>, Failure> {
    let (mut orgs, mut seqs, mut tss) = (Vec::new(), Vec::new(), Vec::new());
    for (_, org, ts, d) in claimed {
        orgs.push(org.0);
        seqs.push(d.seq);
        tss.push(*ts);
    }
    let mut entries = db::query(
        tx,
        &format!(
            "SELECT {} FROM (SELECT DISTINCT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[])) AS k (org_id, seq, ts) \
             JOIN entries e ON e.org_id = k.org_id AND e.seq = k.seq AND e.ts = k.ts",
            qualified("e", ENTRY_COLUMNS)
        ),
        &[&orgs, &seqs, &tss],
    )
    .await?
    .iter()
    .map(|r| entry_at(r, 0))
    .collect::<Result<Vec<_>, _>>()?;
    crate::personal::restore(tx, personal, &mut entries).await?;
    Ok(entries.into_iter().map(|e| ((e.org_id.0, e.seq), e)).collect())
}

/// The claimed deliveries' endpoints, each read once.
async fn endpoints_of(tx: &Transaction<'_>, claimed: &[Claimed]) -> Result<HashMap<(i64, String), Endpoint>, Failure> {
    let orgs: Vec<i64> = claimed.iter().map(|(_, org, _, _)| org.0).collect();
    let ids: Vec<&str> = claimed.iter().map(|(_, _, _, d)| d.webhook_id.as_str()).collect();
    let mut endpoints = HashMap::new();
    for r in db::query(
        tx,
        &format!(
            "SELECT w.org_id, {} FROM (SELECT DISTINCT * FROM unnest($1::bigint[], $2::text[])) AS k (org_id, id) \
             JOIN webhooks w ON w.org_id = k.org_id AND w.id = k.id",
            qualified("w", WEBHOOK_COLUMNS)
        ),
        &[&orgs, &ids],
    )
    .await?
    {
        let w = webhook_at(&r, 1)?;
        endpoints.insert((get(&r, 0)?, w.id.clone()), w);
    }
    Ok(endpoints)
}

pub async fn record(tx: &Transaction<'_>, attempts: &[RecordedAttempt]) -> Result<Vec<Option<Timestamp>>, Failure> {
    let mut out = Vec::with_capacity(attempts.len());
    for RecordedAttempt {
        org_id,
        delivery_id,
        attempt,
    } in attempts
    {
        let (status, next) = attempt.result.stored();
        let (status, next) = (status.as_str(), next.map(Timestamp::millis));
        let updated = db::query_opt(
            tx,
            "UPDATE deliveries SET attempts = attempts + 1, last_attempt_at = $3, last_status = $4, \
             last_latency_ms = $5, last_error = $6, status = $7, next_attempt_at = $8 \
             WHERE org_id = $1 AND id = $2 RETURNING webhook_id",
            &[
                &org_id.0,
                delivery_id,
                &attempt.at.millis(),
                &attempt.status.map(i32::from),
                &(attempt.latency_ms.min(i64::MAX as u64) as i64),
                &attempt.error,
                &status,
                &next,
            ],
        )
        .await?;
        let Some(updated) = updated else {
            // Deleted with its endpoint or purged meanwhile.
            out.push(None);
            continue;
        };
        let webhook_id: String = get(&updated, 0)?;
        if attempt.result == AttemptResult::Delivered {
            // Successes, the common case, write only when clearing a failure.
            db::execute(
                tx,
                "UPDATE webhooks SET failing_since = NULL \
                 WHERE org_id = $1 AND id = $2 AND failing_since IS NOT NULL",
                &[&org_id.0, &webhook_id],
            )
            .await?;
            out.push(None);
            continue;
        }
        let failing = db::query_opt(
            tx,
            "UPDATE webhooks SET failing_since = coalesce(failing_since, $3) \
             WHERE org_id = $1 AND id = $2 RETURNING failing_since",
            &[&org_id.0, &webhook_id, &attempt.at.millis()],
        )
        .await?;
        out.push(match failing {
            Some(r) => get::<Option<i64>>(&r, 0)?.map(Timestamp),
            None => None,
        });
    }
    Ok(out)
}

/// Queues new deliveries to endpoint `hook` of the entries from seq
/// `from` on that `patterns` select, looking at `limit` entries at most,
/// and wakes every dispatcher.
pub async fn replay(
    tx: &Transaction<'_>,
    org: OrgId,
    hook: &str,
    patterns: &[EventPattern],
    (from, limit): (i64, u32),
    now: Timestamp,
) -> Result<Replay, Failure> {
    let looked = db::query(
        tx,
        "SELECT seq, ts, event FROM entries WHERE org_id = $1 AND seq >= $2 ORDER BY seq LIMIT $3",
        &[&org.0, &from, &i64::from(limit)],
    )
    .await?;
    let mut rows: (Vec<String>, Vec<i64>, Vec<i64>) = Default::default();
    for r in &looked {
        let event: &str = get(r, 2)?;
        if selects(patterns, event) {
            rows.0.push(format!("dlv_{}", uuid::Uuid::now_v7().simple()));
            rows.1.push(get(r, 0)?);
            rows.2.push(get(r, 1)?);
        }
    }
    db::execute(
        tx,
        "INSERT INTO deliveries (org_id, id, webhook_id, seq, entry_ts, status, attempts, next_attempt_at, created_at) \
         SELECT $1, i, $2, s, t, 'pending', 0, $3, $3 FROM unnest($4::text[], $5::bigint[], $6::bigint[]) AS u (i, s, t)",
        &[&org.0, &hook, &now.millis(), &rows.0, &rows.1, &rows.2],
    )
    .await?;
    db::execute(tx, "SELECT pg_notify($1, '')", &[&crate::append::DELIVERIES_CHANNEL]).await?;
    let through = match looked.last() {
        Some(r) => Some(get(r, 0)?),
        None => None,
    };
    Ok(Replay {
        queued: rows.1.len() as u64,
        through,
    })
}

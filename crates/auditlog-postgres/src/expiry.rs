//! Retention in bulk: a month's partition of `entries` whose every row is
//! past its own organization's cutoff is dropped whole, instead of being
//! deleted row by row.
//!
//! A month qualifies when, for every organization with rows in it, the
//! month's end is at or before that organization's cutoff: then each of its
//! rows is one `purge_before` would delete, and dropping it removes exactly
//! those. A month holding a single row still within its organization's
//! window stays; the row-by-row purge takes the expired rows around it. The
//! catch-all partitions (before 2000, from 2100) are never dropped.
//!
//! Each month is its own transaction:
//!
//! 1. Which organizations have rows in it, read through the index without
//!    locking anything, so a month that cannot go costs one index probe per
//!    organization, every pass.
//! 2. The lock that serializes making and dropping partitions (held to the
//!    end, so an append re-making this month commits wholly before or after
//!    the drop), then `LOCK … IN SHARE MODE` on the partition alone:
//!    readers go on, writers to that month (an entry with an old timestamp,
//!    a stray row-by-row purge) wait, so the rows counted are the rows
//!    dropped. The organizations are checked again under the lock.
//! 3. Per organization: count, first and last seq (the figures of the
//!    retention entry), then the rows of `entry_ids`, `entry_keys`,
//!    `personal_parts` and `deliveries` of those entries, as
//!    `purge_before` deletes them.
//! 4. `DROP TABLE`, which locks `entries` itself exclusively for the
//!    moment it takes. Every lock is waited for at most [`LOCK_WAIT`]: a
//!    month that cannot be had in that time is left to the row-by-row
//!    purge, so a long query delays retention, never ingest for long.
//!
//! A writer that waited in step 2 fails once the partition is gone, and
//! makes the month again in its own transaction (see
//! [`crate::partitions`]); so does any replica that still remembers the
//! month. Taking the partition before `entries`
//! is the opposite order to an insert's, so such a writer and the drop can
//! deadlock: PostgreSQL then aborts one, the writer's transaction runs
//! again, a failed drop is retried at the next pass.

use std::collections::HashMap;
use std::time::Duration;

use auditlog_domain::store::Purged;
use auditlog_domain::{OrgId, StoreError, Timestamp};
use deadpool_postgres::Pool;

use crate::error::{db_err, pool_err};
use crate::partitions::{PARTITION_LOCK, Partitions, month_from_name, name_of, start_of};
use crate::rows::get;

/// The longest the drop of one month waits for a lock.
pub const LOCK_WAIT: Duration = Duration::from_secs(2);

/// Drops every month whose rows are all past their organization's cutoff;
/// returns the figures of what went, per organization.
pub async fn drop_expired(
    pool: &Pool,
    partitions: &Partitions,
    cutoffs: &HashMap<OrgId, Timestamp>,
) -> Result<HashMap<OrgId, Purged>, StoreError> {
    let mut dropped: HashMap<OrgId, Purged> = HashMap::new();
    let Some(latest) = cutoffs.values().map(|c| c.millis()).max() else {
        return Ok(dropped);
    };
    // No month ending after the latest cutoff can qualify.
    let months: Vec<i64> = attached_months(pool)
        .await?
        .into_iter()
        .filter(|m| start_of(m + 1) <= latest)
        .collect();
    for month in months {
        match drop_month(pool, month, cutoffs).await {
            Ok(Some(figures)) => {
                partitions.forget_month(month)?;
                let rows: u64 = figures.values().map(|p| p.count).sum();
                tracing::info!(partition = %name_of(month), rows, "dropped an expired monthly partition");
                for (org, purged) in figures {
                    dropped.entry(org).or_default().add(purged);
                }
            }
            Ok(None) => {}
            Err(e) => {
                // What was dropped so far must still be recorded, so this
                // ends the step rather than failing it.
                tracing::warn!(partition = %name_of(month), error = %e,
                    "could not drop an expired partition; the row-by-row purge covers it");
                break;
            }
        }
    }
    Ok(dropped)
}

/// The months whose partitions are attached to `entries`, oldest first.
async fn attached_months(pool: &Pool) -> Result<Vec<i64>, StoreError> {
    let client = pool.get().await.map_err(pool_err)?;
    let rows = client
        .query(
            "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
             WHERE i.inhparent = 'entries'::regclass",
            &[],
        )
        .await
        .map_err(db_err)?;
    let mut months = Vec::with_capacity(rows.len());
    for r in &rows {
        let name: String = get(r, 0)?;
        months.extend(month_from_name(&name));
    }
    months.sort_unstable();
    Ok(months)
}

/// True when every one of `orgs` has its cutoff at or after `end`.
fn all_expired(orgs: impl IntoIterator<Item = i64>, end: i64, cutoffs: &HashMap<OrgId, Timestamp>) -> bool {
    orgs.into_iter()
        .all(|org| cutoffs.get(&OrgId(org)).is_some_and(|c| end <= c.millis()))
}

/// The organizations with rows in a partition: one index probe each (a
/// skip scan over `(org_id, ts, seq)`), however many rows they have.
fn orgs_in(name: &str) -> String {
    format!(
        "WITH RECURSIVE o (id) AS ( \
             (SELECT org_id FROM {name} ORDER BY org_id LIMIT 1) \
             UNION ALL \
             SELECT (SELECT org_id FROM {name} WHERE org_id > o.id ORDER BY org_id LIMIT 1) \
             FROM o WHERE o.id IS NOT NULL) \
         SELECT id FROM o WHERE id IS NOT NULL"
    )
}

/// Whether the month `name` (ending at `end`) is still attached and holds
/// only entries past every one of its organizations' cutoffs: a first
/// look, without locks, so most rounds take none.
async fn qualifies(
    client: &tokio_postgres::Client,
    name: &str,
    end: i64,
    cutoffs: &HashMap<OrgId, Timestamp>,
) -> Result<bool, StoreError> {
    let attached: bool = client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_inherits \
             WHERE inhrelid = to_regclass($1) AND inhparent = 'entries'::regclass)",
            &[&name],
        )
        .await
        .map_err(db_err)?
        .get(0);
    if !attached {
        return Ok(false);
    }
    let rows = client.query(&orgs_in(name), &[]).await.map_err(db_err)?;
    let orgs: Vec<i64> = rows.iter().map(|r| get(r, 0)).collect::<Result<_, _>>()?;
    Ok(all_expired(orgs, end, cutoffs))
}

/// What dropping the month `name` removes, per organization.
async fn count_by_org(tx: &tokio_postgres::Transaction<'_>, name: &str) -> Result<HashMap<OrgId, Purged>, StoreError> {
    let rows = tx
        .query(
            &format!("SELECT org_id, count(*), min(seq), max(seq) FROM {name} GROUP BY org_id"),
            &[],
        )
        .await
        .map_err(db_err)?;
    let mut figures = HashMap::with_capacity(rows.len());
    for r in &rows {
        let org: i64 = get(r, 0)?;
        figures.insert(
            OrgId(org),
            Purged {
                count: get::<i64>(r, 1)? as u64,
                first_seq: get(r, 2)?,
                last_seq: get(r, 3)?,
            },
        );
    }
    Ok(figures)
}

/// Drops one month if it qualifies; `None` when it does not (or is gone).
async fn drop_month(
    pool: &Pool,
    month: i64,
    cutoffs: &HashMap<OrgId, Timestamp>,
) -> Result<Option<HashMap<OrgId, Purged>>, StoreError> {
    // The name comes from a number, never from input: safe in DDL, which
    // takes no parameters.
    let name = name_of(month);
    let end = start_of(month + 1);
    let mut client = pool.get().await.map_err(pool_err)?;
    if !qualifies(&client, &name, end, cutoffs).await? {
        return Ok(None);
    }

    let tx = client.transaction().await.map_err(db_err)?;
    tx.batch_execute(&format!("SET LOCAL lock_timeout = {}", LOCK_WAIT.as_millis()))
        .await
        .map_err(db_err)?;
    // An append making this month again holds this lock until it commits,
    // so its rows are counted here or the month is made after the drop.
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&PARTITION_LOCK])
        .await
        .map_err(db_err)?;
    let still_there: bool = tx
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&name])
        .await
        .map_err(db_err)?
        .get(0);
    if !still_there {
        return Ok(None);
    }
    tx.batch_execute(&format!("LOCK TABLE {name} IN SHARE MODE"))
        .await
        .map_err(db_err)?;
    // Under the lock, no row comes or goes: what is counted is what goes.
    let figures = count_by_org(&tx, &name).await?;
    if !all_expired(figures.keys().map(|o| o.0), end, cutoffs) {
        // A row within its window arrived since the first look.
        return Ok(None);
    }
    // What purge_before deletes with each entry: its id and key mappings,
    // its sealed personal values and its deliveries. The tree stays.
    tx.batch_execute(&format!(
        "DELETE FROM entry_ids i USING {name} e WHERE i.org_id = e.org_id AND i.id = e.id; \
         DELETE FROM entry_keys k USING {name} e \
             WHERE k.org_id = e.org_id AND k.idempotency_key = e.idempotency_key; \
         DELETE FROM personal_parts p USING {name} e WHERE p.org_id = e.org_id AND p.seq = e.seq; \
         DELETE FROM deliveries x USING {name} e WHERE x.org_id = e.org_id AND x.seq = e.seq; \
         DROP TABLE {name};"
    ))
    .await
    .map_err(db_err)?;
    tx.commit().await.map_err(db_err)?;
    Ok(Some(figures))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_month_goes_only_when_every_organization_in_it_is_past_its_cutoff() {
        let cutoffs: HashMap<OrgId, Timestamp> = [(OrgId(1), Timestamp(1000)), (OrgId(2), Timestamp(500))].into();
        assert!(all_expired([1], 1000, &cutoffs), "the month's end at the cutoff");
        assert!(!all_expired([1], 1001, &cutoffs));
        assert!(!all_expired([1, 2], 1000, &cutoffs), "one organization keeps it");
        assert!(all_expired([1, 2], 500, &cutoffs));
        assert!(
            !all_expired([3], 0, &cutoffs),
            "an organization without a cutoff keeps it"
        );
        assert!(all_expired([], 0, &cutoffs), "an empty month goes");
    }
}

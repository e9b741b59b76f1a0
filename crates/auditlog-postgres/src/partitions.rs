//! The monthly partitions of `entries`, created on demand before an append
//! needs them.
//!
//! A month's partition is made as a plain table and then attached: attaching
//! takes only a SHARE UPDATE EXCLUSIVE lock on `entries`, which reads and
//! writes do not wait for (creating it with `PARTITION OF` would lock
//! `entries` exclusively, queueing every query behind a long export). Two
//! processes creating the same month are serialized by an advisory lock, and
//! the second finds it there. Known months are remembered, so an append
//! costs nothing once its month exists.
//!
//! Months outside 2000-01 ..= 2099-12 get no partition of their own: the
//! schema's two catch-all partitions take them.

use std::collections::HashSet;
use std::sync::Mutex;

use auditlog_domain::{StoreError, Timestamp};
use deadpool_postgres::Pool;
use time::{Date, Month, OffsetDateTime};

use crate::error::{db_err, pool_err};

/// `pg_advisory_xact_lock` key serializing partition creation.
const PARTITION_LOCK: i64 = 0x6175_6469_746c_6f68;

/// Months are counted from year 0: `year * 12 + month - 1`.
const FIRST_MONTH: i64 = 2000 * 12;
const END_MONTH: i64 = 2100 * 12;

/// The month an instant falls in, if it is one that gets its own partition.
pub fn month_of(ts: Timestamp) -> Option<i64> {
    let dt = OffsetDateTime::from_unix_timestamp(ts.millis().div_euclid(1000)).ok()?;
    let month = i64::from(dt.year()) * 12 + i64::from(u8::from(dt.month())) - 1;
    (FIRST_MONTH..END_MONTH).contains(&month).then_some(month)
}

/// The first millisecond of a month.
fn start_of(month: i64) -> i64 {
    let (year, m) = (month.div_euclid(12) as i32, month.rem_euclid(12) as u8 + 1);
    let month = Month::try_from(m).unwrap_or(Month::January);
    let date = Date::from_calendar_date(year, month, 1).unwrap_or(Date::MIN);
    date.midnight().assume_utc().unix_timestamp() * 1000
}

/// The partition's name: generated from numbers only, so safe to splice
/// into DDL (which takes no parameters).
pub fn name_of(month: i64) -> String {
    format!("entries_p{:04}{:02}", month.div_euclid(12), month.rem_euclid(12) + 1)
}

#[derive(Default)]
pub struct Partitions {
    known: Mutex<HashSet<i64>>,
}

impl Partitions {
    /// Makes sure every month among `timestamps` has its partition.
    pub async fn ensure(&self, pool: &Pool, timestamps: impl IntoIterator<Item = Timestamp>) -> Result<(), StoreError> {
        let missing: Vec<i64> = {
            let known = self
                .known
                .lock()
                .map_err(|_| StoreError::Internal("partition cache poisoned".into()))?;
            let mut months: Vec<i64> = timestamps
                .into_iter()
                .filter_map(month_of)
                .filter(|m| !known.contains(m))
                .collect();
            months.sort_unstable();
            months.dedup();
            months
        };
        if missing.is_empty() {
            return Ok(());
        }
        let mut client = pool.get().await.map_err(pool_err)?;
        let tx = client.transaction().await.map_err(db_err)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&PARTITION_LOCK])
            .await
            .map_err(db_err)?;
        for &month in &missing {
            let name = name_of(month);
            let exists: bool = tx
                .query_one("SELECT to_regclass($1) IS NOT NULL", &[&name])
                .await
                .map_err(db_err)?
                .get(0);
            if exists {
                continue;
            }
            let (from, to) = (start_of(month), start_of(month + 1));
            tx.batch_execute(&format!(
                "CREATE TABLE {name} (LIKE entries INCLUDING DEFAULTS INCLUDING CONSTRAINTS); \
                 ALTER TABLE entries ATTACH PARTITION {name} FOR VALUES FROM ({from}) TO ({to});"
            ))
            .await
            .map_err(db_err)?;
            tracing::info!(partition = %name, "created a monthly partition of entries");
        }
        tx.commit().await.map_err(db_err)?;
        self.known
            .lock()
            .map_err(|_| StoreError::Internal("partition cache poisoned".into()))?
            .extend(missing);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_have_exact_bounds_and_names() {
        let t = Timestamp::parse("2026-09-21T13:36:40Z").unwrap();
        let m = month_of(t).unwrap();
        assert_eq!(name_of(m), "entries_p202609");
        assert_eq!(start_of(m), Timestamp::parse("2026-09-01T00:00:00Z").unwrap().millis());
        assert_eq!(
            start_of(m + 4),
            Timestamp::parse("2027-01-01T00:00:00Z").unwrap().millis()
        );
        let last_ms = Timestamp::parse("2026-09-30T23:59:59.999Z").unwrap();
        assert_eq!(month_of(last_ms), Some(m));
        assert_eq!(month_of(last_ms.plus_millis(1)), Some(m + 1));
    }

    #[test]
    fn the_window_matches_the_catch_all_partitions() {
        // The schema's catch-alls end at 946684800000 and start at 4102444800000.
        assert_eq!(start_of(FIRST_MONTH), 946_684_800_000);
        assert_eq!(start_of(END_MONTH), 4_102_444_800_000);
        assert_eq!(month_of(Timestamp(946_684_800_000 - 1)), None);
        assert_eq!(month_of(Timestamp(946_684_800_000)), Some(FIRST_MONTH));
        assert_eq!(month_of(Timestamp(4_102_444_800_000 - 1)), Some(END_MONTH - 1));
        assert_eq!(month_of(Timestamp(4_102_444_800_000)), None);
        assert_eq!(month_of(Timestamp(i64::MIN)), None);
        assert_eq!(month_of(Timestamp(i64::MAX)), None);
    }
}

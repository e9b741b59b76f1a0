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
//!
//! Retention may drop a month's partition (see `expiry`) that this
//! or another process remembers. An insert into it then fails with
//! [`is_missing`]; the append runs again, this time making its months'
//! partitions inside its own transaction with [`make`], whose lock keeps
//! retention from dropping them before it commits. So an entry with an old
//! timestamp is never refused for it.

use std::collections::HashSet;
use std::sync::Mutex;

use auditlog_domain::{StoreError, Timestamp};
use deadpool_postgres::{GenericClient, Pool};
use time::{Date, Month, OffsetDateTime};

use crate::error::{db_err, pool_err};

/// `pg_advisory_xact_lock` key serializing the making and dropping of
/// partitions.
pub const PARTITION_LOCK: i64 = 0x6175_6469_746c_6f68;

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
pub fn start_of(month: i64) -> i64 {
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

/// The month of a partition named by [`name_of`], or `None` for any other
/// name (the catch-alls among them).
pub fn month_from_name(name: &str) -> Option<i64> {
    let digits = name.strip_prefix("entries_p")?;
    if digits.len() != 6 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let year: i64 = digits[..4].parse().ok()?;
    let month: i64 = digits[4..].parse().ok()?;
    let m = year * 12 + month - 1;
    ((1..=12).contains(&month) && (FIRST_MONTH..END_MONTH).contains(&m)).then_some(m)
}

/// An insert found no partition for its row: the month's was dropped after
/// this process last saw it (PostgreSQL reports it as a check violation).
pub fn is_missing(e: &tokio_postgres::Error) -> bool {
    e.as_db_error().is_some_and(|db| {
        db.code() == &tokio_postgres::error::SqlState::CHECK_VIOLATION && db.message().starts_with("no partition")
    })
}

/// The distinct months of `timestamps` that get partitions of their own.
pub fn months_of(timestamps: impl IntoIterator<Item = Timestamp>) -> Vec<i64> {
    let mut months: Vec<i64> = timestamps.into_iter().filter_map(month_of).collect();
    months.sort_unstable();
    months.dedup();
    months
}

/// Makes, inside the transaction `tx`, the partitions of `months` that do
/// not exist. Holds [`PARTITION_LOCK`] until `tx` ends, so no other process
/// makes or drops a month's partition meanwhile: an insert later in `tx`
/// finds its month's partition there.
pub async fn make<C: GenericClient>(tx: &C, months: &[i64]) -> Result<(), tokio_postgres::Error> {
    if months.is_empty() {
        return Ok(());
    }
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&PARTITION_LOCK])
        .await?;
    for &month in months {
        let name = name_of(month);
        let exists: bool = tx
            .query_one("SELECT to_regclass($1) IS NOT NULL", &[&name])
            .await?
            .get(0);
        if exists {
            continue;
        }
        let (from, to) = (start_of(month), start_of(month + 1));
        tx.batch_execute(&format!(
            "CREATE TABLE {name} (LIKE entries INCLUDING DEFAULTS INCLUDING CONSTRAINTS); \
             ALTER TABLE entries ATTACH PARTITION {name} FOR VALUES FROM ({from}) TO ({to});"
        ))
        .await?;
        tracing::info!(partition = %name, "created a monthly partition of entries");
    }
    Ok(())
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
        make(&tx, &missing).await.map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        self.remember(missing)
    }

    /// Records months whose partitions a committed transaction made or saw.
    pub fn remember(&self, months: impl IntoIterator<Item = i64>) -> Result<(), StoreError> {
        self.known
            .lock()
            .map_err(|_| StoreError::Internal("partition cache poisoned".into()))?
            .extend(months);
        Ok(())
    }

    /// Forgets the months of `timestamps`, so the next [`Partitions::ensure`]
    /// looks for their partitions in the database again.
    pub fn forget(&self, timestamps: impl IntoIterator<Item = Timestamp>) -> Result<(), StoreError> {
        let mut known = self
            .known
            .lock()
            .map_err(|_| StoreError::Internal("partition cache poisoned".into()))?;
        for month in timestamps.into_iter().filter_map(month_of) {
            known.remove(&month);
        }
        Ok(())
    }

    /// Forgets one month whose partition this process dropped.
    pub fn forget_month(&self, month: i64) -> Result<(), StoreError> {
        self.forget([Timestamp(start_of(month))])
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
    fn names_give_back_their_month_and_nothing_else() {
        for m in [FIRST_MONTH, FIRST_MONTH + 7, END_MONTH - 1] {
            assert_eq!(month_from_name(&name_of(m)), Some(m));
        }
        for other in [
            "entries_before_2000",
            "entries_from_2100",
            "entries_p202613",
            "entries_p202600",
            "entries_p19991",
            "entries_p210001",
            "entries_p2026012",
            "entries",
        ] {
            assert_eq!(month_from_name(other), None, "{other}");
        }
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

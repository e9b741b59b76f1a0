//! [`MaintenanceStore`] on SQLite: purges, readiness and job leases.

use async_trait::async_trait;
use auditlog_domain::store::{MaintenanceStore, Purged};
use auditlog_domain::{OrgId, StoreError, Timestamp};
use r2d2_sqlite::rusqlite;
use r2d2_sqlite::rusqlite::params;

use crate::SqliteStore;
use crate::rows::db_err;

#[async_trait]
impl MaintenanceStore for SqliteStore {
    async fn purge_before(&self, org: OrgId, cutoff: Timestamp, limit: u32) -> Result<Purged, StoreError> {
        self.write(move |conn| {
            let tx = conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(db_err)?;
            let purged = tx
                .query_row(
                    "WITH doomed AS (SELECT seq FROM entries INDEXED BY entries_by_time \
                         WHERE org_id = ?1 AND ts < ?2 ORDER BY ts, seq LIMIT ?3) \
                     SELECT count(*), min(seq), max(seq) FROM doomed",
                    params![org.0, cutoff.millis(), limit],
                    |r| {
                        Ok(Purged {
                            count: r.get::<_, i64>(0)? as u64,
                            first_seq: r.get(1)?,
                            last_seq: r.get(2)?,
                        })
                    },
                )
                .map_err(db_err)?;
            if purged.count > 0 {
                // Deliveries go with their entries: no body outlives retention.
                tx.execute(
                    "DELETE FROM deliveries WHERE org_id = ?1 AND seq IN (SELECT seq FROM entries INDEXED BY entries_by_time \
                         WHERE org_id = ?1 AND ts < ?2 ORDER BY ts, seq LIMIT ?3)",
                    params![org.0, cutoff.millis(), limit],
                )
                .map_err(db_err)?;
                tx.execute(
                    "DELETE FROM personal_parts WHERE org_id = ?1 AND seq IN (SELECT seq FROM entries INDEXED BY entries_by_time \
                         WHERE org_id = ?1 AND ts < ?2 ORDER BY ts, seq LIMIT ?3)",
                    params![org.0, cutoff.millis(), limit],
                )
                .map_err(db_err)?;
                tx.execute(
                    "DELETE FROM entries WHERE org_id = ?1 AND seq IN (SELECT seq FROM entries INDEXED BY entries_by_time \
                         WHERE org_id = ?1 AND ts < ?2 ORDER BY ts, seq LIMIT ?3)",
                    params![org.0, cutoff.millis(), limit],
                )
                .map_err(db_err)?;
            }
            tx.commit().map_err(db_err)?;
            Ok(purged)
        })
        .await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.read(|conn| conn.query_row("SELECT 1", [], |_| Ok(())).map_err(db_err))
            .await
    }
}

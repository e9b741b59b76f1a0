//! [`MaintenanceStore`] on PostgreSQL: purges, readiness and job leases.

use std::collections::HashMap;

use async_trait::async_trait;
use auditlog_domain::store::{Job, JobLease, MaintenanceStore, Purged};
use auditlog_domain::{OrgId, StoreError, Timestamp};

use crate::PostgresStore;
use crate::error::db_err;
use crate::rows::get;
use crate::{db, expiry, leases};

#[async_trait]
impl MaintenanceStore for PostgresStore {
    async fn purge_before(&self, org: OrgId, cutoff: Timestamp, limit: u32) -> Result<Purged, StoreError> {
        db::transaction(&self.inner.pool, (), move |tx, ()| {
            Box::pin(async move {
                // The oldest entries go with their id and key mappings, their
                // sealed personal values and their deliveries (no body
                // outlives retention); the tree stays, and so do the keys.
                let r = db::query_one(
                    tx,
                    "WITH doomed AS (SELECT seq, ts FROM entries WHERE org_id = $1 AND ts < $2 \
                         ORDER BY ts, seq LIMIT $3 FOR UPDATE), \
                     gone AS (DELETE FROM entries e USING doomed d \
                         WHERE e.org_id = $1 AND e.seq = d.seq AND e.ts = d.ts \
                         RETURNING e.seq, e.id, e.idempotency_key), \
                     ids AS (DELETE FROM entry_ids i USING gone g WHERE i.org_id = $1 AND i.id = g.id), \
                     keys AS (DELETE FROM entry_keys k USING gone g \
                         WHERE k.org_id = $1 AND k.idempotency_key = g.idempotency_key), \
                     outbox AS (DELETE FROM deliveries x USING gone g WHERE x.org_id = $1 AND x.seq = g.seq), \
                     parts AS (DELETE FROM personal_parts p USING gone g WHERE p.org_id = $1 AND p.seq = g.seq) \
                     SELECT count(*), min(seq), max(seq) FROM gone",
                    &[&org.0, &cutoff.millis(), &i64::from(limit)],
                )
                .await?;
                Ok(Purged {
                    count: get::<i64>(&r, 0)? as u64,
                    first_seq: get(&r, 1)?,
                    last_seq: get(&r, 2)?,
                })
            })
        })
        .await
    }

    async fn drop_expired_partitions(
        &self,
        cutoffs: &HashMap<OrgId, Timestamp>,
    ) -> Result<HashMap<OrgId, Purged>, StoreError> {
        expiry::drop_expired(&self.inner.pool, &self.inner.partitions, cutoffs).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let client = self.client().await?;
        client.simple_query("SELECT 1").await.map_err(db_err)?;
        Ok(())
    }

    async fn try_lease(&self, job: Job) -> Result<Option<Box<dyn JobLease>>, StoreError> {
        leases::try_lease(&self.inner.pool, job).await
    }
}

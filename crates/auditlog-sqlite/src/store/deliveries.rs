//! [`DeliveryStore`] on SQLite: webhook endpoints and their deliveries.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use auditlog_domain::pattern::EventPattern;
use auditlog_domain::sealed::SecretSealer;
use auditlog_domain::store::{Delivery, DeliveryStore, DueDelivery, RecordedAttempt, Replay};
use auditlog_domain::webhook::Endpoint;
use auditlog_domain::{OrgId, StoreError, Timestamp};
use r2d2_sqlite::rusqlite;
use r2d2_sqlite::rusqlite::{OptionalExtension, params};

use crate::SqliteStore;
use crate::rows::db_err;
use crate::{deliveries, rows};

#[async_trait]
impl DeliveryStore for SqliteStore {
    async fn webhooks(&self, org: OrgId) -> Result<Vec<Endpoint>, StoreError> {
        self.read(move |conn| {
            let mut s = conn
                .prepare_cached(&format!(
                    "SELECT {} FROM webhooks WHERE org_id = ?1 ORDER BY created_at, id",
                    rows::WEBHOOK_COLUMNS
                ))
                .map_err(db_err)?;
            let rows = s.query_map([org.0], |r| rows::webhook_at(r, 0)).map_err(db_err)?;
            rows.collect::<Result<_, _>>().map_err(db_err)
        })
        .await
    }

    async fn webhook(&self, org: OrgId, id: &str) -> Result<Option<Endpoint>, StoreError> {
        let id = id.to_owned();
        self.read(move |conn| {
            conn.prepare_cached(&format!(
                "SELECT {} FROM webhooks WHERE org_id = ?1 AND id = ?2",
                rows::WEBHOOK_COLUMNS
            ))
            .and_then(|mut s| s.query_row(params![org.0, id], |r| rows::webhook_at(r, 0)).optional())
            .map_err(db_err)
        })
        .await
    }

    async fn seal_clear_webhook_secrets(&self, sealer: Arc<SecretSealer>) -> Result<u64, StoreError> {
        self.write(move |conn| {
            let tx = conn.transaction().map_err(db_err)?;
            let stored: Vec<(i64, String, Vec<u8>, Option<Vec<u8>>)> = {
                let mut read = tx
                    .prepare("SELECT org_id, id, secret, previous_secret FROM webhooks")
                    .map_err(db_err)?;
                read.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                    .map_err(db_err)?
                    .collect::<Result<_, _>>()
                    .map_err(db_err)?
            };
            let mut sealed = 0;
            for (org, id, secret, previous) in stored {
                if SecretSealer::needs_sealing(&secret) {
                    sealed += tx
                        .execute(
                            "UPDATE webhooks SET secret = ?3 WHERE org_id = ?1 AND id = ?2 AND secret = ?4",
                            params![org, id, sealer.seal(&secret), secret],
                        )
                        .map_err(db_err)? as u64;
                }
                if let Some(previous) = previous.filter(|p| SecretSealer::needs_sealing(p)) {
                    sealed += tx
                        .execute(
                            "UPDATE webhooks SET previous_secret = ?3 \
                             WHERE org_id = ?1 AND id = ?2 AND previous_secret = ?4",
                            params![org, id, sealer.seal(&previous), previous],
                        )
                        .map_err(db_err)? as u64;
                }
            }
            tx.commit().map_err(db_err)?;
            Ok(sealed)
        })
        .await
    }

    async fn claim_deliveries(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<DueDelivery>, StoreError> {
        // Most rounds find nothing due; asking a reader first keeps them
        // from taking the write lock away from ingest.
        let any_due = self
            .read(move |conn| {
                conn.prepare_cached(
                    "SELECT EXISTS (SELECT 1 FROM deliveries WHERE status = 'pending' AND next_attempt_at <= ?1)",
                )
                .and_then(|mut s| s.query_row([now.millis()], |r| r.get::<_, bool>(0)))
                .map_err(db_err)
            })
            .await?;
        if !any_due {
            return Ok(Vec::new());
        }
        let personal = self.inner.personal.get().cloned();
        self.write_relaxed(move |conn| {
            let tx = conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(db_err)?;
            let out = deliveries::claim(&tx, now, lease_until, limit, personal.as_deref())?;
            tx.commit().map_err(db_err)?;
            Ok(out)
        })
        .await
    }

    async fn record_attempts(&self, attempts: Vec<RecordedAttempt>) -> Result<Vec<Option<Timestamp>>, StoreError> {
        self.write_relaxed(move |conn| {
            let tx = conn.transaction().map_err(db_err)?;
            let out = deliveries::record(&tx, &attempts)?;
            tx.commit().map_err(db_err)?;
            Ok(out)
        })
        .await
    }

    async fn deliveries(&self, org: OrgId, webhook_id: &str, limit: u32) -> Result<Vec<Delivery>, StoreError> {
        let webhook_id = webhook_id.to_owned();
        self.read(move |conn| {
            let mut s = conn
                .prepare_cached(&format!(
                    "SELECT {} FROM deliveries WHERE org_id = ?1 AND webhook_id = ?2 \
                     ORDER BY created_at DESC, id DESC LIMIT ?3",
                    rows::DELIVERY_COLUMNS
                ))
                .map_err(db_err)?;
            let rows = s
                .query_map(params![org.0, webhook_id, limit], |r| rows::delivery_at(r, 0))
                .map_err(db_err)?;
            rows.collect::<Result<_, _>>().map_err(db_err)
        })
        .await
    }

    async fn latest_deliveries(
        &self,
        org: OrgId,
        per_endpoint: u32,
    ) -> Result<HashMap<String, Vec<Delivery>>, StoreError> {
        self.read(move |conn| {
            let ids: Vec<String> = conn
                .prepare_cached("SELECT id FROM webhooks WHERE org_id = ?1")
                .map_err(db_err)?
                .query_map(params![org.0], |r| r.get(0))
                .map_err(db_err)?
                .collect::<Result<_, _>>()
                .map_err(db_err)?;
            let mut newest = conn
                .prepare_cached(&format!(
                    "SELECT {} FROM deliveries WHERE org_id = ?1 AND webhook_id = ?2 \
                     ORDER BY created_at DESC, id DESC LIMIT ?3",
                    rows::DELIVERY_COLUMNS
                ))
                .map_err(db_err)?;
            let mut out = HashMap::with_capacity(ids.len());
            for id in ids {
                let list = newest
                    .query_map(params![org.0, id, per_endpoint], |r| rows::delivery_at(r, 0))
                    .map_err(db_err)?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(db_err)?;
                out.insert(id, list);
            }
            Ok(out)
        })
        .await
    }

    async fn retry_delivery(
        &self,
        org: OrgId,
        webhook_id: &str,
        delivery_id: &str,
        now: Timestamp,
    ) -> Result<Delivery, StoreError> {
        let (hook, id) = (webhook_id.to_owned(), delivery_id.to_owned());
        self.write(move |conn| {
            conn.prepare_cached(&format!(
                "UPDATE deliveries SET status = 'pending', next_attempt_at = ?3 \
                 WHERE org_id = ?1 AND id = ?2 AND webhook_id = ?4 RETURNING {}",
                rows::DELIVERY_COLUMNS
            ))
            .and_then(|mut s| {
                s.query_row(params![org.0, id, now.millis(), hook], |r| rows::delivery_at(r, 0))
                    .optional()
            })
            .map_err(db_err)?
            .ok_or_else(|| StoreError::NotFound(format!("delivery {id}")))
        })
        .await
    }

    async fn replay_deliveries(
        &self,
        org: OrgId,
        webhook_id: &str,
        patterns: &[EventPattern],
        from: i64,
        limit: u32,
        now: Timestamp,
    ) -> Result<Replay, StoreError> {
        let (hook, patterns) = (webhook_id.to_owned(), patterns.to_vec());
        self.write(move |conn| {
            let tx = conn.transaction().map_err(db_err)?;
            let replay = deliveries::replay(&tx, org, &hook, &patterns, (from, limit), now)?;
            tx.commit().map_err(db_err)?;
            Ok(replay)
        })
        .await
    }
}

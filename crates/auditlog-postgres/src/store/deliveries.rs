//! [`DeliveryStore`] on PostgreSQL: webhook endpoints and their deliveries.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use auditlog_domain::pattern::EventPattern;
use auditlog_domain::sealed::SecretSealer;
use auditlog_domain::store::{Delivery, DeliveryStore, DueDelivery, RecordedAttempt, Replay};
use auditlog_domain::webhook::Endpoint;
use auditlog_domain::{OrgId, StoreError, Timestamp};

use crate::PostgresStore;
use crate::db::Commit;
use crate::error::db_err;
use crate::rows::{DELIVERY_COLUMNS, WEBHOOK_COLUMNS, get};
use crate::{append, db, deliveries, rows};

#[async_trait]
impl DeliveryStore for PostgresStore {
    async fn webhooks(&self, org: OrgId) -> Result<Vec<Endpoint>, StoreError> {
        let client = self.client().await?;
        db::query(
            &client,
            &format!("SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE org_id = $1 ORDER BY created_at, id"),
            &[&org.0],
        )
        .await
        .map_err(db_err)?
        .iter()
        .map(|r| rows::webhook_at(r, 0))
        .collect()
    }

    async fn webhook(&self, org: OrgId, id: &str) -> Result<Option<Endpoint>, StoreError> {
        let client = self.client().await?;
        db::query_opt(
            &client,
            &format!("SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE org_id = $1 AND id = $2"),
            &[&org.0, &id],
        )
        .await
        .map_err(db_err)?
        .map(|r| rows::webhook_at(&r, 0))
        .transpose()
    }

    async fn seal_clear_webhook_secrets(&self, sealer: Arc<SecretSealer>) -> Result<u64, StoreError> {
        db::transaction(&self.inner.pool, sealer, |tx, sealer| {
            Box::pin(async move {
                let stored = db::query(tx, "SELECT org_id, id, secret, previous_secret FROM webhooks", &[]).await?;
                let mut sealed = 0;
                for r in &stored {
                    let (org, id): (i64, String) = (get(r, 0)?, get(r, 1)?);
                    let (secret, previous): (Vec<u8>, Option<Vec<u8>>) = (get(r, 2)?, get(r, 3)?);
                    if SecretSealer::needs_sealing(&secret) {
                        sealed += db::execute(
                            tx,
                            "UPDATE webhooks SET secret = $3 WHERE org_id = $1 AND id = $2 AND secret = $4",
                            &[&org, &id, &sealer.seal(&secret), &secret],
                        )
                        .await?;
                    }
                    if let Some(previous) = previous.filter(|p| SecretSealer::needs_sealing(p)) {
                        sealed += db::execute(
                            tx,
                            "UPDATE webhooks SET previous_secret = $3 \
                             WHERE org_id = $1 AND id = $2 AND previous_secret = $4",
                            &[&org, &id, &sealer.seal(&previous), &previous],
                        )
                        .await?;
                    }
                }
                Ok(sealed)
            })
        })
        .await
    }

    async fn claim_deliveries(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<DueDelivery>, StoreError> {
        let personal = self.inner.personal.get().cloned();
        db::transaction_with(&self.inner.pool, Commit::Relaxed, personal, move |tx, personal| {
            Box::pin(async move { deliveries::claim(tx, now, lease_until, limit, personal.as_deref()).await })
        })
        .await
    }

    async fn record_attempts(&self, attempts: Vec<RecordedAttempt>) -> Result<Vec<Option<Timestamp>>, StoreError> {
        let attempts = Arc::new(attempts);
        db::transaction_with(&self.inner.pool, Commit::Relaxed, attempts, |tx, attempts| {
            Box::pin(async move { deliveries::record(tx, &attempts).await })
        })
        .await
    }

    async fn deliveries(&self, org: OrgId, webhook_id: &str, limit: u32) -> Result<Vec<Delivery>, StoreError> {
        let client = self.client().await?;
        db::query(
            &client,
            &format!(
                "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE org_id = $1 AND webhook_id = $2 \
                 ORDER BY created_at DESC, id DESC LIMIT $3"
            ),
            &[&org.0, &webhook_id, &i64::from(limit)],
        )
        .await
        .map_err(db_err)?
        .iter()
        .map(|r| rows::delivery_at(r, 0))
        .collect()
    }

    async fn latest_deliveries(
        &self,
        org: OrgId,
        per_endpoint: u32,
    ) -> Result<HashMap<String, Vec<Delivery>>, StoreError> {
        let client = self.client().await?;
        let rows = db::query(
            &client,
            &format!(
                "SELECT w.id, d.* FROM webhooks w CROSS JOIN LATERAL (\
                 SELECT {DELIVERY_COLUMNS} FROM deliveries \
                 WHERE org_id = w.org_id AND webhook_id = w.id ORDER BY created_at DESC, id DESC LIMIT $2) d \
                 WHERE w.org_id = $1"
            ),
            &[&org.0, &i64::from(per_endpoint)],
        )
        .await
        .map_err(db_err)?;
        let mut out: HashMap<String, Vec<Delivery>> = HashMap::new();
        for r in &rows {
            out.entry(get::<String>(r, 0)?)
                .or_default()
                .push(rows::delivery_at(r, 1)?);
        }
        Ok(out)
    }

    async fn retry_delivery(
        &self,
        org: OrgId,
        webhook_id: &str,
        delivery_id: &str,
        now: Timestamp,
    ) -> Result<Delivery, StoreError> {
        let ids = (webhook_id.to_owned(), delivery_id.to_owned());
        db::transaction(&self.inner.pool, ids, move |tx, (hook, id)| {
            Box::pin(async move {
                let row = db::query_opt(
                    tx,
                    &format!(
                        "UPDATE deliveries SET status = 'pending', next_attempt_at = $3 \
                         WHERE org_id = $1 AND id = $2 AND webhook_id = $4 RETURNING {DELIVERY_COLUMNS}"
                    ),
                    &[&org.0, &id, &now.millis(), &hook],
                )
                .await?
                .ok_or_else(|| StoreError::NotFound(format!("delivery {id}")))?;
                // Due now: tell every dispatcher.
                db::execute(tx, "SELECT pg_notify($1, '')", &[&append::DELIVERIES_CHANNEL]).await?;
                Ok(rows::delivery_at(&row, 0)?)
            })
        })
        .await
    }

    async fn wait_for_deliveries(&self, seen: u64) -> u64 {
        self.inner.signals.wait(seen).await
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
        let args = (webhook_id.to_owned(), patterns.to_vec());
        db::transaction(&self.inner.pool, args, move |tx, (hook, patterns)| {
            Box::pin(async move { deliveries::replay(tx, org, &hook, &patterns, (from, limit), now).await })
        })
        .await
    }
}

//! [`StreamStore`] on PostgreSQL: streams, their cursors and their leases.

use async_trait::async_trait;
use auditlog_domain::store::{HeldStream, Progress, StreamStore};
use auditlog_domain::stream::Stream;
use auditlog_domain::{OrgId, StoreError, Timestamp};

use crate::PostgresStore;
use crate::db::{self, Commit};
use crate::error::db_err;
use crate::rows::{get, qualified};
use crate::streams::{COLUMNS, stream_at};

#[async_trait]
impl StreamStore for PostgresStore {
    async fn streams(&self, org: OrgId) -> Result<Vec<Stream>, StoreError> {
        let client = self.client().await?;
        db::query(
            &client,
            &format!("SELECT {COLUMNS} FROM streams WHERE org_id = $1 ORDER BY created_at, id"),
            &[&org.0],
        )
        .await
        .map_err(db_err)?
        .iter()
        .map(|r| stream_at(r, 0))
        .collect()
    }

    async fn stream(&self, org: OrgId, id: &str) -> Result<Option<Stream>, StoreError> {
        let client = self.client().await?;
        db::query_opt(
            &client,
            &format!("SELECT {COLUMNS} FROM streams WHERE org_id = $1 AND id = $2"),
            &[&org.0, &id],
        )
        .await
        .map_err(db_err)?
        .map(|r| stream_at(&r, 0))
        .transpose()
    }

    async fn claim_streams(
        &self,
        holder: &str,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<HeldStream>, StoreError> {
        let args = (holder.to_owned(), now.millis(), lease_until.millis(), i64::from(limit));
        // Relaxed: a lost claim only lets another take the stream sooner.
        // SKIP LOCKED: replicas claiming at once each take different ones.
        let sql = format!(
            "UPDATE streams s SET lease_holder = $1, lease_until = $3 \
             FROM (SELECT org_id, id FROM streams WHERE enabled \
                   AND (lease_holder IS NULL OR lease_holder = $1 OR lease_until < $2) \
                   ORDER BY org_id, id LIMIT $4 FOR UPDATE SKIP LOCKED) c \
             WHERE s.org_id = c.org_id AND s.id = c.id \
             RETURNING s.org_id, {}",
            qualified("s", COLUMNS)
        );
        db::transaction_with(
            &self.inner.pool,
            Commit::Relaxed,
            args,
            move |tx, (holder, now, until, limit)| {
                let sql = sql.clone();
                Box::pin(async move {
                    let rows = db::query(tx, &sql, &[&holder, &now, &until, &limit]).await?;
                    Ok(rows
                        .iter()
                        .map(|r| {
                            Ok(HeldStream {
                                org_id: OrgId(get(r, 0)?),
                                stream: stream_at(r, 1)?,
                            })
                        })
                        .collect::<Result<Vec<_>, StoreError>>()?)
                })
            },
        )
        .await
    }

    async fn stream_progress(
        &self,
        org: OrgId,
        id: &str,
        holder: &str,
        revision: i64,
        p: Progress,
    ) -> Result<bool, StoreError> {
        let args = (
            (org.0, id.to_owned(), holder.to_owned(), revision),
            (
                p.lease_until.millis(),
                p.cursor,
                p.at.millis(),
                p.error,
                p.purged as i64,
            ),
        );
        // Relaxed: a cursor lost to a crash only sends entries again, which
        // at-least-once delivery allows.
        db::transaction_with(&self.inner.pool, Commit::Relaxed, args, |tx, (key, p)| {
            Box::pin(async move {
                let (org, id, holder, revision) = key;
                let (until, cursor, at, error, purged) = p;
                let n = db::execute(
                    tx,
                    "UPDATE streams SET lease_until = $5, \
                     last_delivered_at = CASE WHEN $6 > cursor THEN $7 ELSE last_delivered_at END, \
                     failing_since = CASE WHEN $8::text IS NOT NULL THEN COALESCE(failing_since, $7) \
                                          WHEN $6 > cursor THEN NULL ELSE failing_since END, \
                     last_error = CASE WHEN $8::text IS NOT NULL THEN $8 WHEN $6 > cursor THEN NULL ELSE last_error END, \
                     cursor = GREATEST(cursor, $6), purged_unsent = purged_unsent + $9 \
                     WHERE org_id = $1 AND id = $2 AND lease_holder = $3 AND revision = $4 AND enabled",
                    &[&org, &id, &holder, &revision, &until, &cursor, &at, &error, &purged],
                )
                .await?;
                Ok(n == 1)
            })
        })
        .await
    }

    async fn release_stream(&self, org: OrgId, id: &str, holder: &str) -> Result<(), StoreError> {
        let client = self.client().await?;
        db::execute(
            &client,
            "UPDATE streams SET lease_holder = NULL, lease_until = NULL \
             WHERE org_id = $1 AND id = $2 AND lease_holder = $3",
            &[&org.0, &id, &holder],
        )
        .await
        .map_err(db_err)?;
        Ok(())
    }
}

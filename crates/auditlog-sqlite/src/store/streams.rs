//! [`StreamStore`] on SQLite: streams, their cursors and their leases.

use async_trait::async_trait;
use auditlog_domain::store::{HeldStream, Progress, StreamStore};
use auditlog_domain::stream::Stream;
use auditlog_domain::{OrgId, StoreError, Timestamp};
use r2d2_sqlite::rusqlite::{OptionalExtension, params};

use crate::SqliteStore;
use crate::rows::db_err;
use crate::streams::{COLUMNS, stream_at};

#[async_trait]
impl StreamStore for SqliteStore {
    async fn streams(&self, org: OrgId) -> Result<Vec<Stream>, StoreError> {
        self.read(move |conn| {
            let mut s = conn
                .prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM streams WHERE org_id = ?1 ORDER BY created_at, id"
                ))
                .map_err(db_err)?;
            let rows = s.query_map([org.0], |r| stream_at(r, 0)).map_err(db_err)?;
            rows.collect::<Result<_, _>>().map_err(db_err)
        })
        .await
    }

    async fn stream(&self, org: OrgId, id: &str) -> Result<Option<Stream>, StoreError> {
        let id = id.to_owned();
        self.read(move |conn| {
            conn.prepare_cached(&format!("SELECT {COLUMNS} FROM streams WHERE org_id = ?1 AND id = ?2"))
                .and_then(|mut s| s.query_row(params![org.0, id], |r| stream_at(r, 0)).optional())
                .map_err(db_err)
        })
        .await
    }

    async fn claim_streams(
        &self,
        holder: &str,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<HeldStream>, StoreError> {
        let holder = holder.to_owned();
        // Relaxed: a lost claim only lets another take the stream sooner.
        self.write_relaxed(move |conn| {
            let tx = conn.transaction().map_err(db_err)?;
            let held = {
                let mut s = tx
                    .prepare_cached(&format!(
                        "UPDATE streams SET lease_holder = ?1, lease_until = ?3 \
                         WHERE rowid IN (SELECT rowid FROM streams WHERE enabled \
                         AND (lease_holder IS NULL OR lease_holder = ?1 OR lease_until < ?2) \
                         ORDER BY org_id, id LIMIT ?4) \
                         RETURNING org_id, {COLUMNS}"
                    ))
                    .map_err(db_err)?;
                let rows = s
                    .query_map(params![holder, now.millis(), lease_until.millis(), limit], |r| {
                        Ok(HeldStream {
                            org_id: OrgId(r.get(0)?),
                            stream: stream_at(r, 1)?,
                        })
                    })
                    .map_err(db_err)?;
                rows.collect::<Result<Vec<_>, _>>().map_err(db_err)?
            };
            tx.commit().map_err(db_err)?;
            Ok(held)
        })
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
        let (id, holder) = (id.to_owned(), holder.to_owned());
        // Relaxed: a cursor lost to a power cut only sends entries again,
        // which at-least-once delivery allows.
        self.write_relaxed(move |conn| {
            let n = conn
                .prepare_cached(
                    "UPDATE streams SET lease_until = ?5, \
                     last_delivered_at = CASE WHEN ?6 > cursor THEN ?7 ELSE last_delivered_at END, \
                     failing_since = CASE WHEN ?8 IS NOT NULL THEN COALESCE(failing_since, ?7) \
                                          WHEN ?6 > cursor THEN NULL ELSE failing_since END, \
                     last_error = CASE WHEN ?8 IS NOT NULL THEN ?8 WHEN ?6 > cursor THEN NULL ELSE last_error END, \
                     cursor = MAX(cursor, ?6), purged_unsent = purged_unsent + ?9 \
                     WHERE org_id = ?1 AND id = ?2 AND lease_holder = ?3 AND revision = ?4 AND enabled",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        org.0,
                        id,
                        holder,
                        revision,
                        p.lease_until.millis(),
                        p.cursor,
                        p.at.millis(),
                        p.error,
                        p.purged as i64
                    ])
                })
                .map_err(db_err)?;
            Ok(n == 1)
        })
        .await
    }

    async fn release_stream(&self, org: OrgId, id: &str, holder: &str) -> Result<(), StoreError> {
        let (id, holder) = (id.to_owned(), holder.to_owned());
        self.write_relaxed(move |conn| {
            conn.execute(
                "UPDATE streams SET lease_holder = NULL, lease_until = NULL \
                 WHERE org_id = ?1 AND id = ?2 AND lease_holder = ?3",
                params![org.0, id, holder],
            )
            .map_err(db_err)?;
            Ok(())
        })
        .await
    }
}

//! [`EntryStore`] on SQLite: appending entries, reading them back, and the
//! tree and checkpoints over them. The writing itself is `append`'s, on the
//! one write connection.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use auditlog_domain::filter::{Bucket, Filter, Page};
use auditlog_domain::merkle::{Hash, NodeId};
use auditlog_domain::personal::{PersonalData, Pseudonym};
use auditlog_domain::store::{AppendRequest, EntryStore, RequestResult, StoredCheckpoint};
use auditlog_domain::{Entry, Org, OrgId, StoreError, Timestamp};
use r2d2_sqlite::rusqlite;
use r2d2_sqlite::rusqlite::{OptionalExtension, params};
use uuid::Uuid;

use crate::SqliteStore;
use crate::rows::{ORG_COLUMNS, db_err, entry_from_row, org_from_row};
use crate::{listing, personal, rows, tree};

impl SqliteStore {
    /// The blind-index tokens a filter's person ids also match.
    fn tokens(&self, filter: &Filter) -> listing::Tokens {
        let personal = self.inner.personal.get();
        personal.map(|p| p.tokens_for(filter)).unwrap_or_default()
    }
}

#[async_trait]
impl EntryStore for SqliteStore {
    async fn append(
        &self,
        requests: Vec<AppendRequest>,
        received_at: Timestamp,
    ) -> Result<Vec<RequestResult>, StoreError> {
        let tree = self.inner.tree;
        let personal = self.inner.personal.get().cloned();
        self.write(move |conn| {
            let tx = conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(db_err)?;
            let out = crate::append::append_in_tx(&tx, &requests, received_at, tree, personal.as_deref())?;
            tx.commit().map_err(db_err)?;
            Ok(out)
        })
        .await
    }

    async fn list(&self, org: OrgId, filter: &Filter, page: Page) -> Result<Vec<Entry>, StoreError> {
        let personal = self.inner.personal.get().cloned();
        let query = listing::build(org, filter, &self.tokens(filter), page);
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(&query.sql).map_err(db_err)?;
            let rows = stmt
                .query_map(rusqlite::params_from_iter(query.params.iter()), entry_from_row)
                .map_err(db_err)?;
            let mut entries = rows.collect::<Result<Vec<_>, _>>().map_err(db_err)?;
            personal::restore(conn, personal.as_deref(), &mut entries)?;
            Ok(entries)
        })
        .await
    }

    async fn histogram(&self, org: OrgId, filter: &Filter, width_ms: i64) -> Result<Vec<Bucket>, StoreError> {
        let query = listing::build_histogram(org, filter, &self.tokens(filter), width_ms);
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(&query.sql).map_err(db_err)?;
            let rows = stmt
                .query_map(rusqlite::params_from_iter(query.params.iter()), |r| {
                    Ok(Bucket {
                        start: Timestamp(r.get(0)?),
                        category: r.get(1)?,
                        count: r.get::<_, i64>(2)?.max(0) as u64,
                    })
                })
                .map_err(db_err)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(db_err)
        })
        .await
    }

    async fn entry(&self, org: OrgId, id: Uuid) -> Result<Option<Entry>, StoreError> {
        let personal = self.inner.personal.get().cloned();
        self.read(move |conn| {
            let mut found = conn
                .prepare_cached(&format!(
                    "SELECT {} FROM entries WHERE org_id = ?1 AND id = ?2",
                    rows::ENTRY_COLUMNS
                ))
                .and_then(|mut s| {
                    s.query_row(params![org.0, &id.as_bytes()[..]], entry_from_row)
                        .optional()
                })
                .map_err(db_err)?;
            personal::restore(conn, personal.as_deref(), found.as_mut_slice())?;
            Ok(found)
        })
        .await
    }

    fn use_personal_data(&self, personal: Arc<PersonalData>) {
        if self.inner.sealing {
            let _ = self.inner.personal.set(personal);
        }
    }

    async fn subject_entries(&self, org: OrgId, pseudonym: Pseudonym) -> Result<u64, StoreError> {
        self.read(move |conn| personal::subject_entries(conn, org, &pseudonym).map_err(db_err))
            .await
    }

    async fn log_size(&self, org: OrgId) -> Result<i64, StoreError> {
        self.read(move |conn| {
            conn.prepare_cached("SELECT size FROM log_heads WHERE org_id = ?1")
                .and_then(|mut s| s.query_row([org.0], |r| r.get::<_, i64>(0)).optional())
                .map(Option::unwrap_or_default)
                .map_err(db_err)
        })
        .await
    }

    async fn tree_nodes(&self, org: OrgId, ids: Vec<NodeId>) -> Result<HashMap<NodeId, Hash>, StoreError> {
        self.read(move |conn| {
            let mut reader = tree::Reader::new(conn, org);
            let mut found = HashMap::with_capacity(ids.len());
            for id in ids {
                if let Some(hash) = reader.node(id).map_err(db_err)? {
                    found.insert(id, hash);
                }
            }
            Ok(found)
        })
        .await
    }

    async fn orgs_with_unsigned_entries(&self) -> Result<Vec<Org>, StoreError> {
        self.read(|conn| {
            let mut s = conn
                .prepare_cached(&format!(
                    "SELECT {ORG_COLUMNS} FROM orgs JOIN log_heads h USING (org_id) \
                     WHERE h.size > coalesce((SELECT max(size) FROM checkpoints c WHERE c.org_id = orgs.org_id), 0) \
                     ORDER BY org_id"
                ))
                .map_err(db_err)?;
            let rows = s.query_map([], org_from_row).map_err(db_err)?;
            rows.collect::<Result<_, _>>().map_err(db_err)
        })
        .await
    }

    async fn checkpoint(&self, org: OrgId, size: Option<u64>) -> Result<Option<StoredCheckpoint>, StoreError> {
        self.read(move |conn| {
            let sql = match size {
                Some(_) => "SELECT size, root, note, signed_at FROM checkpoints WHERE org_id = ?1 AND size = ?2",
                None => {
                    "SELECT size, root, note, signed_at FROM checkpoints WHERE org_id = ?1 AND ?2 IS NULL \
                         ORDER BY size DESC LIMIT 1"
                }
            };
            conn.prepare_cached(sql)
                .and_then(|mut s| {
                    s.query_row(params![org.0, size.map(|n| n as i64)], |r| {
                        Ok(StoredCheckpoint {
                            size: r.get::<_, i64>(0)? as u64,
                            root: tree::hash_of(&r.get::<_, Vec<u8>>(1)?)?,
                            note: r.get(2)?,
                            signed_at: Timestamp(r.get(3)?),
                        })
                    })
                    .optional()
                })
                .map_err(db_err)
        })
        .await
    }

    async fn save_checkpoint(&self, org: OrgId, cp: StoredCheckpoint) -> Result<(), StoreError> {
        self.write(move |conn| {
            conn.execute(
                "INSERT INTO checkpoints (org_id, size, root, note, signed_at) VALUES (?1, ?2, ?3, ?4, ?5) \
                 ON CONFLICT (org_id, size) DO NOTHING",
                params![org.0, cp.size as i64, &cp.root[..], cp.note, cp.signed_at.millis()],
            )
            .map(|_| ())
            .map_err(db_err)
        })
        .await
    }
}

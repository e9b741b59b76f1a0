//! [`EntryStore`] on PostgreSQL: appending entries, reading them back, and
//! the tree and checkpoints over them. The writing itself is `append`'s,
//! run on the store's own runtime (`apart`).

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use auditlog_domain::filter::{Bucket, Filter, Page};
use auditlog_domain::merkle::{Hash, NodeId};
use auditlog_domain::personal::{PersonalData, Pseudonym};
use auditlog_domain::store::{AppendRequest, EntryStore, RequestResult, StoredCheckpoint};
use auditlog_domain::{Entry, Org, OrgId, StoreError, Timestamp};
use uuid::Uuid;

use crate::PostgresStore;
use crate::error::db_err;
use crate::rows::{ENTRY_COLUMNS, ORG_COLUMNS, get, qualified};
use crate::{db, listing, personal, rows, tree};

impl PostgresStore {
    /// The blind-index tokens a filter's person ids also match.
    fn tokens(&self, filter: &Filter) -> listing::Tokens {
        let personal = self.inner.personal.get();
        personal.map(|p| p.tokens_for(filter)).unwrap_or_default()
    }
}

#[async_trait]
impl EntryStore for PostgresStore {
    async fn append(
        &self,
        requests: Vec<AppendRequest>,
        received_at: Timestamp,
    ) -> Result<Vec<RequestResult>, StoreError> {
        let store = self.clone();
        self.inner
            .apart
            .run(async move { store.append_apart(requests, received_at).await })
            .await?
    }

    async fn list(&self, org: OrgId, filter: &Filter, page: Page) -> Result<Vec<Entry>, StoreError> {
        let query = listing::build(org, filter, &self.tokens(filter), page);
        let client = self.client().await?;
        let mut entries = db::query(&client, &query.sql, &query.params())
            .await
            .map_err(db_err)?
            .iter()
            .map(rows::entry)
            .collect::<Result<Vec<_>, _>>()?;
        personal::restore(&client, self.inner.personal.get().map(Arc::as_ref), &mut entries).await?;
        Ok(entries)
    }

    async fn histogram(&self, org: OrgId, filter: &Filter, width_ms: i64) -> Result<Vec<Bucket>, StoreError> {
        let query = listing::build_histogram(org, filter, &self.tokens(filter), width_ms);
        let client = self.client().await?;
        db::query(&client, &query.sql, &query.params())
            .await
            .map_err(db_err)?
            .iter()
            .map(|r| {
                Ok(Bucket {
                    start: Timestamp(get(r, 0)?),
                    category: get::<String>(r, 1)?,
                    count: get::<i64>(r, 2)?.max(0) as u64,
                })
            })
            .collect()
    }

    async fn entry(&self, org: OrgId, id: Uuid) -> Result<Option<Entry>, StoreError> {
        let client = self.client().await?;
        let mut found = db::query_opt(
            &client,
            &format!(
                "SELECT {} FROM entry_ids i JOIN entries e ON e.org_id = i.org_id AND e.seq = i.seq AND e.ts = i.ts \
                 WHERE i.org_id = $1 AND i.id = $2",
                qualified("e", ENTRY_COLUMNS)
            ),
            &[&org.0, &id],
        )
        .await
        .map_err(db_err)?
        .map(|r| rows::entry(&r))
        .transpose()?;
        personal::restore(
            &client,
            self.inner.personal.get().map(Arc::as_ref),
            found.as_mut_slice(),
        )
        .await?;
        Ok(found)
    }

    fn use_personal_data(&self, personal: Arc<PersonalData>) {
        let _ = self.inner.personal.set(personal);
    }

    async fn subject_entries(&self, org: OrgId, pseudonym: Pseudonym) -> Result<u64, StoreError> {
        let client = self.client().await?;
        Ok(personal::subject_entries(&client, org, &pseudonym).await?)
    }

    async fn log_size(&self, org: OrgId) -> Result<i64, StoreError> {
        let client = self.client().await?;
        db::query_opt(&client, "SELECT size FROM log_heads WHERE org_id = $1", &[&org.0])
            .await
            .map_err(db_err)?
            .map(|r| get(&r, 0))
            .transpose()
            .map(Option::unwrap_or_default)
    }

    async fn tree_nodes(&self, org: OrgId, ids: Vec<NodeId>) -> Result<HashMap<NodeId, Hash>, StoreError> {
        let client = self.client().await?;
        let nodes = tree::Nodes::load(&client, org, &ids, &[]).await?;
        let mut found = HashMap::with_capacity(ids.len());
        for id in ids {
            if let Some(hash) = nodes.node(id)? {
                found.insert(id, hash);
            }
        }
        Ok(found)
    }

    async fn orgs_with_unsigned_entries(&self) -> Result<Vec<Org>, StoreError> {
        let client = self.client().await?;
        db::query(
            &client,
            &format!(
                "SELECT {} FROM orgs o JOIN log_heads h ON h.org_id = o.org_id \
                 WHERE h.size > coalesce((SELECT max(size) FROM checkpoints c WHERE c.org_id = o.org_id), 0) \
                 ORDER BY o.org_id",
                qualified("o", ORG_COLUMNS)
            ),
            &[],
        )
        .await
        .map_err(db_err)?
        .iter()
        .map(rows::org)
        .collect()
    }

    async fn checkpoint(&self, org: OrgId, size: Option<u64>) -> Result<Option<StoredCheckpoint>, StoreError> {
        let client = self.client().await?;
        let row =
            match size {
                Some(size) => {
                    db::query_opt(
                        &client,
                        "SELECT size, root, note, signed_at FROM checkpoints WHERE org_id = $1 AND size = $2",
                        &[&org.0, &(size as i64)],
                    )
                    .await
                }
                None => db::query_opt(
                    &client,
                    "SELECT size, root, note, signed_at FROM checkpoints WHERE org_id = $1 ORDER BY size DESC LIMIT 1",
                    &[&org.0],
                )
                .await,
            }
            .map_err(db_err)?;
        row.map(|r| {
            Ok(StoredCheckpoint {
                size: get::<i64>(&r, 0)? as u64,
                root: rows::hash_of(get(&r, 1)?)?,
                note: get(&r, 2)?,
                signed_at: Timestamp(get(&r, 3)?),
            })
        })
        .transpose()
    }

    async fn save_checkpoint(&self, org: OrgId, cp: StoredCheckpoint) -> Result<(), StoreError> {
        let client = self.client().await?;
        db::execute(
            &client,
            "INSERT INTO checkpoints (org_id, size, root, note, signed_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (org_id, size) DO NOTHING",
            &[
                &org.0,
                &(cp.size as i64),
                &&cp.root[..],
                &cp.note,
                &cp.signed_at.millis(),
            ],
        )
        .await
        .map_err(db_err)?;
        Ok(())
    }
}

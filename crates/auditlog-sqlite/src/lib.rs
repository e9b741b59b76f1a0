//! The embedded SQLite implementation of [`Store`]: one file, nothing to
//! install, durable on acknowledgement.
//!
//! # Layout
//!
//! - [`schema`]: connection settings and the migrations in `migrations/`.
//! - [`listing`]: the SQL for filtered, keyset-paginated listings.
//! - [`rows`]: mapping between rows and domain types; error mapping.
//!
//! Writes go through one dedicated connection (SQLite has one writer at a
//! time anyway, and the server's group-commit writer already batches), reads
//! through a small pool, both in the blocking thread pool so the async
//! runtime never waits on disk.

#![forbid(unsafe_code)]

pub mod listing;
pub mod rows;
pub mod schema;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use auditlog_domain::api_key::KeyPrefix;
use auditlog_domain::filter::{Filter, Page};
use auditlog_domain::org::NewOrg;
use auditlog_domain::store::{ApiKeyRecord, AppendRequest, Appended, NewApiKey};
use auditlog_domain::{Entry, Org, OrgId, Store, StoreError, Timestamp};
use r2d2_sqlite::SqliteConnectionManager;
use r2d2_sqlite::rusqlite::{Connection, OptionalExtension, params};
use uuid::Uuid;

pub use r2d2_sqlite::rusqlite;
use rows::{db_err, entry_from_row, org_from_row};

/// Readers in the pool: enough for a 2-core machine to overlap queries with
/// an export, few enough that each keeps a warm page cache.
const READERS: u32 = 4;

#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    /// The one write connection. A std mutex is right: it is only taken
    /// inside `spawn_blocking`, never across an `.await`.
    writer: Mutex<Connection>,
    readers: r2d2::Pool<SqliteConnectionManager>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").field("path", &self.inner.path).finish()
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and applies pending
    /// migrations.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        let mut writer = Connection::open(&path).map_err(db_err)?;
        schema::configure_writer(&writer).map_err(db_err)?;
        schema::migrate(&mut writer).map_err(db_err)?;
        let manager = SqliteConnectionManager::file(&path).with_init(schema::configure_reader);
        let readers = r2d2::Pool::builder()
            .max_size(READERS)
            .build(manager)
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        Ok(Self {
            inner: Arc::new(Inner {
                path,
                writer: Mutex::new(writer),
                readers,
            }),
        })
    }

    /// `sqlite://path` or `sqlite:path` or a bare path → the file path.
    pub fn path_from_url(url: &str) -> &str {
        url.strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .unwrap_or(url)
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = inner
                .writer
                .lock()
                .map_err(|_| StoreError::Internal("writer connection poisoned".into()))?;
            f(&mut conn)
        })
        .await
        .map_err(|e| StoreError::Internal(format!("writer task failed: {e}")))?
    }

    async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let conn = inner
                .readers
                .get()
                .map_err(|e| StoreError::Unavailable(format!("no database connection: {e}")))?;
            f(&conn)
        })
        .await
        .map_err(|e| StoreError::Internal(format!("reader task failed: {e}")))?
    }
}

fn append_in_tx(
    tx: &rusqlite::Transaction<'_>,
    requests: &[AppendRequest],
    received_at: Timestamp,
) -> Result<Vec<Vec<Appended>>, rusqlite::Error> {
    let mut heads: HashMap<OrgId, i64> = HashMap::new();
    // Entries of this transaction by idempotency key, so a key repeated
    // within one batch also yields the first entry.
    let mut fresh: HashMap<(OrgId, String), Entry> = HashMap::new();
    let mut out = Vec::with_capacity(requests.len());
    let mut insert = tx.prepare_cached(schema::INSERT_ENTRY)?;
    let mut by_key = tx.prepare_cached(&format!(
        "SELECT {} FROM entries WHERE org_id = ?1 AND idempotency_key = ?2",
        rows::ENTRY_COLUMNS
    ))?;
    let mut head_of = tx.prepare_cached("SELECT size FROM log_heads WHERE org_id = ?1")?;

    for req in requests {
        let org = req.org_id;
        let mut results = Vec::with_capacity(req.entries.len());
        for new in &req.entries {
            if let Some(key) = &new.idempotency_key {
                if let Some(e) = fresh.get(&(org, key.clone())) {
                    results.push(Appended {
                        entry: e.clone(),
                        replayed: true,
                    });
                    continue;
                }
                if let Some(e) = by_key.query_row(params![org.0, key], entry_from_row).optional()? {
                    results.push(Appended {
                        entry: e,
                        replayed: true,
                    });
                    continue;
                }
            }
            let seq = match heads.get_mut(&org) {
                Some(h) => {
                    *h += 1;
                    *h
                }
                None => {
                    let size: i64 = head_of.query_row([org.0], |r| r.get(0))?;
                    heads.insert(org, size + 1);
                    size + 1
                }
            };
            let entry = Entry {
                id: Uuid::now_v7(),
                org_id: org,
                seq,
                timestamp: new.timestamp,
                received_at,
                actor: new.actor.clone(),
                event: new.event.clone(),
                resource: new.resource.clone(),
                details: new.details.clone(),
                ip_address: new.ip_address,
                user_agent: new.user_agent.clone(),
                request_id: new.request_id.clone(),
                idempotency_key: new.idempotency_key.clone(),
            };
            rows::insert_entry(&mut insert, &entry)?;
            if let Some(key) = &new.idempotency_key {
                fresh.insert((org, key.clone()), entry.clone());
            }
            results.push(Appended { entry, replayed: false });
        }
        out.push(results);
    }
    let mut set_head = tx.prepare_cached("UPDATE log_heads SET size = ?2 WHERE org_id = ?1")?;
    for (org, size) in heads {
        set_head.execute(params![org.0, size])?;
    }
    Ok(out)
}

#[async_trait]
impl Store for SqliteStore {
    async fn create_org(&self, org: NewOrg, now: Timestamp) -> Result<Org, StoreError> {
        self.write(move |conn| {
            let tx = conn.transaction().map_err(db_err)?;
            tx.execute(
                "INSERT INTO orgs (slug, name, plan, enterprise_retention_days, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![org.slug, org.name, org.plan.as_str(), org.enterprise_retention_days, now.millis()],
            )
            .map_err(|e| rows::conflict_or(e, format!("organization {:?}", org.slug)))?;
            let id = tx.last_insert_rowid();
            tx.execute("INSERT INTO log_heads (org_id, size) VALUES (?1, 0)", [id])
                .map_err(db_err)?;
            tx.commit().map_err(db_err)?;
            Ok(Org {
                id: OrgId(id),
                slug: org.slug,
                name: org.name,
                plan: org.plan,
                enterprise_retention_days: org.enterprise_retention_days,
                created_at: now,
            })
        })
        .await
    }

    async fn org_by_slug(&self, slug: &str) -> Result<Option<Org>, StoreError> {
        let slug = slug.to_owned();
        self.read(move |conn| {
            conn.prepare_cached(&format!("SELECT {} FROM orgs WHERE slug = ?1", rows::ORG_COLUMNS))
                .and_then(|mut s| s.query_row([slug], org_from_row).optional())
                .map_err(db_err)
        })
        .await
    }

    async fn create_api_key(&self, key: NewApiKey, now: Timestamp) -> Result<ApiKeyRecord, StoreError> {
        self.write(move |conn| {
            let scopes = rows::scopes_to_text(&key.scopes);
            conn.execute(
                "INSERT INTO api_keys (org_id, prefix, name, scopes, secret_hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![key.org_id.0, key.prefix.as_str(), key.name, scopes, &key.hash.0[..], now.millis()],
            )
            .map_err(|e| rows::conflict_or(e, format!("API key {}", key.prefix)))?;
            Ok(ApiKeyRecord {
                org_id: key.org_id,
                prefix: key.prefix,
                name: key.name,
                scopes: key.scopes,
                hash: key.hash,
                created_at: now,
                revoked_at: None,
            })
        })
        .await
    }

    async fn api_key(&self, prefix: &KeyPrefix) -> Result<Option<ApiKeyRecord>, StoreError> {
        let prefix = prefix.as_str().to_owned();
        self.read(move |conn| {
            conn.prepare_cached(
                "SELECT org_id, prefix, name, scopes, secret_hash, created_at, revoked_at FROM api_keys WHERE prefix = ?1",
            )
            .and_then(|mut s| s.query_row([prefix], rows::api_key_from_row).optional())
            .map_err(db_err)
        })
        .await
    }

    async fn append(
        &self,
        requests: Vec<AppendRequest>,
        received_at: Timestamp,
    ) -> Result<Vec<Vec<Appended>>, StoreError> {
        self.write(move |conn| {
            let tx = conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(db_err)?;
            let out = append_in_tx(&tx, &requests, received_at).map_err(db_err)?;
            tx.commit().map_err(db_err)?;
            Ok(out)
        })
        .await
    }

    async fn list(&self, org: OrgId, filter: &Filter, page: Page) -> Result<Vec<Entry>, StoreError> {
        let query = listing::build(org, filter, page);
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(&query.sql).map_err(db_err)?;
            let rows = stmt
                .query_map(rusqlite::params_from_iter(query.params.iter()), entry_from_row)
                .map_err(db_err)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(db_err)
        })
        .await
    }

    async fn entry(&self, org: OrgId, id: Uuid) -> Result<Option<Entry>, StoreError> {
        self.read(move |conn| {
            conn.prepare_cached(&format!(
                "SELECT {} FROM entries WHERE org_id = ?1 AND id = ?2",
                rows::ENTRY_COLUMNS
            ))
            .and_then(|mut s| {
                s.query_row(params![org.0, &id.as_bytes()[..]], entry_from_row)
                    .optional()
            })
            .map_err(db_err)
        })
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

    async fn ping(&self) -> Result<(), StoreError> {
        self.read(|conn| conn.query_row("SELECT 1", [], |_| Ok(())).map_err(db_err))
            .await
    }
}

//! The embedded SQLite implementation of [`Store`]: one file, nothing to
//! install, durable on acknowledgement.
//!
//! # Layout
//!
//! - `schema`: connection settings and the migrations in `migrations/`.
//! - `changes`: management changes applied inside the writer's transaction.
//! - `accounts`: the changes to people's accounts (invitations, resets,
//!   passwords), one function each.
//! - `listing`: the SQL for filtered, keyset-paginated listings.
//! - `rows`: mapping between rows and domain types; error mapping.
//! - `tree`: the Merkle tree of each log, in tiles and nodes, and its
//!   backfill for logs older than it.
//!
//! Writes go through one dedicated connection (SQLite has one writer at a
//! time anyway, and the server's group-commit writer already batches), reads
//! through a small pool, both in the blocking thread pool so the async
//! runtime never waits on disk.
//!
//! # Features
//!
//! The store's public API is [`SqliteStore`] and the [`Store`] trait it
//! implements. Two features open more, for code that is not the service:
//!
//! - `testing`, for tests here and in other crates: `schema` (the latest
//!   migration), `listing` (the SQL whose query plans they check) and the
//!   `rusqlite` they read the file with.
//! - `bench`, for `auditlog-bench`: `schema` and `rows` (the raw inserts
//!   and scans its ceilings time), `rusqlite`, and
//!   `SqliteStore::open_without_tree`.

#![forbid(unsafe_code)]

mod accounts;
mod changes;
mod deliveries;
#[cfg(feature = "testing")]
pub mod listing;
#[cfg(not(feature = "testing"))]
mod listing;
#[cfg(feature = "bench")]
pub mod rows;
#[cfg(not(feature = "bench"))]
mod rows;
#[cfg(any(feature = "bench", feature = "testing"))]
pub mod schema;
#[cfg(not(any(feature = "bench", feature = "testing")))]
mod schema;
mod tree;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use auditlog_domain::api_key::KeyPrefix;
use auditlog_domain::canonical::Fields;
use auditlog_domain::filter::{Filter, Page};
use auditlog_domain::invitation::Invitation;
use auditlog_domain::leaf_hasher::{LeafSink, with_leaf_hasher};
use auditlog_domain::member::{Member, Project, User};
use auditlog_domain::merkle::{Hash, NodeId};
use auditlog_domain::org::NewOrg;
use auditlog_domain::sealed::SecretSealer;
use auditlog_domain::session::Session;
use auditlog_domain::store::{
    ApiKeyRecord, AppendRequest, Appended, Delivery, DueDelivery, NewApiKey, Purged, RecordedAttempt, RequestResult,
    StoredCheckpoint,
};
use auditlog_domain::webhook::Endpoint;
use auditlog_domain::{Entry, Org, OrgId, Role, Store, StoreError, Timestamp};
use r2d2_sqlite::SqliteConnectionManager;
use r2d2_sqlite::rusqlite::{Connection, OptionalExtension, params};
use uuid::Uuid;

/// The SQLite library the store is built on, to read its file directly.
#[cfg(any(feature = "bench", feature = "testing"))]
pub use r2d2_sqlite::rusqlite;
#[cfg(not(any(feature = "bench", feature = "testing")))]
use r2d2_sqlite::rusqlite;
use rows::{API_KEY_COLUMNS, INVITATION_COLUMNS, ORG_COLUMNS, db_err, entry_from_row, org_from_row};

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
    /// Off only to measure what the tree costs (`auditlog bench`): a log
    /// appended without it cannot be proven, and never is in service.
    tree: bool,
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
                tree: true,
            }),
        })
    }

    /// The same database, appending without the Merkle tree. For the
    /// benchmark's with/without comparison only.
    #[cfg(feature = "bench")]
    pub fn open_without_tree(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let store = Self::open(path)?;
        let inner =
            Arc::try_unwrap(store.inner).map_err(|_| StoreError::Internal("store shared while opening".into()))?;
        Ok(Self {
            inner: Arc::new(Inner { tree: false, ..inner }),
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

    /// [`Self::write`] for the webhook dispatcher's bookkeeping (claims and
    /// attempts), committed without waiting for the disk (`synchronous =
    /// NORMAL`: in WAL mode the commit is ordered, and made durable by the
    /// next fsync). Losing one of these to a power cut only re-sends a
    /// delivery, which at-least-once delivery allows; an fsync each would
    /// put two disk flushes per dispatcher round in the one writer's way,
    /// in front of the entries' commits, which stay `FULL`.
    async fn write_relaxed<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.write(move |conn| {
            conn.pragma_update(None, "synchronous", "NORMAL").map_err(db_err)?;
            let out = f(conn);
            // Everything else this connection commits must be durable.
            conn.pragma_update(None, "synchronous", "FULL")
                .map_err(|e| StoreError::Internal(format!("cannot restore synchronous=FULL on the writer: {e}")))?;
            out
        })
        .await
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

/// The organization's webhook endpoints, read once per transaction.
fn endpoints_of<'a>(
    tx: &rusqlite::Transaction<'_>,
    org: OrgId,
    cache: &'a mut HashMap<OrgId, Vec<Endpoint>>,
) -> Result<&'a [Endpoint], rusqlite::Error> {
    if let std::collections::hash_map::Entry::Vacant(slot) = cache.entry(org) {
        let mut s = tx.prepare_cached(&format!(
            "SELECT {} FROM webhooks WHERE org_id = ?1 AND enabled",
            rows::WEBHOOK_COLUMNS
        ))?;
        let list = s
            .query_map([org.0], |r| rows::webhook_at(r, 0))?
            .collect::<Result<Vec<_>, _>>()?;
        slot.insert(list);
    }
    Ok(cache.get(&org).map(Vec::as_slice).unwrap_or_default())
}

/// Where each organization's log stood before a transaction and after it.
struct Heads {
    heads: HashMap<OrgId, i64>,
    /// Only for the organizations whose tree grows.
    sizes_before: HashMap<OrgId, i64>,
}

/// The per-transaction state of an append.
#[derive(Default)]
struct Batch<'a, 's> {
    heads: HashMap<OrgId, i64>,
    /// Per organization: its log size before this transaction.
    sizes_before: HashMap<OrgId, i64>,
    /// Entries of this transaction by idempotency key, so a key repeated
    /// within one batch also yields the first entry.
    fresh: HashMap<(OrgId, String), Entry>,
    endpoints: HashMap<OrgId, Vec<Endpoint>>,
    /// Where new entries go to have their leaves hashed; `None` when the
    /// store keeps no tree.
    leaves: Option<&'s mut LeafSink<'a>>,
}

fn append_entries<'a>(
    tx: &rusqlite::Transaction<'_>,
    req: &'a AppendRequest,
    received_at: Timestamp,
    batch: &mut Batch<'a, '_>,
) -> Result<Vec<Appended>, rusqlite::Error> {
    let Batch {
        heads,
        sizes_before,
        fresh,
        endpoints,
        leaves,
    } = batch;
    let org = req.org_id;
    let mut outbox = tx.prepare_cached(
        "INSERT INTO deliveries (org_id, id, webhook_id, seq, status, attempts, next_attempt_at, created_at) \
         VALUES (?1, ?2, ?3, ?4, 'pending', 0, ?5, ?5)",
    )?;
    let mut insert = tx.prepare_cached(schema::INSERT_ENTRY)?;
    let mut by_key = tx.prepare_cached(&format!(
        "SELECT {} FROM entries WHERE org_id = ?1 AND idempotency_key = ?2",
        rows::ENTRY_COLUMNS
    ))?;
    let mut head_of = tx.prepare_cached("SELECT size FROM log_heads WHERE org_id = ?1")?;
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
                if leaves.is_some() {
                    sizes_before.insert(org, size);
                }
                size + 1
            }
        };
        let id = Uuid::now_v7();
        if let Some(leaves) = leaves {
            leaves.push(org, Fields::of_new(new, id, seq, received_at));
        }
        let entry = new.to_entry(org, id, seq, received_at);
        rows::insert_entry(&mut insert, &entry)?;
        // The outbox row commits with the entry or not at all.
        for endpoint in endpoints_of(tx, org, endpoints)?
            .iter()
            .filter(|e| e.wants(&entry.event))
        {
            let id = format!("dlv_{}", Uuid::now_v7().simple());
            outbox.execute(params![org.0, id, endpoint.id, seq, received_at.millis()])?;
        }
        if let Some(key) = &new.idempotency_key {
            fresh.insert((org, key.clone()), entry.clone());
        }
        results.push(Appended { entry, replayed: false });
    }
    Ok(results)
}

/// Runs every request in the open transaction and grows each organization's
/// tree by the entries it added, their leaves hashed beside the inserts
/// (see [`auditlog_domain::leaf_hasher`]).
fn append_in_tx(
    tx: &rusqlite::Transaction<'_>,
    requests: &[AppendRequest],
    received_at: Timestamp,
    tree: bool,
) -> Result<Vec<RequestResult>, StoreError> {
    let (written, mut leaves) = if tree {
        let expected = requests.iter().map(|r| r.entries.len()).sum();
        with_leaf_hasher(expected, |sink| append_requests(tx, requests, received_at, Some(sink)))
    } else {
        (append_requests(tx, requests, received_at, None), HashMap::new())
    };
    let (out, batch) = written?;
    for (org, size_before) in &batch.sizes_before {
        let leaves = leaves.remove(org).unwrap_or_default();
        tree::grow(tx, *org, *size_before as u64, &leaves).map_err(db_err)?;
    }
    let mut set_head = tx
        .prepare_cached("UPDATE log_heads SET size = ?2 WHERE org_id = ?1")
        .map_err(db_err)?;
    for (org, size) in batch.heads {
        set_head.execute(params![org.0, size]).map_err(db_err)?;
    }
    Ok(out)
}

/// Runs every request in the open transaction. A request with changes runs
/// inside a savepoint, so a refused change takes back only its own request.
fn append_requests<'a>(
    tx: &rusqlite::Transaction<'_>,
    requests: &'a [AppendRequest],
    received_at: Timestamp,
    leaves: Option<&mut LeafSink<'a>>,
) -> Result<(Vec<RequestResult>, Heads), StoreError> {
    let mut state = Batch {
        leaves,
        ..Batch::default()
    };
    let batch = &mut state;
    let mut out = Vec::with_capacity(requests.len());
    for req in requests {
        if req.changes.is_empty() {
            out.push(Ok(append_entries(tx, req, received_at, batch).map_err(db_err)?));
            continue;
        }
        tx.execute_batch("SAVEPOINT request").map_err(db_err)?;
        let applied = req
            .changes
            .iter()
            .try_for_each(|change| changes::apply(tx, req.org_id, change, received_at.millis()));
        // A change to webhooks alters which endpoints this batch fans out to.
        batch.endpoints.remove(&req.org_id);
        match applied {
            Ok(()) => {
                let appended = append_entries(tx, req, received_at, batch).map_err(db_err)?;
                tx.execute_batch("RELEASE request").map_err(db_err)?;
                out.push(Ok(appended));
            }
            Err(e @ (StoreError::Rejected { .. } | StoreError::Conflict(_) | StoreError::NotFound(_))) => {
                tx.execute_batch("ROLLBACK TO request; RELEASE request")
                    .map_err(db_err)?;
                out.push(Err(e));
            }
            Err(e) => return Err(e),
        }
    }
    let Batch {
        heads, sizes_before, ..
    } = state;
    Ok((out, Heads { heads, sizes_before }))
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
            Ok(org.created(OrgId(id), now))
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
                last_used_at: None,
            })
        })
        .await
    }

    async fn api_key(&self, prefix: &KeyPrefix) -> Result<Option<ApiKeyRecord>, StoreError> {
        let prefix = prefix.as_str().to_owned();
        self.read(move |conn| {
            conn.prepare_cached(&format!("SELECT {API_KEY_COLUMNS} FROM api_keys WHERE prefix = ?1"))
                .and_then(|mut s| s.query_row([prefix], rows::api_key_from_row).optional())
                .map_err(db_err)
        })
        .await
    }

    async fn orgs(&self) -> Result<Vec<Org>, StoreError> {
        self.read(|conn| {
            let mut s = conn
                .prepare_cached(&format!("SELECT {ORG_COLUMNS} FROM orgs ORDER BY org_id"))
                .map_err(db_err)?;
            let rows = s.query_map([], org_from_row).map_err(db_err)?;
            rows.collect::<Result<_, _>>().map_err(db_err)
        })
        .await
    }

    async fn api_keys(&self, org: OrgId) -> Result<Vec<ApiKeyRecord>, StoreError> {
        self.read(move |conn| {
            let mut s = conn
                .prepare_cached(&format!(
                    "SELECT {API_KEY_COLUMNS} FROM api_keys WHERE org_id = ?1 ORDER BY created_at, prefix"
                ))
                .map_err(db_err)?;
            let rows = s.query_map([org.0], rows::api_key_from_row).map_err(db_err)?;
            rows.collect::<Result<_, _>>().map_err(db_err)
        })
        .await
    }

    async fn members(&self, org: OrgId) -> Result<Vec<Member>, StoreError> {
        self.read(move |conn| {
            let mut s = conn
                .prepare_cached("SELECT email, role, added_at FROM memberships WHERE org_id = ?1 ORDER BY email")
                .map_err(db_err)?;
            let rows = s.query_map([org.0], rows::member_from_row).map_err(db_err)?;
            rows.collect::<Result<_, _>>().map_err(db_err)
        })
        .await
    }

    async fn member(&self, org: OrgId, email: &str) -> Result<Option<Member>, StoreError> {
        let email = email.to_owned();
        self.read(move |conn| {
            conn.prepare_cached("SELECT email, role, added_at FROM memberships WHERE org_id = ?1 AND email = ?2")
                .and_then(|mut s| s.query_row(params![org.0, email], rows::member_from_row).optional())
                .map_err(db_err)
        })
        .await
    }

    async fn user(&self, email: &str) -> Result<Option<User>, StoreError> {
        let email = email.to_owned();
        self.read(move |conn| {
            conn.prepare_cached("SELECT email, password_hash FROM users WHERE email = ?1")
                .and_then(|mut s| {
                    s.query_row([email], |r| {
                        Ok(User {
                            email: r.get(0)?,
                            password_hash: r.get(1)?,
                        })
                    })
                    .optional()
                })
                .map_err(db_err)
        })
        .await
    }

    async fn memberships(&self, email: &str) -> Result<Vec<(Org, Role)>, StoreError> {
        let email = email.to_owned();
        self.read(move |conn| {
            let cols: Vec<String> = ORG_COLUMNS.split(", ").map(|c| format!("o.{c}")).collect();
            let mut s = conn
                .prepare_cached(&format!(
                    "SELECT {}, m.role FROM memberships m JOIN orgs o ON o.org_id = m.org_id WHERE m.email = ?1 ORDER BY o.slug",
                    cols.join(", ")
                ))
                .map_err(db_err)?;
            let rows = s
                .query_map([email], |r| {
                    let org = org_from_row(r)?;
                    let role: String = r.get(9)?;
                    let role = role.parse().map_err(|_| {
                        rusqlite::Error::FromSqlConversionFailure(9, rusqlite::types::Type::Text, "unknown role".into())
                    })?;
                    Ok((org, role))
                })
                .map_err(db_err)?;
            rows.collect::<Result<_, _>>().map_err(db_err)
        })
        .await
    }

    async fn invitation(&self, token_hash: &[u8; 32]) -> Result<Option<Invitation>, StoreError> {
        let hash = *token_hash;
        self.read(move |conn| {
            conn.prepare_cached(&format!(
                "SELECT {INVITATION_COLUMNS} FROM invitations WHERE token_hash = ?1"
            ))
            .and_then(|mut s| s.query_row([&hash[..]], rows::invitation_from_row).optional())
            .map_err(db_err)
        })
        .await
    }

    async fn set_password(&self, email: &str, password_hash: &str, now: Timestamp) -> Result<(), StoreError> {
        let (email, hash) = (email.to_owned(), password_hash.to_owned());
        self.write(move |conn| {
            conn.execute(
                "INSERT INTO users (email, password_hash, created_at) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (email) DO UPDATE SET password_hash = excluded.password_hash",
                params![email, hash, now.millis()],
            )
            .map_err(db_err)?;
            Ok(())
        })
        .await
    }

    async fn projects(&self, org: OrgId) -> Result<Vec<Project>, StoreError> {
        self.read(move |conn| {
            let mut s = conn
                .prepare_cached("SELECT id, name, created_at FROM projects WHERE org_id = ?1 ORDER BY created_at, id")
                .map_err(db_err)?;
            let rows = s.query_map([org.0], rows::project_from_row).map_err(db_err)?;
            rows.collect::<Result<_, _>>().map_err(db_err)
        })
        .await
    }

    async fn project(&self, org: OrgId, id: &str) -> Result<Option<Project>, StoreError> {
        let id = id.to_owned();
        self.read(move |conn| {
            conn.prepare_cached("SELECT id, name, created_at FROM projects WHERE org_id = ?1 AND id = ?2")
                .and_then(|mut s| s.query_row(params![org.0, id], rows::project_from_row).optional())
                .map_err(db_err)
        })
        .await
    }

    async fn create_session(&self, session: Session) -> Result<(), StoreError> {
        self.write(move |conn| {
            // Expired sessions are swept as new ones start, so the table
            // stays as small as the set of live sessions.
            conn.execute("DELETE FROM sessions WHERE expires_at <= ?1", [session.created_at.millis()])
                .map_err(db_err)?;
            conn.execute(
                "INSERT INTO sessions (token_hash, email, csrf_token, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    &session.token_hash[..],
                    session.email,
                    session.csrf_token,
                    session.created_at.millis(),
                    session.expires_at.millis()
                ],
            )
            .map_err(db_err)?;
            Ok(())
        })
        .await
    }

    async fn session(&self, token_hash: &[u8; 32], now: Timestamp) -> Result<Option<Session>, StoreError> {
        let hash = *token_hash;
        self.read(move |conn| {
            conn.prepare_cached(
                "SELECT token_hash, email, csrf_token, created_at, expires_at FROM sessions \
                 WHERE token_hash = ?1 AND expires_at > ?2",
            )
            .and_then(|mut s| {
                s.query_row(params![&hash[..], now.millis()], rows::session_from_row)
                    .optional()
            })
            .map_err(db_err)
        })
        .await
    }

    async fn delete_session(&self, token_hash: &[u8; 32]) -> Result<(), StoreError> {
        let hash = *token_hash;
        self.write(move |conn| {
            conn.execute("DELETE FROM sessions WHERE token_hash = ?1", [&hash[..]])
                .map_err(db_err)?;
            Ok(())
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

    async fn append(
        &self,
        requests: Vec<AppendRequest>,
        received_at: Timestamp,
    ) -> Result<Vec<RequestResult>, StoreError> {
        let tree = self.inner.tree;
        self.write(move |conn| {
            let tx = conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(db_err)?;
            let out = append_in_tx(&tx, &requests, received_at, tree)?;
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
        self.write_relaxed(move |conn| {
            let tx = conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(db_err)?;
            let out = deliveries::claim(&tx, now, lease_until, limit)?;
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

    async fn retry_delivery(&self, org: OrgId, delivery_id: &str, now: Timestamp) -> Result<Delivery, StoreError> {
        let id = delivery_id.to_owned();
        self.write(move |conn| {
            conn.prepare_cached(&format!(
                "UPDATE deliveries SET status = 'pending', next_attempt_at = ?3 WHERE org_id = ?1 AND id = ?2 \
                 RETURNING {}",
                rows::DELIVERY_COLUMNS
            ))
            .and_then(|mut s| {
                s.query_row(params![org.0, id, now.millis()], |r| rows::delivery_at(r, 0))
                    .optional()
            })
            .map_err(db_err)?
            .ok_or_else(|| StoreError::NotFound(format!("delivery {id}")))
        })
        .await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.read(|conn| conn.query_row("SELECT 1", [], |_| Ok(())).map_err(db_err))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn synchronous(store: &SqliteStore) -> i64 {
        let conn = store.inner.writer.lock().unwrap();
        conn.pragma_query_value(None, "synchronous", |r| r.get(0)).unwrap()
    }

    /// The dispatcher's relaxed commits, failed or not, leave the writer
    /// fsyncing every later commit (2 = FULL).
    #[tokio::test]
    async fn bookkeeping_leaves_the_writer_durable() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path().join("audit.db")).unwrap();
        assert_eq!(synchronous(&store), 2);
        store.record_attempts(Vec::new()).await.unwrap();
        assert_eq!(synchronous(&store), 2);
        let failed = store
            .write_relaxed(|_| Err::<(), _>(StoreError::Internal("refused".into())))
            .await;
        assert!(failed.is_err());
        assert_eq!(synchronous(&store), 2);
    }
}

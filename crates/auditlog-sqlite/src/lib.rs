//! The embedded SQLite implementation of the [`Store`] traits: one file,
//! nothing to install, durable on acknowledgement.
//!
//! [`Store`]: auditlog_domain::Store
//!
//! # Layout
//!
//! - `store`: the store traits, one file each with the names of
//!   `auditlog_domain::store` (`entries`, `accounts`, `access`,
//!   `deliveries`, `maintenance`), laid out as in the PostgreSQL store;
//!   each method a thin shell around the modules below.
//! - `append`: the writer's transaction: sequence numbers, idempotency
//!   keys, the webhook outbox, the tree.
//! - `deliveries`: claiming due deliveries and recording attempts.
//! - [`backup`]: online snapshots of a live database (`auditlog backup`),
//!   and what a snapshot holds.
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
//! The store's public API is [`SqliteStore`] with the [`Store`] traits it
//! implements, and [`backup`]. Two features open more, for code that is
//! not the service:
//!
//! - `testing`, for tests here and in other crates: `schema` (the latest
//!   migration), `listing` (the SQL whose query plans they check) and the
//!   `rusqlite` they read the file with.
//! - `bench`, for `auditlog-bench`: `schema` and `rows` (the raw inserts
//!   and scans its ceilings time), `rusqlite`, and
//!   `SqliteStore::open_without_tree` and `SqliteStore::open_unsealed`.

#![forbid(unsafe_code)]

mod accounts;
mod append;
pub mod backup;
mod changes;
mod deliveries;
#[cfg(feature = "testing")]
pub mod listing;
#[cfg(not(feature = "testing"))]
mod listing;
mod personal;
#[cfg(feature = "bench")]
pub mod rows;
#[cfg(not(feature = "bench"))]
mod rows;
#[cfg(any(feature = "bench", feature = "testing"))]
pub mod schema;
#[cfg(not(any(feature = "bench", feature = "testing")))]
mod schema;
mod store;
mod streams;
mod tree;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use auditlog_domain::StoreError;
use r2d2_sqlite::SqliteConnectionManager;
use r2d2_sqlite::rusqlite::Connection;

/// The SQLite library the store is built on, to read its file directly.
#[cfg(any(feature = "bench", feature = "testing"))]
pub use r2d2_sqlite::rusqlite;
use rows::db_err;

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
    /// Set once by [`EntryStore::use_personal_data`].
    personal: std::sync::OnceLock<Arc<auditlog_domain::personal::PersonalData>>,
    /// Off only to measure what sealing costs (`auditlog bench erasure`):
    /// the store then ignores the keys it is given and writes version 2.
    sealing: bool,
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
        schema::refuse_newer(&writer)?;
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
                personal: std::sync::OnceLock::new(),
                sealing: true,
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

    /// The same database, never sealing personal values, whatever keys it
    /// is given. For the benchmark's with/without comparison only.
    #[cfg(feature = "bench")]
    pub fn open_unsealed(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let store = Self::open(path)?;
        let inner =
            Arc::try_unwrap(store.inner).map_err(|_| StoreError::Internal("store shared while opening".into()))?;
        Ok(Self {
            inner: Arc::new(Inner {
                sealing: false,
                ..inner
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

#[cfg(test)]
mod tests {
    use super::*;
    use auditlog_domain::store::DeliveryStore;

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

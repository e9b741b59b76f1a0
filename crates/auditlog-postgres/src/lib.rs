//! The PostgreSQL implementation of the [`Store`] traits, for any number of
//! stateless replicas of the server against one database. It behaves
//! exactly as the SQLite store (both pass the same conformance suite) and
//! keeps the Merkle tree in the same form, so leaf hashes, roots and proofs
//! are the same bytes whichever backend computed them.
//!
//! [`Store`]: auditlog_domain::Store
//!
//! # Layout
//!
//! - `store`: the store traits, one file each with the names of
//!   `auditlog_domain::store` (`entries`, `accounts`, `access`,
//!   `deliveries`, `maintenance`), laid out as in the SQLite store; each
//!   method a thin shell around the modules below.
//! - `schema`: the migrations in `migrations/`, applied at start under an
//!   advisory lock.
//! - `partitions`: the monthly partitions of `entries`, created on demand.
//! - `expiry`: retention in bulk, dropping months whose every entry has
//!   expired.
//! - `append`: the writer's transaction: per-organization locking,
//!   sequence numbers, idempotency keys, deliveries, the tree.
//! - `apart`: the runtime of the store's own that appends run on, so that
//!   answers under an organization's lock are not kept waiting.
//! - `changes`: management changes applied inside that transaction;
//!   `accounts` the ones to people's accounts, one function each.
//! - `listing`: the SQL for filtered, keyset-paginated listings.
//! - `personal`: each person's key and sealed values, restoring them as
//!   entries are read, and erasing a person.
//! - `deliveries`: claiming due deliveries and recording attempts.
//! - `tree`: the Merkle tree of each log, in tiles and nodes.
//! - `rows`: mapping between rows and domain types.
//! - `db` and `error`: cached statements, the transaction runner that
//!   retries deadlocks, and the mapping of errors to [`StoreError`].
//! - `notify`: LISTEN for the signal appends give when they write
//!   deliveries.
//! - [`import`]: writing a whole installation copied from another store.
//! - `leases`: advisory locks, so one replica at a time does a job.
//! - `tls`: TLS to the server, verifying its certificate.
//! - `testing`: a throwaway PostgreSQL server for tests, here and in other
//!   crates.
//!
//! Connections come from a pool (appends have one of their own); every write
//! is one transaction, and a request is acknowledged only after it commits
//! (PostgreSQL's default `synchronous_commit=on` makes that durable). The
//! dispatcher's own bookkeeping, claiming deliveries and recording attempts,
//! commits without waiting for the flush (`db::Commit::Relaxed`): losing
//! one of those to a crash only sends a delivery again, which at-least-once
//! delivery allows, and a flush each would put two per dispatcher round in
//! the way of the entries' commits.
//!
//! # Features
//!
//! The store's public API is [`PostgresStore`] with the [`Store`] traits it
//! implements, and [`import`] for `auditlog migrate-store`. Two features
//! open more, for code that is not the service:
//!
//! - `testing`, for tests here and in other crates: `testing` (the
//!   throwaway server), `schema`, `listing`, `tls`, `tree` and the
//!   `tokio_postgres` they connect with.
//! - `bench`, for `auditlog-bench`: `partitions`, `rows`, `tree` and
//!   `tokio_postgres`, with which it fills a log by COPY as appends would
//!   have left it.

#![forbid(unsafe_code)]

mod accounts;
mod apart;
mod append;
mod changes;
mod db;
mod deliveries;
mod error;
mod expiry;
pub mod import;
mod leases;
#[cfg(feature = "testing")]
pub mod listing;
#[cfg(not(feature = "testing"))]
mod listing;
mod notify;
#[cfg(feature = "bench")]
pub mod partitions;
#[cfg(not(feature = "bench"))]
mod partitions;
mod personal;
#[cfg(feature = "bench")]
pub mod rows;
#[cfg(not(feature = "bench"))]
mod rows;
#[cfg(feature = "testing")]
pub mod schema;
#[cfg(not(feature = "testing"))]
mod schema;
mod store;
mod streams;
#[cfg(feature = "testing")]
pub mod testing;
#[cfg(all(test, not(feature = "testing")))]
mod testing;
#[cfg(feature = "testing")]
pub mod tls;
#[cfg(not(feature = "testing"))]
mod tls;
#[cfg(any(feature = "bench", feature = "testing"))]
pub mod tree;
#[cfg(not(any(feature = "bench", feature = "testing")))]
mod tree;

use std::sync::Arc;
use std::time::Duration;

use auditlog_domain::store::{AppendRequest, RequestResult};
use auditlog_domain::{StoreError, Timestamp};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};

use error::{Failure, pool_err};

/// The driver the store is built on, to reach its database directly.
#[cfg(any(feature = "bench", feature = "testing"))]
pub use tokio_postgres;

/// Connections in the shared pool: the dispatcher takes one at a time, the
/// rest serve reads, exports and the writes besides appends. Many replicas
/// share the server's `max_connections` (100 by default), so each keeps
/// few: 16 in all with the appends' own.
const POOL_SIZE: usize = 12;

/// Connections kept for appends apart from the rest: the server's writer
/// takes one at a time (the first transaction of a batch, then a second
/// for organizations another replica held), and a few more let callers
/// without a writer (tools, tests) append concurrently.
const APPEND_POOL_SIZE: usize = 4;

/// How long a caller waits for a pooled connection, or for a new one to be
/// made, before the store reports the database unavailable.
const CONNECTION_WAIT: Duration = Duration::from_secs(10);

/// An append found no partition for an entry: retention dropped its month.
const PARTITION_GONE: &str = "the partition of an entry's month was dropped while appending";

#[derive(Clone)]
pub struct PostgresStore {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    /// Connections for appends only, all made on `apart`, where appends run.
    appends: Pool,
    apart: apart::Apart,
    partitions: partitions::Partitions,
    signals: notify::Signals,
    /// For `Debug`: where the store points, without credentials.
    target: String,
    /// Set once by [`EntryStore::use_personal_data`](auditlog_domain::store::EntryStore::use_personal_data).
    personal: std::sync::OnceLock<Arc<auditlog_domain::personal::PersonalData>>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("target", &self.inner.target)
            .finish()
    }
}

impl PostgresStore {
    /// Appends `requests` in one transaction (see [`EntryStore::append`](auditlog_domain::store::EntryStore::append)). With
    /// `Heads::FreeOnly`, only the requests of organizations whose log head
    /// no other transaction holds; the flags say which requests were taken
    /// and the results are theirs, in order.
    async fn append_group(
        &self,
        requests: Arc<Vec<AppendRequest>>,
        received_at: Timestamp,
        heads: append::Heads,
    ) -> Result<(Vec<bool>, Vec<RequestResult>), StoreError> {
        let timestamps: Vec<Timestamp> = requests
            .iter()
            .flat_map(|r| r.entries.iter().map(|e| e.timestamp))
            .collect();
        self.inner
            .partitions
            .ensure(&self.inner.appends, timestamps.iter().copied())
            .await?;
        let personal = self.inner.personal.get().cloned();
        let args = (requests.clone(), personal.clone());
        let first = db::transaction_ending(&self.inner.appends, args, move |tx, (requests, personal)| {
            Box::pin(async move {
                append::append_taking(tx, &requests, received_at, heads, personal.as_deref())
                    .await
                    .map_err(|f| match f {
                        Failure::Db(e) if partitions::is_missing(&e) => {
                            Failure::Store(StoreError::Unavailable(PARTITION_GONE.into()))
                        }
                        other => other,
                    })
            })
        })
        .await;
        match first {
            Err(StoreError::Unavailable(m)) if m == PARTITION_GONE => {}
            other => return other,
        }
        // Retention dropped a month this process remembered. Again, making
        // the months in the append's own transaction, under the lock that
        // keeps retention from dropping them until it commits.
        tracing::debug!("a month's partition was dropped under an append; making it again");
        let months = Arc::new(partitions::months_of(timestamps));
        let out = db::transaction_ending(
            &self.inner.appends,
            (requests, months.clone(), personal),
            move |tx, (requests, months, personal)| {
                Box::pin(async move {
                    partitions::make(tx, &months).await?;
                    append::append_taking(tx, &requests, received_at, heads, personal.as_deref()).await
                })
            },
        )
        .await?;
        self.inner.partitions.remember(months.iter().copied())?;
        Ok(out)
    }

    /// [`EntryStore::append`](auditlog_domain::store::EntryStore::append), on the store's own runtime.
    async fn append_apart(
        &self,
        requests: Vec<AppendRequest>,
        received_at: Timestamp,
    ) -> Result<Vec<RequestResult>, StoreError> {
        let first_org = requests.first().map(|r| r.org_id);
        if requests.iter().all(|r| Some(r.org_id) == first_org) {
            let (_, results) = self
                .append_group(Arc::new(requests), received_at, append::Heads::Wait)
                .await?;
            return Ok(results);
        }
        // Every organization whose log head is free goes in one transaction,
        // as one replica alone always finds them. Those another replica is
        // appending to right now then go in a second one, which waits for
        // them, so the free ones never queue behind another replica's batch.
        // (When none is free, the first transaction waits for them all.)
        let count = requests.len();
        let requests = Arc::new(requests);
        let (taken, results) = self
            .append_group(requests.clone(), received_at, append::Heads::FreeOnly)
            .await?;
        let mut out: Vec<Option<RequestResult>> = (0..count).map(|_| None).collect();
        let mut results = results.into_iter();
        let mut waiting = Vec::new();
        for (slot, (request, taken)) in Arc::unwrap_or_clone(requests).into_iter().zip(taken).enumerate() {
            if taken {
                out[slot] = results.next();
            } else {
                waiting.push((slot, request));
            }
        }
        if !waiting.is_empty() {
            self.append_waiting(waiting, received_at, &mut out).await?;
        }
        out.into_iter()
            .map(|r| r.ok_or_else(|| StoreError::Internal("an append request got no result".into())))
            .collect()
    }

    /// Appends the requests of organizations another transaction held, in
    /// a second transaction that waits for their log heads. Results go to
    /// `out` at the requests' places.
    async fn append_waiting(
        &self,
        waiting: Vec<(usize, AppendRequest)>,
        received_at: Timestamp,
        out: &mut [Option<RequestResult>],
    ) -> Result<(), StoreError> {
        let (slots, requests): (Vec<usize>, Vec<AppendRequest>) = waiting.into_iter().unzip();
        match self
            .append_group(Arc::new(requests), received_at, append::Heads::Wait)
            .await
        {
            Ok((_, results)) => {
                for (slot, result) in slots.into_iter().zip(results) {
                    out[slot] = Some(result);
                }
            }
            // Nothing committed: the caller sees one outer error, as for a
            // single transaction.
            Err(e) if out.iter().all(Option::is_none) => return Err(e),
            // The first transaction committed, so an outer error would
            // misreport it: each request gets the failure as its own (the
            // writer retries such requests alone).
            Err(e) => {
                for slot in slots {
                    out[slot] = Some(Err(e.clone()));
                }
            }
        }
        Ok(())
    }

    /// Connects to `url` (`postgres://user:password@host:port/database?…`,
    /// or the key=value form) and applies pending migrations.
    ///
    /// TLS follows `sslmode`: `disable`, `prefer` (the default: TLS when
    /// the server offers it) or `require`; `verify-ca` and `verify-full`
    /// are read as `require`. Whenever TLS is used the server's certificate
    /// is verified, against the system's roots or, with
    /// `sslrootcert=<PEM file>` in the URL, against those alone (see
    /// `tls`).
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let (url, roots) = tls::split_url(url).map_err(|e| StoreError::Internal(e.to_string()))?;
        let mut config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| StoreError::Internal(format!("not a PostgreSQL connection string: {e}")))?;
        let tls = tls::MakeTls::new(config.get_ssl_mode(), &roots)
            .map_err(|e| StoreError::Internal(format!("TLS to PostgreSQL: {e}")))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECTION_WAIT);
        }
        if config.get_application_name().is_none() {
            config.application_name("auditlog");
        }
        let target = format!("{:?}/{}", config.get_hosts(), config.get_dbname().unwrap_or_default());
        let pool = new_pool(&config, &tls, POOL_SIZE)?;
        let appends = new_pool(&config, &tls, APPEND_POOL_SIZE)?;
        {
            let mut client = pool.get().await.map_err(pool_err)?;
            schema::migrate(&mut client).await?;
        }
        let store = Self {
            inner: Arc::new(Inner {
                pool,
                appends,
                apart: apart::Apart::start("auditlog-appends")?,
                partitions: partitions::Partitions::default(),
                signals: notify::Signals::new(config, tls),
                target,
                personal: std::sync::OnceLock::new(),
            }),
        };
        // This month's and next month's partitions, so the first appends
        // after a start (or around a month's end) find theirs in place.
        let now = Timestamp(time::OffsetDateTime::now_utc().unix_timestamp() * 1000);
        store
            .inner
            .partitions
            .ensure(&store.inner.pool, [now, now.plus_millis(31 * 86_400_000)])
            .await?;
        Ok(store)
    }

    async fn client(&self) -> Result<deadpool_postgres::Client, StoreError> {
        self.inner.pool.get().await.map_err(pool_err)
    }
}

/// A pool of up to `size` connections to `config`, each made when first
/// needed.
fn new_pool(config: &tokio_postgres::Config, tls: &tls::MakeTls, size: usize) -> Result<Pool, StoreError> {
    let manager = Manager::from_config(
        config.clone(),
        tls.clone(),
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(size)
        .wait_timeout(Some(CONNECTION_WAIT))
        .create_timeout(Some(CONNECTION_WAIT))
        .recycle_timeout(Some(CONNECTION_WAIT))
        .runtime(Runtime::Tokio1)
        .build()
        .map_err(|e| StoreError::Internal(format!("connection pool: {e}")))
}

//! The PostgreSQL implementation of [`Store`], for any number of stateless
//! replicas of the server against one database. It behaves exactly as the
//! SQLite store (both pass the same conformance suite) and keeps the Merkle
//! tree in the same form, so leaf hashes, roots and proofs are the same
//! bytes whichever backend computed them.
//!
//! # Layout
//!
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
//! The store's public API is [`PostgresStore`] with the [`Store`] trait it
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
#[cfg(feature = "bench")]
pub mod rows;
#[cfg(not(feature = "bench"))]
mod rows;
#[cfg(feature = "testing")]
pub mod schema;
#[cfg(not(feature = "testing"))]
mod schema;
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

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use auditlog_domain::api_key::KeyPrefix;
use auditlog_domain::filter::{Filter, Page};
use auditlog_domain::invitation::Invitation;
use auditlog_domain::member::{Member, Project, User};
use auditlog_domain::merkle::{Hash, NodeId};
use auditlog_domain::org::NewOrg;
use auditlog_domain::sealed::SecretSealer;
use auditlog_domain::session::Session;
use auditlog_domain::store::{
    ApiKeyRecord, AppendRequest, Delivery, DueDelivery, Job, JobLease, NewApiKey, Purged, RecordedAttempt,
    RequestResult, StoredCheckpoint,
};
use auditlog_domain::webhook::Endpoint;
use auditlog_domain::{Entry, Org, OrgId, Role, Store, StoreError, Timestamp};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use uuid::Uuid;

use db::Commit;
use error::{Failure, conflict_or, db_err, pool_err};
use rows::{API_KEY_COLUMNS, DELIVERY_COLUMNS, ENTRY_COLUMNS, ORG_COLUMNS, WEBHOOK_COLUMNS, get, qualified};

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
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("target", &self.inner.target)
            .finish()
    }
}

impl PostgresStore {
    /// Appends `requests` in one transaction (see [`Store::append`]). With
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
        let first = db::transaction_ending(&self.inner.appends, requests.clone(), move |tx, requests| {
            Box::pin(async move {
                append::append_taking(tx, &requests, received_at, heads)
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
            (requests, months.clone()),
            move |tx, (requests, months)| {
                Box::pin(async move {
                    partitions::make(tx, &months).await?;
                    append::append_taking(tx, &requests, received_at, heads).await
                })
            },
        )
        .await?;
        self.inner.partitions.remember(months.iter().copied())?;
        Ok(out)
    }

    /// [`Store::append`], on the store's own runtime.
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

#[async_trait]
impl Store for PostgresStore {
    async fn create_org(&self, org: NewOrg, now: Timestamp) -> Result<Org, StoreError> {
        db::transaction(&self.inner.pool, org, move |tx, org| {
            Box::pin(async move {
                let days = org.enterprise_retention_days.map(i64::from);
                let row = db::query_one(
                    tx,
                    "INSERT INTO orgs (slug, name, plan, enterprise_retention_days, created_at) \
                     VALUES ($1, $2, $3, $4, $5) RETURNING org_id",
                    &[&org.slug, &org.name, &org.plan.as_str(), &days, &now.millis()],
                )
                .await
                .map_err(|e| conflict_or(e, format!("organization {:?}", org.slug)))?;
                let id: i64 = get(&row, 0)?;
                db::execute(tx, "INSERT INTO log_heads (org_id, size) VALUES ($1, 0)", &[&id]).await?;
                Ok(org.created(OrgId(id), now))
            })
        })
        .await
    }

    async fn org_by_slug(&self, slug: &str) -> Result<Option<Org>, StoreError> {
        let client = self.client().await?;
        db::query_opt(
            &client,
            &format!("SELECT {ORG_COLUMNS} FROM orgs WHERE slug = $1"),
            &[&slug],
        )
        .await
        .map_err(db_err)?
        .map(|r| rows::org(&r))
        .transpose()
    }

    async fn orgs(&self) -> Result<Vec<Org>, StoreError> {
        let client = self.client().await?;
        db::query(&client, &format!("SELECT {ORG_COLUMNS} FROM orgs ORDER BY org_id"), &[])
            .await
            .map_err(db_err)?
            .iter()
            .map(rows::org)
            .collect()
    }

    async fn create_api_key(&self, key: NewApiKey, now: Timestamp) -> Result<ApiKeyRecord, StoreError> {
        let client = self.client().await?;
        db::execute(
            &client,
            "INSERT INTO api_keys (org_id, prefix, name, scopes, secret_hash, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                &key.org_id.0,
                &key.prefix.as_str(),
                &key.name,
                &rows::scopes_to_sql(&key.scopes),
                &&key.hash.0[..],
                &now.millis(),
            ],
        )
        .await
        .map_err(|e| conflict_or(e, format!("API key {}", key.prefix)))?;
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
    }

    async fn api_key(&self, prefix: &KeyPrefix) -> Result<Option<ApiKeyRecord>, StoreError> {
        let client = self.client().await?;
        db::query_opt(
            &client,
            &format!("SELECT {API_KEY_COLUMNS} FROM api_keys WHERE prefix = $1"),
            &[&prefix.as_str()],
        )
        .await
        .map_err(db_err)?
        .map(|r| rows::api_key(&r))
        .transpose()
    }

    async fn api_keys(&self, org: OrgId) -> Result<Vec<ApiKeyRecord>, StoreError> {
        let client = self.client().await?;
        db::query(
            &client,
            &format!("SELECT {API_KEY_COLUMNS} FROM api_keys WHERE org_id = $1 ORDER BY created_at, prefix"),
            &[&org.0],
        )
        .await
        .map_err(db_err)?
        .iter()
        .map(rows::api_key)
        .collect()
    }

    async fn members(&self, org: OrgId) -> Result<Vec<Member>, StoreError> {
        let client = self.client().await?;
        db::query(
            &client,
            "SELECT email, role, added_at FROM memberships WHERE org_id = $1 ORDER BY email",
            &[&org.0],
        )
        .await
        .map_err(db_err)?
        .iter()
        .map(rows::member)
        .collect()
    }

    async fn member(&self, org: OrgId, email: &str) -> Result<Option<Member>, StoreError> {
        let client = self.client().await?;
        db::query_opt(
            &client,
            "SELECT email, role, added_at FROM memberships WHERE org_id = $1 AND email = $2",
            &[&org.0, &email],
        )
        .await
        .map_err(db_err)?
        .map(|r| rows::member(&r))
        .transpose()
    }

    async fn user(&self, email: &str) -> Result<Option<User>, StoreError> {
        let client = self.client().await?;
        db::query_opt(
            &client,
            "SELECT email, password_hash FROM users WHERE email = $1",
            &[&email],
        )
        .await
        .map_err(db_err)?
        .map(|r| {
            Ok(User {
                email: get(&r, 0)?,
                password_hash: get(&r, 1)?,
            })
        })
        .transpose()
    }

    async fn invitation(&self, token_hash: &[u8; 32]) -> Result<Option<Invitation>, StoreError> {
        let client = self.client().await?;
        let sql = format!(
            "SELECT {} FROM invitations WHERE token_hash = $1",
            rows::INVITATION_COLUMNS
        );
        db::query_opt(&client, &sql, &[&&token_hash[..]])
            .await
            .map_err(db_err)?
            .map(|r| rows::invitation(&r))
            .transpose()
    }

    async fn memberships(&self, email: &str) -> Result<Vec<(Org, Role)>, StoreError> {
        let client = self.client().await?;
        db::query(
            &client,
            &format!(
                "SELECT {}, m.role FROM memberships m JOIN orgs o ON o.org_id = m.org_id \
                 WHERE m.email = $1 ORDER BY o.slug",
                qualified("o", ORG_COLUMNS)
            ),
            &[&email],
        )
        .await
        .map_err(db_err)?
        .iter()
        .map(|r| {
            let role: &str = get(r, 9)?;
            let role = role
                .parse()
                .map_err(|_| StoreError::Internal(format!("unknown role {role:?}")))?;
            Ok((rows::org(r)?, role))
        })
        .collect()
    }

    async fn set_password(&self, email: &str, password_hash: &str, now: Timestamp) -> Result<(), StoreError> {
        let client = self.client().await?;
        db::execute(
            &client,
            "INSERT INTO users (email, password_hash, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (email) DO UPDATE SET password_hash = excluded.password_hash",
            &[&email, &password_hash, &now.millis()],
        )
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn projects(&self, org: OrgId) -> Result<Vec<Project>, StoreError> {
        let client = self.client().await?;
        db::query(
            &client,
            "SELECT id, name, created_at FROM projects WHERE org_id = $1 ORDER BY created_at, id",
            &[&org.0],
        )
        .await
        .map_err(db_err)?
        .iter()
        .map(rows::project)
        .collect()
    }

    async fn project(&self, org: OrgId, id: &str) -> Result<Option<Project>, StoreError> {
        let client = self.client().await?;
        db::query_opt(
            &client,
            "SELECT id, name, created_at FROM projects WHERE org_id = $1 AND id = $2",
            &[&org.0, &id],
        )
        .await
        .map_err(db_err)?
        .map(|r| rows::project(&r))
        .transpose()
    }

    async fn create_session(&self, session: Session) -> Result<(), StoreError> {
        let client = self.client().await?;
        // Expired sessions are swept as new ones start, so the table stays
        // as small as the set of live sessions.
        db::execute(
            &client,
            "DELETE FROM sessions WHERE expires_at <= $1",
            &[&session.created_at.millis()],
        )
        .await
        .map_err(db_err)?;
        db::execute(
            &client,
            "INSERT INTO sessions (token_hash, email, csrf_token, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
            &[
                &&session.token_hash[..],
                &session.email,
                &session.csrf_token,
                &session.created_at.millis(),
                &session.expires_at.millis(),
            ],
        )
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn session(&self, token_hash: &[u8; 32], now: Timestamp) -> Result<Option<Session>, StoreError> {
        let client = self.client().await?;
        db::query_opt(
            &client,
            "SELECT token_hash, email, csrf_token, created_at, expires_at FROM sessions \
             WHERE token_hash = $1 AND expires_at > $2",
            &[&&token_hash[..], &now.millis()],
        )
        .await
        .map_err(db_err)?
        .map(|r| rows::session(&r))
        .transpose()
    }

    async fn delete_session(&self, token_hash: &[u8; 32]) -> Result<(), StoreError> {
        let client = self.client().await?;
        db::execute(
            &client,
            "DELETE FROM sessions WHERE token_hash = $1",
            &[&&token_hash[..]],
        )
        .await
        .map_err(db_err)?;
        Ok(())
    }

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
        let query = listing::build(org, filter, page);
        let client = self.client().await?;
        db::query(&client, &query.sql, &query.params())
            .await
            .map_err(db_err)?
            .iter()
            .map(rows::entry)
            .collect()
    }

    async fn entry(&self, org: OrgId, id: Uuid) -> Result<Option<Entry>, StoreError> {
        let client = self.client().await?;
        db::query_opt(
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
        .transpose()
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

    async fn purge_before(&self, org: OrgId, cutoff: Timestamp, limit: u32) -> Result<Purged, StoreError> {
        db::transaction(&self.inner.pool, (), move |tx, ()| {
            Box::pin(async move {
                // The oldest entries go with their id and key mappings and
                // their deliveries (no body outlives retention); the tree stays.
                let r = db::query_one(
                    tx,
                    "WITH doomed AS (SELECT seq, ts FROM entries WHERE org_id = $1 AND ts < $2 \
                         ORDER BY ts, seq LIMIT $3 FOR UPDATE), \
                     gone AS (DELETE FROM entries e USING doomed d \
                         WHERE e.org_id = $1 AND e.seq = d.seq AND e.ts = d.ts \
                         RETURNING e.seq, e.id, e.idempotency_key), \
                     ids AS (DELETE FROM entry_ids i USING gone g WHERE i.org_id = $1 AND i.id = g.id), \
                     keys AS (DELETE FROM entry_keys k USING gone g \
                         WHERE k.org_id = $1 AND k.idempotency_key = g.idempotency_key), \
                     outbox AS (DELETE FROM deliveries x USING gone g WHERE x.org_id = $1 AND x.seq = g.seq) \
                     SELECT count(*), min(seq), max(seq) FROM gone",
                    &[&org.0, &cutoff.millis(), &i64::from(limit)],
                )
                .await?;
                Ok(Purged {
                    count: get::<i64>(&r, 0)? as u64,
                    first_seq: get(&r, 1)?,
                    last_seq: get(&r, 2)?,
                })
            })
        })
        .await
    }

    async fn drop_expired_partitions(
        &self,
        cutoffs: &HashMap<OrgId, Timestamp>,
    ) -> Result<HashMap<OrgId, Purged>, StoreError> {
        expiry::drop_expired(&self.inner.pool, &self.inner.partitions, cutoffs).await
    }

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

    async fn claim_deliveries(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<DueDelivery>, StoreError> {
        db::transaction_with(&self.inner.pool, Commit::Relaxed, (), move |tx, ()| {
            Box::pin(deliveries::claim(tx, now, lease_until, limit))
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

    async fn retry_delivery(&self, org: OrgId, delivery_id: &str, now: Timestamp) -> Result<Delivery, StoreError> {
        let id = delivery_id.to_owned();
        db::transaction(&self.inner.pool, id, move |tx, id| {
            Box::pin(async move {
                let row = db::query_opt(
                    tx,
                    &format!(
                        "UPDATE deliveries SET status = 'pending', next_attempt_at = $3 WHERE org_id = $1 AND id = $2 \
                         RETURNING {DELIVERY_COLUMNS}"
                    ),
                    &[&org.0, &id, &now.millis()],
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

    async fn ping(&self) -> Result<(), StoreError> {
        let client = self.client().await?;
        client.simple_query("SELECT 1").await.map_err(db_err)?;
        Ok(())
    }

    async fn wait_for_deliveries(&self, seen: u64) -> u64 {
        self.inner.signals.wait(seen).await
    }

    async fn try_lease(&self, job: Job) -> Result<Option<Box<dyn JobLease>>, StoreError> {
        leases::try_lease(&self.inner.pool, job).await
    }
}

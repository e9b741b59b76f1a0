//! Importing a whole installation copied from another store (`auditlog
//! migrate-store`): rows exactly as the source stored them, ids, sequence
//! numbers, hashes and secrets included, written into an empty database in
//! one transaction, so a failed copy leaves the target as empty as it was.
//!
//! The caller reads the source and hands rows over table by table, parents
//! first; entries and deliveries go in large multi-row inserts, after the
//! month partitions they need are made. [`counts`] gives each table's row
//! count, for comparing the copy with its source.

use std::collections::BTreeMap;

use auditlog_domain::StoreError;
use deadpool_postgres::Object;
use uuid::Uuid;

use crate::error::{db_err, pool_err};
use crate::{PostgresStore, partitions};

/// Why an import could not start or finish.
#[derive(Debug)]
pub enum ImportError {
    /// The target already holds an installation; nothing was written.
    NotEmpty {
        orgs: i64,
        users: i64,
        entries: i64,
    },
    Store(StoreError),
}

impl std::fmt::Display for ImportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ImportError::NotEmpty { orgs, users, entries } => write!(
                f,
                "the target database is not empty ({orgs} organizations, {users} users, {entries} entries): \
                 migrate-store copies into an empty database only"
            ),
            ImportError::Store(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for ImportError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ImportError::Store(e) => Some(e),
            ImportError::NotEmpty { .. } => None,
        }
    }
}

impl From<StoreError> for ImportError {
    fn from(e: StoreError) -> Self {
        ImportError::Store(e)
    }
}

impl From<tokio_postgres::Error> for ImportError {
    fn from(e: tokio_postgres::Error) -> Self {
        ImportError::Store(db_err(e))
    }
}

#[derive(Debug, Clone)]
pub struct OrgRow {
    pub org_id: i64,
    pub slug: String,
    pub name: String,
    pub plan: String,
    pub enterprise_retention_days: Option<i64>,
    pub sso_issuer: Option<String>,
    pub sso_client_id: Option<String>,
    pub sso_enforced: Option<bool>,
    pub created_at: i64,
    /// The log head: the organization's highest sequence number.
    pub log_size: i64,
    pub sso_allowed_domains: Option<String>,
    pub sso_provision_role: Option<String>,
    /// Sealed: copied as it is, opened by the same key on either store.
    pub sso_client_secret: Option<Vec<u8>>,
}

#[derive(Debug, Clone)]
pub struct UserRow {
    pub email: String,
    pub password_hash: Option<String>,
    pub created_at: i64,
}

#[derive(Debug, Clone)]
pub struct MembershipRow {
    pub org_id: i64,
    pub email: String,
    pub role: String,
    pub added_at: i64,
}

#[derive(Debug, Clone)]
pub struct ProjectRow {
    pub org_id: i64,
    pub id: String,
    pub name: String,
    pub created_at: i64,
}

#[derive(Debug, Clone)]
pub struct SessionRow {
    pub token_hash: Vec<u8>,
    pub email: String,
    pub csrf_token: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub method: String,
    pub sso_org_id: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct ApiKeyRow {
    pub org_id: i64,
    pub prefix: String,
    pub name: String,
    pub scopes: Vec<String>,
    pub secret_hash: Vec<u8>,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
    pub last_used_at: Option<i64>,
    pub created_by: Option<String>,
}

#[derive(Debug, Clone)]
pub struct WebhookRow {
    pub org_id: i64,
    pub id: String,
    pub url: String,
    pub description: String,
    pub events: Vec<String>,
    pub enabled: bool,
    pub secret: Vec<u8>,
    pub previous_secret: Option<Vec<u8>>,
    pub previous_secret_until: Option<i64>,
    pub created_at: i64,
    pub failing_since: Option<i64>,
    pub disabled_reason: Option<String>,
    /// `auditlog` or `ocsf`, as stored.
    pub payload_format: String,
}

#[derive(Debug, Clone)]
pub struct EntryRow {
    pub org_id: i64,
    pub seq: i64,
    pub ts: i64,
    pub received_at: i64,
    pub id: Uuid,
    pub actor_type: String,
    pub actor: String,
    pub event: String,
    pub resource_type: String,
    pub resource_id: String,
    pub resource_name: Option<String>,
    /// Kept byte for byte: the column is `json`, not `jsonb`.
    pub details: String,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    pub idempotency_key: Option<String>,
    pub submitted_by_kind: Option<String>,
    pub submitted_by_id: Option<String>,
    pub canonical_version: i16,
    /// Canonical version 3's commitments, as stored.
    pub commitments: Option<Vec<u8>>,
}

/// A person's key, sealed, as stored.
#[derive(Debug, Clone)]
pub struct SubjectKeyRow {
    pub org_id: i64,
    pub pseudonym: Vec<u8>,
    pub wrapped: Vec<u8>,
    pub created_at: i64,
}

/// An entry's values of one person, sealed, as stored.
#[derive(Debug, Clone)]
pub struct PartRow {
    pub org_id: i64,
    pub seq: i64,
    pub pseudonym: Vec<u8>,
    pub sealed: Vec<u8>,
}

#[derive(Debug, Clone)]
pub struct DeliveryRow {
    pub org_id: i64,
    pub id: String,
    pub webhook_id: String,
    pub seq: i64,
    /// The delivered entry's timestamp (its partition key).
    pub entry_ts: i64,
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: Option<i64>,
    pub last_attempt_at: Option<i64>,
    pub last_status: Option<i32>,
    pub last_latency_ms: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: i64,
}

/// A tile of 256 leaf hashes, or fewer for a log's last one.
#[derive(Debug, Clone)]
pub struct LeafTileRow {
    pub org_id: i64,
    pub tile: i64,
    pub hashes: Vec<u8>,
}

#[derive(Debug, Clone)]
pub struct NodeRow {
    pub org_id: i64,
    pub level: i16,
    pub idx: i64,
    pub hash: Vec<u8>,
}

#[derive(Debug, Clone)]
pub struct CheckpointRow {
    pub org_id: i64,
    pub size: i64,
    pub root: Vec<u8>,
    pub note: String,
    pub signed_at: i64,
}

/// The tables [`counts`] counts, each holding copied rows.
pub const TABLES: &[&str] = &[
    "orgs",
    "log_heads",
    "users",
    "memberships",
    "projects",
    "sessions",
    "api_keys",
    "webhooks",
    "entries",
    "deliveries",
    "merkle_leaves",
    "merkle_nodes",
    "checkpoints",
    "subject_keys",
    "personal_parts",
];

/// Every table's row count.
pub async fn counts(store: &PostgresStore) -> Result<BTreeMap<&'static str, i64>, StoreError> {
    let client = store.client().await?;
    let mut out = BTreeMap::new();
    for table in TABLES {
        // Names from the constant list above, never from input.
        let n: i64 = client
            .query_one(&format!("SELECT count(*) FROM {table}"), &[])
            .await
            .map_err(db_err)?
            .get(0);
        out.insert(*table, n);
    }
    Ok(out)
}

/// An import in progress: one open transaction on one connection.
pub struct Import {
    client: Object,
    /// Statements run one at a time would make the copy of a large tree
    /// wait on a round trip per row; these many go out at once.
    pipeline: usize,
}

impl std::fmt::Debug for Import {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Import").finish_non_exhaustive()
    }
}

impl Import {
    /// Opens the transaction, after checking that the database holds no
    /// installation yet (the store's migrations have run on connecting).
    pub async fn begin(store: &PostgresStore) -> Result<Self, ImportError> {
        let client = store.inner.pool.get().await.map_err(pool_err)?;
        client
            .batch_execute("BEGIN ISOLATION LEVEL SERIALIZABLE; LOCK TABLE orgs IN EXCLUSIVE MODE")
            .await?;
        let row = client
            .query_one(
                "SELECT (SELECT count(*) FROM orgs), (SELECT count(*) FROM users), \
                        (SELECT count(*) FROM (SELECT 1 FROM entries LIMIT 1000000) e)",
                &[],
            )
            .await?;
        let (orgs, users, entries): (i64, i64, i64) = (row.get(0), row.get(1), row.get(2));
        if orgs + users + entries > 0 {
            client.batch_execute("ROLLBACK").await?;
            return Err(ImportError::NotEmpty { orgs, users, entries });
        }
        Ok(Self { client, pipeline: 500 })
    }

    /// Organizations with their ids, and their log heads; the id sequence
    /// moves past them, so organizations created later get new ids.
    pub async fn orgs(&self, rows: &[OrgRow]) -> Result<(), ImportError> {
        let org = self
            .client
            .prepare(
                "INSERT INTO orgs (org_id, slug, name, plan, enterprise_retention_days, sso_issuer, sso_client_id, \
                 sso_enforced, created_at, sso_allowed_domains, sso_provision_role, sso_client_secret) \
                 OVERRIDING SYSTEM VALUE VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            )
            .await?;
        let head = self
            .client
            .prepare("INSERT INTO log_heads (org_id, size) VALUES ($1, $2)")
            .await?;
        for r in rows {
            self.client
                .execute(
                    &org,
                    &[
                        &r.org_id,
                        &r.slug,
                        &r.name,
                        &r.plan,
                        &r.enterprise_retention_days,
                        &r.sso_issuer,
                        &r.sso_client_id,
                        &r.sso_enforced,
                        &r.created_at,
                        &r.sso_allowed_domains,
                        &r.sso_provision_role,
                        &r.sso_client_secret,
                    ],
                )
                .await?;
            self.client.execute(&head, &[&r.org_id, &r.log_size]).await?;
        }
        self.client
            .batch_execute(
                "SELECT setval(pg_get_serial_sequence('orgs', 'org_id'), \
                 coalesce((SELECT max(org_id) FROM orgs), 0) + 1, false)",
            )
            .await?;
        Ok(())
    }

    /// Runs one prepared statement per row, many rows in flight at once.
    async fn each<T>(
        &self,
        sql: &str,
        rows: &[T],
        params: impl Fn(&T) -> Vec<Box<dyn tokio_postgres::types::ToSql + Sync + Send + '_>>,
    ) -> Result<(), ImportError> {
        let stmt = self.client.prepare(sql).await?;
        for chunk in rows.chunks(self.pipeline) {
            let bound: Vec<_> = chunk.iter().map(&params).collect();
            let calls = bound.iter().map(|p| {
                let refs: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = p
                    .iter()
                    .map(|b| b.as_ref() as &(dyn tokio_postgres::types::ToSql + Sync))
                    .collect();
                let stmt = &stmt;
                async move { self.client.execute(stmt, &refs).await }
            });
            futures_util::future::try_join_all(calls).await?;
        }
        Ok(())
    }

    pub async fn users(&self, rows: &[UserRow]) -> Result<(), ImportError> {
        self.each(
            "INSERT INTO users (email, password_hash, created_at) VALUES ($1, $2, $3)",
            rows,
            |r| vec![Box::new(&r.email), Box::new(&r.password_hash), Box::new(r.created_at)],
        )
        .await
    }

    pub async fn memberships(&self, rows: &[MembershipRow]) -> Result<(), ImportError> {
        self.each(
            "INSERT INTO memberships (org_id, email, role, added_at) VALUES ($1, $2, $3, $4)",
            rows,
            |r| {
                vec![
                    Box::new(r.org_id),
                    Box::new(&r.email),
                    Box::new(&r.role),
                    Box::new(r.added_at),
                ]
            },
        )
        .await
    }

    pub async fn projects(&self, rows: &[ProjectRow]) -> Result<(), ImportError> {
        self.each(
            "INSERT INTO projects (org_id, id, name, created_at) VALUES ($1, $2, $3, $4)",
            rows,
            |r| {
                vec![
                    Box::new(r.org_id),
                    Box::new(&r.id),
                    Box::new(&r.name),
                    Box::new(r.created_at),
                ]
            },
        )
        .await
    }

    pub async fn sessions(&self, rows: &[SessionRow]) -> Result<(), ImportError> {
        self.each(
            "INSERT INTO sessions (token_hash, email, csrf_token, created_at, expires_at, method, sso_org_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            rows,
            |r| {
                vec![
                    Box::new(&r.token_hash),
                    Box::new(&r.email),
                    Box::new(&r.csrf_token),
                    Box::new(r.created_at),
                    Box::new(r.expires_at),
                    Box::new(&r.method),
                    Box::new(r.sso_org_id),
                ]
            },
        )
        .await
    }

    pub async fn api_keys(&self, rows: &[ApiKeyRow]) -> Result<(), ImportError> {
        self.each(
            "INSERT INTO api_keys (org_id, prefix, name, scopes, secret_hash, created_at, revoked_at, last_used_at, \
             created_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            rows,
            |r| {
                vec![
                    Box::new(r.org_id),
                    Box::new(&r.prefix),
                    Box::new(&r.name),
                    Box::new(&r.scopes),
                    Box::new(&r.secret_hash),
                    Box::new(r.created_at),
                    Box::new(r.revoked_at),
                    Box::new(r.last_used_at),
                    Box::new(&r.created_by),
                ]
            },
        )
        .await
    }

    pub async fn webhooks(&self, rows: &[WebhookRow]) -> Result<(), ImportError> {
        self.each(
            "INSERT INTO webhooks (org_id, id, url, description, events, enabled, secret, previous_secret, \
             previous_secret_until, created_at, failing_since, disabled_reason, payload_format) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
            rows,
            |r| {
                vec![
                    Box::new(r.org_id),
                    Box::new(&r.id),
                    Box::new(&r.url),
                    Box::new(&r.description),
                    Box::new(&r.events),
                    Box::new(r.enabled),
                    Box::new(&r.secret),
                    Box::new(&r.previous_secret),
                    Box::new(r.previous_secret_until),
                    Box::new(r.created_at),
                    Box::new(r.failing_since),
                    Box::new(&r.disabled_reason),
                    Box::new(&r.payload_format),
                ]
            },
        )
        .await
    }

    /// Entries with their id and idempotency-key mappings, in one
    /// statement per table, after making their months' partitions.
    pub async fn entries(&self, rows: &[EntryRow]) -> Result<(), ImportError> {
        if rows.is_empty() {
            return Ok(());
        }
        let months = partitions::months_of(rows.iter().map(|r| auditlog_domain::Timestamp(r.ts)));
        partitions::make(&self.client, &months).await?;
        let col = |f: fn(&EntryRow) -> i64| rows.iter().map(f).collect::<Vec<i64>>();
        let text = |f: fn(&EntryRow) -> &str| rows.iter().map(f).collect::<Vec<&str>>();
        let opt = |f: fn(&EntryRow) -> Option<&str>| rows.iter().map(f).collect::<Vec<Option<&str>>>();
        let (org, seq, ts) = (col(|r| r.org_id), col(|r| r.seq), col(|r| r.ts));
        let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
        self.client
            .execute(
                "INSERT INTO entries (org_id, seq, ts, received_at, id, actor_type, actor, event, resource_type, \
                 resource_id, resource_name, details, ip_address, user_agent, request_id, idempotency_key, \
                 submitted_by_kind, submitted_by_id, canonical_version, commitments) \
                 SELECT o, s, t, r, i, at, a, ev, rt, ri, rn, d::json, ip::inet, ua, rq, k, bk, bi, cv, cm \
                 FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], $5::uuid[], $6::text[], \
                             $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], \
                             $13::text[], $14::text[], $15::text[], $16::text[], $17::text[], $18::text[], \
                             $19::smallint[], $20::bytea[]) \
                      AS u (o, s, t, r, i, at, a, ev, rt, ri, rn, d, ip, ua, rq, k, bk, bi, cv, cm)",
                &[
                    &org,
                    &seq,
                    &ts,
                    &col(|r| r.received_at),
                    &ids,
                    &text(|r| &r.actor_type),
                    &text(|r| &r.actor),
                    &text(|r| &r.event),
                    &text(|r| &r.resource_type),
                    &text(|r| &r.resource_id),
                    &opt(|r| r.resource_name.as_deref()),
                    &text(|r| &r.details),
                    &opt(|r| r.ip_address.as_deref()),
                    &opt(|r| r.user_agent.as_deref()),
                    &opt(|r| r.request_id.as_deref()),
                    &opt(|r| r.idempotency_key.as_deref()),
                    &opt(|r| r.submitted_by_kind.as_deref()),
                    &opt(|r| r.submitted_by_id.as_deref()),
                    &rows.iter().map(|r| r.canonical_version).collect::<Vec<i16>>(),
                    &rows
                        .iter()
                        .map(|r| r.commitments.as_deref())
                        .collect::<Vec<Option<&[u8]>>>(),
                ],
            )
            .await?;
        self.client
            .execute(
                "INSERT INTO entry_ids (org_id, id, seq, ts) \
                 SELECT * FROM unnest($1::bigint[], $2::uuid[], $3::bigint[], $4::bigint[])",
                &[&org, &ids, &seq, &ts],
            )
            .await?;
        self.client
            .execute(
                "INSERT INTO entry_keys (org_id, idempotency_key, seq, ts) \
                 SELECT o, k, s, t FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::bigint[]) \
                      AS u (o, k, s, t) WHERE k IS NOT NULL",
                &[&org, &opt(|r| r.idempotency_key.as_deref()), &seq, &ts],
            )
            .await?;
        Ok(())
    }

    /// People's keys, still sealed under the same master secret.
    pub async fn subject_keys(&self, rows: &[SubjectKeyRow]) -> Result<(), ImportError> {
        if rows.is_empty() {
            return Ok(());
        }
        let bytes = |f: fn(&SubjectKeyRow) -> &[u8]| rows.iter().map(f).collect::<Vec<&[u8]>>();
        self.client
            .execute(
                "INSERT INTO subject_keys (org_id, pseudonym, wrapped, created_at) \
                 SELECT * FROM unnest($1::bigint[], $2::bytea[], $3::bytea[], $4::bigint[])",
                &[
                    &rows.iter().map(|r| r.org_id).collect::<Vec<i64>>(),
                    &bytes(|r| &r.pseudonym),
                    &bytes(|r| &r.wrapped),
                    &rows.iter().map(|r| r.created_at).collect::<Vec<i64>>(),
                ],
            )
            .await?;
        Ok(())
    }

    /// Entries' sealed personal values.
    pub async fn personal_parts(&self, rows: &[PartRow]) -> Result<(), ImportError> {
        if rows.is_empty() {
            return Ok(());
        }
        let bytes = |f: fn(&PartRow) -> &[u8]| rows.iter().map(f).collect::<Vec<&[u8]>>();
        self.client
            .execute(
                "INSERT INTO personal_parts (org_id, seq, pseudonym, sealed) \
                 SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bytea[], $4::bytea[])",
                &[
                    &rows.iter().map(|r| r.org_id).collect::<Vec<i64>>(),
                    &rows.iter().map(|r| r.seq).collect::<Vec<i64>>(),
                    &bytes(|r| &r.pseudonym),
                    &bytes(|r| &r.sealed),
                ],
            )
            .await?;
        Ok(())
    }

    pub async fn deliveries(&self, rows: &[DeliveryRow]) -> Result<(), ImportError> {
        if rows.is_empty() {
            return Ok(());
        }
        let i64s = |f: fn(&DeliveryRow) -> i64| rows.iter().map(f).collect::<Vec<i64>>();
        let opt_i64 = |f: fn(&DeliveryRow) -> Option<i64>| rows.iter().map(f).collect::<Vec<Option<i64>>>();
        let text = |f: fn(&DeliveryRow) -> &str| rows.iter().map(f).collect::<Vec<&str>>();
        self.client
            .execute(
                "INSERT INTO deliveries (org_id, id, webhook_id, seq, entry_ts, status, attempts, next_attempt_at, \
                 last_attempt_at, last_status, last_latency_ms, last_error, created_at) \
                 SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::text[], \
                                      $7::integer[], $8::bigint[], $9::bigint[], $10::integer[], $11::bigint[], \
                                      $12::text[], $13::bigint[])",
                &[
                    &i64s(|r| r.org_id),
                    &text(|r| &r.id),
                    &text(|r| &r.webhook_id),
                    &i64s(|r| r.seq),
                    &i64s(|r| r.entry_ts),
                    &text(|r| &r.status),
                    &rows.iter().map(|r| r.attempts).collect::<Vec<i32>>(),
                    &opt_i64(|r| r.next_attempt_at),
                    &opt_i64(|r| r.last_attempt_at),
                    &rows.iter().map(|r| r.last_status).collect::<Vec<Option<i32>>>(),
                    &opt_i64(|r| r.last_latency_ms),
                    &rows
                        .iter()
                        .map(|r| r.last_error.as_deref())
                        .collect::<Vec<Option<&str>>>(),
                    &i64s(|r| r.created_at),
                ],
            )
            .await?;
        Ok(())
    }

    pub async fn leaf_tiles(&self, rows: &[LeafTileRow]) -> Result<(), ImportError> {
        self.each(
            "INSERT INTO merkle_leaves (org_id, tile, hashes) VALUES ($1, $2, $3)",
            rows,
            |r| vec![Box::new(r.org_id), Box::new(r.tile), Box::new(&r.hashes)],
        )
        .await
    }

    pub async fn nodes(&self, rows: &[NodeRow]) -> Result<(), ImportError> {
        self.each(
            "INSERT INTO merkle_nodes (org_id, level, idx, hash) VALUES ($1, $2, $3, $4)",
            rows,
            |r| {
                vec![
                    Box::new(r.org_id),
                    Box::new(r.level),
                    Box::new(r.idx),
                    Box::new(&r.hash),
                ]
            },
        )
        .await
    }

    pub async fn checkpoints(&self, rows: &[CheckpointRow]) -> Result<(), ImportError> {
        self.each(
            "INSERT INTO checkpoints (org_id, size, root, note, signed_at) VALUES ($1, $2, $3, $4, $5)",
            rows,
            |r| {
                vec![
                    Box::new(r.org_id),
                    Box::new(r.size),
                    Box::new(&r.root),
                    Box::new(&r.note),
                    Box::new(r.signed_at),
                ]
            },
        )
        .await
    }

    /// Commits everything imported.
    pub async fn commit(self) -> Result<(), ImportError> {
        self.client.batch_execute("COMMIT").await?;
        Ok(())
    }

    /// Takes everything back.
    pub async fn rollback(self) -> Result<(), ImportError> {
        self.client.batch_execute("ROLLBACK").await?;
        Ok(())
    }
}

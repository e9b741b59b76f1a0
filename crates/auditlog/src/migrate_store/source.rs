//! Reading a SQLite installation for `migrate-store`: every table's rows as
//! stored, in the import's row types, from one read transaction, so the
//! copy is a consistent snapshot even if something writes meanwhile.
//!
//! Large tables (entries, deliveries, leaf tiles, nodes) are read in pages
//! by primary key, so memory stays bounded whatever the log's size.

use std::collections::BTreeMap;
use std::path::Path;

use auditlog_postgres::import::{
    ApiKeyRow, CheckpointRow, DeliveryRow, EntryRow, LeafTileRow, MembershipRow, NodeRow, OrgRow, PartRow, ProjectRow,
    SessionRow, SubjectKeyRow, UserRow, WebhookRow,
};
use rusqlite::{Connection, OpenFlags, Row, params};
use uuid::Uuid;

/// The source: a read-only connection holding one read transaction.
pub struct Source {
    conn: Connection,
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Source").finish_non_exhaustive()
    }
}

type Result<T> = rusqlite::Result<T>;

fn words(text: &str) -> Vec<String> {
    text.split_whitespace().map(str::to_owned).collect()
}

fn entry(r: &Row<'_>) -> Result<EntryRow> {
    let id: Vec<u8> = r.get(2)?;
    let id = Uuid::from_slice(&id)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(2, rusqlite::types::Type::Blob, Box::new(e)))?;
    Ok(EntryRow {
        org_id: r.get(0)?,
        seq: r.get(1)?,
        id,
        ts: r.get(3)?,
        received_at: r.get(4)?,
        actor_type: r.get(5)?,
        actor: r.get(6)?,
        event: r.get(7)?,
        resource_type: r.get(8)?,
        resource_id: r.get(9)?,
        resource_name: r.get(10)?,
        details: r.get(11)?,
        ip_address: r.get(12)?,
        user_agent: r.get(13)?,
        request_id: r.get(14)?,
        idempotency_key: r.get(15)?,
        submitted_by_kind: r.get(16)?,
        submitted_by_id: r.get(17)?,
        canonical_version: r.get(18)?,
        commitments: r.get(19)?,
    })
}

impl Source {
    /// Opens the file read-only and starts the read transaction. The store
    /// has been opened (and so migrated) by then.
    pub fn open(path: &Path) -> Result<Self> {
        let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        // The first read fixes the snapshot every later read sees.
        conn.execute_batch("BEGIN; SELECT count(*) FROM orgs;")?;
        Ok(Self { conn })
    }

    fn all<T>(&self, sql: &str, f: impl FnMut(&Row<'_>) -> Result<T>) -> Result<Vec<T>> {
        let mut stmt = self.conn.prepare(sql)?;
        stmt.query_map([], f)?.collect()
    }

    /// Every person's key, sealed as stored.
    pub fn subject_keys(&self) -> Result<Vec<SubjectKeyRow>> {
        self.all(
            "SELECT org_id, pseudonym, wrapped, created_at FROM subject_keys ORDER BY org_id, pseudonym",
            |r| {
                Ok(SubjectKeyRow {
                    org_id: r.get(0)?,
                    pseudonym: r.get(1)?,
                    wrapped: r.get(2)?,
                    created_at: r.get(3)?,
                })
            },
        )
    }

    /// Up to `limit` sealed parts after `(org_id, seq, pseudonym)`.
    pub fn parts_after(&self, after: (i64, i64, &[u8]), limit: usize) -> Result<Vec<PartRow>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT org_id, seq, pseudonym, sealed FROM personal_parts \
             WHERE (org_id, seq, pseudonym) > (?1, ?2, ?3) ORDER BY org_id, seq, pseudonym LIMIT ?4",
        )?;
        stmt.query_map(params![after.0, after.1, after.2, limit as i64], |r| {
            Ok(PartRow {
                org_id: r.get(0)?,
                seq: r.get(1)?,
                pseudonym: r.get(2)?,
                sealed: r.get(3)?,
            })
        })?
        .collect()
    }

    /// Every table's row count (the import's table names).
    pub fn counts(&self) -> Result<BTreeMap<&'static str, i64>> {
        let mut out = BTreeMap::new();
        for table in auditlog_postgres::import::TABLES {
            // Names from a constant list, never from input.
            let n: i64 = self
                .conn
                .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))?;
            out.insert(*table, n);
        }
        Ok(out)
    }

    pub fn orgs(&self) -> Result<Vec<OrgRow>> {
        self.all(
            "SELECT o.org_id, slug, name, plan, enterprise_retention_days, sso_issuer, sso_client_id, sso_enforced, \
             created_at, coalesce(h.size, 0), sso_allowed_domains, sso_provision_role, sso_client_secret \
             FROM orgs o LEFT JOIN log_heads h ON h.org_id = o.org_id ORDER BY o.org_id",
            |r| {
                Ok(OrgRow {
                    org_id: r.get(0)?,
                    slug: r.get(1)?,
                    name: r.get(2)?,
                    plan: r.get(3)?,
                    enterprise_retention_days: r.get(4)?,
                    sso_issuer: r.get(5)?,
                    sso_client_id: r.get(6)?,
                    sso_enforced: r.get(7)?,
                    created_at: r.get(8)?,
                    log_size: r.get(9)?,
                    sso_allowed_domains: r.get(10)?,
                    sso_provision_role: r.get(11)?,
                    sso_client_secret: r.get(12)?,
                })
            },
        )
    }

    pub fn users(&self) -> Result<Vec<UserRow>> {
        self.all(
            "SELECT email, password_hash, created_at FROM users ORDER BY email",
            |r| {
                Ok(UserRow {
                    email: r.get(0)?,
                    password_hash: r.get(1)?,
                    created_at: r.get(2)?,
                })
            },
        )
    }

    pub fn memberships(&self) -> Result<Vec<MembershipRow>> {
        self.all(
            "SELECT org_id, email, role, added_at FROM memberships ORDER BY org_id, email",
            |r| {
                Ok(MembershipRow {
                    org_id: r.get(0)?,
                    email: r.get(1)?,
                    role: r.get(2)?,
                    added_at: r.get(3)?,
                })
            },
        )
    }

    pub fn projects(&self) -> Result<Vec<ProjectRow>> {
        self.all(
            "SELECT org_id, id, name, created_at FROM projects ORDER BY org_id, id",
            |r| {
                Ok(ProjectRow {
                    org_id: r.get(0)?,
                    id: r.get(1)?,
                    name: r.get(2)?,
                    created_at: r.get(3)?,
                })
            },
        )
    }

    pub fn sessions(&self) -> Result<Vec<SessionRow>> {
        self.all(
            "SELECT token_hash, email, csrf_token, created_at, expires_at, method, sso_org_id FROM sessions \
             ORDER BY token_hash",
            |r| {
                Ok(SessionRow {
                    token_hash: r.get(0)?,
                    email: r.get(1)?,
                    csrf_token: r.get(2)?,
                    created_at: r.get(3)?,
                    expires_at: r.get(4)?,
                    method: r.get(5)?,
                    sso_org_id: r.get(6)?,
                })
            },
        )
    }

    pub fn api_keys(&self) -> Result<Vec<ApiKeyRow>> {
        self.all(
            "SELECT org_id, prefix, name, scopes, secret_hash, created_at, revoked_at, last_used_at, created_by \
             FROM api_keys ORDER BY org_id, prefix",
            |r| {
                Ok(ApiKeyRow {
                    org_id: r.get(0)?,
                    prefix: r.get(1)?,
                    name: r.get(2)?,
                    scopes: words(&r.get::<_, String>(3)?),
                    secret_hash: r.get(4)?,
                    created_at: r.get(5)?,
                    revoked_at: r.get(6)?,
                    last_used_at: r.get(7)?,
                    created_by: r.get(8)?,
                })
            },
        )
    }

    pub fn webhooks(&self) -> Result<Vec<WebhookRow>> {
        self.all(
            "SELECT org_id, id, url, description, events, enabled, secret, previous_secret, previous_secret_until, \
             created_at, failing_since, disabled_reason, payload_format FROM webhooks ORDER BY org_id, id",
            |r| {
                Ok(WebhookRow {
                    org_id: r.get(0)?,
                    id: r.get(1)?,
                    url: r.get(2)?,
                    description: r.get(3)?,
                    events: words(&r.get::<_, String>(4)?),
                    enabled: r.get(5)?,
                    secret: r.get(6)?,
                    previous_secret: r.get(7)?,
                    previous_secret_until: r.get(8)?,
                    created_at: r.get(9)?,
                    failing_since: r.get(10)?,
                    disabled_reason: r.get(11)?,
                    payload_format: r.get(12)?,
                })
            },
        )
    }

    pub fn checkpoints(&self) -> Result<Vec<CheckpointRow>> {
        self.all(
            "SELECT org_id, size, root, note, signed_at FROM checkpoints ORDER BY org_id, size",
            |r| {
                Ok(CheckpointRow {
                    org_id: r.get(0)?,
                    size: r.get(1)?,
                    root: r.get(2)?,
                    note: r.get(3)?,
                    signed_at: r.get(4)?,
                })
            },
        )
    }

    /// Up to `limit` entries after `(org_id, seq)`, in that order.
    pub fn entries_after(&self, after: (i64, i64), limit: usize) -> Result<Vec<EntryRow>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT org_id, seq, id, ts, received_at, actor_type, actor, event, resource_type, resource_id, \
             resource_name, details, ip_address, user_agent, request_id, idempotency_key, submitted_by_kind, \
             submitted_by_id, canonical_version, commitments FROM entries \
             WHERE (org_id, seq) > (?1, ?2) ORDER BY org_id, seq LIMIT ?3",
        )?;
        stmt.query_map(params![after.0, after.1, limit as i64], entry)?
            .collect()
    }

    /// Up to `limit` deliveries after `(org_id, id)`, each with its entry's
    /// timestamp (which PostgreSQL keeps beside it as the partition key).
    pub fn deliveries_after(&self, after: (i64, &str), limit: usize) -> Result<Vec<DeliveryRow>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT d.org_id, d.id, d.webhook_id, d.seq, e.ts, d.status, d.attempts, d.next_attempt_at, \
             d.last_attempt_at, d.last_status, d.last_latency_ms, d.last_error, d.created_at \
             FROM deliveries d JOIN entries e ON e.org_id = d.org_id AND e.seq = d.seq \
             WHERE (d.org_id, d.id) > (?1, ?2) ORDER BY d.org_id, d.id LIMIT ?3",
        )?;
        stmt.query_map(params![after.0, after.1, limit as i64], |r| {
            Ok(DeliveryRow {
                org_id: r.get(0)?,
                id: r.get(1)?,
                webhook_id: r.get(2)?,
                seq: r.get(3)?,
                entry_ts: r.get(4)?,
                status: r.get(5)?,
                attempts: r.get(6)?,
                next_attempt_at: r.get(7)?,
                last_attempt_at: r.get(8)?,
                last_status: r.get(9)?,
                last_latency_ms: r.get(10)?,
                last_error: r.get(11)?,
                created_at: r.get(12)?,
            })
        })?
        .collect()
    }

    pub fn leaf_tiles_after(&self, after: (i64, i64), limit: usize) -> Result<Vec<LeafTileRow>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT org_id, tile, hashes FROM merkle_leaves WHERE (org_id, tile) > (?1, ?2) \
             ORDER BY org_id, tile LIMIT ?3",
        )?;
        stmt.query_map(params![after.0, after.1, limit as i64], |r| {
            Ok(LeafTileRow {
                org_id: r.get(0)?,
                tile: r.get(1)?,
                hashes: r.get(2)?,
            })
        })?
        .collect()
    }

    pub fn nodes_after(&self, after: (i64, i16, i64), limit: usize) -> Result<Vec<NodeRow>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT org_id, level, idx, hash FROM merkle_nodes WHERE (org_id, level, idx) > (?1, ?2, ?3) \
             ORDER BY org_id, level, idx LIMIT ?4",
        )?;
        stmt.query_map(params![after.0, after.1, after.2, limit as i64], |r| {
            Ok(NodeRow {
                org_id: r.get(0)?,
                level: r.get(1)?,
                idx: r.get(2)?,
                hash: r.get(3)?,
            })
        })?
        .collect()
    }
}

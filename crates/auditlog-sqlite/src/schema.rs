//! Connection settings and migrations.
//!
//! Durability is the point of an audit log: WAL with `synchronous=FULL`
//! fsyncs the log on every commit, so an acknowledged entry survives a power
//! loss (with `NORMAL`, the last commits before it may roll back).

use r2d2_sqlite::rusqlite::{self, Connection};

/// The migration that adds the Merkle tree; logs older than it get their
/// tree built as it is applied.
const MERKLE_VERSION: usize = 4;

/// Applied in order; `PRAGMA user_version` records how many have run.
const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/0001_init.sql"),
    include_str!("../migrations/0002_people.sql"),
    include_str!("../migrations/0003_webhooks.sql"),
    include_str!("../migrations/0004_merkle.sql"),
    include_str!("../migrations/0005_invitations.sql"),
    include_str!("../migrations/0006_submitted_by.sql"),
    include_str!("../migrations/0007_sso.sql"),
    include_str!("../migrations/0008_sso_replays.sql"),
    include_str!("../migrations/0009_key_creator.sql"),
    include_str!("../migrations/0010_delivery_order.sql"),
    include_str!("../migrations/0011_streams.sql"),
    include_str!("../migrations/0012_webhook_payload_format.sql"),
    include_str!("../migrations/0013_stream_purged_unsent.sql"),
    include_str!("../migrations/0014_personal_data.sql"),
];

pub const INSERT_ENTRY: &str = "INSERT INTO entries (org_id, seq, id, ts, received_at, actor_type, actor, event, \
     resource_type, resource_id, resource_name, details, ip_address, user_agent, request_id, idempotency_key, \
     submitted_by_kind, submitted_by_id, canonical_version, commitments) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20)";

/// The writer's page cache, in KiB (negative: SQLite reads it as KiB).
const WRITER_CACHE_KIB: i64 = -64 * 1024;

pub fn configure_writer(conn: &Connection) -> rusqlite::Result<()> {
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // Every insert touches the entries table and each of its indexes at
    // pages spread over the whole file. With SQLite's default 2 MiB cache a
    // log of a few GB had every insert reading pages back through system
    // calls, and sustained ingest fell by half; 64 MiB keeps the indexes'
    // upper levels and recent leaves here.
    conn.pragma_update(None, "cache_size", WRITER_CACHE_KIB)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(())
}

pub fn configure_reader(conn: &mut Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.pragma_update(None, "query_only", "ON")?;
    conn.set_prepared_statement_cache_capacity(128);
    Ok(())
}

/// Refuses a database a newer release has migrated past what this build
/// knows: running old code on a newer schema could misread or corrupt it.
pub fn refuse_newer(conn: &Connection) -> Result<(), auditlog_domain::StoreError> {
    let current = conn
        .pragma_query_value(None, "user_version", |r| r.get::<_, i64>(0))
        .map_err(crate::rows::db_err)?;
    if current as usize > MIGRATIONS.len() {
        return Err(auditlog_domain::StoreError::newer_schema(current, MIGRATIONS.len()));
    }
    Ok(())
}

pub fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    let current: usize = conn.pragma_query_value(None, "user_version", |r| r.get::<_, i64>(0))? as usize;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        if i + 1 == MERKLE_VERSION {
            crate::tree::backfill(&tx)?;
        }
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
        tracing::info!(version = i + 1, "applied SQLite migration");
    }
    Ok(())
}

/// How many migrations this build knows (the tests check a new file ends
/// up there).
#[cfg(feature = "testing")]
pub fn latest_version() -> usize {
    MIGRATIONS.len()
}

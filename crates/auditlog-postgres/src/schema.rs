//! The migrations in `migrations/`, applied at start.
//!
//! Several replicas may start at once against one database: the whole
//! migration runs in one transaction under a transaction-scoped advisory
//! lock, so one applies what is pending while the others wait, then find
//! nothing left to do. `auditlog_migrations` records what has been applied.

use auditlog_domain::StoreError;
use tokio_postgres::Client;

use crate::error::db_err;

/// `pg_advisory_xact_lock` key of the migration; any constant unlikely to be
/// used by another application sharing the database.
const MIGRATION_LOCK: i64 = 0x6175_6469_746c_6f67; // "auditlog"

/// Applied in order; version n is the n-th.
const MIGRATIONS: &[(&str, &str)] = &[
    ("init", include_str!("../migrations/0001_init.sql")),
    ("head_frontier", include_str!("../migrations/0002_head_frontier.sql")),
    ("invitations", include_str!("../migrations/0003_invitations.sql")),
    ("submitted_by", include_str!("../migrations/0004_submitted_by.sql")),
    ("sso", include_str!("../migrations/0005_sso.sql")),
    ("sso_replays", include_str!("../migrations/0006_sso_replays.sql")),
    ("key_creator", include_str!("../migrations/0007_key_creator.sql")),
    ("delivery_order", include_str!("../migrations/0008_delivery_order.sql")),
    ("streams", include_str!("../migrations/0009_streams.sql")),
    (
        "payload_format",
        include_str!("../migrations/0010_webhook_payload_format.sql"),
    ),
    (
        "stream_purged_unsent",
        include_str!("../migrations/0011_stream_purged_unsent.sql"),
    ),
    ("personal_data", include_str!("../migrations/0012_personal_data.sql")),
];

/// How many migrations this build knows (the tests check a new file ends
/// up there).
#[cfg(feature = "testing")]
pub fn latest_version() -> usize {
    MIGRATIONS.len()
}

/// Applies the pending migrations; returns how many were.
pub async fn migrate(client: &mut Client) -> Result<usize, StoreError> {
    let tx = client.transaction().await.map_err(db_err)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(db_err)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS auditlog_migrations (\
             version integer PRIMARY KEY, \
             name text NOT NULL, \
             applied_at timestamptz NOT NULL DEFAULT now())",
    )
    .await
    .map_err(db_err)?;
    let current: i32 = tx
        .query_one("SELECT coalesce(max(version), 0) FROM auditlog_migrations", &[])
        .await
        .map_err(db_err)?
        .get(0);
    if current as usize > MIGRATIONS.len() {
        return Err(StoreError::newer_schema(current.into(), MIGRATIONS.len()));
    }
    let mut applied = 0;
    for (i, (name, sql)) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let version = i as i32 + 1;
        tx.batch_execute(sql).await.map_err(db_err)?;
        tx.execute(
            "INSERT INTO auditlog_migrations (version, name) VALUES ($1, $2)",
            &[&version, name],
        )
        .await
        .map_err(db_err)?;
        tracing::info!(version, name, "applied PostgreSQL migration");
        applied += 1;
    }
    tx.commit().await.map_err(db_err)?;
    Ok(applied)
}

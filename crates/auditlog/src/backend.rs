//! Choosing the store from the database URL's scheme: `postgres://` (or
//! `postgresql://`) for PostgreSQL, `sqlite://PATH` or a plain path for the
//! embedded default.

use std::sync::Arc;

use auditlog_domain::Store;
use auditlog_postgres::PostgresStore;
use auditlog_sqlite::SqliteStore;

pub type AnyError = Box<dyn std::error::Error + Send + Sync>;

pub fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// Opens the store and applies its pending migrations.
pub async fn open(url: &str) -> Result<Arc<dyn Store>, AnyError> {
    if is_postgres(url) {
        let store = PostgresStore::connect(url)
            .await
            .map_err(|e| format!("cannot open the PostgreSQL database: {e}"))?;
        return Ok(Arc::new(store));
    }
    if url.contains("://") && !url.starts_with("sqlite://") {
        return Err(format!("unsupported database URL {url:?}: expected sqlite://PATH or postgres://…").into());
    }
    let path = SqliteStore::path_from_url(url);
    let store = SqliteStore::open(path).map_err(|e| format!("cannot open {path}: {e}"))?;
    Ok(Arc::new(store))
}

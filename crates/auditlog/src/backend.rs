//! Choosing the store from the database URL's scheme.

use std::sync::Arc;

use auditlog_domain::Store;
use auditlog_sqlite::SqliteStore;

pub type AnyError = Box<dyn std::error::Error + Send + Sync>;

pub fn open(url: &str) -> Result<Arc<dyn Store>, AnyError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Err("PostgreSQL is not supported by this build yet; use sqlite://PATH".into());
    }
    if url.contains("://") && !url.starts_with("sqlite://") {
        return Err(format!("unsupported database URL {url:?}: expected sqlite://PATH").into());
    }
    let path = SqliteStore::path_from_url(url);
    let store = SqliteStore::open(path).map_err(|e| format!("cannot open {path}: {e}"))?;
    Ok(Arc::new(store))
}

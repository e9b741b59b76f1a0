//! Choosing the store from the database URL's scheme: `postgres://` (or
//! `postgresql://`) for PostgreSQL, `sqlite://PATH` or a plain path for the
//! embedded default.

use std::path::Path;
use std::sync::Arc;

use auditlog_domain::personal::PersonalData;
use auditlog_domain::{Catalog, Store};
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

/// Opens the store for a command that reads or records entries, with the
/// personal-data keys the service seals them with: derived from the
/// checkpoint signing key (`explicit`, else `AUDITLOG_SIGNING_KEY`, else
/// beside the SQLite file). Only `create` (the demo, which serves with the
/// same key next) makes one: a command run before the service first
/// started finds none and records its entries unsealed (version 2), rather
/// than seal them under a key the service, given another, could not open.
/// Without a key, sealed values read as erased.
pub async fn open_keyed(url: &str, explicit: Option<&Path>, create: bool) -> Result<Arc<dyn Store>, AnyError> {
    let store = open(url).await?;
    if let Some(personal) = personal_data(url, explicit, create)? {
        store.use_personal_data(personal);
    }
    Ok(store)
}

/// The personal-data keys of the signing key [`open_keyed`] finds (read,
/// or with `create` made); `None` when there is none, or no path to look
/// at (PostgreSQL without one named).
pub fn personal_data(url: &str, explicit: Option<&Path>, create: bool) -> Result<Option<Arc<PersonalData>>, AnyError> {
    let from_env = std::env::var_os("AUDITLOG_SIGNING_KEY").map(std::path::PathBuf::from);
    let Ok(path) = crate::signing_key::path(explicit.or(from_env.as_deref()), url) else {
        return Ok(None);
    };
    let key = match create {
        true => Some(crate::signing_key::load_or_create(&path)?),
        false => crate::signing_key::read(&path)?,
    };
    let catalog = Arc::new(Catalog::builtin());
    Ok(key.map(|key| Arc::new(PersonalData::new(&key.seed(), catalog))))
}

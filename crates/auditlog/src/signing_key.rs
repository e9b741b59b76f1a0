//! The service's checkpoint signing key on disk: generated on first start
//! beside the database (or where the operator says), readable only by its
//! owner, in the signed-note private key format (`PRIVATE+KEY+…`) that Go's
//! `note` tools read too.

use std::io::Write;
use std::path::{Path, PathBuf};

use auditlog_domain::checkpoint::SigningKey;
use auditlog_sqlite::SqliteStore;

use crate::backend::AnyError;

/// The name every checkpoint's key line and origin start with.
pub const LOG_NAME: &str = "auditlog";

/// Where the key lives: the operator's path, else beside the SQLite file.
/// With PostgreSQL there is no file to sit beside, and every replica must
/// sign with the same key, so the operator has to name it.
pub fn path(explicit: Option<&Path>, database_url: &str) -> Result<PathBuf, AnyError> {
    match explicit {
        Some(p) => Ok(p.to_path_buf()),
        None if crate::backend::is_postgres(database_url) => Err("with PostgreSQL, every replica must sign \
             checkpoints with the same key: pass --signing-key FILE (or AUDITLOG_SIGNING_KEY) naming one key file \
             shared by all replicas; `auditlog key show-signing --signing-key FILE` creates it"
            .into()),
        None => Ok(PathBuf::from(format!(
            "{}.signing-key",
            SqliteStore::path_from_url(database_url)
        ))),
    }
}

/// Reads the key, or creates it (mode 0600) if there is none yet.
pub fn load_or_create(path: &Path) -> Result<SigningKey, AnyError> {
    match read(path)? {
        Some(key) => Ok(key),
        None => {
            let key = SigningKey::generate(LOG_NAME)?;
            write_private(path, format!("{}\n", key.to_private_key_text()).as_bytes())
                .map_err(|e| format!("cannot create the signing key {}: {e}", path.display()))?;
            tracing::info!(path = %path.display(), verifier_key = %key.verifier_key(), "created the checkpoint signing key");
            Ok(key)
        }
    }
}

/// Reads the key; `None` when there is no file (nothing is created).
pub fn read(path: &Path) -> Result<Option<SigningKey>, AnyError> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            warn_if_readable_by_others(path);
            SigningKey::from_private_key_text(text.trim())
                .map(Some)
                .map_err(|e| format!("{} is not a signing key: {e}", path.display()).into())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read the signing key {}: {e}", path.display()).into()),
    }
}

/// Writes a new file readable by its owner only, synced; never over an
/// existing one.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

fn warn_if_readable_by_others(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path)
            && meta.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(path = %path.display(), "the signing key is readable by others; chmod 600 it");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_created_once_private_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k");
        let first = load_or_create(&p).unwrap();
        let again = load_or_create(&p).unwrap();
        assert_eq!(first.verifier_key().to_string(), again.verifier_key().to_string());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
        }
        std::fs::write(&p, "not a key").unwrap();
        assert!(load_or_create(&p).is_err());
    }

    #[test]
    fn the_default_sits_beside_the_database() {
        assert_eq!(
            path(None, "sqlite://data/a.db").unwrap(),
            PathBuf::from("data/a.db.signing-key")
        );
        assert_eq!(
            path(Some(Path::new("/k")), "sqlite://a.db").unwrap(),
            PathBuf::from("/k")
        );
    }

    /// Replicas on one PostgreSQL must share a key, so none is made up.
    #[test]
    fn postgres_needs_the_key_named() {
        let err = path(None, "postgres://db.internal/audit").unwrap_err().to_string();
        assert!(err.contains("--signing-key"), "{err}");
        assert_eq!(
            path(Some(Path::new("/k")), "postgres://db/audit").unwrap(),
            PathBuf::from("/k")
        );
    }
}

//! `auditlog backup --to FILE`: an online, consistent snapshot of the
//! embedded SQLite database while the server keeps running, with progress
//! on stderr and, last, what the snapshot holds: each organization's last
//! `seq` and the signed checkpoint it matches.
//!
//! The signing key is not part of the database and is not copied unless
//! asked (`--include-signing-key`): a backup that travels with its key lets
//! whoever holds the backup sign checkpoints as the service.

use std::path::PathBuf;
use std::time::Instant;

use auditlog_domain::merkle::hash_to_hex;
use auditlog_sqlite::SqliteStore;
use auditlog_sqlite::backup::{self, BackupProgress, SnapshotHead};
use indicatif::{ProgressBar, ProgressStyle};

use crate::backend::{self, AnyError};
use crate::cli::BackupArgs;

pub fn run(args: BackupArgs) -> Result<(), AnyError> {
    if backend::is_postgres(&args.db.database) {
        return Err(
            "`auditlog backup` copies the embedded SQLite database; back PostgreSQL up with its own tools \
                    (pg_dump, pg_basebackup, point-in-time recovery) and run `auditlog check` on a restore: \
                    see README, \"Backups\""
                .into(),
        );
    }
    let source = PathBuf::from(SqliteStore::path_from_url(&args.db.database));
    if !source.is_file() {
        return Err(format!("no database at {}", source.display()).into());
    }
    if args.to.exists() {
        return Err(format!("{} exists already; a backup never overwrites a file", args.to.display()).into());
    }
    let started = Instant::now();
    let bar = ProgressBar::new(0);
    if let Ok(style) = ProgressStyle::with_template("{spinner} backup [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    let done = backup::backup(&source, &args.to, |p: BackupProgress| {
        bar.set_length(p.total * p.page_size);
        bar.set_position(p.copied * p.page_size);
    })
    .map_err(|e| format!("backup of {} failed: {e}", source.display()))?;
    bar.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "wrote {} ({:.1} MiB in {secs:.1} s, {:.0} MiB/s)",
        done.path.display(),
        done.bytes as f64 / 1048576.0,
        done.bytes as f64 / 1048576.0 / secs.max(1e-9),
    );
    signing_key(&args)?;
    for head in backup::heads(&done.path)? {
        println!("{}", head_line(&head));
    }
    Ok(())
}

/// Copies the signing key beside the backup if asked; else says where the
/// key is, for the operator to keep apart.
fn signing_key(args: &BackupArgs) -> Result<(), AnyError> {
    let key = crate::signing_key::path(args.signing_key.as_deref(), &args.db.database)?;
    if !args.include_signing_key {
        eprintln!(
            "the signing key {} was not copied: keep it apart from the backups (see README, \"Backups\")",
            key.display()
        );
        return Ok(());
    }
    let to = PathBuf::from(format!("{}.signing-key", args.to.display()));
    let text = std::fs::read(&key).map_err(|e| format!("cannot read the signing key {}: {e}", key.display()))?;
    crate::signing_key::write_private(&to, &text).map_err(|e| format!("cannot create {}: {e}", to.display()))?;
    eprintln!("copied the signing key to {}", to.display());
    Ok(())
}

/// `org acme: last seq 1204, checkpoint at size 1200 (root 3f2a…)`.
fn head_line(h: &SnapshotHead) -> String {
    let checkpoint = match &h.checkpoint {
        Some((size, root)) => format!("checkpoint at size {size} (root {})", &hash_to_hex(root)[..16]),
        None => "no checkpoint yet".to_owned(),
    };
    format!("org {}: last seq {}, {checkpoint}", h.slug, h.last_seq)
}

//! Online, consistent snapshots of a live database file (`auditlog
//! backup`), through SQLite's backup API: never by copying files, which
//! for a database in WAL mode gives a torn or stale copy.
//!
//! The copy reads inside one read transaction held from the first page to
//! the last, so it is the database as it stood at one commit, while the
//! server goes on appending (WAL lets writers proceed beside a reader).
//! Had each step begun its own read, every commit in between would have
//! restarted the copy, and under steady ingest it would never finish.
//!
//! The snapshot is written to `TARGET.partial` and linked into place only
//! once complete and synced, so a failed or interrupted backup leaves no
//! file that looks like a backup, and nothing is ever overwritten.

use std::path::{Path, PathBuf};

use auditlog_domain::StoreError;
use r2d2_sqlite::rusqlite::backup::{Backup, StepResult};
use r2d2_sqlite::rusqlite::{Connection, OpenFlags};

use crate::rows::db_err;

/// Pages copied per step: 1 MiB with 4 KiB pages, so progress is reported
/// often and the copy can be paced finely.
const PAGES_PER_STEP: i32 = 256;
/// The most the copy reads and writes a second. A live server shares the
/// disk: unpaced, a copy at the disk's full speed put the server's commits
/// (each an fsync) behind it and multiplied ingest latency; at this pace a
/// 1 GB database takes about 7 s.
const BYTES_PER_SEC: f64 = 120e6;
/// Written pages are flushed to disk every this many bytes, so the copy
/// never leaves one large flush for its end, in front of the server's.
const SYNC_EVERY: u64 = 4 << 20;

/// How far a backup has come, in pages of the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackupProgress {
    pub copied: u64,
    pub total: u64,
    pub page_size: u64,
}

/// What a finished backup wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupDone {
    pub path: PathBuf,
    pub bytes: u64,
}

/// Copies the database at `source` to `target`, which must not exist,
/// calling `progress` after each step.
pub fn backup(
    source: &Path,
    target: &Path,
    mut progress: impl FnMut(BackupProgress),
) -> Result<BackupDone, StoreError> {
    if target.exists() {
        return Err(StoreError::Conflict(format!("{}", target.display())));
    }
    let partial = partial_path(target);
    let _ = std::fs::remove_file(&partial);
    // A hard link, unlike a rename, fails if a file took the name while the
    // copy ran: a backup never replaces anything.
    let result = copy(source, &partial, &mut progress).and_then(|()| {
        std::fs::hard_link(&partial, target).map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => StoreError::Conflict(format!("{}", target.display())),
            _ => StoreError::Internal(format!("cannot name the backup {}: {e}", target.display())),
        })
    });
    let _ = std::fs::remove_file(&partial);
    result?;
    let bytes = std::fs::metadata(target).map(|m| m.len()).unwrap_or(0);
    Ok(BackupDone {
        path: target.to_path_buf(),
        bytes,
    })
}

/// Sleeps until `bytes` copied since `started` are within the pace.
fn pace(started: std::time::Instant, bytes: u64) {
    let due = std::time::Duration::from_secs_f64(bytes as f64 / BYTES_PER_SEC);
    if let Some(wait) = due.checked_sub(started.elapsed()) {
        std::thread::sleep(wait);
    }
}

fn partial_path(target: &Path) -> PathBuf {
    let mut name = target.as_os_str().to_owned();
    name.push(".partial");
    PathBuf::from(name)
}

fn copy(source: &Path, partial: &Path, progress: &mut impl FnMut(BackupProgress)) -> Result<(), StoreError> {
    let src = Connection::open_with_flags(
        source,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| StoreError::Unavailable(format!("cannot open {}: {e}", source.display())))?;
    src.busy_timeout(std::time::Duration::from_secs(5)).map_err(db_err)?;
    let page_size: u64 = src
        .pragma_query_value(None, "page_size", |r| r.get::<_, i64>(0))
        .map_err(db_err)? as u64;
    // The read transaction every step copies from: one snapshot.
    src.execute_batch("BEGIN").map_err(db_err)?;
    src.query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get::<_, i64>(0))
        .map_err(db_err)?;
    let mut dst = Connection::open(partial).map_err(db_err)?;
    // The partial file is thrown away on any failure: it needs no journal,
    // and it is synced here, in slices, rather than at its commit.
    dst.pragma_update(None, "journal_mode", "OFF").map_err(db_err)?;
    dst.pragma_update(None, "synchronous", "OFF").map_err(db_err)?;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .open(partial)
        .map_err(|e| StoreError::Internal(format!("cannot open the backup: {e}")))?;
    {
        let backup = Backup::new(&src, &mut dst).map_err(db_err)?;
        let started = std::time::Instant::now();
        let mut synced = 0;
        loop {
            let step = backup.step(PAGES_PER_STEP).map_err(db_err)?;
            let p = backup.progress();
            let total = p.pagecount.max(0) as u64;
            let copied = total.saturating_sub(p.remaining.max(0) as u64);
            progress(BackupProgress {
                copied,
                total,
                page_size,
            });
            let bytes = copied * page_size;
            if bytes >= synced + SYNC_EVERY {
                file.sync_data()
                    .map_err(|e| StoreError::Internal(format!("cannot sync the backup: {e}")))?;
                synced = bytes;
            }
            match step {
                StepResult::Done => break,
                StepResult::Busy | StepResult::Locked => std::thread::sleep(std::time::Duration::from_millis(20)),
                _ => pace(started, bytes),
            }
        }
    }
    src.execute_batch("COMMIT").map_err(db_err)?;
    // The copy keeps the source's WAL mode; fold it into one file, synced.
    dst.pragma_update(None, "journal_mode", "DELETE").map_err(db_err)?;
    drop(dst);
    std::fs::File::open(partial)
        .and_then(|f| f.sync_all())
        .map_err(|e| StoreError::Internal(format!("cannot sync the backup: {e}")))
}

/// One organization's log as a snapshot holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotHead {
    pub slug: String,
    /// The last `seq` appended (0 when the log is empty).
    pub last_seq: i64,
    /// The latest signed checkpoint's size and root, if any.
    pub checkpoint: Option<(u64, auditlog_domain::merkle::Hash)>,
}

/// Each organization's last `seq` and latest checkpoint in the database at
/// `path`, read without writing to it.
pub fn heads(path: &Path) -> Result<Vec<SnapshotHead>, StoreError> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(db_err)?;
    let mut s = conn
        .prepare(
            "SELECT o.slug, h.size, \
             (SELECT c.size FROM checkpoints c WHERE c.org_id = o.org_id ORDER BY c.size DESC LIMIT 1), \
             (SELECT c.root FROM checkpoints c WHERE c.org_id = o.org_id ORDER BY c.size DESC LIMIT 1) \
             FROM orgs o JOIN log_heads h ON h.org_id = o.org_id ORDER BY o.slug",
        )
        .map_err(db_err)?;
    let rows = s
        .query_map([], |r| {
            let size: Option<i64> = r.get(2)?;
            let root: Option<Vec<u8>> = r.get(3)?;
            let checkpoint = match (size, root) {
                (Some(size), Some(root)) => Some((size as u64, crate::tree::hash_of(&root)?)),
                _ => None,
            };
            Ok(SnapshotHead {
                slug: r.get(0)?,
                last_seq: r.get(1)?,
                checkpoint,
            })
        })
        .map_err(db_err)?;
    rows.collect::<Result<_, _>>().map_err(db_err)
}

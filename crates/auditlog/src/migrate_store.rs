//! `auditlog migrate-store --from sqlite://PATH --to postgres://…`: copies a
//! whole installation from SQLite into an empty PostgreSQL database, then
//! checks the copy and prints a verdict.
//!
//! Everything is copied as stored: organizations with their ids, users and
//! their password hashes, memberships, projects, API keys (their hashes),
//! webhooks with their secrets, deliveries with their status and attempts,
//! entries with their ids and sequence numbers, log heads, the Merkle tree
//! and signed checkpoints, and sessions (so nobody has to sign in again).
//! The source is read in one snapshot; stop the service first, or entries
//! written after the snapshot stay behind. The target is written in one
//! transaction: a failed copy leaves it empty. A target that already holds
//! an installation is refused.
//!
//! Checkpoints stay valid only if the copy signs with the source's key:
//! serve it with `--signing-key` naming the source's key file (by default
//! the SQLite file's path with `.signing-key` added), on every replica.
//!
//! Layout: [`source`] reads the SQLite file; `auditlog_postgres::import`
//! writes PostgreSQL; [`check`] compares the two.

mod check;
mod source;

use std::path::Path;
use std::time::{Duration, Instant};

use auditlog_domain::store::EntryStore;
use auditlog_postgres::PostgresStore;
use auditlog_postgres::import::{Import, ImportError};
use auditlog_sqlite::SqliteStore;

use crate::backend::{AnyError, is_postgres};
use crate::cli::MigrateStoreArgs;
use source::Source;

/// Rows per page of the large tables.
const PAGE: usize = 5000;

/// How often progress is reported while entries are copied.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

fn read<T>(what: &str, r: Result<T, rusqlite::Error>) -> Result<T, AnyError> {
    r.map_err(|e| format!("reading {what} from the source: {e}").into())
}

fn write(what: &str, r: Result<(), ImportError>) -> Result<(), AnyError> {
    r.map_err(|e| format!("writing {what} to the target: {e}").into())
}

pub async fn run(args: MigrateStoreArgs) -> Result<(), AnyError> {
    if !is_postgres(&args.to) {
        return Err("--to must be a PostgreSQL URL: postgres://…".into());
    }
    if is_postgres(&args.from) || (args.from.contains("://") && !args.from.starts_with("sqlite://")) {
        return Err("--from must be a SQLite installation: sqlite://PATH".into());
    }
    let path = Path::new(SqliteStore::path_from_url(&args.from));
    if !path.is_file() {
        return Err(format!("{}: no such SQLite database", path.display()).into());
    }
    // Opening applies pending migrations, so the rows read have the
    // current schema's shape.
    let source_store = SqliteStore::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let target = PostgresStore::connect(&args.to)
        .await
        .map_err(|e| format!("cannot open the PostgreSQL database: {e}"))?;
    attach_keys(&args.from, &source_store, &target)?;
    let source = read("the snapshot", Source::open(path))?;
    let import = Import::begin(&target).await?;
    let copied = copy(&source, &import).await;
    match copied {
        Ok(()) => write("the commit", import.commit().await)?,
        Err(e) => {
            let _ = import.rollback().await;
            return Err(e);
        }
    }

    eprintln!("checking the copy…");
    let source_counts = read("row counts", source.counts())?;
    drop(source);
    let target_counts = auditlog_postgres::import::counts(&target).await?;
    let verdict = check::check(&source_store, &target, &source_counts, &target_counts).await?;
    for line in &verdict.held {
        println!("ok        {line}");
    }
    for line in &verdict.differences {
        println!("DIFFERENT {line}");
    }
    if !verdict.differences.is_empty() {
        return Err(format!(
            "the copy differs from its source in {} ways (listed above)",
            verdict.differences.len()
        )
        .into());
    }
    println!("verdict: the copy is identical to its source");
    println!(
        "sessions were copied: people stay signed in. Serve the copy with --signing-key {}.signing-key \
         (the source's checkpoint key, unless it was configured elsewhere) on every replica, so its \
         checkpoints go on with the same key.",
        path.display()
    );
    Ok(())
}

/// The source's personal-data keys, for the check that reads entries back
/// from both stores: the copy keeps its keys sealed under the same signing
/// key, which must then serve it. Without the key file, entries with sealed
/// values cannot be compared, and the check says so.
fn attach_keys(from: &str, source: &SqliteStore, target: &PostgresStore) -> Result<(), AnyError> {
    if let Some(personal) = crate::backend::personal_data(from, None, false)? {
        source.use_personal_data(personal.clone());
        target.use_personal_data(personal);
    }
    Ok(())
}

async fn copy(source: &Source, import: &Import) -> Result<(), AnyError> {
    let orgs = read("organizations", source.orgs())?;
    write("organizations", import.orgs(&orgs).await)?;
    write("users", import.users(&read("users", source.users())?).await)?;
    write(
        "memberships",
        import.memberships(&read("memberships", source.memberships())?).await,
    )?;
    write("projects", import.projects(&read("projects", source.projects())?).await)?;
    write("sessions", import.sessions(&read("sessions", source.sessions())?).await)?;
    write("API keys", import.api_keys(&read("API keys", source.api_keys())?).await)?;
    write("webhooks", import.webhooks(&read("webhooks", source.webhooks())?).await)?;

    let total: i64 = orgs.iter().map(|o| o.log_size).sum();
    let (mut after, mut copied, mut reported) = ((i64::MIN, 0), 0u64, Instant::now());
    eprintln!("copying entries: 0 / {total} (at most; purged entries are not there)");
    loop {
        let page = read("entries", source.entries_after(after, PAGE))?;
        let Some(last) = page.last() else { break };
        after = (last.org_id, last.seq);
        write("entries", import.entries(&page).await)?;
        copied += page.len() as u64;
        if reported.elapsed() >= PROGRESS_EVERY {
            eprintln!("copying entries: {copied} / {total}");
            reported = Instant::now();
        }
    }
    eprintln!("copied entries: {copied}");
    write(
        "subject keys",
        import.subject_keys(&read("subject keys", source.subject_keys())?).await,
    )?;
    let mut after = (i64::MIN, 0, Vec::new());
    loop {
        let page = read(
            "sealed personal values",
            source.parts_after((after.0, after.1, &after.2), PAGE),
        )?;
        let Some(last) = page.last() else { break };
        after = (last.org_id, last.seq, last.pseudonym.clone());
        write("sealed personal values", import.personal_parts(&page).await)?;
    }

    let mut after = (i64::MIN, String::new());
    loop {
        let page = read("deliveries", source.deliveries_after((after.0, &after.1), PAGE))?;
        let Some(last) = page.last() else { break };
        after = (last.org_id, last.id.clone());
        write("deliveries", import.deliveries(&page).await)?;
    }
    let mut after = (i64::MIN, 0);
    loop {
        let page = read("Merkle leaves", source.leaf_tiles_after(after, PAGE))?;
        let Some(last) = page.last() else { break };
        after = (last.org_id, last.tile);
        write("Merkle leaves", import.leaf_tiles(&page).await)?;
    }
    let mut after = (i64::MIN, 0, 0);
    loop {
        let page = read("Merkle nodes", source.nodes_after(after, PAGE))?;
        let Some(last) = page.last() else { break };
        after = (last.org_id, last.level, last.idx);
        write("Merkle nodes", import.nodes(&page).await)?;
    }
    write(
        "checkpoints",
        import.checkpoints(&read("checkpoints", source.checkpoints())?).await,
    )?;
    Ok(())
}

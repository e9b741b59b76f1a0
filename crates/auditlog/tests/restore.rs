//! The restore drill, as an operator would run it, on both stores: ingest
//! under load, take a backup in the middle of it (`auditlog backup` on
//! SQLite, `pg_dump` on PostgreSQL), kill the server with SIGKILL, restore
//! the backup into a fresh place, prove it with `auditlog check`, serve it
//! again, and see the log go on: every entry acknowledged before the backup
//! began is there, new entries continue the sequence, and a consistency
//! proof from a checkpoint signed before the crash to one signed after
//! verifies.

mod common;

use common::*;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::Value;

fn serve(db: &str, key: &Path, port: u16) -> Child {
    auditlog()
        .args(["serve", "--database", db, "--listen", &format!("127.0.0.1:{port}")])
        .arg("--signing-key")
        .arg(key)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// The live side of a drill: a server under load, the last entry
/// acknowledged before the backup began, and a checkpoint signed of it.
struct Live {
    server: Killed,
    base: String,
    key: String,
    stop: Arc<AtomicBool>,
    load: Vec<tokio::task::JoinHandle<(Vec<String>, Vec<String>)>>,
    marker: Value,
    signing_key: PathBuf,
}

impl Live {
    async fn start(db: &str, dir: &Path, client: &reqwest::Client) -> Self {
        let signing_key = dir.join("signing.key");
        acme_with_admin(db);
        let key = read_write_key(db);
        let port = free_port();
        let base = format!("http://127.0.0.1:{port}");
        let server = Killed(serve(db, &signing_key, port));
        wait_ready(client, &base).await;
        let stop = Arc::new(AtomicBool::new(false));
        let load = (0..2)
            .map(|c| {
                tokio::spawn(ingest_distinct(
                    format!("c{c}"),
                    base.clone(),
                    key.clone(),
                    stop.clone(),
                ))
            })
            .collect();
        // Until the load has made a log worth copying; the last one answered
        // was acknowledged before the backup began, so it must be in it.
        let marker = loop {
            let m = ingest_one(client, &base, &key, "before-backup").await;
            if m["seq"].as_i64().unwrap() >= 3_000 {
                break m;
            }
        };
        Self {
            server,
            base,
            key,
            stop,
            load,
            marker,
            signing_key,
        }
    }

    fn marker_seq(&self) -> i64 {
        self.marker["seq"].as_i64().unwrap()
    }

    async fn checkpoint_note(&self, client: &reqwest::Client, size: i64) -> String {
        let url = format!(
            "{}/v1/orgs/acme/audit/checkpoint?tree_size={size}&format=note",
            self.base
        );
        get_text(client, url, &self.key).await
    }

    /// Sees the load go on past `copied`, then kills the server.
    async fn crash_after(self, client: &reqwest::Client, copied: Option<i64>) -> (String, Value, PathBuf) {
        let after = ingest_one(client, &self.base, &self.key, "after-backup").await;
        if let Some(copied) = copied {
            assert!(
                after["seq"].as_i64().unwrap() > copied,
                "the load went on past the backup"
            );
        }
        self.stop.store(true, Ordering::Relaxed);
        drop(self.server); // SIGKILL
        for l in self.load {
            l.await.unwrap();
        }
        (self.key, self.marker, self.signing_key)
    }
}

/// The restored side: `auditlog check` passes, the server on it has the
/// marker, takes the next `seq`, and proves its new tree consistent with
/// `old` (a checkpoint signed before the crash). Answers the backup's size.
async fn restored_continues(
    restored: &str,
    signing_key: &Path,
    key: &str,
    marker: &Value,
    old: (i64, &str),
    dir: &Path,
) -> i64 {
    let client = reqwest::Client::new();
    let checked = run_ok(&[
        "check",
        "--database",
        restored,
        "--signing-key",
        signing_key.to_str().unwrap(),
    ]);
    assert!(
        checked.contains("ok acme: ") && checked.contains("signature valid"),
        "{checked}"
    );
    let line = checked.lines().find(|l| l.starts_with("ok acme: ")).unwrap();
    let backed_up: i64 = line["ok acme: ".len()..].split(' ').next().unwrap().parse().unwrap();
    assert!(backed_up >= marker["seq"].as_i64().unwrap(), "{checked}");

    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let _server = Killed(serve(restored, signing_key, port));
    wait_ready(&client, &base).await;
    let id = marker["id"].as_str().unwrap();
    let again = get_text(&client, format!("{base}/v1/orgs/acme/audit/events/{id}"), key).await;
    let again: Value = serde_json::from_str(&again).unwrap();
    assert_eq!(again["seq"], marker["seq"]);
    let next = ingest_one(&client, &base, key, "after-restore").await;
    assert_eq!(
        next["seq"].as_i64(),
        Some(backed_up + 1),
        "the sequence goes on from the backup"
    );

    let new_size = backed_up + 1;
    let (old_size, old_note) = old;
    let acme = format!("{base}/v1/orgs/acme/audit");
    let new_note = get_text(
        &client,
        format!("{acme}/checkpoint?tree_size={new_size}&format=note"),
        key,
    )
    .await;
    let proof = get_text(
        &client,
        format!("{acme}/proofs/consistency?from={old_size}&to={new_size}"),
        key,
    )
    .await;
    let key_file = signing_key.to_str().unwrap();
    let verifier = run_ok(&["key", "show-signing", "--database", restored, "--signing-key", key_file]);
    for (name, text) in [("old.note", old_note), ("new.note", &new_note), ("proof.json", &proof)] {
        std::fs::write(dir.join(name), text).unwrap();
    }
    let p = |name: &str| dir.join(name).to_str().unwrap().to_owned();
    run_ok(&[
        "verify",
        "--key",
        verifier.trim(),
        "--checkpoint",
        &p("new.note"),
        "--previous",
        &p("old.note"),
        "--consistency",
        &p("proof.json"),
    ]);
    backed_up
}

/// The `last seq` the backup reported for `acme`.
fn backed_up_seq(report: &str) -> i64 {
    let line = report
        .lines()
        .find(|l| l.starts_with("org acme: last seq "))
        .unwrap_or_else(|| panic!("no acme line in {report}"));
    line["org acme: last seq ".len()..]
        .split(',')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_backup_taken_under_load_restores_checks_and_continues_the_log() {
    auditlog_server::init_tls();
    let dir = tempfile::tempdir().unwrap();
    let live_db = format!("sqlite://{}", dir.path().join("live.db").display());
    let client = reqwest::Client::new();
    let live = Live::start(&live_db, dir.path(), &client).await;

    let backup = dir.path().join("backup.db");
    let report = run_ok(&["backup", "--database", &live_db, "--to", backup.to_str().unwrap()]);
    let copied = backed_up_seq(&report);
    assert!(copied >= live.marker_seq(), "{report}");
    let old_note = live.checkpoint_note(&client, copied).await;
    let (key, marker, signing_key) = live.crash_after(&client, Some(copied)).await;

    let fresh = tempfile::tempdir().unwrap();
    let restored_path = fresh.path().join("restored.db");
    std::fs::copy(&backup, &restored_path).unwrap();
    let restored = format!("sqlite://{}", restored_path.display());
    let backed_up = restored_continues(
        &restored,
        &signing_key,
        &key,
        &marker,
        (copied, &old_note),
        fresh.path(),
    )
    .await;
    assert_eq!(backed_up, copied, "check reads what the backup reported");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pg_dump_taken_under_load_restores_checks_and_continues_the_log() {
    auditlog_server::init_tls();
    let Some(live_db) = auditlog_postgres::testing::fresh_database_url().await else {
        return;
    };
    let (Some(pg_dump), Some(pg_restore)) = (
        auditlog_postgres::testing::client_program("pg_dump"),
        auditlog_postgres::testing::client_program("pg_restore"),
    ) else {
        skip_or_fail("pg_dump and pg_restore are not installed beside the PostgreSQL server");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();
    let live = Live::start(&live_db, dir.path(), &client).await;

    // pg_dump reads one snapshot, as the documented backup does.
    let dump = dir.path().join("audit.dump");
    let status = Command::new(pg_dump)
        .args(["--format=custom", "--file"])
        .arg(&dump)
        .arg(&live_db)
        .status()
        .unwrap();
    assert!(status.success());
    let marker_seq = live.marker_seq();
    let old_note = live.checkpoint_note(&client, marker_seq).await;
    let (key, marker, signing_key) = live.crash_after(&client, None).await;

    let restored = auditlog_postgres::testing::fresh_database_url().await.unwrap();
    let status = Command::new(pg_restore)
        .args(["--no-owner", "--dbname"])
        .arg(&restored)
        .arg(&dump)
        .status()
        .unwrap();
    assert!(status.success());
    let fresh = tempfile::tempdir().unwrap();
    restored_continues(
        &restored,
        &signing_key,
        &key,
        &marker,
        (marker_seq, &old_note),
        fresh.path(),
    )
    .await;
}

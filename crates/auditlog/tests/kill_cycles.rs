//! Crash durability, checked the way Jepsen's set test checks it: the real
//! server takes concurrent ingest of distinct entries and is killed with
//! SIGKILL at a random moment, then started again, cycle after cycle. At
//! the end every acknowledged entry must be in the log exactly once (a
//! request cut off by a kill is indeterminate: it may or may not be there),
//! the sequence must have no gap, `auditlog verify` must accept the whole
//! log against a checkpoint signed after the last restart, and every entry
//! must reach the webhook receiver: deliveries pending at a kill resume.
//!
//! `AUDITLOG_KILL_CYCLES` sets the number of kills per backend (default 5,
//! so the suite stays quick; RELIABILITY.md records a run of 100 each).

mod common;

use common::*;

use std::collections::HashSet;
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rand::RngExt;

const CLIENTS: usize = 8;

fn serve(db: &str, key_file: &str, port: u16) -> Child {
    auditlog()
        .args(["serve", "--database", db, "--signing-key", key_file])
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--webhook-allow-subnet", "127.0.0.0/8", "--webhook-allow-http"])
        .args(["--webhook-timeout", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

async fn cycles(db: &str, dir: &std::path::Path) {
    let cycles: usize = std::env::var("AUDITLOG_KILL_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let SetTest {
        key,
        verifier,
        key_file,
        port,
        base,
        http,
        received,
    } = SetTest::prepare(db, dir, serve).await;
    let (mut acked, mut unknown) = (HashSet::new(), HashSet::new());
    for round in 0..cycles {
        let mut server = Killed(serve(db, &key_file, port));
        wait_ready(&http, &base).await;
        let stop = Arc::new(AtomicBool::new(false));
        let clients: Vec<_> = (0..CLIENTS)
            .map(|n| {
                tokio::spawn(ingest_distinct(
                    format!("r{round}-c{n}"),
                    base.clone(),
                    key.clone(),
                    stop.clone(),
                ))
            })
            .collect();
        let uptime = rand::rng().random_range(100..600);
        tokio::time::sleep(Duration::from_millis(uptime)).await;
        server.0.kill().unwrap(); // SIGKILL
        server.0.wait().unwrap();
        stop.store(true, Ordering::Relaxed);
        for c in clients {
            let (a, u) = c.await.unwrap();
            acked.extend(a);
            unknown.extend(u);
        }
    }

    // After the last restart: the whole log, and a checkpoint for it.
    let _server = Killed(serve(db, &key_file, port));
    wait_ready(&http, &base).await;
    let lines = export_verified(&http, &base, &key, &verifier, dir).await;
    let stored = check_set(&lines, &acked, &unknown);
    let delivered = await_deliveries(&lines, &received).await.len();
    let indeterminate_stored = stored.keys().filter(|id| unknown.contains(*id)).count();
    eprintln!(
        "{db_kind}: {cycles} SIGKILL cycles, {} entries acknowledged, 0 lost, 0 duplicated; {} entries \
         indeterminate (cut off by a kill), {indeterminate_stored} of those stored; {} entries in the log, verified; \
         {delivered} delivered to the webhook",
        acked.len(),
        unknown.len(),
        lines.len(),
        db_kind = backend_name(db),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_acknowledged_is_lost_across_sigkills_on_sqlite() {
    auditlog_server::init_tls();
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("audit.db").display());
    cycles(&db, dir.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_acknowledged_is_lost_across_sigkills_on_postgres() {
    let Some(db) = auditlog_postgres::testing::fresh_database_url().await else {
        return;
    };
    auditlog_server::init_tls();
    let dir = tempfile::tempdir().unwrap();
    cycles(&db, dir.path()).await;
}

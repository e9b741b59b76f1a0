//! Crashes at named places, not only at random moments: the real server
//! runs under concurrent ingest with a webhook endpoint, and a fault point
//! (`auditlog_server::workers::fault`) ends the process
//!
//! - after the writer's commit, before any caller is answered;
//! - after the dispatcher's claims commit, before anything is sent;
//! - after receivers answered, before the attempts are recorded.
//!
//! Each cycle arms one point to fire after a random number of passes, and
//! the server must end there by itself. Afterwards, on a clean restart,
//! the set test's checks hold (every acknowledged entry once, no gap,
//! `auditlog verify` passes), and the deliveries that were claimed, or
//! sent but not recorded, resume: every entry reaches the receiver, a
//! repeat carrying the same `webhook-id`.
//!
//! `AUDITLOG_FAULT_CYCLES` sets the cycles per point (default 2).

mod common;

use common::*;

use std::collections::HashSet;
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use auditlog_server::workers::fault;
use rand::RngExt;

const CLIENTS: usize = 6;

/// A server whose webhook receivers must answer within a second, so a
/// delivery held by a crashed process is due again two seconds later.
fn serve(db: &str, key_file: &str, port: u16, failpoints: Option<&str>, log: &std::path::Path) -> Child {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
    let mut cmd = auditlog();
    cmd.args(["serve", "--database", db, "--signing-key", key_file])
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--webhook-allow-subnet", "127.0.0.0/8", "--webhook-allow-http"])
        .args(["--webhook-timeout", "1"])
        .env_remove("FAILPOINTS")
        .stdout(Stdio::null())
        .stderr(log);
    if let Some(points) = failpoints {
        cmd.env("FAILPOINTS", points);
    }
    cmd.spawn().unwrap()
}

async fn at_fault_points(db: &str, dir: &std::path::Path) {
    let cycles: usize = std::env::var("AUDITLOG_FAULT_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    let log = dir.join("server.log");
    let SetTest {
        key,
        verifier,
        key_file,
        port,
        base,
        http,
        received,
    } = SetTest::prepare(db, dir, |db, key_file, port| serve(db, key_file, port, None, &log)).await;
    let (mut acked, mut unknown) = (HashSet::new(), HashSet::new());
    let mut crashes = 0;
    for point in [fault::AFTER_COMMIT, fault::AFTER_CLAIM, fault::AFTER_SEND] {
        for round in 0..cycles {
            let passes = rand::rng().random_range(1..20);
            let armed = format!("{point}={passes}*off->return");
            let mut server = Killed(serve(db, &key_file, port, Some(&armed), &log));
            wait_ready(&http, &base).await;
            let stop = Arc::new(AtomicBool::new(false));
            let clients: Vec<_> = (0..CLIENTS)
                .map(|n| {
                    let tag = format!("{point}-r{round}-c{n}").replace("::", "-");
                    tokio::spawn(ingest_distinct(tag, base.clone(), key.clone(), stop.clone()))
                })
                .collect();
            let mut status = None;
            for _ in 0..1200 {
                status = server.0.try_wait().unwrap();
                if status.is_some() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            stop.store(true, Ordering::Relaxed);
            for c in clients {
                let (a, u) = c.await.unwrap();
                acked.extend(a);
                unknown.extend(u);
            }
            let status = status.unwrap_or_else(|| panic!("{armed}: the server was still running after 60 s"));
            assert_eq!(
                status.code(),
                Some(fault::EXIT_STATUS),
                "{armed}: the server ended at the fault point (log: {})",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            crashes += 1;
        }
    }

    // A clean restart: the log holds the set test's promises, and every
    // delivery left claimed or unrecorded by a crash is made.
    let _server = Killed(serve(db, &key_file, port, None, &log));
    wait_ready(&http, &base).await;
    let lines = export_verified(&http, &base, &key, &verifier, dir).await;
    check_set(&lines, &acked, &unknown);
    let want = await_deliveries(&lines, &received).await;
    let repeats: usize = received.lock().unwrap().values().map(|(_, n)| n - 1).sum();
    eprintln!(
        "{db_kind}: {crashes} crashes at fault points, {} entries acknowledged, 0 lost, 0 duplicated; \
         {} indeterminate; {} entries delivered, {repeats} deliveries repeated after a crash",
        acked.len(),
        unknown.len(),
        want.len(),
        db_kind = backend_name(db),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashes_at_fault_points_lose_nothing_and_deliveries_resume_on_sqlite() {
    auditlog_server::init_tls();
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("audit.db").display());
    at_fault_points(&db, dir.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashes_at_fault_points_lose_nothing_and_deliveries_resume_on_postgres() {
    let Some(db) = auditlog_postgres::testing::fresh_database_url().await else {
        return;
    };
    auditlog_server::init_tls();
    let dir = tempfile::tempdir().unwrap();
    at_fault_points(&db, dir.path()).await;
}

//! The restore drill, as an operator would run it: ingest under load, take
//! `auditlog backup` in the middle of it, kill the server with SIGKILL,
//! restore the backup into a fresh place, prove it with `auditlog check`,
//! serve it again, and see the log go on: new entries continue the
//! sequence, and a consistency proof from a checkpoint signed before the
//! crash to one signed after verifies.

mod common;

use common::*;

use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::{Value, json};

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

/// Records one event and answers its entry, acknowledged.
async fn ingest_one(client: &reqwest::Client, base: &str, key: &str, id: &str) -> Value {
    let resp = client
        .post(format!("{base}/v1/orgs/acme/audit/events"))
        .bearer_auth(key)
        .json(&json!({"event": "guardrail.created", "resource": {"type": "guardrail", "id": id}, "details": {"name": id, "type": "pii"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let mut answer: Value = resp.json().await.unwrap();
    answer["entries"][0].take()
}

async fn get_text(client: &reqwest::Client, url: String, key: &str) -> String {
    let resp = client.get(url).bearer_auth(key).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    resp.text().await.unwrap()
}

/// Runs the command; panics unless it succeeds; answers its stdout.
fn run_ok(args: &[&str]) -> String {
    let out = auditlog().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
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
async fn a_backup_taken_under_load_restores_checks_and_continues_the_log() {
    auditlog_server::init_tls();
    let dir = tempfile::tempdir().unwrap();
    let live = format!("sqlite://{}", dir.path().join("live.db").display());
    let signing_key = dir.path().join("signing.key");
    acme_with_admin(&live);
    let key = read_write_key(&live);
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let server = Killed(serve(&live, &signing_key, port));
    wait_ready(&client, &base).await;

    let stop = Arc::new(AtomicBool::new(false));
    let load: Vec<_> = (0..2)
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
        let m = ingest_one(&client, &base, &key, "before-backup").await;
        if m["seq"].as_i64().unwrap() >= 3_000 {
            break m;
        }
    };
    let marker_seq = marker["seq"].as_i64().unwrap();

    let backup = dir.path().join("backup.db");
    let report = run_ok(&["backup", "--database", &live, "--to", backup.to_str().unwrap()]);
    let backed_up = backed_up_seq(&report);
    assert!(backed_up >= marker_seq, "{report}");
    // A checkpoint of the backed-up tree, signed before the crash.
    let old_note = get_text(
        &client,
        format!("{base}/v1/orgs/acme/audit/checkpoint?tree_size={backed_up}&format=note"),
        &key,
    )
    .await;

    // The load went on while the backup ran, past what it copied.
    let after = ingest_one(&client, &base, &key, "after-backup").await;
    assert!(after["seq"].as_i64().unwrap() > backed_up);
    stop.store(true, Ordering::Relaxed);
    drop(server); // SIGKILL
    for l in load {
        l.await.unwrap();
    }

    let fresh = tempfile::tempdir().unwrap();
    let restored_path = fresh.path().join("restored.db");
    std::fs::copy(&backup, &restored_path).unwrap();
    let restored = format!("sqlite://{}", restored_path.display());
    let checked = run_ok(&[
        "check",
        "--database",
        &restored,
        "--signing-key",
        signing_key.to_str().unwrap(),
    ]);
    assert!(checked.contains(&format!("ok acme: {backed_up} entries")), "{checked}");
    assert!(checked.contains("signature valid"), "{checked}");

    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let _server = Killed(serve(&restored, &signing_key, port));
    wait_ready(&client, &base).await;
    let marker_again: Value = client
        .get(format!(
            "{base}/v1/orgs/acme/audit/events/{}",
            marker["id"].as_str().unwrap()
        ))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(marker_again["seq"], marker["seq"]);
    let next = ingest_one(&client, &base, &key, "after-restore").await;
    assert_eq!(
        next["seq"].as_i64(),
        Some(backed_up + 1),
        "the sequence goes on from the backup"
    );

    let new_size = backed_up + 1;
    let new_note = get_text(
        &client,
        format!("{base}/v1/orgs/acme/audit/checkpoint?tree_size={new_size}&format=note"),
        &key,
    )
    .await;
    let proof = get_text(
        &client,
        format!("{base}/v1/orgs/acme/audit/proofs/consistency?from={backed_up}&to={new_size}"),
        &key,
    )
    .await;
    let verifier = run_ok(&[
        "key",
        "show-signing",
        "--database",
        &restored,
        "--signing-key",
        signing_key.to_str().unwrap(),
    ]);
    for (name, text) in [("old.note", &old_note), ("new.note", &new_note), ("proof.json", &proof)] {
        std::fs::write(fresh.path().join(name), text).unwrap();
    }
    let p = |name: &str| fresh.path().join(name).to_str().unwrap().to_owned();
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
}

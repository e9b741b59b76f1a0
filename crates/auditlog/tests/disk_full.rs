//! A full disk under a running server: the real binary keeps its SQLite
//! database on a small tmpfs, which the test fills to the last byte while
//! ingest goes on. Ingest must then answer 503 with a JSON error and a
//! `Retry-After`, lose nothing it acknowledged, and take entries again by
//! itself, without a restart, once space is freed.
//!
//! Mounting a tmpfs needs root (or `CAP_SYS_ADMIN`). Without it the test
//! says so loudly and skips, except under `CI=true`, where it fails.

mod common;

use common::*;

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

/// A small tmpfs, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(at).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .output();
        match out {
            Ok(o) if o.status.success() => Some(Tmpfs(at.to_owned())),
            Ok(o) => {
                cannot_mount(&String::from_utf8_lossy(&o.stderr));
                None
            }
            Err(e) => {
                cannot_mount(&e.to_string());
                None
            }
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn cannot_mount(why: &str) {
    skip_or_fail(&format!(
        "DISK-FULL TEST SKIPPED: cannot mount a tmpfs to fill ({}); it needs root or CAP_SYS_ADMIN",
        why.trim()
    ));
}

/// Writes zeros to `path` until the file system refuses.
fn fill(path: &Path) {
    let mut f = std::fs::File::create(path).unwrap();
    let block = vec![0u8; 64 * 1024];
    loop {
        if f.write_all(&block).is_err() {
            break;
        }
    }
    // The last partial block may still fit byte by byte.
    while f.write_all(&[0]).is_ok() {}
    let _ = f.sync_all();
}

/// Notes a batch's resource ids as acknowledged when it was.
fn record(status: reqwest::StatusCode, tag: &str, n: usize, acked: &mut HashSet<String>) {
    if status == 201 {
        acked.extend((0..n).map(|k| format!("{tag}-{k}")));
    }
}

async fn send(http: &reqwest::Client, base: &str, key: &str, tag: &str, n: usize) -> (reqwest::StatusCode, Value) {
    let events: Vec<Value> = (0..n)
        .map(|k| {
            let id = format!("{tag}-{k}");
            json!({"event": "guardrail.created", "resource": {"type": "guardrail", "id": id},
                   "details": {"name": id, "type": "pii", "padding": "x".repeat(2000)}})
        })
        .collect();
    let resp = http
        .post(format!("{base}/v1/orgs/acme/audit/events"))
        .bearer_auth(key)
        .json(&json!({ "events": events }))
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let retry_after = resp.headers().get("retry-after").cloned();
    let mut body: Value = resp.json().await.unwrap();
    if let Some(v) = retry_after {
        body["retry_after_header"] = json!(v.to_str().unwrap());
    }
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_gets_503_loses_nothing_and_recovers_by_itself() {
    auditlog_server::init_tls();
    let dir = tempfile::tempdir().unwrap();
    let Some(mnt) = Tmpfs::mount(&dir.path().join("small"), "6m") else {
        return;
    };
    let db = format!("sqlite://{}", mnt.0.join("audit.db").display());
    let key_file = dir.path().join("signing-key").display().to_string();
    admin(&db, &["org", "create", "acme", "--name", "Acme"]);
    let key = read_write_key(&db);
    let verifier = admin(&db, &["key", "show-signing", "--signing-key", &key_file])
        .trim()
        .to_owned();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let _server = Killed(
        auditlog()
            .args(["serve", "--database", &db, "--signing-key", &key_file])
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let http = reqwest::Client::new();
    wait_ready(&http, &base).await;

    let mut acked = HashSet::new();
    let mut batch = 0;
    for _ in 0..5 {
        let tag = format!("before-{batch}");
        batch += 1;
        let (status, _) = send(&http, &base, &key, &tag, 20).await;
        assert_eq!(status, 201);
        record(status, &tag, 20, &mut acked);
    }

    // No byte left: batches are refused, each with a clear 503.
    let filler = mnt.0.join("filler");
    fill(&filler);
    let mut refusal = None;
    for _ in 0..50 {
        let tag = format!("full-{batch}");
        batch += 1;
        let (status, body) = send(&http, &base, &key, &tag, 50).await;
        record(status, &tag, 50, &mut acked);
        match status.as_u16() {
            201 => continue, // space the database already had
            503 => {
                refusal = Some(body);
                break;
            }
            other => panic!("a full disk gave {other}: {body}"),
        }
    }
    let refusal = refusal.expect("ingest is refused once the disk is full");
    assert_eq!(refusal["error"]["code"], "unavailable", "{refusal}");
    assert!(
        refusal["error"]["message"].as_str().unwrap().contains("retry"),
        "{refusal}"
    );
    assert!(
        refusal["retry_after_header"].is_string(),
        "503 carries Retry-After: {refusal}"
    );
    // Still refused, and still answering, while the disk stays full.
    let (status, _) = send(&http, &base, &key, "still-full", 50).await;
    assert_eq!(status, 503);

    // Space freed: the same server takes entries again.
    std::fs::remove_file(&filler).unwrap();
    let mut recovered = false;
    for _ in 0..100 {
        let tag = format!("after-{batch}");
        batch += 1;
        let (status, body) = send(&http, &base, &key, &tag, 20).await;
        record(status, &tag, 20, &mut acked);
        if status == 201 {
            recovered = true;
            break;
        }
        assert_eq!(status, 503, "{body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(recovered, "ingest recovers by itself once space is freed");

    // Nothing acknowledged is lost; nothing refused crept in; the log verifies.
    let lines = export_verified(&http, &base, &key, &verifier, dir.path()).await;
    let stored: HashSet<String> = lines
        .iter()
        .filter(|e| e["event"] == "guardrail.created")
        .map(|e| e["resource"]["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(stored, acked, "exactly the acknowledged entries are stored");
}

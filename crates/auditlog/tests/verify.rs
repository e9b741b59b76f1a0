//! Tampering, caught offline: the real service signs its log; someone with
//! the database changes a byte, deletes, reorders or inserts entries, or a
//! different key is offered; `auditlog verify` on a fresh export names the
//! entry each time and exits non-zero.

mod common;

use common::*;

use std::process::Stdio;

use serde_json::{Value, json};

struct Service {
    _process: Killed,
    base: String,
    key: String,
    db_path: std::path::PathBuf,
    dir: tempfile::TempDir,
    client: reqwest::Client,
}

impl Service {
    fn run(&self, args: &[&str]) -> (bool, String) {
        let out = auditlog().args(args).output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
        )
    }

    /// A fresh export with proofs and the checkpoint it is proven against,
    /// saved as files; returns their paths.
    async fn export(&self, name: &str) -> (String, String) {
        let resp = self
            .client
            .get(format!(
                "{}/v1/orgs/acme/audit/export?format=jsonl&proofs=true",
                self.base
            ))
            .bearer_auth(&self.key)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let size = resp.headers()["x-auditlog-tree-size"].to_str().unwrap().to_owned();
        let body = resp.text().await.unwrap();
        let cp = self
            .client
            .get(format!(
                "{}/v1/orgs/acme/audit/checkpoint?format=note&tree_size={size}",
                self.base
            ))
            .bearer_auth(&self.key)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let export = self.dir.path().join(format!("{name}.jsonl"));
        let checkpoint = self.dir.path().join(format!("{name}.checkpoint"));
        std::fs::write(&export, body).unwrap();
        std::fs::write(&checkpoint, cp).unwrap();
        (export.display().to_string(), checkpoint.display().to_string())
    }

    fn db(&self) -> auditlog_sqlite::rusqlite::Connection {
        auditlog_sqlite::rusqlite::Connection::open(&self.db_path).unwrap()
    }
}

async fn start() -> Service {
    auditlog_server::init_tls();
    let dir = tempfile::tempdir().unwrap();
    let db_path = dir.path().join("log.db");
    let db = format!("sqlite://{}", db_path.display());
    admin(&db, &["org", "create", "acme", "--name", "Acme"]);
    let key = read_write_key(&db);
    let port = free_port();
    let process = Killed(
        auditlog()
            .args(["serve", "--database", &db, "--listen", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    wait_ready(&client, &base).await;
    let events: Vec<Value> = (0..20)
        .map(|i| {
            json!({"event": "project.created", "actor": "ada@acme.com",
                   "resource": {"type": "project", "id": format!("p_{i}")}, "details": {"name": "Prod"}})
        })
        .collect();
    let resp = client
        .post(format!("{base}/v1/orgs/acme/audit/events"))
        .bearer_auth(&key)
        .json(&json!({ "events": events }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    Service {
        _process: process,
        base,
        key,
        db_path,
        dir,
        client,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_names_every_tampered_entry() {
    let s = start().await;
    let db_url = format!("sqlite://{}", s.db_path.display());
    let (ok, verifier) = s.run(&["key", "show-signing", "--database", &db_url]);
    assert!(ok, "{verifier}");
    let verifier = verifier.trim().to_owned();
    assert!(verifier.starts_with("auditlog+"), "{verifier}");

    let (export, cp) = s.export("honest").await;
    let verify = |export: &str, cp: &str| {
        s.run(&[
            "verify",
            "--key",
            &verifier,
            "--checkpoint",
            cp,
            "--export",
            export,
            "--complete",
        ])
    };
    let (ok, out) = verify(&export, &cp);
    assert!(ok, "an honest export verifies:\n{out}");
    assert!(out.contains("VERIFIED"), "{out}");

    // A forged line in the export file: an entry the log never held.
    let mut forged: Value =
        serde_json::from_str(std::fs::read_to_string(&export).unwrap().lines().next().unwrap()).unwrap();
    forged["details"]["name"] = json!("Forged");
    forged["seq"] = json!(forged["inclusion_proof"]["tree_size"].as_u64().unwrap() + 1);
    let with_forgery = format!("{}{}\n", std::fs::read_to_string(&export).unwrap(), forged);
    let forged_path = s.dir.path().join("forged.jsonl");
    std::fs::write(&forged_path, with_forgery).unwrap();
    let (ok, out) = verify(forged_path.to_str().unwrap(), &cp);
    assert!(!ok, "{out}");
    assert!(out.contains(&format!("entry seq {}", forged["seq"])), "{out}");

    // Another key: the checkpoint is not vouched for.
    let other_key = s.dir.path().join("other.key");
    let (_, other) = s.run(&[
        "key",
        "show-signing",
        "--database",
        &db_url,
        "--signing-key",
        other_key.to_str().unwrap(),
    ]);
    let (ok, out) = s.run(&[
        "verify",
        "--key",
        other.trim(),
        "--checkpoint",
        &cp,
        "--export",
        &export,
    ]);
    assert!(!ok && out.contains("does not verify with key"), "{out}");

    // One byte of one entry's details, changed in the database.
    let db = s.db();
    db.execute(
        "UPDATE entries SET details = replace(details, 'Prod', 'Prot') WHERE seq = 5",
        [],
    )
    .unwrap();
    let (export, cp) = s.export("changed").await;
    let (ok, out) = verify(&export, &cp);
    assert!(!ok, "{out}");
    assert!(out.contains("entry seq 5 "), "names the changed entry:\n{out}");
    assert!(!out.contains("entry seq 6 "), "and only it:\n{out}");

    // An entry deleted.
    db.execute("DELETE FROM entries WHERE seq = 7", []).unwrap();
    let (export, cp) = s.export("deleted").await;
    let (ok, out) = verify(&export, &cp);
    assert!(!ok);
    assert!(out.contains("entry seq 7: missing"), "names the deleted entry:\n{out}");

    // Two entries swapped.
    db.execute_batch(
        "UPDATE entries SET seq = -3 WHERE seq = 3; UPDATE entries SET seq = 3 WHERE seq = 4; \
         UPDATE entries SET seq = 4 WHERE seq = -3;",
    )
    .unwrap();
    let (export, cp) = s.export("reordered").await;
    let (ok, out) = verify(&export, &cp);
    assert!(!ok);
    assert!(
        out.contains("entry seq 3 ") && out.contains("entry seq 4 "),
        "names both:\n{out}"
    );

    // An entry inserted into the database beyond the tree: the service
    // cannot prove it and refuses to export it as if it could.
    let size: i64 = db.query_row("SELECT size FROM log_heads", [], |r| r.get(0)).unwrap();
    db.execute_batch(&format!(
        "INSERT INTO entries SELECT org_id, {next}, randomblob(16), ts, received_at, actor_type, actor, event, \
         resource_type, resource_id, resource_name, details, ip_address, user_agent, request_id, NULL \
         FROM entries WHERE seq = 10; UPDATE log_heads SET size = {next};",
        next = size + 1
    ))
    .unwrap();
    let resp = s
        .client
        .get(format!("{}/v1/orgs/acme/audit/export?format=jsonl&proofs=true", s.base))
        .bearer_auth(&s.key)
        .send()
        .await
        .unwrap();
    let refused = match resp.status().as_u16() {
        200 => resp.text().await.is_err(),
        status => status >= 500,
    };
    assert!(refused, "an entry outside the tree is not exported with a proof");
}

//! Tampering, caught offline: the real service signs its log; someone with
//! the database changes a byte, deletes, reorders or inserts entries, or a
//! different key is offered; `auditlog verify` on a fresh export names the
//! entry each time and exits non-zero. What retention removed is told from
//! what was deleted, and an export with proofs verifies on its own.

mod common;

use common::*;

use std::process::Stdio;
use std::sync::Arc;

use auditlog_domain::{Clock, ManualClock, Store, SystemClock, Timestamp};
use serde_json::{Value, json};

const DAY_MS: i64 = 86_400_000;

struct Service {
    process: Option<Killed>,
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
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
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
        let db = auditlog_sqlite::rusqlite::Connection::open(&self.db_path).unwrap();
        // The running service writes its own read records; wait for its lock.
        db.busy_timeout(std::time::Duration::from_secs(30)).unwrap();
        db
    }

    fn db_url(&self) -> String {
        format!("sqlite://{}", self.db_path.display())
    }

    /// The service's verifier key, as `auditlog key show-signing` prints it.
    fn verifier(&self) -> String {
        let (ok, verifier) = self.run(&["key", "show-signing", "--database", &self.db_url()]);
        assert!(ok, "{verifier}");
        verifier.trim().to_owned()
    }

    /// Starts the server on a fresh port and waits until it is ready.
    async fn serve(&mut self) {
        let port = free_port();
        self.process = Some(Killed(
            auditlog()
                .args(["serve", "--database", &self.db_url()])
                .args(["--listen", &format!("127.0.0.1:{port}")])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        ));
        self.base = format!("http://127.0.0.1:{port}");
        wait_ready(&self.client, &self.base).await;
    }

    /// One retention pass as the service would make it at `now`: the
    /// server is stopped meanwhile, as the pass's clock is the test's.
    async fn purge_at(&mut self, now: Timestamp) {
        self.process = None;
        let store: Arc<dyn Store> = Arc::new(auditlog_sqlite::SqliteStore::open(&self.db_path).unwrap());
        let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(now));
        let (writer, task) = auditlog_server::Writer::spawn(store.clone(), clock.clone(), Default::default());
        auditlog_server::workers::retention::purge_once(store.as_ref(), &writer, clock.as_ref(), 100)
            .await
            .unwrap();
        drop(writer);
        task.await.unwrap();
        drop(store);
        self.serve().await;
    }

    /// `auditlog verify --key … --complete` with these further arguments.
    fn verify_complete(&self, verifier: &str, args: &[&str]) -> (bool, String) {
        let mut all = vec!["verify", "--key", verifier, "--complete"];
        all.extend_from_slice(args);
        self.run(&all)
    }
}

/// `acme`'s twenty `guardrail.created` events; the first `backdated` of them
/// happened 80 days ago (within the plan's 90), the rest now.
fn guardrails(backdated: usize) -> Vec<Value> {
    let long_ago = SystemClock.now().minus_days(80).to_rfc3339();
    (0..20)
        .map(|i| {
            let mut e = json!({"event": "guardrail.created", "actor": "ada@acme.com",
                   "resource": {"type": "guardrail", "id": format!("g_{i}")}, "details": {"name": "Prod", "type": "pii"}});
            if i < backdated {
                e["timestamp"] = json!(long_ago);
            }
            e
        })
        .collect()
}

async fn start() -> Service {
    start_with(guardrails(0)).await
}

async fn start_with(events: Vec<Value>) -> Service {
    auditlog_server::init_tls();
    let dir = tempfile::tempdir().unwrap();
    let db_path = dir.path().join("log.db");
    let db = format!("sqlite://{}", db_path.display());
    admin(&db, &["org", "create", "acme", "--name", "Acme"]);
    let key = read_write_key(&db);
    let mut service = Service {
        process: None,
        base: String::new(),
        key,
        db_path,
        dir,
        client: reqwest::Client::new(),
    };
    service.serve().await;
    let resp = service
        .client
        .post(format!("{}/v1/orgs/acme/audit/events", service.base))
        .bearer_auth(&service.key)
        .json(&json!({ "events": events }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    service
}

fn lines(path: &str) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Writes `lines` as a JSON Lines file in the test's directory.
fn write_lines(s: &Service, name: &str, lines: &[Value]) -> String {
    let path = s.dir.path().join(name);
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_names_every_tampered_entry() {
    let s = start().await;
    let db_url = format!("sqlite://{}", s.db_path.display());
    let verifier = s.verifier();
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

    // An entry deleted, and the oldest one: no gap is before the export.
    db.execute("DELETE FROM entries WHERE seq IN (1, 7)", []).unwrap();
    let (export, cp) = s.export("deleted").await;
    let (ok, out) = verify(&export, &cp);
    assert!(!ok);
    for seq in [1, 7] {
        assert!(
            out.contains(&format!("seq {seq} missing: not covered by any retention purge entry")),
            "names the deleted entry {seq}:\n{out}"
        );
    }

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
    // cannot prove it and refuses to export it as if it could. One
    // transaction that reads the head itself, because the running service
    // may be appending its own read records at the same moment.
    db.execute_batch(
        // A copy of entry 10 whatever the table's columns are.
        "BEGIN IMMEDIATE; \
         CREATE TEMP TABLE copied AS SELECT * FROM entries WHERE seq = 10 \
           AND org_id = (SELECT org_id FROM orgs WHERE slug = 'acme'); \
         UPDATE copied SET id = randomblob(16), idempotency_key = NULL, \
           seq = (SELECT size + 1 FROM log_heads WHERE log_heads.org_id = copied.org_id); \
         INSERT INTO entries SELECT * FROM copied; \
         UPDATE log_heads SET size = size + 1 WHERE org_id = (SELECT org_id FROM copied); \
         COMMIT;",
    )
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_tells_retention_from_deletion() {
    let mut s = start_with(guardrails(8)).await;
    let verifier = s.verifier();
    // Twenty days on, the eight events of 80 days ago are past retention.
    s.purge_at(SystemClock.now().plus_millis(20 * DAY_MS)).await;

    let (export, cp) = s.export("purged").await;
    let exported = lines(&export);
    let purge = exported
        .iter()
        .find(|l| l["event"] == "audit_log.retention_purged")
        .expect("the purge is recorded")
        .clone();
    assert_eq!(purge["details"]["count"], 8, "{purge}");
    let (purge_seq, last_purged) = (
        purge["seq"].as_u64().unwrap(),
        purge["details"]["last_seq"].as_u64().unwrap(),
    );
    let (ok, out) = s.verify_complete(&verifier, &["--export", &export]);
    assert!(ok, "a purged log verifies complete:\n{out}");
    assert!(
        out.contains(&format!(
            "(8 entries): expired by retention (purge entry seq {purge_seq})"
        )),
        "{out}"
    );
    let (ok, out) = s.verify_complete(&verifier, &["--export", &export, "--checkpoint", &cp]);
    assert!(ok, "and with its checkpoint apart:\n{out}");

    // A surviving entry deleted behind the service's back.
    let mut survivors: Vec<u64> = exported
        .iter()
        .filter(|l| l["event"] == "guardrail.created")
        .map(|l| l["seq"].as_u64().unwrap())
        .collect();
    survivors.sort_unstable();
    assert_eq!(survivors.len(), 12);
    assert!(survivors[0] > last_purged);
    let victim = survivors[6];
    s.db()
        .execute("DELETE FROM entries WHERE seq = ?1", [victim as i64])
        .unwrap();
    let (export, _) = s.export("deleted").await;
    let (ok, out) = s.verify_complete(&verifier, &["--export", &export]);
    assert!(!ok, "{out}");
    let named = format!("seq {victim} missing: not covered by any retention purge entry");
    assert!(out.contains(&named), "{out}");
    assert!(
        out.contains("expired by retention"),
        "the purge still accounts for its own:\n{out}"
    );

    // A purge entry forged into the file to cover the deletion.
    let mut exported = lines(&export);
    let checkpoint_line = exported.pop().unwrap();
    assert_eq!(checkpoint_line["kind"], "checkpoint");
    let size = exported[0]["inclusion_proof"]["tree_size"].as_u64().unwrap();
    let mut forged = exported.iter().find(|l| l["seq"] == purge_seq).unwrap().clone();
    forged["seq"] = json!(size + 1);
    // A forger recomputes nothing the proof does not need.
    forged.as_object_mut().unwrap().remove("leaf_hash");
    forged["details"] =
        json!({"cutoff": purge["details"]["cutoff"], "first_seq": victim, "last_seq": victim, "count": 1});
    exported.extend([forged, checkpoint_line]);
    let (ok, out) = s.verify_complete(&verifier, &["--export", &write_lines(&s, "forged.jsonl", &exported)]);
    assert!(!ok, "{out}");
    assert!(
        out.contains(&format!("entry seq {} ", size + 1)) && out.contains("is not in the signed log"),
        "the forged entry's proof fails:\n{out}"
    );
    assert!(out.contains(&named), "and explains nothing:\n{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_with_proofs_verifies_with_the_key_alone() {
    let s = start().await;
    let verifier = s.verifier();
    let (export, cp) = s.export("one-file").await;
    let mut exported = lines(&export);
    let last = exported.last().unwrap().clone();
    assert_eq!(last["kind"], "checkpoint", "the last line is the checkpoint: {last}");
    let (ok, out) = s.verify_complete(&verifier, &["--export", &export]);
    assert!(ok, "{out}");
    assert!(out.contains(&format!("line {}: signed by", exported.len())), "{out}");
    let (ok, out) = s.verify_complete(&verifier, &["--export", &export, "--checkpoint", &cp]);
    assert!(ok, "the checkpoint apart still works:\n{out}");

    // The checkpoint line's root hash replaced: its signature fails.
    let note = last["note"].as_str().unwrap();
    let root = note.lines().nth(2).unwrap();
    let other_root = if root.starts_with('A') {
        root.replacen('A', "B", 1)
    } else {
        format!("A{}", &root[1..])
    };
    *exported.last_mut().unwrap() = json!({"kind": "checkpoint", "note": note.replacen(root, &other_root, 1)});
    let tampered = write_lines(&s, "tampered.jsonl", &exported);
    let (ok, out) = s.verify_complete(&verifier, &["--export", &tampered]);
    assert!(!ok && out.contains("does not verify with key"), "{out}");

    // No checkpoint at all: nothing to prove against.
    exported.pop();
    let bare = write_lines(&s, "bare.jsonl", &exported);
    let (ok, out) = s.verify_complete(&verifier, &["--export", &bare]);
    assert!(!ok && out.contains("no checkpoint"), "{out}");
    let (ok, out) = s.verify_complete(&verifier, &["--export", &bare, "--checkpoint", &cp]);
    assert!(ok, "{out}");
}

/// Personal values are checked against the commitments their leaves hold:
/// a changed value fails even with its salt, a disclosure that cannot be
/// checked is named, and after the person is erased a complete export
/// verifies again, with their values shown erased.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn personal_values_verify_opened_and_erased() {
    let s = start().await;
    let verifier = s.verifier();
    let (export, cp) = s.export("before").await;
    let verify = |export: &str, cp: &str| s.verify_complete(&verifier, &["--checkpoint", cp, "--export", export]);
    let (ok, out) = verify(&export, &cp);
    assert!(ok, "{out}");

    let honest = lines(&export);
    let at = honest.iter().position(|l| l["actor"]["id"] == "ada@acme.com").unwrap();
    assert!(honest[at]["personal"]["actor.id"]["salt"].is_string(), "{}", honest[at]);
    let seq = honest[at]["seq"].clone();
    // Another person's email with ada's salt: another commitment, so
    // another leaf. The exported leaf hash is dropped, as a forger would.
    let mut swapped = honest.clone();
    swapped[at]["actor"]["id"] = json!("eve@acme.com");
    swapped[at].as_object_mut().unwrap().remove("leaf_hash");
    let (ok, out) = verify(&write_lines(&s, "swapped.jsonl", &swapped), &cp);
    assert!(!ok, "{out}");
    assert!(out.contains(&format!("entry seq {seq}")), "{out}");
    // A value claimed erased without saying so cannot be checked at all.
    let mut unsaid = honest.clone();
    unsaid[at]["personal"]["actor.id"] = json!({"commitment": "00".repeat(32), "erased": false});
    let (ok, out) = verify(&write_lines(&s, "unsaid.jsonl", &unsaid), &cp);
    assert!(!ok && out.contains("cannot be checked"), "{out}");

    let (ok, out) = s.run(&[
        "member",
        "erase",
        "--org",
        "acme",
        "--email",
        "ada@acme.com",
        "--database",
        &s.db_url(),
    ]);
    assert!(ok && out.contains("20 entries held their values"), "{out}");
    let (export, cp) = s.export("after").await;
    let (ok, out) = verify(&export, &cp);
    assert!(ok, "the erased log still verifies:\n{out}");
    let text = std::fs::read_to_string(&export).unwrap();
    assert!(!text.contains("ada@acme.com"), "{text}");
    let after = lines(&export);
    let erased = after.iter().find(|l| l["seq"] == seq).unwrap();
    assert_eq!(erased["actor"]["id"], "[erased]");
    assert_eq!(erased["personal"]["actor.id"]["erased"], true);
}

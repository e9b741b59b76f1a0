//! What the command-line tests share: the binary under test, a free port,
//! and child processes that are killed whatever way a test ends.

#![allow(dead_code)]

pub mod browser;
pub mod demo;
pub mod node;
pub mod oidc;
pub mod syslog;

use std::process::{Child, Command};

pub fn auditlog() -> Command {
    Command::new(env!("CARGO_BIN_EXE_auditlog"))
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child process killed when the test ends, however it ends.
pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits until the server at `base` answers `/readyz`.
pub async fn wait_ready(client: &reqwest::Client, base: &str) {
    for _ in 0..200 {
        if client
            .get(format!("{base}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the server did not become ready");
}

/// The password the tests give people they add.
pub const PASSWORD: &str = "a long passphrase";

/// Runs an administrative command against `db` (people added get
/// [`PASSWORD`]); panics unless it succeeds, returns its stdout.
/// The organization `acme` with `adam@acme.com` as its admin, made with
/// the command line.
pub fn acme_with_admin(db: &str) {
    admin(db, &["org", "create", "acme", "--name", "Acme"]);
    admin(
        db,
        &[
            "member",
            "add",
            "--org",
            "acme",
            "--email",
            "adam@acme.com",
            "--role",
            "admin",
        ],
    );
}

pub fn admin(db: &str, args: &[&str]) -> String {
    let out = auditlog()
        .args(args)
        .args(["--database", db])
        .env("AUDITLOG_PASSWORD", PASSWORD)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Creates an `acme` API key that may write and read; returns it.
pub fn read_write_key(db: &str) -> String {
    admin(
        db,
        &[
            "key",
            "create",
            "--org",
            "acme",
            "--scope",
            "audit:write",
            "--scope",
            "audit:read",
        ],
    )
    .lines()
    .last()
    .unwrap()
    .to_owned()
}

/// What a webhook receiver got: each delivery's headers and body.
pub type Deliveries = tokio::sync::mpsc::UnboundedReceiver<(axum::http::HeaderMap, axum::body::Bytes)>;

/// A webhook receiver on `port` answering 200 to every `POST /hook`.
pub async fn webhook_receiver(port: u16) -> Deliveries {
    use axum::body::Bytes;
    use axum::extract::State;
    use axum::http::HeaderMap;
    use tokio::sync::mpsc::UnboundedSender;

    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let app = axum::Router::new()
        .route(
            "/hook",
            axum::routing::post(
                |State(tx): State<UnboundedSender<(HeaderMap, Bytes)>>, h: HeaderMap, b: Bytes| async move {
                    let _ = tx.send((h, b));
                    "ok"
                },
            ),
        )
        .with_state(tx);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    rx
}

/// Signs `email` in with [`PASSWORD`] and creates a webhook for `events`
/// delivered to `url`; returns its signing secret.
pub async fn create_webhook(client: &reqwest::Client, base: &str, email: &str, url: &str, events: &[&str]) -> String {
    let resp = client
        .post(format!("{base}/v1/session"))
        .json(&serde_json::json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    let cookie = resp.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let session: serde_json::Value = resp.json().await.unwrap();
    let hook: serde_json::Value = client
        .post(format!("{base}/v1/orgs/acme/webhooks"))
        .header("cookie", &cookie)
        .header("x-csrf-token", session["csrf_token"].as_str().unwrap())
        .json(&serde_json::json!({"url": url, "events": events}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    hook["secret"].as_str().expect("webhook created").to_owned()
}

/// The whole log of `acme` as exported with proofs, after checking that its
/// sequence has no gap and that `auditlog verify --complete` accepts it
/// against a checkpoint signed for its size. Returns the exported lines.
pub async fn export_verified(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    verifier: &str,
    dir: &std::path::Path,
) -> Vec<serde_json::Value> {
    let export = client
        .get(format!("{base}/v1/orgs/acme/audit/export?format=jsonl&proofs=true"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    assert_eq!(export.status(), 200);
    let size: u64 = export.headers()["x-auditlog-tree-size"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let body = export.text().await.unwrap();
    // Entries, without the export's closing checkpoint line.
    let lines: Vec<serde_json::Value> = body
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|l| l["kind"] != "checkpoint")
        .collect();
    let mut seqs: Vec<u64> = lines.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=size).collect::<Vec<_>>(), "one entry per seq, no gap");
    let checkpoint = client
        .get(format!(
            "{base}/v1/orgs/acme/audit/checkpoint?format=note&tree_size={size}"
        ))
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let (export_file, checkpoint_file) = (dir.join("log.jsonl"), dir.join("log.checkpoint"));
    std::fs::write(&export_file, &body).unwrap();
    std::fs::write(&checkpoint_file, &checkpoint).unwrap();
    let out = auditlog()
        .args(["verify", "--key", verifier, "--complete"])
        .args(["--checkpoint", &checkpoint_file.display().to_string()])
        .args(["--export", &export_file.display().to_string()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "auditlog verify:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    lines
}

/// One client of a Jepsen-style set test: batches of 1–5 distinct
/// `guardrail.created` events (resource ids `{tag}-{i}-{k}`) until told to
/// stop. Returns the ids acknowledged and those left indeterminate (the
/// request failed or was cut off, so it may or may not have committed).
pub async fn ingest_distinct(
    tag: String,
    base: String,
    key: String,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> (Vec<String>, Vec<String>) {
    use serde_json::{Value, json};
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .unwrap();
    let (mut acked, mut unknown) = (Vec::new(), Vec::new());
    let mut i = 0;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        let size = 1 + (i % 5);
        let ids: Vec<String> = (0..size).map(|k| format!("{tag}-{i}-{k}")).collect();
        i += 1;
        let events: Vec<Value> = ids
            .iter()
            .map(|id| json!({"event": "guardrail.created", "resource": {"type": "guardrail", "id": id}, "details": {"name": id, "type": "pii"}}))
            .collect();
        match http
            .post(format!("{base}/v1/orgs/acme/audit/events"))
            .bearer_auth(&key)
            .json(&json!({ "events": events }))
            .send()
            .await
        {
            Ok(resp) if resp.status() == 201 => acked.extend(ids),
            Ok(resp) if resp.status().is_server_error() => unknown.extend(ids),
            Ok(resp) => panic!("a valid batch was refused: {}", resp.status()),
            Err(_) => {
                // Cut off by a crash, or the server is not up yet.
                unknown.extend(ids);
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        }
    }
    (acked, unknown)
}

/// The set test's verdict on an exported log: every acknowledged id is
/// stored, nothing is stored twice, and nothing stored was never sent.
/// Returns how many times each `guardrail.created` resource id is stored.
pub fn check_set(
    lines: &[serde_json::Value],
    acked: &std::collections::HashSet<String>,
    unknown: &std::collections::HashSet<String>,
) -> std::collections::HashMap<String, usize> {
    let mut stored: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for e in lines.iter().filter(|e| e["event"] == "guardrail.created") {
        *stored
            .entry(e["resource"]["id"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    let lost: Vec<&String> = acked.iter().filter(|id| !stored.contains_key(*id)).collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged entries lost: {:?}",
        lost.len(),
        &lost[..lost.len().min(5)]
    );
    for (id, n) in &stored {
        assert_eq!(*n, 1, "{id} stored {n} times");
        assert!(acked.contains(id) || unknown.contains(id), "{id} stored but never sent");
    }
    stored
}

/// Every delivery the receiver got: per entry seq, its `webhook-id` and
/// how many times it arrived.
pub type Received = std::sync::Arc<std::sync::Mutex<std::collections::HashMap<u64, (String, usize)>>>;

pub async fn collect(mut deliveries: Deliveries, secret: String, received: Received) {
    let wh = standardwebhooks::Webhook::new(&secret).unwrap();
    while let Some((headers, payload)) = deliveries.recv().await {
        wh.verify(&payload, &headers).expect("signature verifies");
        let p: serde_json::Value = serde_json::from_slice(&payload).unwrap();
        let seq = p["data"]["seq"].as_u64().unwrap();
        let id = headers["webhook-id"].to_str().unwrap().to_owned();
        let mut got = received.lock().unwrap();
        let slot = got.entry(seq).or_insert_with(|| (id.clone(), 0));
        assert_eq!(slot.0, id, "a repeated delivery has the same webhook-id");
        slot.1 += 1;
    }
}

/// Waits (up to a minute) until every `guardrail.created` entry of `lines`
/// has reached the receiver; returns their sequence numbers.
pub async fn await_deliveries(lines: &[serde_json::Value], received: &Received) -> std::collections::HashSet<u64> {
    let want: std::collections::HashSet<u64> = lines
        .iter()
        .filter(|e| e["event"] == "guardrail.created")
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    for waited in 0.. {
        let missing = want
            .iter()
            .filter(|s| !received.lock().unwrap().contains_key(s))
            .count();
        if missing == 0 {
            break;
        }
        assert!(waited < 600, "{missing} of {} entries never delivered", want.len());
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    want
}

/// What a set test with a webhook endpoint starts from: `acme` with an
/// admin, a read-write key, the verifier of the signing key in
/// `signing-key` under the test's directory, a port for the server, and a
/// receiver subscribed to every `guardrail.*` entry.
pub struct SetTest {
    pub key: String,
    pub verifier: String,
    pub key_file: String,
    pub port: u16,
    pub base: String,
    pub http: reqwest::Client,
    pub received: Received,
}

impl SetTest {
    /// Provisions `db`; `serve(db, key_file, port)` starts the server once
    /// to create the webhook.
    pub async fn prepare(db: &str, dir: &std::path::Path, serve: impl Fn(&str, &str, u16) -> Child) -> Self {
        let key_file = dir.join("signing-key").display().to_string();
        acme_with_admin(db);
        let key = read_write_key(db);
        let verifier = admin(db, &["key", "show-signing", "--signing-key", &key_file])
            .trim()
            .to_owned();
        let port = free_port();
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let hook_port = free_port();
        let deliveries = webhook_receiver(hook_port).await;
        let received = Received::default();
        {
            let _server = Killed(serve(db, &key_file, port));
            wait_ready(&http, &base).await;
            let hook_url = format!("http://127.0.0.1:{hook_port}/hook");
            let secret = create_webhook(&http, &base, "adam@acme.com", &hook_url, &["guardrail.*"]).await;
            tokio::spawn(collect(deliveries, secret, received.clone()));
        }
        Self {
            key,
            verifier,
            key_file,
            port,
            base,
            http,
            received,
        }
    }
}

/// The backend a database URL names, for the tests' reports.
pub fn backend_name(db: &str) -> &'static str {
    if db.starts_with("postgres") {
        "PostgreSQL"
    } else {
        "SQLite"
    }
}

/// A test that cannot run here says so loudly and skips, except under
/// `CI=true`, where what it needs must be present: there it fails.
pub fn skip_or_fail(message: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{message}; CI=true requires it");
    }
    eprintln!("\n!!! {message} !!!\n");
}

/// Records one event and answers its entry, acknowledged.
pub async fn ingest_one(client: &reqwest::Client, base: &str, key: &str, id: &str) -> serde_json::Value {
    let resp = client
        .post(format!("{base}/v1/orgs/acme/audit/events"))
        .bearer_auth(key)
        .json(&serde_json::json!({"event": "guardrail.created", "resource": {"type": "guardrail", "id": id}, "details": {"name": id, "type": "pii"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let mut answer: serde_json::Value = resp.json().await.unwrap();
    answer["entries"][0].take()
}

/// GETs `url` with the key; panics unless it is 200; answers the body.
pub async fn get_text(client: &reqwest::Client, url: String, key: &str) -> String {
    let resp = client.get(url).bearer_auth(key).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    resp.text().await.unwrap()
}

/// Runs the command; panics unless it succeeds; answers its stdout.
pub fn run_ok(args: &[&str]) -> String {
    let out = auditlog().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

//! Two replicas, one PostgreSQL: the real binary twice on one database,
//! many clients ingesting into both at once, one replica killed with
//! SIGKILL mid-load. Afterwards every acknowledged entry is there exactly
//! once, the organization's sequence has no gap, `auditlog verify` accepts
//! the log against a signed checkpoint, and every entry reached the webhook
//! receiver at least once, correctly signed.
//!
//! Requests cut off by the kill are indeterminate, as in Jepsen's set test:
//! they may or may not have committed, so they are neither required nor
//! forbidden; what must hold is that nothing acknowledged is lost and
//! nothing is stored twice.

mod common;

use common::*;

use std::collections::{HashMap, HashSet};
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::{Value, json};

const CLIENTS: usize = 12;

fn serve(db: &str, key: &str, port: u16) -> Child {
    auditlog()
        .args(["serve", "--database", db, "--signing-key", key])
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--webhook-allow-subnet", "127.0.0.0/8", "--webhook-allow-http"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// One client: sends batches of distinct events, alternating between the
/// replicas still believed up, until told to stop. Returns the resource ids
/// acknowledged (with their entry ids) and those left indeterminate.
async fn client(
    n: usize,
    bases: Vec<String>,
    key: String,
    killed: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
) -> (HashMap<String, String>, HashSet<String>) {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let mut acked = HashMap::new();
    let mut unknown = HashSet::new();
    let mut i = 0;
    while !stop.load(Ordering::Relaxed) {
        // The first replica is the one killed; after that only the second.
        let base = if killed.load(Ordering::Relaxed) {
            &bases[1]
        } else {
            &bases[i % 2]
        };
        let ids: Vec<String> = (0..5).map(|k| format!("c{n}-{i}-{k}")).collect();
        let events: Vec<Value> = ids
            .iter()
            .map(|id| {
                json!({"event": "guardrail.created", "actor": format!("client{n}@acme.com"),
                       "resource": {"type": "guardrail", "id": id}, "details": {"name": id, "type": "pii"}})
            })
            .collect();
        i += 1;
        let sent = http
            .post(format!("{base}/v1/orgs/acme/audit/events"))
            .bearer_auth(&key)
            .json(&json!({ "events": events }))
            .send()
            .await;
        match sent {
            Ok(resp) if resp.status() == 201 => {
                // Entries come back in the order they were sent.
                let body: Value = resp.json().await.unwrap();
                let entries = body["entries"].as_array().unwrap();
                assert_eq!(entries.len(), ids.len());
                for (resource, e) in ids.into_iter().zip(entries) {
                    acked.insert(resource, e["id"].as_str().unwrap().to_owned());
                }
            }
            Ok(resp) => panic!("a replica refused a valid batch: {}", resp.status()),
            // Cut off by the kill: it may or may not have committed.
            Err(_) => unknown.extend(ids),
        }
    }
    (acked, unknown)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_lose_nothing_when_one_is_killed_mid_load() {
    let Some(db) = auditlog_postgres::testing::fresh_database_url().await else {
        return;
    };
    auditlog_server::init_tls();
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("signing-key").display().to_string();
    acme_with_admin(&db);
    let key = read_write_key(&db);
    let verifier = admin(&db, &["key", "show-signing", "--signing-key", &key_file])
        .trim()
        .to_owned();

    let (ports, http) = ([free_port(), free_port()], reqwest::Client::new());
    let bases: Vec<String> = ports.iter().map(|p| format!("http://127.0.0.1:{p}")).collect();
    let mut first = serve(&db, &key_file, ports[0]);
    let _second = Killed(serve(&db, &key_file, ports[1]));
    for base in &bases {
        wait_ready(&http, base).await;
    }

    // A webhook for every guardrail event, created through the first replica.
    let hook_port = free_port();
    let mut deliveries = webhook_receiver(hook_port).await;
    let hook_url = format!("http://127.0.0.1:{hook_port}/hook");
    let secret = create_webhook(&http, &bases[0], "adam@acme.com", &hook_url, &["guardrail.*"]).await;

    let (killed, stop) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|n| tokio::spawn(client(n, bases.clone(), key.clone(), killed.clone(), stop.clone())))
        .collect();
    tokio::time::sleep(Duration::from_millis(2000)).await;
    first.kill().unwrap(); // SIGKILL, mid-load
    first.wait().unwrap();
    killed.store(true, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, Ordering::Relaxed);
    let (mut acked, mut unknown) = (HashMap::new(), HashSet::new());
    for c in clients {
        let (a, u) = c.await.unwrap();
        acked.extend(a);
        unknown.extend(u);
    }
    assert!(
        acked.len() > 100,
        "both replicas took load: {} acknowledged",
        acked.len()
    );
    eprintln!(
        "{} entries acknowledged, {} indeterminate (cut off by the kill)",
        acked.len(),
        unknown.len()
    );

    // What the surviving replica holds: the whole log, gapless, and
    // accepted by `auditlog verify` against a checkpoint signed for it.
    let lines = export_verified(&http, &bases[1], &key, &verifier, dir.path()).await;
    let mut stored: HashMap<String, Vec<String>> = HashMap::new();
    for e in lines.iter().filter(|e| e["event"] == "guardrail.created") {
        stored
            .entry(e["resource"]["id"].as_str().unwrap().to_owned())
            .or_default()
            .push(e["id"].as_str().unwrap().to_owned());
    }
    for (resource, id) in &acked {
        assert_eq!(
            stored.get(resource),
            Some(&vec![id.clone()]),
            "acknowledged {resource} is stored once"
        );
    }
    for resource in stored.keys() {
        assert!(
            acked.contains_key(resource) || unknown.contains(resource),
            "{resource} was stored but never sent"
        );
    }

    // Every guardrail entry reaches the receiver, signed; duplicates (from the
    // killed replica's in-flight sends) carry the same webhook-id. A delivery
    // the killed replica had claimed waits out its lease (30 s) first.
    let want: HashSet<u64> = lines
        .iter()
        .filter(|e| e["event"] == "guardrail.created")
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    let wh = standardwebhooks::Webhook::new(&secret).unwrap();
    let mut got: HashMap<u64, String> = HashMap::new();
    while !want.iter().all(|s| got.contains_key(s)) {
        let (headers, payload) = tokio::time::timeout(Duration::from_secs(90), deliveries.recv())
            .await
            .unwrap_or_else(|_| panic!("{} of {} entries delivered", got.len(), want.len()))
            .unwrap();
        wh.verify(&payload, &headers).expect("signature verifies");
        let p: Value = serde_json::from_slice(&payload).unwrap();
        let seq = p["data"]["seq"].as_u64().unwrap();
        let id = headers["webhook-id"].to_str().unwrap().to_owned();
        if let Some(earlier) = got.insert(seq, id.clone()) {
            assert_eq!(earlier, id, "a repeated delivery has the same webhook-id");
        }
    }
}

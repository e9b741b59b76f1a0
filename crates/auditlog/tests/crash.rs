//! Killed between commit and delivery: the real binary is stopped with
//! SIGKILL while its webhook outbox is full, started again, and every
//! committed entry still reaches the receiver, correctly signed.

mod common;

use common::*;

use std::collections::HashSet;
use std::process::{Child, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

fn serve(db: &str, port: u16) -> Child {
    auditlog()
        .args(["serve", "--database", db, "--listen", &format!("127.0.0.1:{port}")])
        .args(["--webhook-allow-subnet", "127.0.0.0/8", "--webhook-allow-http"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_resume_after_sigkill() {
    auditlog_server::init_tls();
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("crash.db").display());
    acme_with_admin(&db);
    let key = admin(&db, &["key", "create", "--org", "acme", "--scope", "audit:write"])
        .lines()
        .last()
        .unwrap()
        .to_owned();

    let (port, hook_port) = (free_port(), free_port());
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let mut child = serve(&db, port);
    wait_ready(&client, &base).await;

    // Nothing listens on the hook's port yet: every delivery fails for now.
    let hook_url = format!("http://127.0.0.1:{hook_port}/hook");
    let secret = create_webhook(&client, &base, "adam@acme.com", &hook_url, &["guardrail.*"]).await;

    let events: Vec<Value> = (0..50)
        .map(|i| json!({"event": "guardrail.created", "resource": {"type": "guardrail", "id": format!("g{i}")}, "details": {"name": "x", "type": "pii"}}))
        .collect();
    let acked: Value = client
        .post(format!("{base}/v1/orgs/acme/audit/events"))
        .bearer_auth(&key)
        .json(&json!({ "events": events }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let want: HashSet<i64> = acked["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(want.len(), 50);

    child.kill().unwrap(); // SIGKILL: no graceful anything
    child.wait().unwrap();

    // The receiver comes up, and so does the service again.
    let mut rx = webhook_receiver(hook_port).await;
    let mut child = serve(&db, port);
    wait_ready(&client, &base).await;

    let wh = standardwebhooks::Webhook::new(&secret).unwrap();
    let mut got = HashSet::new();
    while !want.is_subset(&got) {
        let (headers, body) = tokio::time::timeout(Duration::from_secs(60), rx.recv())
            .await
            .expect("every committed entry is delivered after the restart")
            .unwrap();
        wh.verify(&body, &headers).expect("signature verifies");
        let p: Value = serde_json::from_slice(&body).unwrap();
        got.insert(p["data"]["seq"].as_i64().unwrap());
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

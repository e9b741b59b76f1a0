//! Killed between commit and delivery: the real binary is stopped with
//! SIGKILL while its webhook outbox is full, started again, and every
//! committed entry still reaches the receiver, correctly signed.

mod common;

use common::*;

use std::collections::HashSet;
use std::process::{Child, Stdio};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use serde_json::{Value, json};
use tokio::sync::mpsc;

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
    let run = |args: &[&str]| {
        let out = auditlog()
            .args(args)
            .args(["--database", &db])
            .env("AUDITLOG_PASSWORD", "a long passphrase")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    run(&["org", "create", "acme", "--name", "Acme"]);
    run(&[
        "member",
        "add",
        "--org",
        "acme",
        "--email",
        "adam@acme.com",
        "--role",
        "admin",
    ]);
    let key = run(&["key", "create", "--org", "acme", "--scope", "audit:write"])
        .lines()
        .last()
        .unwrap()
        .to_owned();

    let (port, hook_port) = (free_port(), free_port());
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let mut child = serve(&db, port);
    wait_ready(&client, &base).await;

    let resp = client
        .post(format!("{base}/v1/session"))
        .json(&json!({"email": "adam@acme.com", "password": "a long passphrase"}))
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
    let session: Value = resp.json().await.unwrap();
    // Nothing listens on the hook's port yet: every delivery fails for now.
    let hook: Value = client
        .post(format!("{base}/v1/orgs/acme/webhooks"))
        .header("cookie", &cookie)
        .header("x-csrf-token", session["csrf_token"].as_str().unwrap())
        .json(&json!({"url": format!("http://127.0.0.1:{hook_port}/hook"), "events": ["project.*"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let secret = hook["secret"].as_str().expect("webhook created").to_owned();

    let events: Vec<Value> = (0..50)
        .map(|i| json!({"event": "project.created", "resource": {"type": "project", "id": format!("p{i}")}, "details": {"name": "x"}}))
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
    let (tx, mut rx) = mpsc::unbounded_channel::<(HeaderMap, Bytes)>();
    let app = Router::new()
        .route(
            "/hook",
            post(
                |State(tx): State<mpsc::UnboundedSender<(HeaderMap, Bytes)>>, h: HeaderMap, b: Bytes| async move {
                    let _ = tx.send((h, b));
                    "ok"
                },
            ),
        )
        .with_state(tx);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", hook_port)).await.unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
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

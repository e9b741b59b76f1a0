//! `auditlog migrate-store`, end to end with the real binary: a SQLite
//! installation seeded through the service (members, keys, a webhook with
//! deliveries, entries, a signed checkpoint) is copied into PostgreSQL; the
//! command's own check passes; the copy, served, proves its new checkpoint
//! consistent with the old one and an export with proofs verifies against
//! it; and a target that is not empty is refused.

mod common;

use common::*;

use std::path::Path;
use std::process::{Output, Stdio};

use serde_json::{Value, json};

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs a command that must succeed; returns its stdout.
fn ok(args: &[&str]) -> String {
    let out = auditlog()
        .args(args)
        .env("AUDITLOG_PASSWORD", "correct horse battery staple")
        .output()
        .unwrap();
    assert!(out.status.success(), "{args:?}: {}", text(&out));
    String::from_utf8(out.stdout).unwrap()
}

fn serve(database: &str, signing_key: &Path) -> (Killed, String) {
    let port = free_port();
    let process = Killed(
        auditlog()
            .args([
                "serve",
                "--database",
                database,
                "--listen",
                &format!("127.0.0.1:{port}"),
            ])
            .arg("--signing-key")
            .arg(signing_key)
            .args(["--webhook-allow-subnet", "127.0.0.0/8", "--webhook-allow-http"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    (process, format!("http://127.0.0.1:{port}"))
}

async fn ingest(client: &reqwest::Client, base: &str, key: &str, from: usize, n: usize) {
    for chunk in (from..from + n).collect::<Vec<_>>().chunks(250) {
        let events: Vec<Value> = chunk
            .iter()
            .map(|i| {
                json!({"event": "guardrail.created", "actor": "ada@acme.com", "ip_address": "2001:db8::1",
                       "resource": {"type": "guardrail", "id": format!("g_{i}"), "name": "PII"},
                       "details": {"name": "PII", "type": "pii", "n": i, "nested": {"z": 1, "a": [true, null]}},
                       "idempotency_key": format!("k-{i}")})
            })
            .collect();
        let resp = client
            .post(format!("{base}/v1/orgs/acme/audit/events"))
            .bearer_auth(key)
            .json(&json!({ "events": events }))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());
    }
}

async fn get(client: &reqwest::Client, base: &str, key: &str, path: &str) -> String {
    let resp = client
        .get(format!("{base}{path}"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{path}");
    resp.text().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_installation_moves_to_postgres_and_its_proofs_carry_on() {
    let Some(pg) = auditlog_postgres::testing::fresh_database_url().await else {
        return;
    };
    auditlog_server::init_tls();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.db");
    let sqlite = format!("sqlite://{}", path.display());
    let signing_key = dir.path().join("log.db.signing-key");
    let db = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--database", &sqlite]);
        ok(&all)
    };
    db(&["org", "create", "acme", "--name", "Acme"]);
    db(&["org", "create", "globex", "--name", "Globex", "--plan", "scale"]);
    db(&[
        "member",
        "add",
        "--org",
        "acme",
        "--email",
        "owner@acme.com",
        "--role",
        "owner",
    ]);
    let key = |org: &str, scopes: &[&str]| {
        let mut args = vec!["key", "create", "--org", org];
        for s in scopes {
            args.extend(["--scope", s]);
        }
        db(&args).lines().last().unwrap().to_owned()
    };
    let key = key("acme", &["audit:write", "audit:read", "admin"]);

    let (server, base) = serve(&sqlite, &signing_key);
    let client = reqwest::Client::new();
    wait_ready(&client, &base).await;
    // A webhook to a port nobody listens on: its deliveries are attempted
    // and fail, so they carry attempts and errors into the copy.
    let resp = client
        .post(format!("{base}/v1/orgs/acme/webhooks"))
        .bearer_auth(&key)
        .json(
            &json!({"url": format!("http://127.0.0.1:{}/hook", free_port()), "events": ["guardrail.*"],
                      "payload_format": "ocsf"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());
    // Single sign-on settings, their sealed secret among them.
    let resp = client
        .patch(format!("{base}/v1/orgs/acme"))
        .bearer_auth(&key)
        .json(
            &json!({"sso": {"issuer": "https://login.acme.com", "client_id": "0oa1", "client_secret": "s3cret",
                              "allowed_domains": ["acme.com"], "provision_role": "viewer"}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    let org_before = get(&client, &base, &key, "/v1/orgs/acme").await;
    ingest(&client, &base, &key, 0, 700).await;
    let old_checkpoint = get(&client, &base, &key, "/v1/orgs/acme/audit/checkpoint").await;
    let old_size = serde_json::from_str::<Value>(&old_checkpoint).unwrap()["tree_size"]
        .as_u64()
        .unwrap();
    assert!(old_size > 700);
    drop(server);

    let out = auditlog()
        .args(["migrate-store", "--from", &sqlite, "--to", &pg])
        .output()
        .unwrap();
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(said.contains("verdict: the copy is identical"), "{said}");
    assert!(said.contains("copying entries:"), "progress is shown: {said}");
    assert!(!said.contains("DIFFERENT"), "{said}");

    // The copy, served, signs on with the same key.
    let verifier = db(&["key", "show-signing", "--signing-key", signing_key.to_str().unwrap()]);
    let (_server, base) = serve(&pg, &signing_key);
    wait_ready(&client, &base).await;
    assert_eq!(get(&client, &base, &key, "/v1/orgs/acme").await, org_before);
    let hooks: Value = serde_json::from_str(&get(&client, &base, &key, "/v1/orgs/acme/webhooks").await).unwrap();
    assert_eq!(
        hooks["webhooks"][0]["payload_format"], "ocsf",
        "the endpoint's settings came along"
    );
    ingest(&client, &base, &key, 700, 50).await;
    let new_checkpoint = get(&client, &base, &key, "/v1/orgs/acme/audit/checkpoint").await;
    let new_size = serde_json::from_str::<Value>(&new_checkpoint).unwrap()["tree_size"]
        .as_u64()
        .unwrap();
    assert!(new_size >= old_size + 50);
    let consistency = get(
        &client,
        &base,
        &key,
        &format!("/v1/orgs/acme/audit/proofs/consistency?from={old_size}&to={new_size}"),
    )
    .await;
    let export = get(
        &client,
        &base,
        &key,
        "/v1/orgs/acme/audit/export?format=jsonl&proofs=true",
    )
    .await;
    let tree_size =
        serde_json::from_str::<Value>(export.lines().next().unwrap()).unwrap()["inclusion_proof"]["tree_size"]
            .as_u64()
            .unwrap();
    let export_checkpoint = get(
        &client,
        &base,
        &key,
        &format!("/v1/orgs/acme/audit/checkpoint?format=note&tree_size={tree_size}"),
    )
    .await;
    let file = |name: &str, body: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, body).unwrap();
        p.display().to_string()
    };
    let (old, new, proof) = (
        file("old.json", &old_checkpoint),
        file("new.json", &new_checkpoint),
        file("consistency.json", &consistency),
    );
    let out = auditlog()
        .args(["verify", "--key", verifier.trim(), "--checkpoint", &new])
        .args(["--previous", &old, "--consistency", &proof])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the old checkpoint and the new agree: {}",
        text(&out)
    );
    let (export, export_cp) = (
        file("export.jsonl", &export),
        file("export.checkpoint", &export_checkpoint),
    );
    let out = auditlog()
        .args(["verify", "--key", verifier.trim(), "--checkpoint", &export_cp])
        .args(["--export", &export, "--complete"])
        .output()
        .unwrap();
    assert!(out.status.success(), "the export verifies: {}", text(&out));

    // The same people and keys work against the copy.
    let resp = client
        .post(format!("{base}/v1/session"))
        .json(&json!({"email": "owner@acme.com", "password": "correct horse battery staple"}))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.status());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_that_is_not_empty_is_refused() {
    let Some(pg) = auditlog_postgres::testing::fresh_database_url().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let sqlite = format!("sqlite://{}", dir.path().join("log.db").display());
    ok(&["org", "create", "acme", "--name", "Acme", "--database", &sqlite]);
    ok(&["org", "create", "already", "--name", "Already", "--database", &pg]);
    let out = auditlog()
        .args(["migrate-store", "--from", &sqlite, "--to", &pg])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(text(&out).contains("not empty"), "{}", text(&out));
    let out = auditlog()
        .args(["migrate-store", "--from", "sqlite:///nowhere/at/all.db", "--to", &pg])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(text(&out).contains("no such SQLite database"), "{}", text(&out));
}

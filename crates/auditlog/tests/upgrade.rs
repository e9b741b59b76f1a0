//! Upgrading keeps every acknowledged entry verifiable: a SQLite database as
//! an early release wrote it (schema 3, before the Merkle tree, entries of
//! canonical version 1 without `submitted_by`) is migrated by the current
//! binary, which builds its tree; new entries (version 2, with their
//! submitter) follow in the same log; `auditlog check` finds the database
//! consistent with its signed checkpoint; and `auditlog verify --complete`
//! accepts an export of the whole log, old leaves byte for byte.

mod common;

use common::*;

use std::process::Stdio;

use auditlog_sqlite::rusqlite::{Connection, params};
use serde_json::{Value, json};

/// The migrations an early release had applied.
const EARLY_SCHEMA: [&str; 3] = [
    include_str!("../../auditlog-sqlite/migrations/0001_init.sql"),
    include_str!("../../auditlog-sqlite/migrations/0002_people.sql"),
    include_str!("../../auditlog-sqlite/migrations/0003_webhooks.sql"),
];

const OLD_ENTRIES: i64 = 12;

/// Writes the database an early release would have: the organization, its
/// log head and entries in the columns of that schema.
fn early_database(path: &std::path::Path) {
    let mut conn = Connection::open(path).unwrap();
    let tx = conn.transaction().unwrap();
    for sql in EARLY_SCHEMA {
        tx.execute_batch(sql).unwrap();
    }
    tx.pragma_update(None, "user_version", EARLY_SCHEMA.len() as i64)
        .unwrap();
    tx.execute(
        "INSERT INTO orgs (org_id, slug, name, plan, created_at) VALUES (1, 'acme', 'Acme', 'scale', 0)",
        [],
    )
    .unwrap();
    tx.execute("INSERT INTO log_heads (org_id, size) VALUES (1, ?1)", [OLD_ENTRIES])
        .unwrap();
    let now = time_now_ms();
    for seq in 1..=OLD_ENTRIES {
        tx.execute(
            "INSERT INTO entries (org_id, seq, id, ts, received_at, actor_type, actor, event, resource_type, \
             resource_id, resource_name, details, ip_address, user_agent, request_id, idempotency_key) \
             VALUES (1, ?1, ?2, ?3, ?3, 'user', 'ada@acme.com', 'project.created', 'project', ?4, NULL, \
             '{\"name\":\"Prod\"}', '203.0.113.7', 'curl/8.5', NULL, NULL)",
            params![
                seq,
                &uuid::Uuid::now_v7().as_bytes()[..],
                now - (OLD_ENTRIES - seq) * 1000,
                format!("p_{seq}")
            ],
        )
        .unwrap();
    }
    tx.commit().unwrap();
}

fn time_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
        - 60_000
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_from_an_early_release_migrates_and_still_verifies() {
    auditlog_server::init_tls();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    early_database(&path);
    let db = format!("sqlite://{}", path.display());
    let out = admin(&db, &["migrate"]);
    assert!(out.contains("up to date") || out.contains("migrat"), "{out}");
    let key = read_write_key(&db);
    let verifier = admin(&db, &["key", "show-signing"]).trim().to_owned();

    let port = free_port();
    let _server = Killed(
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
    let events: Vec<Value> = (0..5)
        .map(|i| {
            json!({"event": "guardrail.updated", "actor": "ada@acme.com",
                   "resource": {"type": "guardrail", "id": format!("g_{i}")},
                   "details": {"name": "PII", "changes": {"threshold": i}}})
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

    let lines = export_verified(&client, &base, &key, &verifier, dir.path()).await;
    let entries: Vec<&Value> = lines.iter().filter(|l| l.get("seq").is_some()).collect();
    let old: Vec<_> = entries
        .iter()
        .filter(|e| e["seq"].as_i64().unwrap() <= OLD_ENTRIES)
        .collect();
    assert_eq!(old.len() as i64, OLD_ENTRIES);
    for e in &old {
        assert_eq!(e["canonical_version"], 1, "{e}");
        assert!(e["submitted_by"].is_null(), "{e}");
    }
    let new: Vec<_> = entries.iter().filter(|e| e["event"] == "guardrail.updated").collect();
    assert_eq!(new.len(), 5);
    for e in &new {
        assert_eq!(e["canonical_version"], 2, "{e}");
        assert_eq!(e["submitted_by"]["kind"], "api_key", "{e}");
        assert_eq!(e["submitted_by"]["id"], key[..12], "{e}");
    }

    // At rest too: both versions' leaves, the tree the migration built for
    // the old ones, and the signed checkpoint agree.
    let out = auditlog()
        .args(["check", "--database", &db, "--key", &verifier])
        .output()
        .unwrap();
    let checked = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{checked}");
    assert!(
        checked.contains("ok acme: ") && checked.contains("root matches the stored tree"),
        "{checked}"
    );
    assert!(checked.contains("(signature valid)"), "{checked}");
}

//! Upgrading keeps every acknowledged entry verifiable, on both stores. A
//! database as the previous schema left it is migrated by the current
//! binary: on SQLite schema 3 (before the Merkle tree, so the migration
//! builds it), on PostgreSQL schema 3 (the tree kept, entries of canonical
//! version 1 without `submitted_by`). New entries (version 2, with their
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

/// The migrations the previous PostgreSQL schema (version 3) had applied,
/// with the names `auditlog_migrations` recorded for them.
const PREVIOUS_POSTGRES_SCHEMA: [(&str, &str); 3] = [
    ("init", include_str!("../../auditlog-postgres/migrations/0001_init.sql")),
    (
        "head_frontier",
        include_str!("../../auditlog-postgres/migrations/0002_head_frontier.sql"),
    ),
    (
        "invitations",
        include_str!("../../auditlog-postgres/migrations/0003_invitations.sql"),
    ),
];

/// Writes, through `psql`, the database the previous PostgreSQL schema
/// held: acme's entries of canonical version 1 in this month's partition,
/// their leaves in the tree's first tile, and a log head without the
/// frontier that later appends keep.
fn early_postgres_database(psql: &std::path::Path, db: &str) {
    let month = psql_out(
        psql,
        db,
        "SELECT to_char(m, 'YYYYMM'), (extract(epoch FROM m) * 1000)::bigint, \
         (extract(epoch FROM m + interval '1 month') * 1000)::bigint \
         FROM (SELECT date_trunc('month', now() AT TIME ZONE 'UTC') AS m) AS x",
    );
    let [name, start, end]: [&str; 3] = month.split('|').collect::<Vec<_>>().try_into().unwrap();
    let start: i64 = start.parse().unwrap();
    // Within this month, so the partition made here is the one the
    // current binary finds for it.
    let first = (time_now_ms() - OLD_ENTRIES * 1000).max(start + 1000);
    let mut sql = String::new();
    for (_, migration) in PREVIOUS_POSTGRES_SCHEMA {
        sql.push_str(migration);
        sql.push('\n');
    }
    sql.push_str(
        "CREATE TABLE auditlog_migrations (version integer PRIMARY KEY, name text NOT NULL, \
         applied_at timestamptz NOT NULL DEFAULT now());\n",
    );
    for (i, (migration, _)) in PREVIOUS_POSTGRES_SCHEMA.iter().enumerate() {
        sql.push_str(&format!(
            "INSERT INTO auditlog_migrations (version, name) VALUES ({}, '{migration}');\n",
            i + 1
        ));
    }
    sql.push_str(&format!(
        "CREATE TABLE entries_p{name} PARTITION OF entries FOR VALUES FROM ({start}) TO ({end});\n\
         INSERT INTO orgs (slug, name, plan, created_at) VALUES ('acme', 'Acme', 'scale', 0);\n\
         INSERT INTO log_heads (org_id, size) VALUES (1, {OLD_ENTRIES});\n"
    ));
    let mut tile = String::new();
    for seq in 1..=OLD_ENTRIES {
        let entry = old_entry(seq, first + seq * 1000);
        tile.push_str(&auditlog_domain::merkle::hash_to_hex(
            &auditlog_domain::canonical::entry_leaf_hash(&entry),
        ));
        sql.push_str(&format!(
            "INSERT INTO entries (org_id, seq, ts, received_at, id, actor_type, actor, event, resource_type, \
             resource_id, details, ip_address, user_agent) VALUES (1, {seq}, {ts}, {ts}, '{id}', 'user', \
             'ada@acme.com', 'project.created', 'project', 'p_{seq}', '{{\"name\":\"Prod\"}}', '203.0.113.7', \
             'curl/8.5');\n\
             INSERT INTO entry_ids (org_id, id, seq, ts) VALUES (1, '{id}', {seq}, {ts});\n",
            ts = entry.timestamp.millis(),
            id = entry.id,
        ));
    }
    sql.push_str(&format!(
        "INSERT INTO merkle_leaves (org_id, tile, hashes) VALUES (1, 0, decode('{tile}', 'hex'));\n"
    ));
    let mut child = std::process::Command::new(psql)
        .args([
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "--single-transaction",
            "-d",
            db,
            "-f",
            "-",
        ])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(sql.as_bytes()).unwrap();
    assert!(
        child.wait().unwrap().success(),
        "psql refused the previous schema's database"
    );
}

/// One of acme's old entries, as the previous release stored it.
fn old_entry(seq: i64, ts: i64) -> auditlog_domain::entry::Entry {
    use auditlog_domain::entry::{Actor, ActorType, Entry, Resource};
    Entry {
        id: uuid::Uuid::now_v7(),
        org_id: auditlog_domain::OrgId(1),
        seq,
        timestamp: auditlog_domain::Timestamp::from_millis(ts),
        received_at: auditlog_domain::Timestamp::from_millis(ts),
        actor: Actor {
            kind: ActorType::User,
            id: "ada@acme.com".into(),
        },
        event: "project.created".into(),
        resource: Resource {
            kind: "project".into(),
            id: format!("p_{seq}"),
            name: None,
        },
        details: serde_json::from_str(r#"{"name":"Prod"}"#).unwrap(),
        ip_address: Some("203.0.113.7".parse().unwrap()),
        user_agent: Some("curl/8.5".into()),
        request_id: None,
        idempotency_key: None,
        submitted_by: None,
        canonical_version: 1,
        personal: Default::default(),
    }
}

/// What `psql` prints for one query, unaligned and without headers.
fn psql_out(psql: &std::path::Path, db: &str, query: &str) -> String {
    let out = std::process::Command::new(psql)
        .args(["-At", "-d", db, "-c", query])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
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
    migrates_and_continues(&db, dir.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_database_of_the_previous_schema_migrates_and_still_verifies() {
    auditlog_server::init_tls();
    let Some(db) = auditlog_postgres::testing::fresh_database_url().await else {
        return;
    };
    let Some(psql) = auditlog_postgres::testing::client_program("psql") else {
        skip_or_fail("psql is not installed beside the PostgreSQL server");
        return;
    };
    early_postgres_database(&psql, &db);
    let dir = tempfile::tempdir().unwrap();
    migrates_and_continues(&db, dir.path()).await;

    // A release that knows one schema more has run on it since: this one
    // refuses to start rather than guess.
    let known: i64 = psql_out(&psql, &db, "SELECT max(version) FROM auditlog_migrations")
        .parse()
        .unwrap();
    psql_out(
        &psql,
        &db,
        &format!(
            "INSERT INTO auditlog_migrations (version, name) VALUES ({}, 'future')",
            known + 1
        ),
    );
    let out = auditlog().args(["migrate", "--database", &db]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("schema version {}", known + 1))
            && err.contains(&format!("knows versions up to {known}"))
            && err.contains("downgrades are refused"),
        "{err}"
    );
}

/// Runs the current binary's migrations on `db`, holding acme's
/// [`OLD_ENTRIES`] of canonical version 1, then appends new ones through a
/// server and checks the whole log at rest and in an export.
async fn migrates_and_continues(db: &str, dir: &std::path::Path) {
    let db = db.to_owned();
    let out = admin(&db, &["migrate"]);
    assert!(out.contains("up to date") || out.contains("migrat"), "{out}");
    let key = read_write_key(&db);
    // PostgreSQL's replicas share one key file; SQLite's is beside the
    // database unless named, and is named here too.
    let signing = dir.join("signing.key");
    let signing = signing.to_str().unwrap();
    let verifier = admin(&db, &["key", "show-signing", "--signing-key", signing])
        .trim()
        .to_owned();

    let port = free_port();
    let _server = Killed(
        auditlog()
            .args(["serve", "--database", &db, "--signing-key", signing])
            .args(["--listen", &format!("127.0.0.1:{port}")])
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

    let lines = export_verified(&client, &base, &key, &verifier, dir).await;
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
        // Written by this release: personal values sealed (version 3).
        assert_eq!(e["canonical_version"], 3, "{e}");
        assert_eq!(e["submitted_by"]["kind"], "api_key", "{e}");
        assert_eq!(e["submitted_by"]["id"], key[..12], "{e}");
    }

    // At rest too: both versions' leaves, the tree the migration built for
    // the old ones, and the signed checkpoint agree.
    let out = auditlog()
        .args(["check", "--database", &db, "--key", &verifier, "--signing-key", signing])
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

//! The command line, run as a user would: the real binary on a temporary
//! database.

use auditlog_domain::store::AccountStore;
use auditlog_domain::store::EntryStore;
mod common;

use common::*;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run auditlog");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn org_and_key_creation_print_a_key_that_works() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("a.db").display());
    let out = run_ok(auditlog().args([
        "org",
        "create",
        "acme",
        "--name",
        "Acme",
        "--plan",
        "scale",
        "--database",
        &db,
    ]));
    assert!(out.contains("365 days"), "{out}");

    let out = run_ok(
        auditlog()
            .args([
                "key",
                "create",
                "--org",
                "acme",
                "--scope",
                "audit:write",
                "--scope",
                "audit:read",
            ])
            .env("AUDITLOG_DATABASE_URL", &db),
    );
    let key = out.lines().last().unwrap();
    assert!(
        key.starts_with("lqt_") && key.len() == 63,
        "the key alone on the last line: {out:?}"
    );
    assert!(auditlog_domain::api_key::PresentedKey::parse(key).is_ok());

    // A duplicate organization and an unknown one fail with a message.
    let dup = auditlog()
        .args(["org", "create", "acme", "--name", "Again", "--database", &db])
        .output()
        .unwrap();
    assert!(!dup.status.success());
    assert!(String::from_utf8_lossy(&dup.stderr).contains("already exists"));
    let missing = auditlog()
        .args([
            "key",
            "create",
            "--org",
            "nope",
            "--scope",
            "audit:read",
            "--database",
            &db,
        ])
        .output()
        .unwrap();
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no organization"));
    let bad_scope = auditlog()
        .args([
            "key",
            "create",
            "--org",
            "acme",
            "--scope",
            "audit:everything",
            "--database",
            &db,
        ])
        .output()
        .unwrap();
    assert!(!bad_scope.status.success());
    let bad_slug = auditlog()
        .args(["org", "create", "Not A Slug", "--name", "x", "--database", &db])
        .output()
        .unwrap();
    assert!(!bad_slug.status.success());

    // Both commands recorded what they did, as the API would, submitted by
    // the command line; the refused ones recorded nothing.
    let path = dir.path().join("a.db");
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let store = auditlog_sqlite::SqliteStore::open(&path).unwrap();
        let org = store.org_by_slug("acme").await.unwrap().unwrap();
        let page = auditlog_domain::filter::Page { limit: 10, after: None };
        let entries = store.list(org.id, &Default::default(), page).await.unwrap();
        let events: Vec<&str> = entries.iter().rev().map(|e| e.event.as_str()).collect();
        assert_eq!(events, ["organization.created", "api_key.created"]);
        assert_eq!(entries[0].details["prefix"], key[..12]);
        assert!(
            entries
                .iter()
                .all(|e| e.submitted_by.as_ref().unwrap().kind == auditlog_domain::SubmitterKind::Cli)
        );
    });
}

#[test]
fn migrate_creates_an_up_to_date_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.db");
    let out = run_ok(auditlog().args(["migrate", "--database", path.to_str().unwrap()]));
    assert!(out.contains("up to date"));
    assert!(path.exists());
}

#[test]
fn demo_serves_a_seeded_year_with_working_keys() {
    let mut child = auditlog()
        .args(["demo", "--listen", "127.0.0.1:0", "--entries", "2000"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let mut api = None;
    let mut read = None;
    for line in stdout.lines() {
        let line = line.unwrap();
        if let Some(rest) = line.strip_prefix("API:") {
            api = Some(rest.trim().to_owned());
        }
        if let Some(rest) = line.strip_prefix("read key:") {
            read = Some(rest.trim().to_owned());
        }
        if line.starts_with("Ctrl-C") {
            break;
        }
    }
    let (api, read) = (api.expect("API URL printed"), read.expect("read key printed"));
    auditlog_server::init_tls();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let body: serde_json::Value = rt.block_on(async {
        let client = reqwest::Client::new();
        // The server starts right after printing; retry briefly.
        for _ in 0..50 {
            if let Ok(resp) = client.get(format!("{api}?limit=1000")).bearer_auth(&read).send().await {
                return resp.json().await.unwrap();
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("the demo server did not answer");
    });
    child.kill().unwrap();
    let _ = child.wait();
    let entries = body["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1000);
    let categories: std::collections::HashSet<&str> = entries
        .iter()
        .map(|e| e["event"].as_str().unwrap().split('.').next().unwrap())
        .collect();
    assert!(categories.len() >= 8, "varied categories: {categories:?}");
}

#[test]
fn member_add_sets_a_first_password_from_the_environment_or_stdin() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.db");
    let db = format!("sqlite://{}", path.display());
    run_ok(auditlog().args(["org", "create", "acme", "--name", "Acme", "--database", &db]));
    let out = run_ok(
        auditlog()
            .args([
                "member",
                "add",
                "--org",
                "acme",
                "--email",
                "Olivia@Acme.com",
                "--role",
                "owner",
                "--database",
                &db,
            ])
            .env("AUDITLOG_PASSWORD", "correct horse battery staple"),
    );
    assert!(out.contains("added olivia@acme.com to acme as owner"), "{out}");

    // From stdin, for someone already there: the password is replaced.
    let mut child = auditlog()
        .args([
            "member",
            "add",
            "--org",
            "acme",
            "--email",
            "olivia@acme.com",
            "--role",
            "owner",
            "--database",
            &db,
        ])
        .env_remove("AUDITLOG_PASSWORD")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"another long passphrase\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());

    let weak = auditlog()
        .args([
            "member",
            "add",
            "--org",
            "acme",
            "--email",
            "b@acme.com",
            "--role",
            "viewer",
            "--database",
            &db,
        ])
        .env("AUDITLOG_PASSWORD", "short")
        .output()
        .unwrap();
    assert!(!weak.status.success());
    assert!(String::from_utf8_lossy(&weak.stderr).contains("at least 12"));

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = auditlog_sqlite::SqliteStore::open(&path).unwrap();
        let org = store.org_by_slug("acme").await.unwrap().unwrap();
        let m = store.member(org.id, "olivia@acme.com").await.unwrap().unwrap();
        assert_eq!(m.role, auditlog_domain::Role::Owner);
        let hash = store
            .user("olivia@acme.com")
            .await
            .unwrap()
            .unwrap()
            .password_hash
            .unwrap();
        assert!(auditlog_domain::password::verify("another long passphrase", &hash));
        assert!(store.member(org.id, "b@acme.com").await.unwrap().is_none());
        // Every door records itself: the organization's creation, the
        // member added, the password the operator replaced; each submitted
        // by the command line, never by a request.
        let page = auditlog_domain::filter::Page { limit: 10, after: None };
        let entries = store.list(org.id, &Default::default(), page).await.unwrap();
        let events: Vec<&str> = entries.iter().rev().map(|e| e.event.as_str()).collect();
        assert_eq!(
            events,
            [
                "organization.created",
                "organization.member_added",
                "organization.member_password_changed"
            ]
        );
        for e in &entries {
            let by = e.submitted_by.as_ref().unwrap();
            assert_eq!(by.kind, auditlog_domain::SubmitterKind::Cli, "{e:?}");
            assert!(by.id.contains('@'), "user@host: {}", by.id);
        }
    });
}

/// JSON logs carry each request's id, so a client's `X-Request-Id` finds
/// every line its request wrote.
#[test]
fn json_logs_name_the_request_id() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("logs.db").display());
    let log = dir.path().join("stderr.log");
    let port = free_port();
    let child = Killed(
        auditlog()
            .args(["serve", "--database", &db, "--listen", &format!("127.0.0.1:{port}")])
            .env("AUDITLOG_LOG_FORMAT", "json")
            .env("AUDITLOG_LOG", "debug")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    auditlog_server::init_tls();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let echoed = rt.block_on(async {
        let client = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        wait_ready(&client, &base).await;
        let resp = client
            .get(format!("{base}/v1/orgs/acme/audit/events"))
            .header("x-request-id", "req-7f3a")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 401);
        resp.headers()["x-request-id"].to_str().unwrap().to_owned()
    });
    assert_eq!(echoed, "req-7f3a");
    // The response is logged when the request finishes; give it a moment.
    let mut found = None;
    for _ in 0..50 {
        let text = std::fs::read_to_string(&log).unwrap();
        found = text
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|v| v["span"]["request_id"] == "req-7f3a");
        if found.is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    drop(child);
    let line = found.expect("a JSON log line in the request's span");
    assert_eq!(line["span"]["path"], "/v1/orgs/acme/audit/events");
}

/// `auditlog export` takes the API's filters, writes CSV, JSON Lines or
/// OCSF events, and records itself in the log.
#[test]
fn export_writes_the_filtered_log_and_records_itself() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("export.db").display());
    let ok = |args: &[&str]| {
        run_ok(
            auditlog()
                .args(args)
                .args(["--database", &db])
                .env("AUDITLOG_PASSWORD", "a long passphrase"),
        )
    };
    ok(&["org", "create", "acme", "--name", "Acme"]);
    for email in ["ada@acme.com", "bo@acme.com"] {
        ok(&["member", "add", "--org", "acme", "--email", email, "--role", "admin"]);
    }

    let jsonl = ok(&[
        "export",
        "--org",
        "acme",
        "--format",
        "jsonl",
        "event=organization.member_added",
    ]);
    let lines: Vec<serde_json::Value> = jsonl.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2, "{jsonl}");
    assert!(lines.iter().all(|e| e["event"] == "organization.member_added"));

    // The same entries as OCSF events, one a line, in the same order.
    let ocsf = ok(&[
        "export",
        "--org",
        "acme",
        "--format",
        "ocsf",
        "event=organization.member_added",
    ]);
    let events: Vec<serde_json::Value> = ocsf.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(events.len(), lines.len(), "{ocsf}");
    for (entry, event) in lines.iter().zip(&events) {
        assert!(event["class_uid"].is_u64(), "{event}");
        assert_eq!(event["metadata"]["uid"], entry["id"]);
        assert_eq!(event["metadata"]["sequence"], entry["seq"]);
        assert_eq!(event["metadata"]["tenant_uid"], "acme");
    }

    let file = dir.path().join("all.csv");
    ok(&["export", "--org", "acme", "--output", file.to_str().unwrap()]);
    let csv = std::fs::read_to_string(&file).unwrap();
    let mut rows = csv.lines();
    assert_eq!(
        rows.next().unwrap(),
        "id,seq,timestamp,actor_type,actor,event,resource_type,resource_id,resource_name,details,ip_address,user_agent,submitted_by"
    );
    let events: Vec<&str> = rows.map(|r| r.split(',').nth(5).unwrap()).collect();
    // The first export recorded itself before this one started.
    for e in [
        "organization.member_added",
        "data_export.requested",
        "data_export.downloaded",
    ] {
        assert!(events.contains(&e), "{e} in {events:?}");
    }

    let out = auditlog()
        .args(["export", "--org", "acme", "--database", &db, "colour=blue"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("colour"), "{err}");
    let out = auditlog()
        .args(["export", "--org", "acme", "--database", &db, "--format", "xml"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("csv, jsonl or ocsf"), "the allowed formats: {err}");
}

/// `auditlog migrate` on PostgreSQL: applies the schema once, and a second
/// run finds nothing to do.
#[test]
fn migrate_applies_the_postgres_schema() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let Some(url) = rt.block_on(auditlog_postgres::testing::fresh_database_url()) else {
        return;
    };
    for _ in 0..2 {
        let out = run_ok(auditlog().args(["migrate", "--database", &url]));
        assert!(out.contains("up to date"), "{out}");
    }
    let out = run_ok(auditlog().args(["org", "create", "acme", "--name", "Acme", "--database", &url]));
    assert!(out.contains("acme"), "{out}");
    // The command line's door records itself on PostgreSQL too.
    rt.block_on(async {
        let store = auditlog_postgres::PostgresStore::connect(&url).await.unwrap();
        let org = store.org_by_slug("acme").await.unwrap().unwrap();
        let entries = store
            .list(org.id, &Default::default(), Default::default())
            .await
            .unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].event, "organization.created");
        let by = entries[0].submitted_by.as_ref().unwrap();
        assert_eq!(by.kind, auditlog_domain::SubmitterKind::Cli);
    });
}

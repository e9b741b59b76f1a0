//! The command line, run as a user would: the real binary on a temporary
//! database.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

fn auditlog() -> Command {
    Command::new(env!("CARGO_BIN_EXE_auditlog"))
}

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

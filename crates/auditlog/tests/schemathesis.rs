//! The OpenAPI document against the real `auditlog serve`, by schemathesis:
//! it generates requests from the document, valid and invalid, and checks
//! that no answer is a 5xx, that every answer (status, content type,
//! headers, body) is one the document declares, and that a request the
//! document forbids is refused.
//!
//! Two runs on one server with an organization `acme`: one with a
//! read-write API key, one as the organization's owner signed in with the
//! session cookie and its CSRF token (which reaches the management
//! endpoints a key may not use).
//!
//! Needs schemathesis 4 (`pip install 'schemathesis>=4,<5'`, or
//! `AUDITLOG_SCHEMATHESIS` naming its `st`). Without it the test says so
//! and skips, except under `CI=true`, where it fails.
//! `AUDITLOG_SCHEMATHESIS_EXAMPLES` and `AUDITLOG_SCHEMATHESIS_SEED` change
//! the examples per operation and the seed.

mod common;

use common::*;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The `st` command, or `None` (after saying so) to skip.
fn schemathesis() -> Option<PathBuf> {
    let st = std::env::var_os("AUDITLOG_SCHEMATHESIS")
        .map(PathBuf::from)
        .or_else(|| {
            let path = std::env::var_os("PATH").unwrap_or_default();
            std::env::split_paths(&path)
                .map(|dir| dir.join("st"))
                .find(|p| p.is_file())
        })
        .filter(|st| {
            Command::new(st)
                .arg("--version")
                .output()
                .is_ok_and(|out| out.status.success() && String::from_utf8_lossy(&out.stdout).contains(" 4."))
        });
    if st.is_none() {
        skip_or_fail(
            "SCHEMATHESIS TEST SKIPPED: schemathesis 4 is not installed \
             (pip install 'schemathesis>=4,<5')",
        );
    }
    st
}

/// What the runs share: the document's organization is always `acme`, so
/// requests reach the handlers instead of stopping at "not your
/// organization".
const CONFIG: &str = r#"
[parameters]
"path.org" = "acme"
"#;

/// Runs schemathesis against the server at `base` with these extra
/// arguments (credentials, exclusions); panics with its report unless
/// every check passed.
fn run(st: &Path, dir: &Path, base: &str, what: &str, args: &[&str]) {
    let examples = std::env::var("AUDITLOG_SCHEMATHESIS_EXAMPLES").unwrap_or_else(|_| "25".into());
    let seed = std::env::var("AUDITLOG_SCHEMATHESIS_SEED").unwrap_or_else(|_| "1".into());
    let config = dir.join("schemathesis.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let out = Command::new(st)
        .current_dir(dir)
        .arg("--config-file")
        .arg(&config)
        .args(["run", &format!("{base}/v1/openapi.json")])
        // Every check but positive_data_acceptance, which expects every
        // request the schema allows to succeed: here an event must be in
        // the catalog with its required detail keys, a tree size within
        // the log, a member or key must exist, and a schema cannot say so.
        // Refusing those with a 4xx is right.
        .args(["--checks", "all", "--exclude-checks", "positive_data_acceptance"])
        // The credentials are ours; generated cookies or keys would only
        // be refused, and would hide ours from the operations.
        .args(["--generation-with-security-parameters", "false"])
        .args(["--max-examples", &examples, "--seed", &seed])
        // One worker: with several threads, hypothesis (under schemathesis)
        // now and then fails parsing its own source with "AST constructor
        // recursion depth mismatch", a thread-safety bug of Python's ast
        // module, and the run reports an error that is not the server's.
        .args(["--workers", "1", "--generation-database", "none", "--no-color"])
        .args(["--request-timeout", "30"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "schemathesis ({what}) found problems:\n{report}");
    eprintln!("schemathesis ({what}):\n{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_nothing_against_the_document() {
    let Some(st) = schemathesis() else { return };
    auditlog_server::init_tls();
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("audit.db").display());
    admin(&db, &["org", "create", "acme", "--name", "Acme"]);
    admin(
        &db,
        &[
            "member",
            "add",
            "--org",
            "acme",
            "--email",
            "owner@acme.com",
            "--role",
            "owner",
        ],
    );
    let key = read_write_key(&db);
    let port = free_port();
    let _server = Killed(
        auditlog()
            .args(["serve", "--database", &db, "--listen", &format!("127.0.0.1:{port}")])
            // Generated webhooks may name any public host: their test
            // messages and deliveries go to a proxy that is not there
            // rather than out to the internet.
            .env("ALL_PROXY", "http://127.0.0.1:9")
            .env("HTTPS_PROXY", "http://127.0.0.1:9")
            .env("HTTP_PROXY", "http://127.0.0.1:9")
            .env_remove("NO_PROXY")
            .env_remove("no_proxy")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    wait_ready(&client, &base).await;

    run(
        &st,
        dir.path(),
        &base,
        "read-write API key",
        &["--header", &format!("Authorization: Bearer {key}")],
    );

    let resp = client
        .post(format!("{base}/v1/session"))
        .json(&serde_json::json!({"email": "owner@acme.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let cookie = resp.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let session: serde_json::Value = resp.json().await.unwrap();
    let csrf = session["csrf_token"].as_str().unwrap();
    run(
        &st,
        dir.path(),
        &base,
        "owner's session",
        &[
            "--header",
            &format!("Cookie: {cookie}"),
            "--header",
            &format!("X-CSRF-Token: {csrf}"),
            // Signing out (and failed sign-ins, which slow further ones)
            // would end the run's own session; the key run covers them.
            "--exclude-path",
            "/v1/session",
        ],
    );
}

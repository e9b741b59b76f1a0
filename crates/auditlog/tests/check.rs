//! `auditlog check` finds tampering at rest and refuses nothing it should
//! accept: an untouched log passes with its signature checked; a changed
//! entry is named by its `seq`, a deleted one as missing, a checkpoint
//! held against the wrong key fails; and a database a newer release
//! migrated is refused, naming both schema versions.

mod common;

use common::*;

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

use auditlog_sqlite::rusqlite::Connection;
use serde_json::{Value, json};

const ENTRIES: usize = 300;

/// A database with `ENTRIES` entries in acme's log and a signed checkpoint
/// of all of them, written by the real server, then stopped.
async fn signed_log(dir: &Path) -> String {
    let path = dir.join("audit.db");
    let db = format!("sqlite://{}", path.display());
    acme_with_admin(&db);
    let key = read_write_key(&db);
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let server = Killed(
        auditlog()
            .args(["serve", "--database", &db, "--listen", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let client = reqwest::Client::new();
    wait_ready(&client, &base).await;
    let events: Vec<Value> = (0..ENTRIES)
        .map(|i| json!({"event": "guardrail.created", "resource": {"type": "guardrail", "id": format!("g{i}")}, "details": {"name": "x", "type": "pii"}}))
        .collect();
    let resp = client
        .post(format!("{base}/v1/orgs/acme/audit/events"))
        .bearer_auth(&key)
        .json(&json!({ "events": events }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let size = ENTRIES + 2; // with the member's and the key's own entries
    let cp = client
        .get(format!("{base}/v1/orgs/acme/audit/checkpoint?tree_size={size}"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(cp.status(), 200, "{}", cp.text().await.unwrap());
    drop(server);
    db
}

fn path_of(db: &str) -> &str {
    db.strip_prefix("sqlite://").unwrap()
}

fn check(db: &str, extra: &[&str]) -> Output {
    auditlog()
        .args(["check", "--database", db])
        .args(extra)
        .output()
        .unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A consistent copy to tamper with, made as an operator would.
fn copy_of(db: &str, dir: &Path, name: &str) -> (String, PathBuf) {
    let to = dir.join(name);
    let out = auditlog()
        .args(["backup", "--database", db, "--to", to.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    (format!("sqlite://{}", to.display()), to)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_passes_an_untouched_log_and_names_what_was_changed_or_deleted() {
    auditlog_server::init_tls();
    let dir = tempfile::tempdir().unwrap();
    let db = signed_log(dir.path()).await;
    let size = ENTRIES + 2;

    let ok = check(&db, &[]);
    let text = stdout(&ok);
    assert!(ok.status.success(), "{text}");
    // Reading the checkpoint was recorded too, so the log is a little longer.
    let line = text.lines().find(|l| l.starts_with("ok acme: ")).expect("acme's line");
    let counts: Vec<&str> = line.split(' ').collect();
    assert_eq!(
        counts[2],
        counts[6].trim_end_matches(','),
        "entries = tree size: {line}"
    );
    assert!(counts[2].parse::<usize>().unwrap() >= size, "{line}");
    assert!(
        line.ends_with(&format!(
            "0 expired by retention; root matches the stored tree; checkpoint at size {size} matches (signature valid)"
        )),
        "{line}"
    );

    // The signing key file beside the copy is not there: the report says
    // the signature was not checked, and names the remedy.
    let (changed, changed_path) = copy_of(&db, dir.path(), "changed.db");
    let conn = Connection::open(&changed_path).unwrap();
    conn.execute("UPDATE entries SET actor = 'mallory@evil.example' WHERE seq = 150", [])
        .unwrap();
    drop(conn);
    let out = check(&changed, &[]);
    let text = stdout(&out);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("FAILED acme"), "{text}");
    assert!(
        text.contains("first problem: seq 150: the entry does not hash to its stored leaf"),
        "{text}"
    );
    assert!(text.contains("signature not checked"), "{text}");

    let (deleted, deleted_path) = copy_of(&db, dir.path(), "deleted.db");
    let conn = Connection::open(&deleted_path).unwrap();
    conn.execute("DELETE FROM entries WHERE seq = 100", []).unwrap();
    drop(conn);
    let out = check(&deleted, &[]);
    let text = stdout(&out);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("first problem: seq 100 is missing"), "{text}");

    // One organization by its slug; an unknown one is refused.
    let only = check(&db, &["--org", "acme"]);
    assert!(only.status.success() && stdout(&only).contains("1 organizations checked"));
    let unknown = check(&db, &["--org", "nobody"]);
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no organization \"nobody\""));

    // The signing key goes along only when asked, readable by its owner.
    let (_, plain) = copy_of(&db, dir.path(), "plain.db");
    assert!(!dir.path().join("plain.db.signing-key").exists(), "{}", plain.display());
    let with_key = dir.path().join("keyed.db");
    let out = auditlog()
        .args([
            "backup",
            "--database",
            &db,
            "--include-signing-key",
            "--to",
            with_key.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let copied = dir.path().join("keyed.db.signing-key");
    assert_eq!(
        std::fs::read(&copied).unwrap(),
        std::fs::read(format!("{}.signing-key", path_of(&db))).unwrap()
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&copied).unwrap().permissions().mode() & 0o777, 0o600);
    }
    // And a backup never overwrites a file.
    let again = auditlog()
        .args(["backup", "--database", &db, "--to", with_key.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!again.status.success());

    // Held against another service's key, the checkpoint does not verify.
    let other = tempfile::tempdir().unwrap();
    let other_key = other.path().join("other.key");
    let verifier = admin(
        &format!("sqlite://{}", other.path().join("x.db").display()),
        &["key", "show-signing", "--signing-key", other_key.to_str().unwrap()],
    );
    let out = check(&db, &["--key", verifier.trim()]);
    assert!(!out.status.success());
    assert!(stdout(&out).contains("SIGNATURE INVALID"), "{}", stdout(&out));
}

#[test]
fn a_database_from_a_newer_release_is_refused_naming_both_versions() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("newer.db");
    let db = format!("sqlite://{}", path.display());
    admin(&db, &["migrate"]);
    let known: i64 = Connection::open(&path)
        .unwrap()
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", known + 1)
        .unwrap();
    for command in [&["migrate"][..], &["check"][..]] {
        let out = auditlog().args(command).args(["--database", &db]).output().unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!("schema version {}", known + 1))
                && err.contains(&format!("knows versions up to {known}"))
                && err.contains("downgrades are refused"),
            "{command:?}: {err}"
        );
    }
}

/// Retention purged the oldest entries: they are reported as expired, and
/// the rest is rebuilt from the tree retention kept, and passes.
#[tokio::test]
async fn entries_purged_by_retention_are_expired_not_missing() {
    use auditlog_domain::entry::{Actor, ActorType, Resource, SubmittedBy, SubmitterKind};
    use auditlog_domain::store::{AccountStore, AppendRequest, EntryStore, MaintenanceStore};
    use auditlog_domain::{NewEntry, Plan, Timestamp, org::NewOrg};

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("purged.db");
    let store = auditlog_sqlite::SqliteStore::open(&path).unwrap();
    let org = store
        .create_org(
            NewOrg {
                slug: "acme".into(),
                name: "Acme".into(),
                plan: Plan::Team,
                enterprise_retention_days: None,
            },
            Timestamp(0),
        )
        .await
        .unwrap();
    let entry = |i: i64| NewEntry {
        timestamp: Timestamp(1_000 * i),
        actor: Actor {
            kind: ActorType::User,
            id: "maria@acme.com".into(),
        },
        event: "guardrail.created".into(),
        resource: Resource {
            kind: "guardrail".into(),
            id: format!("g{i}"),
            name: None,
        },
        details: serde_json::Map::new(),
        ip_address: None,
        user_agent: None,
        request_id: None,
        idempotency_key: None,
        submitted_by: SubmittedBy::new(SubmitterKind::ApiKey, "lqt_purged01"),
    };
    let entries: Vec<NewEntry> = (1..=1_000).map(entry).collect();
    store
        .append(vec![AppendRequest::entries(org.id, entries)], Timestamp(2_000_000))
        .await
        .unwrap();
    // Entries 1 to 411 are older than the cutoff.
    let purged = store.purge_before(org.id, Timestamp(412_000), 10_000).await.unwrap();
    assert_eq!(purged.count, 411);
    drop(store);

    let out = check(&format!("sqlite://{}", path.display()), &[]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("ok acme: 589 entries, tree size 1000, 411 expired by retention; root matches the stored tree"),
        "{text}"
    );
}

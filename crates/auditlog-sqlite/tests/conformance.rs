//! The SQLite store against the shared conformance suite, each check on a
//! fresh database file.

use auditlog_domain::store::AccountStore;
use auditlog_sqlite::SqliteStore;

async fn fresh() -> SqliteStore {
    let dir = tempfile::tempdir().expect("temp dir");
    // The directory must outlive the store; tests are short, so leak it.
    let path = dir.keep().join("audit.db");
    SqliteStore::open(path).expect("open store")
}

auditlog_store_conformance::conformance_tests!(fresh());

#[tokio::test]
async fn reopening_keeps_everything_and_migrates_once() {
    use auditlog_domain::{Plan, Timestamp, org::NewOrg};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.db");
    {
        let s = SqliteStore::open(&path).unwrap();
        s.create_org(
            NewOrg {
                slug: "acme".into(),
                name: "Acme".into(),
                plan: Plan::Scale,
                enterprise_retention_days: None,
            },
            Timestamp(1),
        )
        .await
        .unwrap();
    }
    let s = SqliteStore::open(&path).unwrap();
    let org = s.org_by_slug("acme").await.unwrap().unwrap();
    assert_eq!(org.plan, Plan::Scale);
}

#[test]
fn durable_settings_are_in_force() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.db");
    let _store = SqliteStore::open(&path).unwrap();
    let conn = auditlog_sqlite::rusqlite::Connection::open(&path).unwrap();
    let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
    assert_eq!(mode, "wal");
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
    assert_eq!(version as usize, auditlog_sqlite::schema::latest_version());
}

//! Personal data on SQLite beyond the shared conformance checks: entries
//! written before personal values were sealed (canonical version 2) beside
//! sealed ones in one log, both reading back and proving their leaves, an
//! erasure leaving the older ones as the README states; and keys sealed
//! under another master secret reading as erased.

use std::sync::Arc;

use auditlog_domain::canonical::entry_leaf_hash;
use auditlog_domain::change::Change;
use auditlog_domain::filter::{Filter, Page};
use auditlog_domain::org::NewOrg;
use auditlog_domain::personal::{ERASED, PersonalData, Subject};
use auditlog_domain::store::{AccountStore, AppendRequest, EntryStore};
use auditlog_domain::{Catalog, Entry, OrgId, Plan, Timestamp};
use auditlog_sqlite::SqliteStore;
use auditlog_store_conformance::role_change;

async fn append(store: &SqliteStore, request: AppendRequest) -> Vec<Entry> {
    let out = store.append(vec![request], Timestamp(1_790_000_100_000)).await.unwrap();
    out.into_iter()
        .next()
        .unwrap()
        .unwrap()
        .into_iter()
        .map(|a| a.entry)
        .collect()
}

async fn acme(store: &SqliteStore) -> OrgId {
    let acme = NewOrg {
        slug: "acme".into(),
        name: "Acme".into(),
        plan: Plan::Scale,
        enterprise_retention_days: None,
    };
    store.create_org(acme, Timestamp(0)).await.unwrap().id
}

async fn everything(store: &SqliteStore, org: OrgId) -> Vec<Entry> {
    let page = Page {
        limit: 100,
        after: None,
    };
    let mut all = store.list(org, &Filter::default(), page).await.unwrap();
    all.sort_by_key(|e| e.seq);
    all
}

#[tokio::test]
async fn older_entries_stay_as_written_and_every_leaf_still_proves() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.db");
    let before = SqliteStore::open(&path).unwrap();
    let org = acme(&before).await;
    let old = append(&before, AppendRequest::entries(org, vec![role_change(1)])).await;
    assert_eq!(old[0].canonical_version, 2);
    drop(before);

    let personal = Arc::new(PersonalData::new(&[5; 32], Arc::new(Catalog::builtin())));
    let store = SqliteStore::open(&path).unwrap();
    store.use_personal_data(personal.clone());
    let new = append(&store, AppendRequest::entries(org, vec![role_change(2)])).await;
    assert_eq!(new[0].canonical_version, 3);
    let bob = personal.pseudonym(&Subject::new("bob@acme.com").unwrap());
    assert_eq!(
        store.subject_entries(org, bob).await.unwrap(),
        1,
        "only the sealed entry counts"
    );
    let erase = AppendRequest {
        org_id: org,
        changes: vec![Change::EraseSubject {
            pseudonym: bob,
            token: personal.token(&bob),
            entries: 1,
        }],
        entries: vec![],
    };
    append(&store, erase).await;

    let read = everything(&store, org).await;
    assert_eq!(read[0].resource.id, "bob@acme.com", "the older entry is as written");
    assert_eq!(read[1].resource.id, ERASED);
    for (read, written) in read.iter().zip(old.iter().chain(&new)) {
        assert_eq!(entry_leaf_hash(read), entry_leaf_hash(written), "seq {}", read.seq);
    }
    // The person filter finds the older entry only.
    let bobs = Filter {
        resource_id: Some("bob@acme.com".into()),
        ..Filter::default()
    };
    let found = store.list(org, &bobs, Page { limit: 10, after: None }).await.unwrap();
    assert_eq!(found.iter().map(|e| e.seq).collect::<Vec<_>>(), [1]);
}

/// Keys sealed under another master secret (a command run with another
/// signing key) read as no key: those values show erased, the rest of the
/// log still reads, and every leaf still proves.
#[tokio::test]
async fn a_key_sealed_under_another_master_secret_reads_as_erased() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.db");
    let writer = SqliteStore::open(&path).unwrap();
    writer.use_personal_data(Arc::new(PersonalData::new(&[1; 32], Arc::new(Catalog::builtin()))));
    let org = acme(&writer).await;
    let written = append(&writer, AppendRequest::entries(org, vec![role_change(1)])).await;
    let reader = SqliteStore::open(&path).unwrap();
    reader.use_personal_data(Arc::new(PersonalData::new(&[2; 32], Arc::new(Catalog::builtin()))));
    let read = everything(&reader, org).await;
    assert_eq!(
        (read[0].actor.id.as_str(), read[0].resource.id.as_str()),
        (ERASED, ERASED)
    );
    assert_eq!(entry_leaf_hash(&read[0]), entry_leaf_hash(&written[0]));
}

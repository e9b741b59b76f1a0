//! Personal data on PostgreSQL beyond the shared conformance checks: sealed
//! values go with their entries whether retention deletes rows or drops a
//! month, a webhook delivery carries its entry whole, and a process
//! without the master secret reads sealed values as erased, its leaves
//! intact.

mod common;

use std::collections::HashMap;
use std::sync::Arc;

use auditlog_domain::change::Change;
use auditlog_domain::entry::{Actor, ActorType};
use auditlog_domain::filter::{Filter, Page};
use auditlog_domain::personal::{PersonalData, Subject};
use auditlog_domain::store::{AppendRequest, DeliveryStore, EntryStore, MaintenanceStore};
use auditlog_domain::webhook::{Endpoint, Secret};
use auditlog_domain::{Catalog, NewEntry, Org, Timestamp};
use auditlog_postgres::tokio_postgres::{self, NoTls};
use auditlog_postgres::{PostgresStore, testing};
use common::{T0, append, dated, org};

fn personal() -> Arc<PersonalData> {
    Arc::new(PersonalData::new(&[3; 32], Arc::new(Catalog::builtin())))
}

/// The `n`th entry, by ada, at `when`.
fn by_ada(when: &str, n: usize) -> NewEntry {
    let mut e = dated(Timestamp::parse(when).unwrap(), n);
    e.actor = Actor {
        kind: ActorType::User,
        id: "ada@acme.com".into(),
    };
    e
}

/// Sequence numbers of `org` with sealed values, in order.
async fn sealed_seqs(url: &str, org: &Org) -> Vec<i64> {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await.unwrap();
    tokio::spawn(connection);
    client
        .query(
            "SELECT DISTINCT seq FROM personal_parts WHERE org_id = $1 ORDER BY seq",
            &[&org.id.0],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_takes_sealed_values_with_their_entries() {
    let Some(url) = testing::fresh_database_url().await else {
        return;
    };
    let store = PostgresStore::connect(&url).await.unwrap();
    let personal = personal();
    store.use_personal_data(personal.clone());
    let a = org(&store, "acme").await;
    let news = ["2025-01-05T00:00:00Z", "2025-02-05T00:00:00Z", "2025-03-05T00:00:00Z"];
    append(
        &store,
        &a,
        news.iter().enumerate().map(|(n, at)| by_ada(at, n)).collect(),
    )
    .await;
    assert_eq!(sealed_seqs(&url, &a).await, [1, 2, 3]);

    let purged = store
        .purge_before(a.id, Timestamp::parse("2025-02-01T00:00:00Z").unwrap(), 100)
        .await
        .unwrap();
    assert_eq!(purged.count, 1);
    assert_eq!(sealed_seqs(&url, &a).await, [2, 3], "deleted row by row");

    let cutoffs = HashMap::from([(a.id, Timestamp::parse("2025-03-01T00:00:00Z").unwrap())]);
    let dropped = store.drop_expired_partitions(&cutoffs).await.unwrap();
    assert_eq!(dropped[&a.id].count, 1);
    assert_eq!(sealed_seqs(&url, &a).await, [3], "dropped with the month");

    let ada = personal.pseudonym(&Subject::new("ada@acme.com").unwrap());
    assert_eq!(store.subject_entries(a.id, ada).await.unwrap(), 1);
    let left = store.list(a.id, &Filter::default(), Page::default()).await.unwrap();
    assert_eq!(left[0].actor.id, "ada@acme.com");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_carries_its_entry_whole() {
    let Some(url) = testing::fresh_database_url().await else {
        return;
    };
    let store = PostgresStore::connect(&url).await.unwrap();
    store.use_personal_data(personal());
    let a = org(&store, "acme").await;
    let hook = Endpoint {
        id: "wh_1".into(),
        url: "https://hooks.example/1".into(),
        description: String::new(),
        events: Vec::new(),
        enabled: true,
        secret: Secret::generate(),
        previous_secret: None,
        created_at: Timestamp(T0),
        failing_since: None,
        disabled_reason: None,
        payload_format: Default::default(),
    };
    let out = store
        .append(
            vec![AppendRequest {
                org_id: a.id,
                changes: vec![Change::CreateWebhook(hook)],
                entries: vec![by_ada("2026-01-05T00:00:00Z", 1)],
            }],
            Timestamp(T0),
        )
        .await
        .unwrap();
    let written = out[0].as_ref().unwrap()[0].entry.clone();
    let due = store
        .claim_deliveries(Timestamp(T0 + 1), Timestamp(T0 + 60_000), 10)
        .await
        .unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].entry, written);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_master_secret_sealed_values_read_as_erased() {
    let Some(url) = testing::fresh_database_url().await else {
        return;
    };
    let sealing = PostgresStore::connect(&url).await.unwrap();
    sealing.use_personal_data(personal());
    let a = org(&sealing, "acme").await;
    let sealed = append(&sealing, &a, vec![by_ada("2026-01-05T00:00:00Z", 1)]).await;
    assert_eq!(sealed[0].canonical_version, 3);

    let plain = PostgresStore::connect(&url).await.unwrap();
    let unopened = plain.list(a.id, &Filter::default(), Page::default()).await.unwrap();
    assert_eq!(unopened[0].actor.id, auditlog_domain::personal::ERASED);
    assert_eq!(
        auditlog_domain::canonical::entry_leaf_hash(&unopened[0]),
        auditlog_domain::canonical::entry_leaf_hash(&sealed[0]),
        "the leaf still rebuilds from the commitments"
    );
    let one = plain.entry(a.id, sealed[0].id).await.unwrap().unwrap();
    assert_eq!(one, unopened[0]);
    let unsealed = append(&plain, &a, vec![by_ada("2026-01-06T00:00:00Z", 2)]).await;
    assert_eq!(unsealed[0].canonical_version, 2);
    let both = sealing.list(a.id, &Filter::default(), Page::default()).await.unwrap();
    assert_eq!(both, [unsealed[0].clone(), sealed[0].clone()]);
    let by_id = Filter {
        actor: Some("ada@acme.com".into()),
        ..Filter::default()
    };
    let found = sealing.list(a.id, &by_id, Page::default()).await.unwrap();
    assert_eq!(found.len(), 2, "by the token and by the value");
}

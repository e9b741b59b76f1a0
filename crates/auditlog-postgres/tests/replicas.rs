//! What replicas sharing one database rely on beyond the conformance suite:
//! hearing of each other's deliveries, taking turns at background jobs, and
//! a database that goes away being reported as unavailable (a 503 and a
//! retry), not as a bug.

use auditlog_domain::store::AccountStore;
use auditlog_domain::store::DeliveryStore;
use auditlog_domain::store::EntryStore;
use auditlog_domain::store::MaintenanceStore;
use std::time::Duration;

use auditlog_domain::change::Change;
use auditlog_domain::entry::Resource;
use auditlog_domain::org::NewOrg;
use auditlog_domain::store::{AppendRequest, Job};
use auditlog_domain::webhook::{Endpoint, Secret};
use auditlog_domain::{NewEntry, Plan, StoreError, Timestamp};
use auditlog_postgres::{PostgresStore, testing};

const T0: i64 = 1_790_000_000_000;

fn recorded(event: &str) -> NewEntry {
    NewEntry::by_system(
        Timestamp(T0),
        event,
        Resource {
            kind: "webhook".into(),
            id: "wh_1".into(),
            name: None,
        },
        serde_json::json!({}),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_hears_of_deliveries_another_one_wrote() {
    let Some(url) = testing::fresh_database_url().await else {
        return;
    };
    let listening = PostgresStore::connect(&url).await.unwrap();
    let writing = PostgresStore::connect(&url).await.unwrap();
    let org = writing
        .create_org(
            NewOrg {
                slug: "acme".into(),
                name: "Acme".into(),
                plan: Plan::Team,
                enterprise_retention_days: None,
            },
            Timestamp(T0),
        )
        .await
        .unwrap();
    // The first wait returns once listening has begun.
    let seen = tokio::time::timeout(Duration::from_secs(10), listening.wait_for_deliveries(0))
        .await
        .expect("listening starts");

    // Entries with no endpoint to deliver to signal nothing...
    writing
        .append(
            vec![AppendRequest::entries(org.id, vec![recorded("project.created")])],
            Timestamp(T0),
        )
        .await
        .unwrap();
    let quiet = tokio::time::timeout(Duration::from_millis(300), listening.wait_for_deliveries(seen)).await;
    assert!(quiet.is_err(), "no delivery, no signal");

    // ...an entry fanned out to an endpoint does.
    let endpoint = Endpoint {
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
    let waiter = {
        let listening = listening.clone();
        tokio::spawn(async move { listening.wait_for_deliveries(seen).await })
    };
    writing
        .append(
            vec![AppendRequest {
                org_id: org.id,
                changes: vec![Change::CreateWebhook(endpoint)],
                entries: vec![recorded("webhook.created")],
            }],
            Timestamp(T0),
        )
        .await
        .unwrap();
    let now = tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .expect("the signal arrives")
        .unwrap();
    assert!(now > seen);
    // A sign given while nobody waited is not lost.
    writing
        .append(
            vec![AppendRequest::entries(org.id, vec![recorded("project.created")])],
            Timestamp(T0),
        )
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(10), async {
        let mut at = now;
        while at == now {
            at = listening.wait_for_deliveries(now).await;
        }
    })
    .await
    .expect("the later signal is counted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_replica_at_a_time_holds_a_job() {
    let Some(url) = testing::fresh_database_url().await else {
        return;
    };
    let one = PostgresStore::connect(&url).await.unwrap();
    let two = PostgresStore::connect(&url).await.unwrap();
    let lease = one.try_lease(Job::Checkpoints).await.unwrap().expect("free");
    assert!(
        two.try_lease(Job::Checkpoints).await.unwrap().is_none(),
        "held by the other"
    );
    let retention = two.try_lease(Job::Retention).await.unwrap();
    assert!(retention.is_some(), "jobs are leased apart");
    drop(lease);
    // Released as the lease is dropped (the unlock is sent right after).
    let taken = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Some(l) = two.try_lease(Job::Checkpoints).await.unwrap() {
                return l;
            }
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("free again once dropped");
    drop(taken);
    drop(retention);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_server_is_unavailable() {
    // Port 1 on loopback: nothing listens there.
    let err = PostgresStore::connect("postgres://auditlog@127.0.0.1:1/auditlog?connect_timeout=2")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_that_goes_away_is_unavailable() {
    let Some(url) = testing::fresh_database_url().await else {
        return;
    };
    let store = PostgresStore::connect(&url).await.unwrap();
    store.ping().await.unwrap();
    let mut admin = url::Url::parse(&url).unwrap();
    let name = admin.path().trim_start_matches('/').to_owned();
    admin.set_path("/postgres");
    let (client, connection) = tokio_postgres::connect(admin.as_str(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    // Terminates the store's connections, then the database is gone.
    client
        .batch_execute(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .await
        .unwrap();
    for _ in 0..2 {
        let err = store.ping().await.unwrap_err();
        assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    }
}

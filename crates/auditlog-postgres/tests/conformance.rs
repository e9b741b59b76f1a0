//! The PostgreSQL store against the shared conformance suite, each check on
//! a fresh database, and what only PostgreSQL has: several processes
//! appending to one database, partitions, reopening.

use auditlog_domain::store::AccountStore;
use auditlog_domain::store::DeliveryStore;
use auditlog_domain::store::EntryStore;
use std::collections::HashSet;

use auditlog_domain::change::Change;
use auditlog_domain::entry::{Actor, ActorType, Resource};
use auditlog_domain::filter::{Filter, Page};
use auditlog_domain::org::NewOrg;
use auditlog_domain::store::AppendRequest;
use auditlog_domain::webhook::{Endpoint, Secret};
use auditlog_domain::{NewEntry, Org, Plan, Timestamp, canonical, merkle};
use auditlog_postgres::{PostgresStore, schema, testing};

/// A store on a fresh database, or `None` when there is no PostgreSQL.
async fn fresh() -> Option<PostgresStore> {
    let url = testing::fresh_database_url().await?;
    Some(PostgresStore::connect(&url).await.expect("connect"))
}

auditlog_store_conformance::conformance_tests!(optional: fresh());

const T0: i64 = 1_790_000_000_000;

async fn org(store: &PostgresStore, slug: &str) -> Org {
    store
        .create_org(
            NewOrg {
                slug: slug.into(),
                name: slug.into(),
                plan: Plan::Scale,
                enterprise_retention_days: None,
            },
            Timestamp(T0),
        )
        .await
        .unwrap()
}

fn entry(at: Timestamp, n: usize) -> NewEntry {
    let mut details = serde_json::Map::new();
    details.insert("n".into(), serde_json::json!(n));
    NewEntry {
        timestamp: at,
        actor: Actor {
            kind: ActorType::User,
            id: "a@x.io".into(),
        },
        event: "project.created".into(),
        resource: Resource {
            kind: "project".into(),
            id: format!("p_{n}"),
            name: None,
        },
        details,
        ip_address: None,
        user_agent: None,
        request_id: None,
        idempotency_key: None,
        submitted_by: auditlog_domain::SubmittedBy::new(auditlog_domain::SubmitterKind::ApiKey, "lqt_test0000"),
    }
}

fn naive_root(leaves: &[merkle::Hash]) -> merkle::Hash {
    match leaves.len() {
        0 => merkle::EMPTY_ROOT,
        1 => leaves[0],
        n => {
            let k = n.next_power_of_two() / 2;
            merkle::node_hash(&naive_root(&leaves[..k]), &naive_root(&leaves[k..]))
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reopening_keeps_everything_and_migrates_once() {
    let Some(url) = testing::fresh_database_url().await else {
        return;
    };
    {
        let s = PostgresStore::connect(&url).await.unwrap();
        org(&s, "acme").await;
    }
    let s = PostgresStore::connect(&url).await.unwrap();
    let acme = s.org_by_slug("acme").await.unwrap().unwrap();
    assert_eq!(acme.plan, Plan::Scale);
    let client = raw(&url).await;
    let applied: Vec<i32> = client
        .query("SELECT version FROM auditlog_migrations ORDER BY version", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let want: Vec<i32> = (1..=schema::latest_version() as i32).collect();
    assert_eq!(applied, want, "each migration recorded once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_starting_at_once_migrate_once() {
    let Some(url) = testing::fresh_database_url().await else {
        return;
    };
    let starts: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move { PostgresStore::connect(&url).await })
        })
        .collect();
    for s in starts {
        s.await.unwrap().expect("every replica starts");
    }
}

/// Two stores (as two replicas would be) append to the same organization
/// at once: sequence numbers stay gapless and unique, and the tree's root
/// is the one computed from the entries' leaf hashes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_from_two_stores_keep_the_log_consistent() {
    let Some(url) = testing::fresh_database_url().await else {
        return;
    };
    let one = PostgresStore::connect(&url).await.unwrap();
    let two = PostgresStore::connect(&url).await.unwrap();
    let acme = org(&one, "acme").await;
    let other = org(&two, "globex").await;
    const ROUNDS: usize = 40;
    let writer = |store: PostgresStore, offset: usize| {
        tokio::spawn(async move {
            for round in 0..ROUNDS {
                // Batches of uneven sizes, some with a second organization
                // (locked in the other order by the other writer's batch).
                let n = 1 + (round + offset) % 7;
                let entries: Vec<_> = (0..n)
                    .map(|i| entry(Timestamp(T0 + (round * 10 + i) as i64), offset * 1000 + round * 10 + i))
                    .collect();
                let mut requests = vec![AppendRequest::entries(acme.id, entries)];
                if round.is_multiple_of(3) {
                    requests.insert(
                        offset % 2,
                        AppendRequest::entries(other.id, vec![entry(Timestamp(T0), round)]),
                    );
                }
                let out = store.append(requests, Timestamp(T0 + 1_000_000)).await.unwrap();
                assert!(out.iter().all(|r| r.is_ok()));
            }
        })
    };
    let (a, b) = (writer(one.clone(), 0), writer(two.clone(), 1));
    a.await.unwrap();
    b.await.unwrap();

    let size = one.log_size(acme.id).await.unwrap();
    let all = one
        .list(
            acme.id,
            &Filter {
                after_seq: Some(0),
                ..Filter::default()
            },
            Page {
                limit: 1000,
                after: None,
            },
        )
        .await
        .unwrap();
    let seqs: Vec<i64> = all.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=size).collect::<Vec<_>>(), "gapless and unique");
    let ids: HashSet<_> = all.iter().map(|e| e.id).collect();
    assert_eq!(ids.len(), all.len());

    let leaves: Vec<merkle::Hash> = all.iter().map(canonical::entry_leaf_hash).collect();
    let nodes = two
        .tree_nodes(acme.id, merkle::frontier_ids(size as u64))
        .await
        .unwrap();
    let root = merkle::root_at(size as u64, |id| nodes.get(&id).copied()).unwrap();
    assert_eq!(root, naive_root(&leaves), "the tree holds every entry in seq order");
}

/// Entries far in the past or future land in the catch-all partitions;
/// entries within 2000..2100 get a partition per month, made on demand.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_timestamp_finds_a_partition() {
    let Some(url) = testing::fresh_database_url().await else {
        return;
    };
    let store = PostgresStore::connect(&url).await.unwrap();
    let acme = org(&store, "acme").await;
    let times = [
        Timestamp(-62_135_596_800_000),                        // year 1
        Timestamp(0),                                          // 1970
        Timestamp::parse("2031-02-28T23:59:59.999Z").unwrap(), // a month's last instant
        Timestamp::parse("2031-03-01T00:00:00Z").unwrap(),     // the next one's first
        Timestamp(253_402_300_799_000),                        // year 9999
    ];
    let stored = store
        .append(
            vec![AppendRequest::entries(
                acme.id,
                times.iter().enumerate().map(|(i, t)| entry(*t, i)).collect(),
            )],
            Timestamp(T0),
        )
        .await
        .unwrap()
        .remove(0)
        .unwrap();
    for a in &stored {
        assert_eq!(store.entry(acme.id, a.entry.id).await.unwrap().as_ref(), Some(&a.entry));
    }
    let client = raw(&url).await;
    let placed: Vec<(i64, String)> = client
        .query("SELECT seq, tableoid::regclass::text FROM entries ORDER BY seq", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let tables: Vec<&str> = placed.iter().map(|(_, t)| t.as_str()).collect();
    assert_eq!(
        tables,
        [
            "entries_before_2000",
            "entries_before_2000",
            "entries_p203102",
            "entries_p203103",
            "entries_from_2100"
        ]
    );
    // Listing across all of them, newest first.
    let listed = store
        .list(acme.id, &Filter::default(), Page { limit: 10, after: None })
        .await
        .unwrap();
    assert_eq!(listed.iter().map(|e| e.seq).collect::<Vec<_>>(), [5, 4, 3, 2, 1]);
    // A second store (another replica) knows none of them yet and copes.
    let again = PostgresStore::connect(&url).await.unwrap();
    again
        .append(
            vec![AppendRequest::entries(acme.id, vec![entry(times[2], 9)])],
            Timestamp(T0),
        )
        .await
        .unwrap();
}

/// A connection of the test's own, beside the store's.
async fn raw(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    client
}

/// Locks the log heads of `orgs` in a transaction of `holder`'s, as
/// another replica appending to them would, until it ends.
async fn hold_heads<'c>(holder: &'c mut tokio_postgres::Client, orgs: &[i64]) -> tokio_postgres::Transaction<'c> {
    let lock = holder.transaction().await.unwrap();
    lock.execute("SELECT size FROM log_heads WHERE org_id = ANY($1) FOR UPDATE", &[&orgs])
        .await
        .unwrap();
    lock
}

/// The sequence numbers each request of a call was given.
fn seqs(out: Vec<auditlog_domain::store::RequestResult>) -> Vec<Vec<i64>> {
    out.into_iter()
        .map(|r| r.unwrap().iter().map(|a| a.entry.seq).collect())
        .collect()
}

/// `store.append(requests, at)` as a task of its own, for a test to watch
/// while it waits for a lock.
fn spawn_append(
    store: &std::sync::Arc<PostgresStore>,
    requests: Vec<AppendRequest>,
    at: Timestamp,
) -> tokio::task::JoinHandle<Result<Vec<auditlog_domain::store::RequestResult>, auditlog_domain::StoreError>> {
    let store = store.clone();
    tokio::spawn(async move { store.append(requests, at).await })
}

/// An organization another replica holds does not hold up the rest of a
/// call: while one organization's log head is locked elsewhere, the call's
/// entries for a second organization are committed and readable, and the
/// first organization's follow once the lock is released, gapless.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn organizations_of_one_call_commit_side_by_side() {
    let Some(url) = testing::fresh_database_url().await else {
        return;
    };
    let store = std::sync::Arc::new(PostgresStore::connect(&url).await.unwrap());
    let (a, b) = (org(&store, "acme").await, org(&store, "globex").await);
    let mut holder = raw(&url).await;
    let lock = hold_heads(&mut holder, &[a.id.0]).await;

    let at = Timestamp(T0 + 1_000);
    let call = spawn_append(
        &store,
        vec![
            AppendRequest::entries(a.id, vec![entry(at, 1)]),
            AppendRequest::entries(b.id, vec![entry(at, 2), entry(at, 3)]),
        ],
        at,
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while store.log_size(b.id).await.unwrap() < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "globex's entries waited for acme's locked log head"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(store.log_size(a.id).await.unwrap(), 0);
    assert!(
        !call.is_finished(),
        "the call answers only once every organization committed"
    );

    lock.rollback().await.unwrap();
    let out = call.await.unwrap().unwrap();
    assert_eq!(seqs(out), vec![vec![1], vec![1, 2]]);
    assert_eq!(store.log_size(a.id).await.unwrap(), 1);
}

/// A call whose organizations are all held elsewhere waits for them and
/// reads what its rows depend on only once it has them: an endpoint the
/// holder enabled before letting go gets the call's deliveries, and each
/// organization's entries follow on, gapless.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_whose_organizations_are_all_held_reads_behind_their_locks() {
    let Some(url) = testing::fresh_database_url().await else {
        return;
    };
    let store = std::sync::Arc::new(PostgresStore::connect(&url).await.unwrap());
    let (a, b) = (org(&store, "acme").await, org(&store, "globex").await);
    let hook = Endpoint {
        id: "wh_late".into(),
        url: "https://hooks.example/late".into(),
        description: String::new(),
        events: Vec::new(),
        enabled: false,
        secret: Secret::generate(),
        previous_secret: None,
        created_at: Timestamp(T0),
        failing_since: None,
        disabled_reason: None,
        payload_format: Default::default(),
    };
    let created = store
        .append(
            vec![AppendRequest {
                org_id: a.id,
                changes: vec![Change::CreateWebhook(hook)],
                entries: vec![entry(Timestamp(T0), 0)],
            }],
            Timestamp(T0),
        )
        .await
        .unwrap();
    assert!(created[0].is_ok(), "{created:?}");

    let mut holder = raw(&url).await;
    let lock = hold_heads(&mut holder, &[a.id.0, b.id.0]).await;
    let at = Timestamp(T0 + 1_000);
    let call = spawn_append(
        &store,
        vec![
            AppendRequest::entries(a.id, vec![entry(at, 1)]),
            AppendRequest::entries(b.id, vec![entry(at, 2)]),
        ],
        at,
    );
    // Until the call waits for the heads, the holder's change could still
    // be read before them.
    let watcher = raw(&url).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let waiting: i64 = watcher
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%log_heads%'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        if waiting > 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the call never waited for the heads"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(!call.is_finished(), "the call went ahead without the heads");
    lock.execute("UPDATE webhooks SET enabled = true WHERE org_id = $1", &[&a.id.0])
        .await
        .unwrap();
    lock.commit().await.unwrap();

    let out = call.await.unwrap().unwrap();
    assert_eq!(seqs(out), vec![vec![2], vec![1]]);
    let deliveries = store.deliveries(a.id, "wh_late", 10).await.unwrap();
    assert_eq!(
        deliveries.iter().map(|d| d.seq).collect::<Vec<_>>(),
        vec![2],
        "the endpoint enabled under the lock was not read behind it"
    );
}

/// Appends run on the store's own runtime, on connections made there: with
/// the runtime that made the store held up, as a busy server's is, an
/// append from elsewhere still commits. (Driven by that runtime, its
/// connection would wait for it.)
#[tokio::test]
async fn appends_do_not_wait_for_the_runtime_that_made_the_store() {
    let Some(url) = testing::fresh_database_url().await else {
        return;
    };
    let store = PostgresStore::connect(&url).await.unwrap();
    let acme = org(&store, "acme").await;
    let at = Timestamp(T0);
    store
        .append(vec![AppendRequest::entries(acme.id, vec![entry(at, 0)])], at)
        .await
        .unwrap();

    let (done, answered) = std::sync::mpsc::channel();
    let elsewhere = store.clone();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let out = runtime.block_on(elsewhere.append(vec![AppendRequest::entries(acme.id, vec![entry(at, 1)])], at));
        let _ = done.send(out.map(|mut r| r.pop().map(|r| r.map(|a| a[0].entry.seq))));
    });
    // This test's runtime has one thread, and it waits here.
    let seq = answered
        .recv_timeout(std::time::Duration::from_secs(20))
        .expect("the append waited for the runtime that made the store");
    assert_eq!(seq.unwrap().unwrap().unwrap(), 2);
}

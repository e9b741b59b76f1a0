//! The retention purger on PostgreSQL, where whole expired months are
//! dropped before the rest is deleted row by row: each organization's
//! window is honoured exactly, its one `audit_log.retention_purged` entry of
//! the pass carries exact figures from both steps, and roots and proofs
//! still hold afterwards.

use std::collections::HashMap;
use std::sync::Arc;

use auditlog_domain::entry::Resource;
use auditlog_domain::filter::{Filter, Page};
use auditlog_domain::org::NewOrg;
use auditlog_domain::store::{AppendRequest, Purged};
use auditlog_domain::{Clock, Entry, ManualClock, NewEntry, Org, Plan, Store, Timestamp, canonical, merkle};
use auditlog_postgres::tokio_postgres::{self, NoTls};
use auditlog_postgres::{PostgresStore, testing};
use auditlog_server::Writer;
use auditlog_server::workers::retention::{OrgPurge, purge_once};

fn at(s: &str) -> Timestamp {
    Timestamp::parse(s).unwrap()
}

async fn org(store: &dyn Store, slug: &str, plan: Plan) -> Org {
    store
        .create_org(
            NewOrg {
                slug: slug.into(),
                name: slug.into(),
                plan,
                enterprise_retention_days: None,
            },
            at("2025-01-01T00:00:00Z"),
        )
        .await
        .unwrap()
}

async fn append(store: &dyn Store, org: &Org, days: &[&str]) -> Vec<Entry> {
    let entries = days
        .iter()
        .map(|d| {
            NewEntry::by_system(
                at(d),
                "project.created",
                Resource {
                    kind: "project".into(),
                    id: (*d).into(),
                    name: None,
                },
                serde_json::json!({}),
            )
        })
        .collect();
    store
        .append(
            vec![AppendRequest::entries(org.id, entries)],
            at("2026-07-01T00:00:00Z"),
        )
        .await
        .unwrap()
        .remove(0)
        .unwrap()
        .into_iter()
        .map(|a| a.entry)
        .collect()
}

async fn everything(store: &dyn Store, org: &Org) -> Vec<Entry> {
    let filter = Filter {
        after_seq: Some(0),
        ..Filter::default()
    };
    store
        .list(
            org.id,
            &filter,
            Page {
                limit: 1000,
                after: None,
            },
        )
        .await
        .unwrap()
}

async fn purge(store: &Arc<dyn Store>, clock: &ManualClock) -> Vec<OrgPurge> {
    let clock: Arc<dyn Clock> = Arc::new(clock.clone());
    let (writer, task) = Writer::spawn(store.clone(), clock.clone(), Default::default());
    let out = purge_once(store.as_ref(), &writer, clock.as_ref(), 2).await.unwrap();
    drop(writer);
    task.await.unwrap();
    out
}

async fn attached(url: &str) -> Vec<String> {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await.unwrap();
    tokio::spawn(connection);
    client
        .query(
            "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
             WHERE i.inhparent = 'entries'::regclass ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

fn root(store_nodes: &HashMap<merkle::NodeId, merkle::Hash>, size: u64) -> merkle::Hash {
    merkle::root_at(size, |id| store_nodes.get(&id).copied()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_months_and_single_rows_are_purged_with_exact_figures() {
    let Some(url) = testing::fresh_database_url().await else {
        return;
    };
    let store: Arc<dyn Store> = Arc::new(PostgresStore::connect(&url).await.unwrap());
    let team = org(store.as_ref(), "team", Plan::Team).await; // 90 days
    let scale = org(store.as_ref(), "scale", Plan::Scale).await; // 365 days
    let t = append(
        store.as_ref(),
        &team,
        &[
            "2026-02-10T00:00:00Z",
            "2026-03-10T00:00:00Z",
            "2026-03-20T00:00:00Z",
            "2026-04-10T00:00:00Z",
            "2026-06-01T00:00:00Z",
            "2026-06-10T00:00:00Z",
        ],
    )
    .await;
    let s = append(
        store.as_ref(),
        &scale,
        &["2026-03-15T00:00:00Z", "2026-06-05T00:00:00Z"],
    )
    .await;
    let team_size = t.len() as u64;
    let leaves: Vec<merkle::Hash> = t.iter().map(canonical::entry_leaf_hash).collect();
    let nodes = store
        .tree_nodes(team.id, merkle::frontier_ids(team_size))
        .await
        .unwrap();
    let root_before = root(&nodes, team_size);

    // On 2026-09-01 team keeps from 2026-06-03 on, scale everything here.
    let clock = ManualClock::new(at("2026-09-01T00:00:00Z"));
    let report = purge(&store, &clock).await;

    // February and April held only team's expired rows: dropped. March
    // holds a row scale keeps: team's rows there went one by one, as did
    // June's first.
    let months = attached(&url).await;
    for gone in ["entries_p202602", "entries_p202604"] {
        assert!(!months.iter().any(|m| m == gone), "{gone} dropped: {months:?}");
    }
    for kept in ["entries_p202603", "entries_p202606"] {
        assert!(months.iter().any(|m| m == kept), "{kept} kept: {months:?}");
    }
    let want = Purged {
        count: 5,
        first_seq: Some(t[0].seq),
        last_seq: Some(t[4].seq),
    };
    assert_eq!(
        report,
        [OrgPurge {
            org: "team".into(),
            purged: want
        }]
    );
    let left = everything(store.as_ref(), &team).await;
    assert_eq!(left.len(), 2, "June 10th and the purge's own entry");
    assert_eq!(left[0], t[5]);
    let recorded = &left[1];
    assert_eq!(recorded.event, "audit_log.retention_purged");
    assert_eq!(recorded.details["count"], 5);
    assert_eq!(recorded.details["first_seq"], t[0].seq);
    assert_eq!(recorded.details["last_seq"], t[4].seq);
    assert_eq!(recorded.details["cutoff"], "2026-06-03T00:00:00.000Z");
    assert_eq!(
        everything(store.as_ref(), &scale).await,
        s,
        "scale keeps all of its own"
    );

    // The tree outlives the drop: the old root, and every old entry's proof.
    let nodes = store
        .tree_nodes(team.id, merkle::frontier_ids(team_size))
        .await
        .unwrap();
    assert_eq!(root(&nodes, team_size), root_before);
    for (i, leaf) in leaves.iter().enumerate() {
        let refs = merkle::inclusion_proof_nodes(i as u64, team_size).unwrap();
        let nodes = store.tree_nodes(team.id, merkle::needed_nodes(&refs)).await.unwrap();
        let proof = merkle::assemble(&refs, |id| nodes.get(&id).copied()).unwrap();
        merkle::verify_inclusion(i as u64, team_size, leaf, &proof, &root_before).unwrap();
    }
    // Consistency from before the purge to after its entry.
    let size_now = store.log_size(team.id).await.unwrap() as u64;
    let refs = merkle::consistency_proof_nodes(team_size, size_now).unwrap();
    let nodes = store.tree_nodes(team.id, merkle::needed_nodes(&refs)).await.unwrap();
    let proof = merkle::assemble(&refs, |id| nodes.get(&id).copied()).unwrap();
    let now_nodes = store.tree_nodes(team.id, merkle::frontier_ids(size_now)).await.unwrap();
    merkle::verify_consistency(team_size, size_now, &root_before, &root(&now_nodes, size_now), &proof).unwrap();

    // Nothing more to do, nothing more recorded.
    assert!(purge(&store, &clock).await.is_empty());
}

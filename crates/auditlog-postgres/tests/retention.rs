//! Retention in bulk on PostgreSQL: expired months' partitions really go
//! (from the catalog, not just emptied), a month holding one entry still
//! within its organization's window stays, and appends into a month being
//! dropped, from this process or another, keep working with exact figures.

use auditlog_domain::store::EntryStore;
use auditlog_domain::store::MaintenanceStore;
mod common;

use std::collections::HashMap;

use auditlog_domain::store::Purged;
use auditlog_domain::{Entry, NewEntry, OrgId, Timestamp};
use auditlog_postgres::tokio_postgres::{self, NoTls};
use auditlog_postgres::{PostgresStore, testing};
use common::{append, dated, org};

fn at(s: &str) -> Timestamp {
    Timestamp::parse(s).unwrap()
}

async fn partitions(url: &str) -> Vec<String> {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await.unwrap();
    tokio::spawn(connection);
    let names: Vec<String> = client
        .query(
            "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
             WHERE i.inhparent = 'entries'::regclass AND c.relname LIKE 'entries\\_p%' ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    // Dropped, not merely detached: no table of that name is left at all.
    let tables: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_class WHERE relname LIKE 'entries\\_p%' AND relkind IN ('r', 'p')",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(tables as usize, names.len(), "every partition table is attached");
    names
}

fn figures(entries: &[&Entry]) -> Purged {
    Purged {
        count: entries.len() as u64,
        first_seq: entries.iter().map(|e| e.seq).min(),
        last_seq: entries.iter().map(|e| e.seq).max(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_months_are_dropped_and_a_month_with_a_live_entry_stays() {
    let Some(url) = testing::fresh_database_url().await else {
        return;
    };
    let store = PostgresStore::connect(&url).await.unwrap();
    let short = org(&store, "short").await;
    let long = org(&store, "long").await;
    let s = append(
        &store,
        &short,
        vec![
            dated(at("2025-01-05T00:00:00Z"), 1),
            dated(at("2025-02-05T00:00:00Z"), 2),
            dated(at("2025-03-05T00:00:00Z"), 3),
            dated(at("2025-03-06T00:00:00Z"), 4),
        ],
    )
    .await;
    let l = append(
        &store,
        &long,
        vec![
            dated(at("2025-01-07T00:00:00Z"), 1),
            dated(at("2025-03-31T23:59:59.999Z"), 2),
        ],
    )
    .await;
    let before = partitions(&url).await;
    for month in ["entries_p202501", "entries_p202502", "entries_p202503"] {
        assert!(before.iter().any(|p| p == month), "{month} in {before:?}");
    }

    // short keeps nothing before April; long nothing before 31 March noon:
    // January and February go whole, March has a live entry of long's.
    let cutoffs: HashMap<OrgId, Timestamp> = [
        (short.id, at("2025-04-01T00:00:00Z")),
        (long.id, at("2025-03-31T12:00:00Z")),
    ]
    .into();
    let dropped = store.drop_expired_partitions(&cutoffs).await.unwrap();
    assert_eq!(
        dropped,
        [(short.id, figures(&[&s[0], &s[1]])), (long.id, figures(&[&l[0]]))].into()
    );
    let after = partitions(&url).await;
    assert!(!after.iter().any(|p| p == "entries_p202501" || p == "entries_p202502"));
    assert!(
        after.iter().any(|p| p == "entries_p202503"),
        "a live row keeps its month"
    );

    // March's expired rows go row by row, short's both, long's none.
    let rows = store.purge_before(short.id, cutoffs[&short.id], 100).await.unwrap();
    assert_eq!(rows, figures(&[&s[2], &s[3]]));
    assert_eq!(
        store.purge_before(long.id, cutoffs[&long.id], 100).await.unwrap(),
        Purged::default()
    );
    assert!(store.entry(long.id, l[1].id).await.unwrap().is_some());
    // A second pass finds nothing more to drop.
    assert!(store.drop_expired_partitions(&cutoffs).await.unwrap().is_empty());
    // An organization the caller gave no cutoff for keeps its months.
    let without_long: HashMap<OrgId, Timestamp> = [(short.id, at("2026-01-01T00:00:00Z"))].into();
    assert!(store.drop_expired_partitions(&without_long).await.unwrap().is_empty());
    assert!(partitions(&url).await.iter().any(|p| p == "entries_p202503"));
}

/// A replica that has written to a month (and so remembers its partition)
/// appends to it again after another replica dropped it: the month is made
/// anew and the entry stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_that_remembers_a_dropped_month_makes_it_again() {
    let Some(url) = testing::fresh_database_url().await else {
        return;
    };
    let purging = PostgresStore::connect(&url).await.unwrap();
    let writing = PostgresStore::connect(&url).await.unwrap();
    let acme = org(&purging, "acme").await;
    let jan = at("2024-01-15T00:00:00Z");
    let first = append(&writing, &acme, vec![dated(jan, 1)]).await;
    let cutoffs: HashMap<OrgId, Timestamp> = [(acme.id, at("2024-06-01T00:00:00Z"))].into();
    assert_eq!(
        purging.drop_expired_partitions(&cutoffs).await.unwrap(),
        [(acme.id, figures(&[&first[0]]))].into()
    );
    assert!(!partitions(&url).await.iter().any(|p| p == "entries_p202401"));
    let again = append(&writing, &acme, vec![dated(jan, 2)]).await;
    assert_eq!(
        writing.entry(acme.id, again[0].id).await.unwrap().as_ref(),
        Some(&again[0])
    );
    // The try that found no partition committed none of its writes (the
    // head, the tree) with its failed insert.
    assert_eq!(again[0].seq, 2);
    assert_eq!(writing.log_size(acme.id).await.unwrap(), 2);
    // And the dropping replica, which forgot it, too.
    let third = append(&purging, &acme, vec![dated(jan, 3)]).await;
    assert_eq!(
        purging.drop_expired_partitions(&cutoffs).await.unwrap(),
        [(acme.id, figures(&[&again[0], &third[0]]))].into()
    );
}

/// Appends into an expired month race with drops of it: every append
/// succeeds, and every entry is either counted by exactly one drop or still
/// there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_racing_drops_of_their_month_all_succeed_and_are_counted_once() {
    let Some(url) = testing::fresh_database_url().await else {
        return;
    };
    let purging = PostgresStore::connect(&url).await.unwrap();
    let writing = PostgresStore::connect(&url).await.unwrap();
    let acme = org(&purging, "acme").await;
    let cutoffs: HashMap<OrgId, Timestamp> = [(acme.id, at("2024-06-01T00:00:00Z"))].into();
    const ROUNDS: usize = 25;
    let writer = {
        let writing = writing.clone();
        let acme = acme.clone();
        tokio::spawn(async move {
            let mut n = 0;
            for round in 0..ROUNDS {
                let batch: Vec<NewEntry> = (0..3)
                    .map(|i| {
                        dated(
                            at("2024-02-10T00:00:00Z").plus_millis((round * 3 + i) as i64),
                            round * 3 + i,
                        )
                    })
                    .collect();
                n += append(&writing, &acme, batch).await.len();
                tokio::task::yield_now().await;
            }
            n
        })
    };
    let mut dropped = Purged::default();
    let mut drops = 0;
    while !writer.is_finished() {
        if let Some(p) = purging.drop_expired_partitions(&cutoffs).await.unwrap().get(&acme.id) {
            dropped.add(*p);
            drops += 1;
        }
    }
    let written = writer.await.unwrap();
    if let Some(p) = purging.drop_expired_partitions(&cutoffs).await.unwrap().get(&acme.id) {
        dropped.add(*p);
        drops += 1;
    }
    assert_eq!(written, ROUNDS * 3);
    assert!(drops >= 1);
    assert_eq!(
        dropped.count as usize, written,
        "each entry counted by exactly one drop"
    );
    assert_eq!((dropped.first_seq, dropped.last_seq), (Some(1), Some(written as i64)));
    assert_eq!(purging.log_size(acme.id).await.unwrap(), written as i64);
}

//! The Merkle tree as the PostgreSQL store keeps it: tiles extended in
//! place, perfect nodes, and the frontier stored with each log head (which
//! appends read instead of the tree), checked against a tree rebuilt here
//! from the entries alone.

mod common;

use auditlog_domain::canonical::entry_leaf_hash;
use auditlog_domain::merkle::{Frontier, Hash};
use auditlog_domain::{Entry, Org, OrgId, Timestamp};
use auditlog_postgres::tree::TILE_LEVEL;
use auditlog_postgres::{PostgresStore, testing};
use common::{T0, append, dated, org};
use tokio_postgres::{Client, NoTls};

/// The entries `from..from + count`, appended in one request.
async fn append_range(store: &PostgresStore, org: &Org, from: usize, count: usize) -> Vec<Entry> {
    let entries = (from..from + count)
        .map(|n| dated(Timestamp(T0 + n as i64), n))
        .collect();
    append(store, org, entries).await
}

async fn assert_tree_of(client: &Client, org: OrgId, leaves: &[Hash]) {
    let stored_leaves: Vec<u8> = client
        .query(
            "SELECT hashes FROM merkle_leaves WHERE org_id = $1 ORDER BY tile",
            &[&org.0],
        )
        .await
        .unwrap()
        .iter()
        .flat_map(|r| r.get::<_, Vec<u8>>(0))
        .collect();
    assert_eq!(
        stored_leaves,
        leaves.concat(),
        "the tiles hold every leaf once, in order"
    );

    let mut frontier = Frontier::empty();
    let mut perfect: Vec<(i16, i64, Vec<u8>)> = frontier
        .append(leaves)
        .into_iter()
        .filter(|(id, _)| id.level >= TILE_LEVEL)
        .map(|(id, hash)| (i16::from(id.level), id.index as i64, hash.to_vec()))
        .collect();
    perfect.sort();
    let stored_nodes: Vec<(i16, i64, Vec<u8>)> = client
        .query(
            "SELECT level, idx, hash FROM merkle_nodes WHERE org_id = $1 ORDER BY level, idx",
            &[&org.0],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(stored_nodes, perfect, "the perfect nodes from level {TILE_LEVEL} up");

    let head = client
        .query_one("SELECT size, frontier FROM log_heads WHERE org_id = $1", &[&org.0])
        .await
        .unwrap();
    assert_eq!(head.get::<_, i64>(0), leaves.len() as i64);
    assert_eq!(
        head.get::<_, Option<Vec<u8>>>(1),
        Some(frontier.hashes().concat()),
        "the frontier stored with the head"
    );
}

/// Appends across tile boundaries keep tiles, nodes and the head's frontier
/// those of the tree of all entries; a head without a stored frontier (from
/// before it was kept, or imported), or with one that does not fit its size,
/// is grown from the tree's rows and gets it stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_keep_the_tree_and_the_heads_frontier() {
    let Some(url) = testing::fresh_database_url().await else {
        return;
    };
    let store = PostgresStore::connect(&url).await.unwrap();
    let (client, connection) = tokio_postgres::connect(&url, NoTls).await.unwrap();
    tokio::spawn(connection);
    let acme = org(&store, "acme").await;
    let org = acme.id;

    let mut leaves = Vec::new();
    let mut next = 0;
    for (round, count) in [1, 254, 1, 1, 300, 7, 256, 200].into_iter().enumerate() {
        match round {
            5 => {
                client
                    .execute("UPDATE log_heads SET frontier = NULL WHERE org_id = $1", &[&org.0])
                    .await
                    .unwrap();
            }
            6 => {
                client
                    .execute(
                        "UPDATE log_heads SET frontier = '\\x00ff'::bytea WHERE org_id = $1",
                        &[&org.0],
                    )
                    .await
                    .unwrap();
            }
            _ => {}
        }
        let entries = append_range(&store, &acme, next, count).await;
        next += count;
        assert_eq!(entries.last().map(|e| e.seq), Some(next as i64));
        leaves.extend(entries.iter().map(entry_leaf_hash));
        assert_tree_of(&client, org, &leaves).await;
    }
}

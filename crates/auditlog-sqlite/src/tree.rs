//! How the Merkle tree of each organization's log is kept in SQLite.
//!
//! Leaf hashes are packed into tiles of [`TILE_LEAVES`] (one row per 256
//! leaves, 32 bytes each) and only perfect nodes from level
//! [`TILE_LEVEL`] up get a row of their own. A row per node cost about two
//! B-tree inserts per entry, as much as a third of what appending an entry
//! costs; with tiles an append writes about one row per 256 entries. Nodes
//! below [`TILE_LEVEL`] are recomputed from their tile when asked for (at
//! most 255 hashes), which proofs and roots need only a few of.

use std::collections::HashMap;

use auditlog_domain::OrgId;
use auditlog_domain::canonical::entry_leaf_hash;
use auditlog_domain::merkle::{self, Frontier, Hash, NodeId};
use r2d2_sqlite::rusqlite::{self, Connection, OptionalExtension, params};

/// Levels below this live in tiles; this level and above in `merkle_nodes`.
pub const TILE_LEVEL: u8 = 8;
pub const TILE_LEAVES: u64 = 1 << TILE_LEVEL;

/// A stored 32-byte hash.
pub(crate) fn hash_of(bytes: &[u8]) -> rusqlite::Result<Hash> {
    bytes
        .try_into()
        .map_err(|_| rusqlite::Error::InvalidColumnType(0, "hash".into(), rusqlite::types::Type::Blob))
}

/// Reads nodes of one organization's tree, loading each tile once.
pub struct Reader<'c> {
    conn: &'c Connection,
    org: OrgId,
    tiles: HashMap<u64, Vec<u8>>,
}

impl<'c> Reader<'c> {
    pub fn new(conn: &'c Connection, org: OrgId) -> Self {
        Self {
            conn,
            org,
            tiles: HashMap::new(),
        }
    }

    fn tile(&mut self, tile: u64) -> rusqlite::Result<&[u8]> {
        if !self.tiles.contains_key(&tile) {
            let bytes: Vec<u8> = self
                .conn
                .prepare_cached("SELECT hashes FROM merkle_leaves WHERE org_id = ?1 AND tile = ?2")?
                .query_row(params![self.org.0, tile as i64], |r| r.get(0))
                .optional()?
                .unwrap_or_default();
            self.tiles.insert(tile, bytes);
        }
        Ok(self.tiles.get(&tile).map(Vec::as_slice).unwrap_or_default())
    }

    /// A stored (or recomputable) node's hash; `None` if its leaves are not
    /// all there yet.
    pub fn node(&mut self, id: NodeId) -> rusqlite::Result<Option<Hash>> {
        if id.level >= TILE_LEVEL {
            return self
                .conn
                .prepare_cached("SELECT hash FROM merkle_nodes WHERE org_id = ?1 AND level = ?2 AND idx = ?3")?
                .query_row(params![self.org.0, id.level, id.index as i64], |r| {
                    hash_of(&r.get::<_, Vec<u8>>(0)?)
                })
                .optional();
        }
        let first = id.index << id.level;
        let (tile, offset) = (first / TILE_LEAVES, (first % TILE_LEAVES) as usize);
        let width = 1usize << id.level;
        let bytes = self.tile(tile)?;
        let Some(span) = bytes.get(offset * 32..(offset + width) * 32) else {
            return Ok(None);
        };
        let mut level: Vec<Hash> = span.chunks_exact(32).map(hash_of).collect::<rusqlite::Result<_>>()?;
        while level.len() > 1 {
            level = level.chunks_exact(2).map(|p| merkle::node_hash(&p[0], &p[1])).collect();
        }
        Ok(level.first().copied())
    }
}

/// Appends leaves to an organization's tree, in the transaction that adds
/// their entries: loads the frontier of the tree as it was, packs the new
/// leaves into tiles and stores the perfect nodes they complete from
/// [`TILE_LEVEL`] up.
pub fn grow(tx: &rusqlite::Transaction<'_>, org: OrgId, size_before: u64, leaves: &[Hash]) -> rusqlite::Result<()> {
    if leaves.is_empty() {
        return Ok(());
    }
    let mut reader = Reader::new(tx, org);
    let mut frontier_hashes = Vec::new();
    for id in merkle::frontier_ids(size_before) {
        let hash = reader
            .node(id)?
            .ok_or_else(|| rusqlite::Error::ToSqlConversionFailure(format!("Merkle node {id:?} is missing").into()))?;
        frontier_hashes.push(hash);
    }
    let last_tile = size_before / TILE_LEAVES;
    let mut tile_bytes = reader.tile(last_tile)?.to_vec();
    drop(reader);
    let mut frontier = Frontier::new(size_before, frontier_hashes)
        .map_err(|e| rusqlite::Error::ToSqlConversionFailure(format!("Merkle frontier: {e:?}").into()))?;

    let mut insert_node =
        tx.prepare_cached("INSERT INTO merkle_nodes (org_id, level, idx, hash) VALUES (?1, ?2, ?3, ?4)")?;
    for (id, hash) in frontier.append(leaves) {
        if id.level >= TILE_LEVEL {
            insert_node.execute(params![org.0, id.level, id.index as i64, &hash[..]])?;
        }
    }

    let mut put_tile = tx.prepare_cached(
        "INSERT INTO merkle_leaves (org_id, tile, hashes) VALUES (?1, ?2, ?3) \
         ON CONFLICT (org_id, tile) DO UPDATE SET hashes = excluded.hashes",
    )?;
    let mut tile = last_tile;
    for (index, leaf) in (size_before..).zip(leaves) {
        if index / TILE_LEAVES != tile {
            put_tile.execute(params![org.0, tile as i64, &tile_bytes])?;
            tile = index / TILE_LEAVES;
            tile_bytes.clear();
        }
        tile_bytes.extend_from_slice(leaf);
    }
    put_tile.execute(params![org.0, tile as i64, &tile_bytes])?;
    Ok(())
}

/// Builds the tree of every log that predates it (migration 4). An entry
/// purged before then is gone, so its leaf is the hash of a fixed marker
/// naming its sequence number: the tree is complete, and says which leaves
/// it could not cover.
pub(crate) fn backfill(tx: &rusqlite::Transaction<'_>) -> rusqlite::Result<()> {
    let orgs: Vec<(i64, i64)> = tx
        .prepare("SELECT org_id, size FROM log_heads WHERE size > 0")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    for (org, size) in orgs {
        let mut stmt = tx.prepare(&format!(
            "SELECT {} FROM entries WHERE org_id = ?1 ORDER BY seq",
            crate::rows::ENTRY_V1_COLUMNS
        ))?;
        let mut by_seq: HashMap<i64, Hash> = HashMap::new();
        for e in stmt.query_map([org], crate::rows::entry_from_row)? {
            let e = e?;
            by_seq.insert(e.seq, entry_leaf_hash(&e));
        }
        let leaves: Vec<Hash> = (1..=size)
            .map(|seq| {
                by_seq.remove(&seq).unwrap_or_else(|| {
                    merkle::leaf_hash(format!("auditlog: entry {seq} was purged before the tree was built").as_bytes())
                })
            })
            .collect();
        grow(tx, OrgId(org), 0, &leaves)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::schema::migrate(&mut conn).unwrap();
        conn.execute(
            "INSERT INTO orgs (slug, name, plan, created_at) VALUES ('a', 'A', 'team', 0)",
            [],
        )
        .unwrap();
        conn
    }

    fn naive(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => merkle::EMPTY_ROOT,
            1 => leaves[0],
            n => {
                let k = n.next_power_of_two() / 2;
                merkle::node_hash(&naive(&leaves[..k]), &naive(&leaves[k..]))
            }
        }
    }

    #[test]
    fn roots_and_nodes_hold_across_tile_boundaries() {
        let mut conn = db();
        let org = OrgId(1);
        let mut leaves: Vec<Hash> = Vec::new();
        let mut n = 0u32;
        for batch in [1usize, 254, 1, 3, 300, 511, 1, 200] {
            let new: Vec<Hash> = (0..batch)
                .map(|_| {
                    n += 1;
                    merkle::leaf_hash(&n.to_be_bytes())
                })
                .collect();
            let tx = conn.transaction().unwrap();
            grow(&tx, org, leaves.len() as u64, &new).unwrap();
            tx.commit().unwrap();
            leaves.extend(new);
            let size = leaves.len() as u64;
            let mut reader = Reader::new(&conn, org);
            let root = merkle::root_at(size, |id| reader.node(id).unwrap()).unwrap();
            assert_eq!(root, naive(&leaves), "root at {size}");
        }
        let size = leaves.len() as u64;
        let root = naive(&leaves);
        for index in [0, 255, 256, 511, 512, 700, size - 1] {
            let refs = merkle::inclusion_proof_nodes(index, size).unwrap();
            let mut reader = Reader::new(&conn, org);
            let proof = merkle::assemble(&refs, |id| reader.node(id).unwrap()).unwrap();
            merkle::verify_inclusion(index, size, &leaves[index as usize], &proof, &root).unwrap();
        }
        // Only tiles and the nodes above them are rows.
        let nodes: i64 = conn
            .query_row("SELECT count(*) FROM merkle_nodes", [], |r| r.get(0))
            .unwrap();
        let tiles: i64 = conn
            .query_row("SELECT count(*) FROM merkle_leaves", [], |r| r.get(0))
            .unwrap();
        assert_eq!(tiles, size.div_ceil(TILE_LEAVES) as i64);
        assert_eq!(nodes, 4 + 2 + 1, "four full tiles: 4 nodes at level 8, 2 at 9, 1 at 10");
    }

    #[test]
    fn logs_older_than_the_tree_get_one_with_purged_entries_marked() {
        let mut conn = db();
        for seq in 1..=300i64 {
            conn.execute(
                "INSERT INTO entries (org_id, seq, id, ts, received_at, actor_type, actor, event, resource_type, \
                 resource_id, details) VALUES (1, ?1, randomblob(16), ?1, ?1, 'user', 'a@x.io', 'project.created', \
                 'project', 'p', '{\"n\":1}')",
                [seq],
            )
            .unwrap();
        }
        conn.execute("INSERT INTO log_heads (org_id, size) VALUES (1, 300)", [])
            .unwrap();
        conn.execute("DELETE FROM entries WHERE seq = 7", []).unwrap();
        let tx = conn.transaction().unwrap();
        backfill(&tx).unwrap();
        tx.commit().unwrap();

        let mut leaves: Vec<Hash> = Vec::new();
        let mut stmt = conn
            .prepare(&format!(
                "SELECT {} FROM entries ORDER BY seq",
                crate::rows::ENTRY_COLUMNS
            ))
            .unwrap();
        let stored: Vec<auditlog_domain::Entry> = stmt
            .query_map([], crate::rows::entry_from_row)
            .unwrap()
            .map(Result::unwrap)
            .collect();
        for seq in 1..=300i64 {
            leaves.push(match stored.iter().find(|e| e.seq == seq) {
                Some(e) => entry_leaf_hash(e),
                None => merkle::leaf_hash(b"auditlog: entry 7 was purged before the tree was built"),
            });
        }
        drop(stmt);
        let mut reader = Reader::new(&conn, OrgId(1));
        assert_eq!(
            merkle::root_at(300, |id| reader.node(id).unwrap()).unwrap(),
            naive(&leaves)
        );
        assert_eq!(
            reader.node(NodeId::leaf(6)).unwrap(),
            Some(leaves[6]),
            "the purged entry's marker"
        );

        // The tree goes on growing from where the backfill left it.
        let more = [merkle::leaf_hash(b"301")];
        let tx = conn.transaction().unwrap();
        grow(&tx, OrgId(1), 300, &more).unwrap();
        tx.commit().unwrap();
        leaves.extend(more);
        let mut reader = Reader::new(&conn, OrgId(1));
        assert_eq!(
            merkle::root_at(301, |id| reader.node(id).unwrap()).unwrap(),
            naive(&leaves)
        );
    }
}

//! How the Merkle tree of each organization's log is kept in PostgreSQL:
//! exactly as the SQLite store keeps it, so roots and proofs are the same
//! bytes whichever backend computed them.
//!
//! Leaf hashes are packed into tiles of [`TILE_LEAVES`] (one row per 256
//! leaves, 32 bytes each) and only perfect nodes from level [`TILE_LEVEL`]
//! up get a row of their own; nodes below are recomputed from their tile
//! when asked for. Reads fetch every tile and node a request needs in two
//! queries, whatever the number of ids.
//!
//! Appends read nothing of the tree: the log head's row keeps the tree's
//! frontier (`log_heads.frontier`), written with each new size, and new
//! leaves are appended to their tile in place. A head without one (written
//! before it was kept, or by a writer that does not keep it and stores
//! NULL) has it read from the tiles and nodes once.

use std::collections::{BTreeSet, HashMap};

use auditlog_domain::merkle::{self, Frontier, Hash, NodeId};
use auditlog_domain::{OrgId, StoreError};
use deadpool_postgres::GenericClient;
use tokio_postgres::Statement;

use crate::db;
use crate::error::Failure;
use crate::rows::{get, hash_of};

/// Levels below this live in tiles; this level and above in `merkle_nodes`.
pub const TILE_LEVEL: u8 = 8;
pub const TILE_LEAVES: u64 = 1 << TILE_LEVEL;

/// The tile holding a node's leaves, for nodes below [`TILE_LEVEL`].
fn tile_of(id: NodeId) -> u64 {
    (id.index << id.level) / TILE_LEAVES
}

/// The stored tiles and nodes that some set of node ids needs.
pub struct Nodes {
    tiles: HashMap<u64, Vec<u8>>,
    stored: HashMap<NodeId, Hash>,
}

impl Nodes {
    /// Loads what `ids` need, plus the tiles in `extra_tiles`.
    pub async fn load<C: GenericClient>(
        c: &C,
        org: OrgId,
        ids: &[NodeId],
        extra_tiles: &[u64],
    ) -> Result<Self, Failure> {
        let mut tiles: BTreeSet<i64> = extra_tiles.iter().map(|&t| t as i64).collect();
        let (mut levels, mut indexes): (Vec<i16>, Vec<i64>) = (Vec::new(), Vec::new());
        for id in ids {
            if id.level >= TILE_LEVEL {
                levels.push(i16::from(id.level));
                indexes.push(id.index as i64);
            } else {
                tiles.insert(tile_of(*id) as i64);
            }
        }
        let mut out = Nodes {
            tiles: HashMap::new(),
            stored: HashMap::new(),
        };
        // Both reads sent together (pipelined): neither needs the other.
        let tiles: Vec<i64> = tiles.into_iter().collect();
        let tile_rows = async {
            if tiles.is_empty() {
                return Ok(Vec::new());
            }
            db::query(
                c,
                "SELECT tile, hashes FROM merkle_leaves WHERE org_id = $1 AND tile = ANY($2)",
                &[&org.0, &tiles],
            )
            .await
        };
        let node_rows = async {
            if levels.is_empty() {
                return Ok(Vec::new());
            }
            db::query(
                c,
                "SELECT n.level, n.idx, n.hash FROM merkle_nodes n \
                 JOIN unnest($2::smallint[], $3::bigint[]) AS k (level, idx) ON n.level = k.level AND n.idx = k.idx \
                 WHERE n.org_id = $1",
                &[&org.0, &levels, &indexes],
            )
            .await
        };
        let (tile_rows, node_rows) = futures_util::future::try_join(tile_rows, node_rows).await?;
        for r in tile_rows {
            out.tiles.insert(get::<i64>(&r, 0)? as u64, get(&r, 1)?);
        }
        for r in node_rows {
            let id = NodeId {
                level: get::<i16>(&r, 0)? as u8,
                index: get::<i64>(&r, 1)? as u64,
            };
            out.stored.insert(id, hash_of(get(&r, 2)?)?);
        }
        Ok(out)
    }

    fn tile(&self, tile: u64) -> &[u8] {
        self.tiles.get(&tile).map(Vec::as_slice).unwrap_or_default()
    }

    /// A node's hash; `None` if it was not loaded or its leaves are not all
    /// there yet.
    pub fn node(&self, id: NodeId) -> Result<Option<Hash>, StoreError> {
        if id.level >= TILE_LEVEL {
            return Ok(self.stored.get(&id).copied());
        }
        let first = id.index << id.level;
        let offset = (first % TILE_LEAVES) as usize;
        let width = 1usize << id.level;
        let Some(span) = self.tile(tile_of(id)).get(offset * 32..(offset + width) * 32) else {
            return Ok(None);
        };
        let mut level: Vec<Hash> = span.chunks_exact(32).map(hash_of).collect::<Result<_, _>>()?;
        while level.len() > 1 {
            level = level.chunks_exact(2).map(|p| merkle::node_hash(&p[0], &p[1])).collect();
        }
        Ok(level.first().copied())
    }
}

/// Inserts perfect nodes from [`TILE_LEVEL`] up, of any organizations:
/// (org, level, index, hash) arrays.
pub const INSERT_NODES: &str = "INSERT INTO merkle_nodes (org_id, level, idx, hash) \
     SELECT * FROM unnest($1::bigint[], $2::smallint[], $3::bigint[], $4::bytea[])";

/// Appends leaf hashes to their tiles, of any organizations: (org, tile,
/// hashes) arrays. A tile's row is made with its first leaves and extended
/// with the next ones, so the leaves already in it are never read back.
pub const EXTEND_TILES: &str = "INSERT INTO merkle_leaves (org_id, tile, hashes) \
     SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bytea[]) \
     ON CONFLICT (org_id, tile) DO UPDATE SET hashes = merkle_leaves.hashes || excluded.hashes";

/// The frontier of an organization's tree of `size` leaves: as stored with
/// its log head, or, where none was (or it does not fit the size), read from
/// the tree's rows.
pub async fn frontier<C: GenericClient>(
    c: &C,
    org: OrgId,
    size: u64,
    stored: Option<&[u8]>,
) -> Result<Frontier, Failure> {
    if let Some(bytes) = stored {
        let hashes: Result<Vec<Hash>, _> = bytes.chunks(32).map(hash_of).collect();
        match hashes.map(|h| Frontier::new(size, h)) {
            Ok(Ok(frontier)) => return Ok(frontier),
            _ => tracing::warn!(
                org = org.0,
                size,
                "the tree frontier stored with a log head does not fit its size; reading it from the tree"
            ),
        }
    }
    let ids = merkle::frontier_ids(size);
    let nodes = Nodes::load(c, org, &ids, &[]).await?;
    let mut hashes = Vec::with_capacity(ids.len());
    for id in &ids {
        let hash = nodes
            .node(*id)?
            .ok_or_else(|| StoreError::Internal(format!("Merkle node {id:?} of organization {} is missing", org.0)))?;
        hashes.push(hash);
    }
    Frontier::new(size, hashes).map_err(|e| StoreError::Internal(format!("Merkle frontier: {e}")).into())
}

/// The rows that grow some organizations' trees, gathered to be written
/// with one statement per table: the new tiles' leaves, the perfect nodes
/// they complete from [`TILE_LEVEL`] up, and each log head's new size with
/// its frontier.
#[derive(Debug, Default)]
pub struct Growth {
    pub orgs: Vec<i64>,
    pub sizes: Vec<i64>,
    pub frontiers: Vec<Vec<u8>>,
    node_orgs: Vec<i64>,
    levels: Vec<i16>,
    indexes: Vec<i64>,
    hashes: Vec<Vec<u8>>,
    tile_orgs: Vec<i64>,
    tiles: Vec<i64>,
    tile_bytes: Vec<Vec<u8>>,
}

impl Growth {
    /// Appends `leaves` to the tree whose frontier is `frontier`.
    pub fn grow(&mut self, org: OrgId, mut frontier: Frontier, leaves: &[Hash]) {
        let size_before = frontier.size();
        for (id, hash) in frontier.append(leaves) {
            if id.level >= TILE_LEVEL {
                self.node_orgs.push(org.0);
                self.levels.push(i16::from(id.level));
                self.indexes.push(id.index as i64);
                self.hashes.push(hash.to_vec());
            }
        }
        let mut current = None;
        for (index, leaf) in (size_before..).zip(leaves) {
            let tile = (index / TILE_LEAVES) as i64;
            if current != Some(tile) {
                current = Some(tile);
                self.tile_orgs.push(org.0);
                self.tiles.push(tile);
                self.tile_bytes.push(Vec::with_capacity(TILE_LEAVES as usize * 32));
            }
            if let Some(bytes) = self.tile_bytes.last_mut() {
                bytes.extend_from_slice(leaf);
            }
        }
        self.orgs.push(org.0);
        self.sizes.push(frontier.size() as i64);
        self.frontiers.push(frontier.hashes().concat());
    }

    /// Writes the tiles and nodes (not the heads), the two statements sent
    /// together when the returned future is first polled. `nodes` and
    /// `tiles` are [`INSERT_NODES`] and [`EXTEND_TILES`], prepared.
    pub async fn write<C: GenericClient>(
        &self,
        c: &C,
        nodes: &Statement,
        tiles: &Statement,
    ) -> Result<(), tokio_postgres::Error> {
        let nodes_written = async {
            if self.levels.is_empty() {
                return Ok(0);
            }
            c.execute(nodes, &[&self.node_orgs, &self.levels, &self.indexes, &self.hashes])
                .await
        };
        let tiles_written = async {
            if self.tiles.is_empty() {
                return Ok(0);
            }
            c.execute(tiles, &[&self.tile_orgs, &self.tiles, &self.tile_bytes])
                .await
        };
        futures_util::future::try_join(nodes_written, tiles_written).await?;
        Ok(())
    }
}

/// Appends leaves to an organization's tree, in the transaction that adds
/// their entries, reading its frontier from the tree's rows: for writers
/// that do not keep the log head's frontier (and store it as NULL): the
/// benchmarks' fill.
#[cfg(feature = "bench")]
pub async fn grow<C: GenericClient>(c: &C, org: OrgId, size_before: u64, leaves: &[Hash]) -> Result<(), Failure> {
    if leaves.is_empty() {
        return Ok(());
    }
    let mut growth = Growth::default();
    growth.grow(org, frontier(c, org, size_before, None).await?, leaves);
    let (nodes, tiles) =
        futures_util::future::try_join(c.prepare_cached(INSERT_NODES), c.prepare_cached(EXTEND_TILES)).await?;
    growth.write(c, &nodes, &tiles).await?;
    Ok(())
}

//! The Merkle tree over one organization's log, exactly as RFC 9162 §2.1
//! defines it, so that a signed root lets anyone check that an entry is in the
//! log (inclusion) and that a later log still holds an earlier one unchanged
//! (consistency).
//!
//! Leaf `i` is the entry with `seq = i + 1` (sequence numbers start at 1, leaf
//! indices at 0); its hash is [`leaf_hash`] of the entry's canonical bytes
//! (see [`crate::canonical`]).
//!
//! # What storage keeps
//!
//! Only the hashes of *perfect* subtrees, each named by a [`NodeId`]. A perfect
//! node's hash never changes once its last leaf exists, so nodes are written
//! once and never updated, and every hash a proof or a root needs is either one
//! of them or the fold of a few (the ragged right edge of a tree whose size is
//! not a power of two). There are fewer than two nodes per leaf.
//!
//! - **Appending**: the writer keeps a [`Frontier`] per organization (or loads
//!   [`frontier_ids`] for the current size), calls [`Frontier::append`] with
//!   the new leaf hashes, and stores the nodes it returns in the same
//!   transaction as the entries.
//! - **Roots** at any size `m`, present or past: [`root_at`] from the nodes of
//!   [`frontier_ids`]`(m)`.
//! - **Proofs**: [`inclusion_proof_nodes`] and [`consistency_proof_nodes`] say
//!   which nodes a proof is made of, [`needed_nodes`] lists them for a single
//!   query, and [`assemble`] turns the answer into the proof's hashes. That is
//!   O(log n) node reads and no rehashing of the log.
//! - **Checking**: [`verify_inclusion`] and [`verify_consistency`] follow
//!   RFC 9162 §2.1.3.2 and §2.1.4.2, refusing malformed proofs with distinct
//!   [`ProofError`]s.

/// A SHA-256 output: a leaf, an interior node or a root.
pub type Hash = [u8; 32];

/// The root of the empty tree: SHA-256 of no bytes (RFC 9162 §2.1.1).
pub const EMPTY_ROOT: Hash = [
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24, 0x27, 0xae, 0x41,
    0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
];

/// `SHA-256(0x00 || data)`: the distinct prefix keeps a leaf from ever being
/// passed off as an interior node (second-preimage resistance).
pub fn leaf_hash(data: &[u8]) -> Hash {
    sha256(&[&[0x00], data])
}

/// `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    sha256(&[&[0x01], left, right])
}

/// SHA-256 of the parts in order. ring's, for its assembly: every entry's
/// leaf is hashed on the write path, and on CPUs without SHA instructions the
/// portable code took a tenth of the ingest budget.
fn sha256(parts: &[&[u8]]) -> Hash {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for p in parts {
        ctx.update(p);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// Lowercase hex, the form hashes take in JSON and on the command line.
pub fn hash_to_hex(hash: &Hash) -> String {
    base16ct::lower::encode_string(hash)
}

/// Reads 64 hex digits (either case).
pub fn hash_from_hex(s: &str) -> Option<Hash> {
    let b = s.as_bytes();
    if b.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (o, pair) in out.iter_mut().zip(b.chunks_exact(2)) {
        let hi = (pair[0] as char).to_digit(16)?;
        let lo = (pair[1] as char).to_digit(16)?;
        *o = (hi * 16 + lo) as u8;
    }
    Some(out)
}

/// A perfect subtree: the node at `level` (0 = leaves) and position `index`
/// covers leaves `index * 2^level .. (index + 1) * 2^level`.
///
/// Ordered by level, then index, so a sorted list groups each level together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId {
    pub level: u8,
    pub index: u64,
}

impl NodeId {
    pub fn leaf(index: u64) -> Self {
        Self { level: 0, index }
    }
}

/// The perfect subtrees that exactly tile leaves `start .. start + len`,
/// largest (leftmost) first. `start` must be a multiple of a power of two no
/// smaller than `len`, which holds for every range RFC 9162's recursions visit.
fn tiling(start: u64, len: u64) -> Vec<NodeId> {
    let mut ids = Vec::with_capacity(len.count_ones() as usize);
    let mut at = start;
    for level in (0..64u8).rev() {
        let width = 1u64 << level;
        if len & width != 0 {
            ids.push(NodeId {
                level,
                index: at >> level,
            });
            at = at.wrapping_add(width);
        }
    }
    ids
}

/// The nodes of the frontier (the "compact range") of a tree of `size`
/// leaves: the perfect subtrees of its binary decomposition, largest (leftmost)
/// first. Storage loads these to resume appending or to compute the root at
/// `size`; there are `size.count_ones()` of them.
pub fn frontier_ids(size: u64) -> Vec<NodeId> {
    tiling(0, size)
}

/// MTH of a whole tree from its frontier hashes (largest first), folded from
/// the right: `node_hash(f0, node_hash(f1, … node_hash(f[k-2], f[k-1])))`,
/// which is what RFC 9162's split at the largest power of two below the size
/// amounts to. The empty tree's root is [`EMPTY_ROOT`].
pub fn root_from_frontier(frontier: &[Hash]) -> Hash {
    match frontier.split_last() {
        None => EMPTY_ROOT,
        Some((last, rest)) => rest.iter().rev().fold(*last, |acc, h| node_hash(h, &acc)),
    }
}

/// The root at `size` from stored nodes, for any size the log has had.
pub fn root_at(size: u64, lookup: impl FnMut(NodeId) -> Option<Hash>) -> Result<Hash, MissingNode> {
    let hashes = lookup_all(&frontier_ids(size), lookup)?;
    Ok(root_from_frontier(&hashes))
}

/// The right edge of a tree: enough to append leaves and to compute the root
/// without reading anything else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    /// One hash per node of [`frontier_ids`]`(size)`, in that order.
    hashes: Vec<Hash>,
}

/// Stored frontier hashes that cannot belong to a tree of the stated size.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a tree of {size} leaves has {expected} frontier nodes, not {actual}")]
pub struct FrontierError {
    pub size: u64,
    pub expected: usize,
    pub actual: usize,
}

impl Frontier {
    pub fn empty() -> Self {
        Self {
            size: 0,
            hashes: Vec::new(),
        }
    }

    /// The frontier of a tree of `size` leaves, from the hashes of the nodes
    /// [`frontier_ids`]`(size)` names, in that order.
    pub fn new(size: u64, hashes: Vec<Hash>) -> Result<Self, FrontierError> {
        let expected = size.count_ones() as usize;
        if hashes.len() != expected {
            return Err(FrontierError {
                size,
                expected,
                actual: hashes.len(),
            });
        }
        Ok(Self { size, hashes })
    }

    /// The number of leaves in the tree.
    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn hashes(&self) -> &[Hash] {
        &self.hashes
    }

    pub fn ids(&self) -> Vec<NodeId> {
        frontier_ids(self.size)
    }

    pub fn root(&self) -> Hash {
        root_from_frontier(&self.hashes)
    }

    /// Adds leaves (their [`leaf_hash`]es) at indices `size, size + 1, …` and
    /// returns every node that became complete, the leaves themselves
    /// included (level 0), each exactly once over the life of the tree:
    /// storage inserts them and never updates them.
    ///
    /// # Panics
    ///
    /// Past 2^64 − 1 leaves, which sequence numbers (an `i64`) never reach.
    pub fn append(&mut self, leaves: &[Hash]) -> Vec<(NodeId, Hash)> {
        let mut nodes = Vec::with_capacity(leaves.len() * 2);
        for leaf in leaves {
            let mut id = NodeId::leaf(self.size);
            let mut hash = *leaf;
            nodes.push((id, hash));
            // A node with an odd index is a right child; its left sibling is
            // complete and sits on top of the frontier, so the two merge.
            while id.index & 1 == 1 {
                let left = self
                    .hashes
                    .pop()
                    .expect("the frontier has a node for each set bit of the size");
                hash = node_hash(&left, &hash);
                id = NodeId {
                    level: id.level + 1,
                    index: id.index >> 1,
                };
                nodes.push((id, hash));
            }
            self.hashes.push(hash);
            self.size = self.size.checked_add(1).expect("fewer than 2^64 leaves");
        }
        nodes
    }
}

/// One hash of a proof, named by the stored nodes it is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeRef {
    /// A stored node's hash, as it is.
    Perfect(NodeId),
    /// The hash of a subtree that is not perfect (a right edge): the listed
    /// perfect nodes, largest first, folded from the right like
    /// [`root_from_frontier`] does. Always two or more nodes.
    Composite(Vec<NodeId>),
}

impl NodeRef {
    /// The hash of MTH(D[start : start + len]).
    fn range(start: u64, len: u64) -> Self {
        if len.is_power_of_two() {
            let level = len.trailing_zeros() as u8;
            NodeRef::Perfect(NodeId {
                level,
                index: start >> level,
            })
        } else {
            NodeRef::Composite(tiling(start, len))
        }
    }

    /// The stored nodes this hash is made of.
    pub fn ids(&self) -> &[NodeId] {
        match self {
            NodeRef::Perfect(id) => std::slice::from_ref(id),
            NodeRef::Composite(ids) => ids,
        }
    }
}

/// Every node a proof needs, sorted and without repeats: one query's worth.
pub fn needed_nodes(refs: &[NodeRef]) -> Vec<NodeId> {
    let mut ids: Vec<NodeId> = refs.iter().flat_map(|r| r.ids().iter().copied()).collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// A node a proof or root needs is not in storage: the tree is incomplete or
/// the size asked for is larger than the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("no stored Merkle node at level {} index {}", .0.level, .0.index)]
pub struct MissingNode(pub NodeId);

fn lookup_all(ids: &[NodeId], mut lookup: impl FnMut(NodeId) -> Option<Hash>) -> Result<Vec<Hash>, MissingNode> {
    ids.iter().map(|&id| lookup(id).ok_or(MissingNode(id))).collect()
}

/// Turns a proof's node references into its hashes, asking `lookup` for each
/// stored node (typically a map filled by one query for [`needed_nodes`]).
pub fn assemble(refs: &[NodeRef], mut lookup: impl FnMut(NodeId) -> Option<Hash>) -> Result<Vec<Hash>, MissingNode> {
    refs.iter()
        .map(|r| lookup_all(r.ids(), &mut lookup).map(|hashes| root_from_frontier(&hashes)))
        .collect()
}

/// Why a proof was refused, or could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("leaf index {index} is not in a tree of size {size}")]
    IndexOutOfRange { index: u64, size: u64 },
    #[error("the first tree size {first} is larger than the second, {second}")]
    SizesOutOfOrder { first: u64, second: u64 },
    /// RFC 9162's verifiers fail this way when the path runs out before the
    /// tree size is consumed (`sn` is not 0 at the end), and when a
    /// consistency proof is empty.
    #[error("wrong proof length: {actual} hashes where these tree sizes need {expected}")]
    TooShort { expected: usize, actual: usize },
    /// RFC 9162's verifiers fail this way when `sn` reaches 0 with hashes left.
    #[error("the proof is not fully consumed: {actual} hashes where these tree sizes need {expected}")]
    TooLong { expected: usize, actual: usize },
    #[error("the inclusion proof does not lead to the tree's root")]
    RootMismatch,
    #[error("the consistency proof does not lead to the first tree's root")]
    FirstRootMismatch,
    #[error("the consistency proof does not lead to the second tree's root")]
    SecondRootMismatch,
}

/// The largest power of two smaller than `n` (`n > 1`): RFC 9162's `k`.
fn split_point(n: u64) -> u64 {
    1 << (63 - (n - 1).leading_zeros())
}

/// The nodes of the inclusion proof (audit path) of leaf `index` in the tree
/// of `size` leaves, nearest the leaf first: RFC 9162 §2.1.3.1's
/// `PATH(index, D[size])`.
pub fn inclusion_proof_nodes(index: u64, size: u64) -> Result<Vec<NodeRef>, ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    // PATH(m, D[start : start + n]).
    fn path(m: u64, start: u64, n: u64, out: &mut Vec<NodeRef>) {
        if n == 1 {
            return;
        }
        let k = split_point(n);
        if m < k {
            path(m, start, k, out);
            out.push(NodeRef::range(start + k, n - k));
        } else {
            path(m - k, start + k, n - k, out);
            out.push(NodeRef::range(start, k));
        }
    }
    let mut out = Vec::new();
    path(index, 0, size, &mut out);
    Ok(out)
}

/// The nodes of the consistency proof from the tree of `first` leaves to the
/// tree of `second`: RFC 9162 §2.1.4.1's `PROOF(first, D[second])`. Empty when
/// `first` is 0 or equals `second`, where there is nothing to prove.
pub fn consistency_proof_nodes(first: u64, second: u64) -> Result<Vec<NodeRef>, ProofError> {
    if first > second {
        return Err(ProofError::SizesOutOfOrder { first, second });
    }
    // SUBPROOF(m, D[start : start + n], b).
    fn subproof(m: u64, start: u64, n: u64, b: bool, out: &mut Vec<NodeRef>) {
        if m == n {
            if !b {
                out.push(NodeRef::range(start, m));
            }
            return;
        }
        let k = split_point(n);
        if m <= k {
            subproof(m, start, k, b, out);
            out.push(NodeRef::range(start + k, n - k));
        } else {
            subproof(m - k, start + k, n - k, false, out);
            out.push(NodeRef::range(start, k));
        }
    }
    let mut out = Vec::new();
    if first > 0 && first < second {
        subproof(first, 0, second, true, &mut out);
    }
    Ok(out)
}

/// One step of the loops of RFC 9162 §2.1.3.2 (step 4) and §2.1.4.2 (step 6),
/// on the indices alone. Returns whether the proof hash is a left sibling.
fn step(fn_: &mut u64, sn: &mut u64) -> bool {
    let left = *fn_ & 1 == 1 || *fn_ == *sn;
    if left && *fn_ & 1 == 0 {
        while *fn_ & 1 == 0 && *fn_ != 0 {
            *fn_ >>= 1;
            *sn >>= 1;
        }
    }
    *fn_ >>= 1;
    *sn >>= 1;
    left
}

/// How many hashes the loop consumes before `sn` reaches 0.
fn steps_until_consumed(mut fn_: u64, mut sn: u64) -> usize {
    let mut n = 0;
    while sn != 0 {
        step(&mut fn_, &mut sn);
        n += 1;
    }
    n
}

fn check_length(expected: usize, actual: usize) -> Result<(), ProofError> {
    match actual.cmp(&expected) {
        std::cmp::Ordering::Less => Err(ProofError::TooShort { expected, actual }),
        std::cmp::Ordering::Greater => Err(ProofError::TooLong { expected, actual }),
        std::cmp::Ordering::Equal => Ok(()),
    }
}

/// Checks that `leaf` (a [`leaf_hash`]) is leaf `index` of the tree of `size`
/// leaves whose root is `root`, per RFC 9162 §2.1.3.2.
///
/// The length is checked before any hashing, by running the RFC's loop on the
/// indices alone, so a short or long proof gets its own error rather than a
/// root mismatch.
pub fn verify_inclusion(index: u64, size: u64, leaf: &Hash, proof: &[Hash], root: &Hash) -> Result<(), ProofError> {
    // Step 1.
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    check_length(steps_until_consumed(index, size - 1), proof.len())?;
    // Steps 2–4.
    let (mut fn_, mut sn) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        r = if step(&mut fn_, &mut sn) {
            node_hash(p, &r)
        } else {
            node_hash(&r, p)
        };
    }
    // Step 5 (sn is 0: the length check saw to it).
    if r == *root {
        Ok(())
    } else {
        Err(ProofError::RootMismatch)
    }
}

/// Checks that the tree of `second` leaves with root `second_root` extends the
/// tree of `first` leaves with root `first_root`, per RFC 9162 §2.1.4.2.
///
/// The RFC covers `0 < first < second`. At the edges, as other verifiers do:
/// equal sizes need an empty proof and equal roots; the empty tree (whose root
/// must be [`EMPTY_ROOT`]) is consistent with every tree, with an empty proof.
pub fn verify_consistency(
    first: u64,
    second: u64,
    first_root: &Hash,
    second_root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    if first > second {
        return Err(ProofError::SizesOutOfOrder { first, second });
    }
    if first == 0 || first == second {
        check_length(0, proof.len())?;
        if first == 0 && *first_root != EMPTY_ROOT {
            return Err(ProofError::FirstRootMismatch);
        }
        if first == second && first_root != second_root {
            return Err(ProofError::SecondRootMismatch);
        }
        return Ok(());
    }

    // Step 2: when the first tree is perfect its root is the path's first hash.
    let prepend = first.is_power_of_two();
    // Steps 3–4.
    let (mut fn_, mut sn) = (first - 1, second - 1);
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    let path_len = 1 + steps_until_consumed(fn_, sn);
    // Step 1 (an empty proof) fails here too: path_len is at least 2.
    check_length(path_len - usize::from(prepend), proof.len())?;

    // Step 5.
    let (start, rest) = if prepend {
        (first_root, proof)
    } else {
        (&proof[0], &proof[1..])
    };
    let (mut fr, mut sr) = (*start, *start);
    // Step 6.
    for c in rest {
        if step(&mut fn_, &mut sn) {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
        } else {
            sr = node_hash(&sr, c);
        }
    }
    // Step 7 (sn is 0: the length check saw to it).
    if fr != *first_root {
        return Err(ProofError::FirstRootMismatch);
    }
    if sr != *second_root {
        return Err(ProofError::SecondRootMismatch);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use sha2::{Digest, Sha256};

    use super::*;

    fn h(hex: &str) -> Hash {
        hash_from_hex(hex).unwrap()
    }

    fn bytes(hex: &str) -> Vec<u8> {
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect()
    }

    // Known answers from transparency-dev/merkle, proof/verify_test.go (the
    // vectors certificate-transparency-go used before it): eight leaves, the
    // root at every size, and inclusion and consistency paths. Their
    // inclusion vectors number leaves from 1; here they are 0-based indices.
    const LEAVES: [&str; 8] = [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ];
    const ROOTS: [&str; 8] = [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];
    const INCLUSION: [(u64, u64, &[&str]); 5] = [
        (0, 1, &[]),
        (
            0,
            8,
            &[
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ],
        ),
        (
            5,
            8,
            &[
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
        (
            2,
            3,
            &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
        ),
        (
            1,
            5,
            &[
                "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            ],
        ),
    ];
    const CONSISTENCY: [(u64, u64, &[&str]); 5] = [
        (1, 1, &[]),
        (
            1,
            8,
            &[
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ],
        ),
        (
            6,
            8,
            &[
                "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
        (
            2,
            5,
            &[
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            ],
        ),
        (
            6,
            7,
            &[
                "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
    ];

    /// A log's node store, as storage would hold it.
    struct Tree {
        frontier: Frontier,
        nodes: HashMap<NodeId, Hash>,
        leaves: Vec<Hash>,
    }

    impl Tree {
        fn new() -> Self {
            Self {
                frontier: Frontier::empty(),
                nodes: HashMap::new(),
                leaves: Vec::new(),
            }
        }

        fn append(&mut self, leaves: &[Hash]) {
            for (id, hash) in self.frontier.append(leaves) {
                assert!(self.nodes.insert(id, hash).is_none(), "{id:?} was produced twice");
            }
            self.leaves.extend_from_slice(leaves);
        }

        fn lookup(&self) -> impl FnMut(NodeId) -> Option<Hash> + '_ {
            |id| self.nodes.get(&id).copied()
        }

        fn inclusion(&self, index: u64, size: u64) -> Vec<Hash> {
            assemble(&inclusion_proof_nodes(index, size).unwrap(), self.lookup()).unwrap()
        }

        fn consistency(&self, first: u64, second: u64) -> Vec<Hash> {
            assemble(&consistency_proof_nodes(first, second).unwrap(), self.lookup()).unwrap()
        }

        fn root(&self, size: u64) -> Hash {
            root_at(size, self.lookup()).unwrap()
        }
    }

    fn known_answer_tree() -> Tree {
        let mut t = Tree::new();
        let leaves: Vec<Hash> = LEAVES.iter().map(|l| leaf_hash(&bytes(l))).collect();
        t.append(&leaves);
        t
    }

    // RFC 9162 §2.1.1 and §2.1.2, straight from the definitions, over leaf
    // hashes: the reference the stored-node machinery must agree with.
    fn mth(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => EMPTY_ROOT,
            1 => leaves[0],
            n => {
                let k = split_point(n as u64) as usize;
                node_hash(&mth(&leaves[..k]), &mth(&leaves[k..]))
            }
        }
    }

    fn naive_path(m: usize, leaves: &[Hash]) -> Vec<Hash> {
        let n = leaves.len();
        if n == 1 {
            return Vec::new();
        }
        let k = split_point(n as u64) as usize;
        let (mut p, sibling) = if m < k {
            (naive_path(m, &leaves[..k]), mth(&leaves[k..]))
        } else {
            (naive_path(m - k, &leaves[k..]), mth(&leaves[..k]))
        };
        p.push(sibling);
        p
    }

    fn naive_subproof(m: usize, leaves: &[Hash], b: bool) -> Vec<Hash> {
        let n = leaves.len();
        if m == n {
            return if b { Vec::new() } else { vec![mth(leaves)] };
        }
        let k = split_point(n as u64) as usize;
        let (mut p, other) = if m <= k {
            (naive_subproof(m, &leaves[..k], b), mth(&leaves[k..]))
        } else {
            (naive_subproof(m - k, &leaves[k..], false), mth(&leaves[..k]))
        };
        p.push(other);
        p
    }

    /// A small deterministic PRNG (splitmix64): random sizes without a
    /// dependency, and the same cases on every run.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    fn random_tree(rng: &mut Rng, size: u64) -> Tree {
        let mut t = Tree::new();
        while t.frontier.size() < size {
            let batch = (1 + rng.below(17)).min(size - t.frontier.size());
            let leaves: Vec<Hash> = (0..batch).map(|_| leaf_hash(&rng.next().to_le_bytes())).collect();
            t.append(&leaves);
        }
        t
    }

    #[test]
    fn hashes_follow_rfc_9162() {
        assert_eq!(EMPTY_ROOT, <[u8; 32]>::from(Sha256::digest(b"")));
        assert_eq!(hash_to_hex(&leaf_hash(b"")), ROOTS[0]);
        let mut pre = vec![0x01];
        pre.extend_from_slice(&[1; 32]);
        pre.extend_from_slice(&[2; 32]);
        assert_eq!(node_hash(&[1; 32], &[2; 32]), <[u8; 32]>::from(Sha256::digest(&pre)));
        assert_eq!(Frontier::empty().root(), EMPTY_ROOT);
    }

    #[test]
    fn hex_round_trips_and_refuses_what_is_not_a_hash() {
        let x = leaf_hash(b"x");
        assert_eq!(hash_from_hex(&hash_to_hex(&x)), Some(x));
        assert_eq!(hash_from_hex(&hash_to_hex(&x).to_uppercase()), Some(x));
        assert_eq!(hash_from_hex(""), None);
        assert_eq!(hash_from_hex(&"0".repeat(63)), None);
        assert_eq!(hash_from_hex(&"0".repeat(66)), None);
        assert_eq!(hash_from_hex(&"g".repeat(64)), None);
        assert_eq!(hash_from_hex(&"é".repeat(32)), None);
    }

    #[test]
    fn known_answer_roots_at_every_size() {
        let t = known_answer_tree();
        for (i, want) in ROOTS.iter().enumerate() {
            assert_eq!(hash_to_hex(&t.root(i as u64 + 1)), *want, "size {}", i + 1);
        }
        assert_eq!(t.frontier.root(), h(ROOTS[7]));
        assert_eq!(t.root(0), EMPTY_ROOT);
    }

    #[test]
    fn known_answer_inclusion_proofs_are_made_and_verified() {
        let t = known_answer_tree();
        for (index, size, want) in INCLUSION {
            let want: Vec<Hash> = want.iter().map(|x| h(x)).collect();
            assert_eq!(t.inclusion(index, size), want, "leaf {index} in {size}");
            let leaf = leaf_hash(&bytes(LEAVES[index as usize]));
            let root = h(ROOTS[size as usize - 1]);
            assert_eq!(verify_inclusion(index, size, &leaf, &want, &root), Ok(()));
            assert!(verify_inclusion(index, size, &leaf, &want, &EMPTY_ROOT).is_err());
            assert!(verify_inclusion(index, size, &leaf_hash(b"x"), &want, &root).is_err());
        }
    }

    #[test]
    fn known_answer_consistency_proofs_are_made_and_verified() {
        let t = known_answer_tree();
        for (first, second, want) in CONSISTENCY {
            let want: Vec<Hash> = want.iter().map(|x| h(x)).collect();
            assert_eq!(t.consistency(first, second), want, "{first} to {second}");
            let (r1, r2) = (h(ROOTS[first as usize - 1]), h(ROOTS[second as usize - 1]));
            assert_eq!(verify_consistency(first, second, &r1, &r2, &want), Ok(()));
            if first != second {
                assert!(verify_consistency(first, second, &r2, &r1, &want).is_err());
            }
        }
    }

    /// The seven-leaf tree drawn in RFC 9162 §2.1.5 (and RFC 6962 §2.1.3),
    /// with its nodes named as there: a–f and j are leaves 0–6, g, h and i
    /// are level 1, k is level 2, and l = hash(i, j) is not perfect.
    #[test]
    fn the_rfc_example_tree_uses_the_nodes_the_rfc_names() {
        let leaf = |i| NodeRef::Perfect(NodeId::leaf(i));
        let node = |level, index| NodeRef::Perfect(NodeId { level, index });
        let (b, c, d, f, j) = (leaf(1), leaf(2), leaf(3), leaf(5), leaf(6));
        let (g, h, i, k) = (node(1, 0), node(1, 1), node(1, 2), node(2, 0));
        let l = NodeRef::Composite(vec![NodeId { level: 1, index: 2 }, NodeId::leaf(6)]);

        // §2.1.5: "The inclusion proof for d0 is [b, h, l]", d3 [c, g, l],
        // d4 [f, j, k], d6 [i, k].
        assert_eq!(inclusion_proof_nodes(0, 7), Ok(vec![b, h.clone(), l.clone()]));
        assert_eq!(inclusion_proof_nodes(3, 7), Ok(vec![c.clone(), g.clone(), l.clone()]));
        assert_eq!(inclusion_proof_nodes(4, 7), Ok(vec![f, j.clone(), k.clone()]));
        assert_eq!(inclusion_proof_nodes(6, 7), Ok(vec![i.clone(), k.clone()]));
        // "The consistency proof between hash0 and hash is [c, d, g, l]",
        // between hash1 and hash [l], between hash2 and hash [i, j, k].
        assert_eq!(consistency_proof_nodes(3, 7), Ok(vec![c, d, g, l.clone()]));
        assert_eq!(consistency_proof_nodes(4, 7), Ok(vec![l]));
        assert_eq!(consistency_proof_nodes(6, 7), Ok(vec![i, j, k]));

        // And the hashes they stand for verify against the whole tree.
        let mut t = known_answer_tree();
        t.leaves.truncate(7);
        let root = t.root(7);
        assert_eq!(hash_to_hex(&root), ROOTS[6]);
        for index in 0..7 {
            let proof = t.inclusion(index, 7);
            assert_eq!(
                verify_inclusion(index, 7, &t.leaves[index as usize], &proof, &root),
                Ok(())
            );
        }
        for first in [3, 4, 6] {
            let proof = t.consistency(first, 7);
            assert_eq!(verify_consistency(first, 7, &t.root(first), &root, &proof), Ok(()));
        }
    }

    #[test]
    fn frontier_ids_are_the_binary_decomposition_largest_first() {
        assert!(frontier_ids(0).is_empty());
        assert_eq!(frontier_ids(1), vec![NodeId::leaf(0)]);
        assert_eq!(frontier_ids(8), vec![NodeId { level: 3, index: 0 }]);
        assert_eq!(
            frontier_ids(7),
            vec![
                NodeId { level: 2, index: 0 },
                NodeId { level: 1, index: 2 },
                NodeId::leaf(6)
            ]
        );
        assert_eq!(frontier_ids(u64::MAX).first(), Some(&NodeId { level: 63, index: 0 }));
        assert_eq!(frontier_ids(u64::MAX).len(), 64);
    }

    #[test]
    fn a_frontier_loaded_from_storage_carries_on_where_it_stopped() {
        let mut rng = Rng(7);
        let mut whole = random_tree(&mut rng, 100);
        let ids = frontier_ids(100);
        let hashes: Vec<Hash> = ids.iter().map(|id| whole.nodes[id]).collect();
        let mut resumed = Frontier::new(100, hashes).unwrap();
        assert_eq!(resumed.root(), whole.frontier.root());
        let more = [leaf_hash(b"a"), leaf_hash(b"b"), leaf_hash(b"c")];
        let from_resumed = resumed.append(&more);
        let from_whole = whole.frontier.append(&more);
        assert_eq!(from_resumed, from_whole);
        assert_eq!(resumed, whole.frontier);

        assert_eq!(
            Frontier::new(100, vec![EMPTY_ROOT; 2]),
            Err(FrontierError {
                size: 100,
                expected: 3,
                actual: 2
            })
        );
    }

    #[test]
    fn appending_in_any_batches_stores_every_perfect_node_once_with_its_hash() {
        let mut rng = Rng(1);
        for _ in 0..20 {
            let size = rng.below(300);
            let t = random_tree(&mut rng, size);
            // Every perfect subtree within the tree, and nothing else.
            let mut expected = 0;
            for level in 0..=9u8 {
                let width = 1u64 << level;
                for index in 0..size / width {
                    let id = NodeId { level, index };
                    let range = (index * width) as usize..((index + 1) * width) as usize;
                    assert_eq!(t.nodes.get(&id), Some(&mth(&t.leaves[range])), "{id:?} in {size}");
                    expected += 1;
                }
            }
            assert_eq!(t.nodes.len(), expected);
        }
    }

    #[test]
    fn roots_from_the_frontier_equal_the_rfc_definition() {
        let mut rng = Rng(2);
        let mut t = Tree::new();
        for _ in 0..60 {
            let batch: Vec<Hash> = (0..rng.below(20))
                .map(|_| leaf_hash(&rng.next().to_be_bytes()))
                .collect();
            t.append(&batch);
            assert_eq!(t.frontier.root(), mth(&t.leaves), "size {}", t.leaves.len());
            assert_eq!(t.frontier.hashes().len(), t.leaves.len().count_ones() as usize);
        }
        for size in 0..=t.leaves.len() {
            assert_eq!(t.root(size as u64), mth(&t.leaves[..size]), "size {size}");
        }
    }

    #[test]
    fn every_inclusion_proof_of_small_trees_matches_the_rfc_and_verifies() {
        let mut rng = Rng(3);
        let t = random_tree(&mut rng, 70);
        for size in 1..=70u64 {
            let root = t.root(size);
            for index in 0..size {
                let proof = t.inclusion(index, size);
                assert_eq!(proof, naive_path(index as usize, &t.leaves[..size as usize]));
                let leaf = t.leaves[index as usize];
                assert_eq!(
                    verify_inclusion(index, size, &leaf, &proof, &root),
                    Ok(()),
                    "{index} in {size}"
                );
            }
        }
    }

    #[test]
    fn every_consistency_proof_of_small_trees_matches_the_rfc_and_verifies() {
        let mut rng = Rng(4);
        let t = random_tree(&mut rng, 70);
        for second in 0..=70u64 {
            let r2 = t.root(second);
            for first in 0..=second {
                let proof = t.consistency(first, second);
                let want = if first == 0 || first == second {
                    Vec::new()
                } else {
                    naive_subproof(first as usize, &t.leaves[..second as usize], true)
                };
                assert_eq!(proof, want, "{first} to {second}");
                let r1 = t.root(first);
                assert_eq!(
                    verify_consistency(first, second, &r1, &r2, &proof),
                    Ok(()),
                    "{first} to {second}"
                );
            }
        }
    }

    #[test]
    fn proofs_in_large_random_trees_verify() {
        let mut rng = Rng(5);
        for _ in 0..4 {
            let size = 1 + rng.below(5000);
            let t = random_tree(&mut rng, size);
            for _ in 0..50 {
                let second = 1 + rng.below(size);
                let first = rng.below(second + 1);
                let index = rng.below(second);
                let r2 = t.root(second);
                let proof = t.inclusion(index, second);
                assert_eq!(
                    verify_inclusion(index, second, &t.leaves[index as usize], &proof, &r2),
                    Ok(())
                );
                let proof = t.consistency(first, second);
                assert_eq!(verify_consistency(first, second, &t.root(first), &r2, &proof), Ok(()));
            }
        }
    }

    /// Every way of spoiling a good inclusion proof is refused.
    fn assert_inclusion_tampering_refused(index: u64, size: u64, leaf: &Hash, proof: &[Hash], root: &Hash) {
        let refused = |i: u64, s: u64, l: &Hash, p: &[Hash], r: &Hash, what: &str| {
            assert!(
                verify_inclusion(i, s, l, p, r).is_err(),
                "{what}: leaf {index} of {size} accepted"
            );
        };
        for k in 0..proof.len() {
            for byte in [0, 13, 31] {
                let mut p = proof.to_vec();
                p[k][byte] ^= 0x10;
                refused(index, size, leaf, &p, root, "flipped bit");
            }
        }
        let mut bad = *leaf;
        bad[0] ^= 1;
        refused(index, size, &bad, proof, root, "other leaf");
        let mut bad = *root;
        bad[31] ^= 1;
        refused(index, size, leaf, proof, &bad, "other root");
        if !proof.is_empty() {
            let p = &proof[..proof.len() - 1];
            assert_eq!(
                verify_inclusion(index, size, leaf, p, root),
                Err(ProofError::TooShort {
                    expected: proof.len(),
                    actual: proof.len() - 1
                })
            );
        }
        let mut p = proof.to_vec();
        p.push(*root);
        assert_eq!(
            verify_inclusion(index, size, leaf, &p, root),
            Err(ProofError::TooLong {
                expected: proof.len(),
                actual: proof.len() + 1
            })
        );
        let mut p = vec![*leaf];
        p.extend_from_slice(proof);
        refused(index, size, leaf, &p, root, "prepended hash");
        if index > 0 {
            refused(index - 1, size, leaf, proof, root, "index - 1");
        }
        if index + 1 < size {
            refused(index + 1, size, leaf, proof, root, "index + 1");
        }
        refused(index, size * 2, leaf, proof, root, "size * 2");
        if size / 2 > index {
            refused(index, size / 2, leaf, proof, root, "size / 2");
        }
    }

    fn assert_consistency_tampering_refused(first: u64, second: u64, r1: &Hash, r2: &Hash, proof: &[Hash]) {
        let refused = |f: u64, s: u64, a: &Hash, b: &Hash, p: &[Hash], what: &str| {
            assert!(
                verify_consistency(f, s, a, b, p).is_err(),
                "{what}: {first} to {second} accepted"
            );
        };
        for k in 0..proof.len() {
            for byte in [0, 17, 31] {
                let mut p = proof.to_vec();
                p[k][byte] ^= 0x08;
                refused(first, second, r1, r2, &p, "flipped bit");
            }
        }
        let mut bad = *r1;
        bad[5] ^= 1;
        refused(first, second, &bad, r2, proof, "other first root");
        let mut bad = *r2;
        bad[5] ^= 1;
        refused(first, second, r1, &bad, proof, "other second root");
        refused(first, second, r2, r1, proof, "swapped roots");
        if !proof.is_empty() {
            assert!(matches!(
                verify_consistency(first, second, r1, r2, &proof[..proof.len() - 1]),
                Err(ProofError::TooShort { .. })
            ));
            refused(first, second, r1, r2, &[], "empty proof");
        }
        let mut p = proof.to_vec();
        p.push(*r2);
        assert!(matches!(
            verify_consistency(first, second, r1, r2, &p),
            Err(ProofError::TooLong { .. })
        ));
        let mut p = vec![*r1];
        p.extend_from_slice(proof);
        refused(first, second, r1, r2, &p, "prepended first root");
        if first > 1 {
            refused(first - 1, second, r1, r2, proof, "first - 1");
        }
        if first + 1 < second {
            refused(first + 1, second, r1, r2, proof, "first + 1");
        }
        refused(first, second * 2, r1, r2, proof, "second * 2");
        if second / 2 > first {
            refused(first, second / 2, r1, r2, proof, "second / 2");
        }
    }

    #[test]
    fn tampered_known_answer_proofs_are_refused() {
        for (index, size, proof) in INCLUSION {
            let proof: Vec<Hash> = proof.iter().map(|x| h(x)).collect();
            let leaf = leaf_hash(&bytes(LEAVES[index as usize]));
            assert_inclusion_tampering_refused(index, size, &leaf, &proof, &h(ROOTS[size as usize - 1]));
        }
        for (first, second, proof) in CONSISTENCY {
            if first == second {
                continue;
            }
            let proof: Vec<Hash> = proof.iter().map(|x| h(x)).collect();
            let (r1, r2) = (h(ROOTS[first as usize - 1]), h(ROOTS[second as usize - 1]));
            assert_consistency_tampering_refused(first, second, &r1, &r2, &proof);
        }
    }

    #[test]
    fn tampered_random_proofs_are_refused() {
        let mut rng = Rng(6);
        let t = random_tree(&mut rng, 600);
        for _ in 0..150 {
            let second = 2 + rng.below(599);
            let index = rng.below(second);
            let r2 = t.root(second);
            let proof = t.inclusion(index, second);
            assert_inclusion_tampering_refused(index, second, &t.leaves[index as usize], &proof, &r2);
            let first = 1 + rng.below(second - 1);
            let proof = t.consistency(first, second);
            assert_consistency_tampering_refused(first, second, &t.root(first), &r2, &proof);
        }
    }

    #[test]
    fn malformed_requests_get_their_own_errors() {
        let x = leaf_hash(b"x");
        assert_eq!(
            inclusion_proof_nodes(5, 5),
            Err(ProofError::IndexOutOfRange { index: 5, size: 5 })
        );
        assert_eq!(
            inclusion_proof_nodes(0, 0),
            Err(ProofError::IndexOutOfRange { index: 0, size: 0 })
        );
        assert_eq!(
            verify_inclusion(7, 3, &x, &[], &x),
            Err(ProofError::IndexOutOfRange { index: 7, size: 3 })
        );
        assert_eq!(
            consistency_proof_nodes(4, 3),
            Err(ProofError::SizesOutOfOrder { first: 4, second: 3 })
        );
        assert_eq!(
            verify_consistency(4, 3, &x, &x, &[]),
            Err(ProofError::SizesOutOfOrder { first: 4, second: 3 })
        );
        // A one-leaf tree: the root is the leaf and the proof is empty.
        assert_eq!(verify_inclusion(0, 1, &x, &[], &x), Ok(()));
        assert_eq!(
            verify_inclusion(0, 1, &x, &[x], &x),
            Err(ProofError::TooLong { expected: 0, actual: 1 })
        );
        assert_eq!(
            verify_inclusion(0, 2, &x, &[], &x),
            Err(ProofError::TooShort { expected: 1, actual: 0 })
        );
    }

    #[test]
    fn consistency_at_the_edges() {
        let (a, b) = (leaf_hash(b"a"), leaf_hash(b"b"));
        // The empty tree precedes every tree, with nothing to prove.
        assert_eq!(verify_consistency(0, 0, &EMPTY_ROOT, &EMPTY_ROOT, &[]), Ok(()));
        assert_eq!(verify_consistency(0, 5, &EMPTY_ROOT, &a, &[]), Ok(()));
        assert_eq!(
            verify_consistency(0, 5, &a, &a, &[]),
            Err(ProofError::FirstRootMismatch)
        );
        assert_eq!(
            verify_consistency(0, 5, &EMPTY_ROOT, &a, &[a]),
            Err(ProofError::TooLong { expected: 0, actual: 1 })
        );
        // A tree is consistent with itself only.
        assert_eq!(verify_consistency(3, 3, &a, &a, &[]), Ok(()));
        assert_eq!(
            verify_consistency(3, 3, &a, &b, &[]),
            Err(ProofError::SecondRootMismatch)
        );
        assert_eq!(
            verify_consistency(3, 3, &a, &a, &[a]),
            Err(ProofError::TooLong { expected: 0, actual: 1 })
        );
        // Between different sizes an empty proof never passes (RFC step 1).
        assert_eq!(
            verify_consistency(1, 2, &a, &b, &[]),
            Err(ProofError::TooShort { expected: 1, actual: 0 })
        );
        assert_eq!(consistency_proof_nodes(0, 9), Ok(vec![]));
        assert_eq!(consistency_proof_nodes(9, 9), Ok(vec![]));
    }

    #[test]
    fn needed_nodes_lists_each_node_once_and_missing_ones_are_named() {
        let refs = [
            NodeRef::Perfect(NodeId::leaf(3)),
            NodeRef::Composite(vec![NodeId { level: 1, index: 2 }, NodeId::leaf(6)]),
            NodeRef::Perfect(NodeId::leaf(6)),
        ];
        assert_eq!(
            needed_nodes(&refs),
            vec![NodeId::leaf(3), NodeId::leaf(6), NodeId { level: 1, index: 2 }]
        );
        let t = known_answer_tree();
        let refs = inclusion_proof_nodes(0, 16).unwrap();
        assert_eq!(
            assemble(&refs, t.lookup()),
            Err(MissingNode(NodeId { level: 3, index: 1 }))
        );
        assert_eq!(root_at(9, t.lookup()), Err(MissingNode(NodeId::leaf(8))));
    }
}

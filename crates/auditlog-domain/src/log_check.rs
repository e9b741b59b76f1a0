//! Checking one organization's log at rest (`auditlog check`): every
//! entry's leaf recomputed from its canonical bytes and compared with the
//! stored leaf, the tree root rebuilt from those leaves and compared with
//! the stored tree's and with the latest signed checkpoint's.
//!
//! The caller reads; this module only decides. Entries come in `seq`
//! order, page by page, each with the leaf the store holds for it. The
//! entries retention purged are gone, so the rebuilt tree starts from the
//! stored frontier just below the oldest entry left (retention keeps the
//! tree); everything from there on is recomputed.
//!
//! A changed entry (or a changed stored leaf) shows as the first `seq`
//! whose leaves differ; a deleted one as a gap in the sequence; a changed
//! interior node, or a stored tree that is not the one entries make, as a
//! root that differs.

use crate::merkle::{Frontier, Hash};

/// One entry as read: its `seq`, the leaf hash of its canonical bytes, and
/// the leaf the stored tree holds for it (`None` when none is stored).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadEntry {
    pub seq: i64,
    pub leaf: Hash,
    pub stored_leaf: Option<Hash>,
}

/// What the check found wrong first; it goes on counting after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The entry's canonical bytes do not hash to the stored leaf: the
    /// entry or the tree was changed after it was written.
    LeafDiffers { seq: i64 },
    /// The stored tree has no leaf for the entry.
    LeafMissing { seq: i64 },
    /// Entries the log head counts are not there, and no purge explains
    /// them (a purge removes the oldest entries only).
    Missing { first: i64, last: i64 },
    /// The root the entries make is not the stored tree's root.
    RootDiffers,
    /// The root the entries make at the checkpoint's size is not the
    /// signed one.
    CheckpointDiffers { size: u64 },
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::LeafDiffers { seq } => write!(f, "seq {seq}: the entry does not hash to its stored leaf"),
            Problem::LeafMissing { seq } => write!(f, "seq {seq}: the stored tree has no leaf for the entry"),
            Problem::Missing { first, last } if first == last => write!(f, "seq {first} is missing"),
            Problem::Missing { first, last } => write!(f, "seq {first} to {last} are missing"),
            Problem::RootDiffers => f.write_str("the entries' root is not the stored tree's root"),
            Problem::CheckpointDiffers { size } => {
                write!(f, "the entries' root at size {size} is not the signed checkpoint's")
            }
        }
    }
}

/// The checkpoint the log is held against: its size and signed root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignedRoot {
    pub size: u64,
    pub root: Hash,
}

/// One organization's check, fed page by page.
#[derive(Debug)]
pub struct LogCheck {
    size: u64,
    expired: u64,
    /// `None` once a gap makes the rest of the tree impossible to rebuild.
    frontier: Option<Frontier>,
    next_seq: i64,
    checkpoint: Option<SignedRoot>,
    root_at_checkpoint: Option<Hash>,
    entries: u64,
    problems: u64,
    first_problem: Option<Problem>,
}

/// What the check of one organization's log found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Entries read.
    pub entries: u64,
    /// The log head: how many entries were ever appended.
    pub tree_size: u64,
    /// Entries before the first one read: purged by retention.
    pub expired: u64,
    /// Whether the rebuilt root is the stored tree's (`None`: not rebuilt).
    pub root_matches: Option<bool>,
    /// Whether the rebuilt root at the checkpoint's size is the signed one
    /// (`None`: no checkpoint, or the root could not be rebuilt).
    pub checkpoint_matches: Option<bool>,
    pub checkpoint_size: Option<u64>,
    pub problems: u64,
    pub first_problem: Option<Problem>,
}

impl Verdict {
    pub fn passed(&self) -> bool {
        self.problems == 0
    }
}

impl LogCheck {
    /// A check of a log of `size` entries whose first `start.size()` were
    /// purged (`start` is the stored frontier at that size).
    pub fn new(size: u64, start: Frontier, checkpoint: Option<SignedRoot>) -> Self {
        let mut check = Self {
            size,
            expired: start.size(),
            next_seq: start.size() as i64 + 1,
            frontier: Some(start),
            checkpoint,
            root_at_checkpoint: None,
            entries: 0,
            problems: 0,
            first_problem: None,
        };
        check.note_checkpoint();
        check
    }

    /// The `seq` after which the next page starts.
    pub fn read_up_to(&self) -> i64 {
        self.next_seq - 1
    }

    /// Feeds a page of entries, in `seq` order, all after the last page's.
    pub fn page(&mut self, page: &[ReadEntry]) {
        for e in page {
            if e.seq > self.next_seq {
                self.problem(Problem::Missing {
                    first: self.next_seq,
                    last: e.seq - 1,
                });
                self.frontier = None;
            }
            self.next_seq = e.seq + 1;
            self.entries += 1;
            match e.stored_leaf {
                Some(stored) if stored == e.leaf => {}
                Some(_) => self.problem(Problem::LeafDiffers { seq: e.seq }),
                None => self.problem(Problem::LeafMissing { seq: e.seq }),
            }
            if let Some(frontier) = &mut self.frontier {
                frontier.append(&[e.leaf]);
            }
            self.note_checkpoint();
        }
    }

    /// The verdict, given the root of the stored tree at the log's size
    /// (`None` when the store cannot put it together).
    pub fn finish(mut self, stored_root: Option<Hash>) -> Verdict {
        if (self.next_seq - 1) < self.size as i64 {
            self.problem(Problem::Missing {
                first: self.next_seq,
                last: self.size as i64,
            });
            self.frontier = None;
        }
        let rebuilt = self.frontier.as_ref().map(Frontier::root);
        let root_matches = rebuilt.map(|r| Some(r) == stored_root);
        if root_matches == Some(false) {
            self.problem(Problem::RootDiffers);
        }
        let checkpoint_matches = match (self.checkpoint, self.root_at_checkpoint) {
            (Some(cp), Some(root)) => Some(cp.root == root),
            _ => None,
        };
        if let (Some(false), Some(cp)) = (checkpoint_matches, self.checkpoint) {
            self.problem(Problem::CheckpointDiffers { size: cp.size });
        }
        Verdict {
            entries: self.entries,
            tree_size: self.size,
            expired: self.expired,
            root_matches,
            checkpoint_matches,
            checkpoint_size: self.checkpoint.map(|c| c.size),
            problems: self.problems,
            first_problem: self.first_problem,
        }
    }

    fn note_checkpoint(&mut self) {
        if let (Some(cp), Some(frontier)) = (self.checkpoint, &self.frontier)
            && frontier.size() == cp.size
        {
            self.root_at_checkpoint = Some(frontier.root());
        }
    }

    fn problem(&mut self, p: Problem) {
        self.problems += 1;
        self.first_problem.get_or_insert(p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::leaf_hash;

    fn leaves(n: u64) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect()
    }

    fn tree(leaves: &[Hash]) -> Frontier {
        let mut f = Frontier::empty();
        f.append(leaves);
        f
    }

    fn read(leaves: &[Hash], from_seq: i64) -> Vec<ReadEntry> {
        leaves
            .iter()
            .enumerate()
            .map(|(i, l)| ReadEntry {
                seq: from_seq + i as i64,
                leaf: *l,
                stored_leaf: Some(*l),
            })
            .collect()
    }

    #[test]
    fn an_untouched_log_passes_against_its_tree_and_checkpoint() {
        let all = leaves(10);
        let cp = SignedRoot {
            size: 7,
            root: tree(&all[..7]).root(),
        };
        let mut check = LogCheck::new(10, Frontier::empty(), Some(cp));
        let page = read(&all, 1);
        check.page(&page[..4]);
        check.page(&page[4..]);
        let v = check.finish(Some(tree(&all).root()));
        assert!(v.passed(), "{v:?}");
        assert_eq!(
            (v.entries, v.root_matches, v.checkpoint_matches),
            (10, Some(true), Some(true))
        );
    }

    #[test]
    fn a_purged_prefix_is_counted_as_expired_and_the_rest_is_rebuilt_from_the_stored_frontier() {
        let all = leaves(9);
        let mut check = LogCheck::new(9, tree(&all[..4]), None);
        assert_eq!(check.read_up_to(), 4);
        check.page(&read(&all[4..], 5));
        let v = check.finish(Some(tree(&all).root()));
        assert!(v.passed(), "{v:?}");
        assert_eq!((v.entries, v.expired), (5, 4));
    }

    #[test]
    fn a_changed_entry_is_named_by_its_seq_and_breaks_the_root() {
        let all = leaves(8);
        let mut page = read(&all, 1);
        page[5].leaf = leaf_hash(b"forged");
        let mut check = LogCheck::new(8, Frontier::empty(), None);
        check.page(&page);
        let v = check.finish(Some(tree(&all).root()));
        assert_eq!(v.first_problem, Some(Problem::LeafDiffers { seq: 6 }));
        assert_eq!(v.root_matches, Some(false));
        assert_eq!(v.problems, 2);
    }

    #[test]
    fn a_deleted_entry_is_a_gap_and_a_missing_tail_is_one_too() {
        let all = leaves(8);
        let mut page = read(&all, 1);
        page.remove(3);
        let mut check = LogCheck::new(8, Frontier::empty(), None);
        check.page(&page);
        let v = check.finish(Some(tree(&all).root()));
        assert_eq!(v.first_problem, Some(Problem::Missing { first: 4, last: 4 }));
        assert_eq!(v.root_matches, None, "no root can be rebuilt past a gap");

        let mut check = LogCheck::new(8, Frontier::empty(), None);
        check.page(&read(&all[..6], 1));
        let v = check.finish(Some(tree(&all).root()));
        assert_eq!(v.first_problem, Some(Problem::Missing { first: 7, last: 8 }));
    }

    #[test]
    fn a_tree_or_checkpoint_that_is_not_the_entries_one_fails() {
        let all = leaves(6);
        let mut check = LogCheck::new(
            6,
            Frontier::empty(),
            Some(SignedRoot {
                size: 6,
                root: leaf_hash(b"other"),
            }),
        );
        check.page(&read(&all, 1));
        let v = check.finish(Some(leaf_hash(b"stored")));
        assert_eq!(v.first_problem, Some(Problem::RootDiffers));
        assert_eq!(v.checkpoint_matches, Some(false));
        assert_eq!(v.problems, 2);
    }

    #[test]
    fn a_missing_stored_leaf_is_a_problem() {
        let all = leaves(3);
        let mut page = read(&all, 1);
        page[2].stored_leaf = None;
        let mut check = LogCheck::new(3, Frontier::empty(), None);
        check.page(&page);
        let v = check.finish(Some(tree(&all).root()));
        assert_eq!(v.first_problem, Some(Problem::LeafMissing { seq: 3 }));
    }
}

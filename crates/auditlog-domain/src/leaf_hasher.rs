//! Hashing new entries' Merkle leaves beside the writer's inserts.
//!
//! A backend's writer is the one serial path of ingest, and an entry's leaf
//! hash (canonical bytes, SHA-256) is most of what the tree costs it. A
//! large transaction therefore hands its new entries to a second thread in
//! chunks as it inserts them, and collects the hashes when its rows are in;
//! a small one hashes them itself, as a thread would cost more than it saves.
//! Either way the hashes are computed inside the entries' transaction.

use std::collections::HashMap;
use std::sync::mpsc;

use crate::OrgId;
use crate::canonical::Fields;
use crate::merkle::Hash;

/// Entries handed over at a time: enough that waking the hashing thread is
/// rare, few enough that it starts while the inserts are still going.
const CHUNK: usize = 64;

/// Below this many entries a transaction hashes its own leaves.
pub const OVERLAP_MIN: usize = 32;

/// A new entry's leaf: its fields to hash, or the hash the writer already
/// made (an entry whose personal values it sealed hashes its leaf then).
#[derive(Debug)]
enum Leaf<'a> {
    Of(Fields<'a>),
    Hashed(Hash),
}

impl Leaf<'_> {
    fn hash(self) -> Hash {
        match self {
            Leaf::Of(fields) => fields.leaf_hash(),
            Leaf::Hashed(hash) => hash,
        }
    }
}

/// Where a writer puts each new entry, in `seq` order per organization.
#[derive(Debug)]
pub struct LeafSink<'a> {
    send: Option<mpsc::Sender<Vec<(OrgId, Leaf<'a>)>>>,
    pending: Vec<(OrgId, Leaf<'a>)>,
    /// The hashes when this thread computes them.
    inline: HashMap<OrgId, Vec<Hash>>,
}

impl<'a> LeafSink<'a> {
    pub fn push(&mut self, org: OrgId, fields: Fields<'a>) {
        self.push_leaf(org, Leaf::Of(fields));
    }

    /// The next entry of `org`, whose leaf the writer hashed itself.
    pub fn push_hash(&mut self, org: OrgId, hash: Hash) {
        self.push_leaf(org, Leaf::Hashed(hash));
    }

    fn push_leaf(&mut self, org: OrgId, leaf: Leaf<'a>) {
        match &self.send {
            Some(send) => {
                self.pending.push((org, leaf));
                if self.pending.len() >= CHUNK {
                    // The receiving thread is joined only after the channel
                    // closes, so it is there to receive.
                    let _ = send.send(std::mem::replace(&mut self.pending, Vec::with_capacity(CHUNK)));
                }
            }
            None => self.inline.entry(org).or_default().push(leaf.hash()),
        }
    }
}

/// Runs `work` with a sink for new entries and returns its result with each
/// organization's leaf hashes, in the order they were pushed. `expected` is
/// how many entries `work` may push: from [`OVERLAP_MIN`] up the hashing
/// runs on a second thread while `work` goes on.
pub fn with_leaf_hasher<'a, R>(
    expected: usize,
    work: impl FnOnce(&mut LeafSink<'a>) -> R,
) -> (R, HashMap<OrgId, Vec<Hash>>) {
    let mut sink = LeafSink {
        send: None,
        pending: Vec::new(),
        inline: HashMap::new(),
    };
    if expected < OVERLAP_MIN {
        let out = work(&mut sink);
        return (out, sink.inline);
    }
    std::thread::scope(|scope| {
        let (send, receive) = mpsc::channel::<Vec<(OrgId, Leaf<'a>)>>();
        let hasher = scope.spawn(move || {
            let mut leaves: HashMap<OrgId, Vec<Hash>> = HashMap::new();
            for chunk in receive {
                for (org, leaf) in chunk {
                    leaves.entry(org).or_default().push(leaf.hash());
                }
            }
            leaves
        });
        sink.send = Some(send);
        sink.pending.reserve(CHUNK);
        let out = work(&mut sink);
        // Dropping the sender, after the last chunk, ends the hasher's loop.
        if let Some(send) = sink.send.take()
            && !sink.pending.is_empty()
        {
            let _ = send.send(std::mem::take(&mut sink.pending));
        }
        let leaves = hasher.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (out, leaves)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canonical::entry_leaf_hash;
    use crate::entry::{Actor, Resource};
    use crate::{Entry, NewEntry, Timestamp};

    fn new(i: i64) -> NewEntry {
        let mut e = NewEntry::by_system(
            Timestamp(1_790_000_000_000 + i),
            "project.created",
            Resource {
                kind: "project".into(),
                id: format!("p{i}"),
                name: None,
            },
            serde_json::json!({ "n": i }),
        );
        e.actor = Actor::system();
        e
    }

    /// Inline or on a thread, in chunks or not: every organization gets the
    /// hashes of exactly its entries, in the order pushed.
    #[test]
    fn hashes_come_back_per_organization_in_order() {
        for n in [0, 1, OVERLAP_MIN - 1, OVERLAP_MIN, CHUNK + 1, 3 * CHUNK + 7] {
            let news: Vec<NewEntry> = (0..n as i64).map(new).collect();
            let ids: Vec<uuid::Uuid> = news.iter().map(|_| uuid::Uuid::now_v7()).collect();
            let received = Timestamp(1_790_000_100_000);
            let org_of = |i: usize| OrgId(1 + i64::from(i.is_multiple_of(3)));
            let (count, leaves) = with_leaf_hasher(n, |sink| {
                for (i, e) in news.iter().enumerate() {
                    sink.push(org_of(i), Fields::of_new(e, ids[i], i as i64 + 1, received));
                }
                news.len()
            });
            assert_eq!(count, n);
            for org in [OrgId(1), OrgId(2)] {
                let expected: Vec<Hash> = news
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| org_of(*i) == org)
                    .map(|(i, e)| {
                        entry_leaf_hash(&Entry {
                            id: ids[i],
                            org_id: org,
                            seq: i as i64 + 1,
                            timestamp: e.timestamp,
                            received_at: received,
                            actor: e.actor.clone(),
                            event: e.event.clone(),
                            resource: e.resource.clone(),
                            details: e.details.clone(),
                            ip_address: e.ip_address,
                            user_agent: e.user_agent.clone(),
                            request_id: e.request_id.clone(),
                            idempotency_key: None,
                            submitted_by: Some(e.submitted_by.clone()),
                            // What `Fields::of_new` hashes: no commitments.
                            canonical_version: 2,
                            personal: Default::default(),
                        })
                    })
                    .collect();
                assert_eq!(
                    leaves.get(&org).cloned().unwrap_or_default(),
                    expected,
                    "{n} entries, {org:?}"
                );
            }
        }
    }
}

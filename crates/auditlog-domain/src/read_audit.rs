//! Reads of the log, recorded as `audit_log.viewed`: who looked at what,
//! with which filters, and how many entries they got back.
//!
//! A reviewer asking "who read the audit log?" wants one entry per look,
//! not one per page: the pages of one query, and the same query repeated by
//! the same principal within [`WINDOW_MS`], make one entry. [`Dedup`]
//! decides that, in memory, per process (a second replica may record the
//! same look once more, which over-reports rather than hides).

use std::collections::HashMap;

use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::entry::Resource;
use crate::{OrgId, Timestamp};

/// Repeats of one query within this long are one look.
pub const WINDOW_MS: i64 = 10 * 60 * 1000;

/// Parameters that turn pages or size them: the same query whatever they
/// say.
const PAGING: [&str; 2] = ["cursor", "limit"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReadKind {
    /// A listing of entries (the API's or the Audit page's).
    List,
    /// One entry by id.
    Entry,
    Checkpoint,
    InclusionProof,
    ConsistencyProof,
}

/// One read: what was asked and how much came back.
#[derive(Debug, Clone, PartialEq)]
pub struct Read {
    pub kind: ReadKind,
    /// The query's parameters, paging left out, as given.
    pub filters: Map<String, Value>,
    /// The object read, for reads of one thing (an entry's id).
    pub target: Option<String>,
    pub entries: u64,
}

impl Read {
    /// A read whose filters are these query parameters (paging dropped;
    /// a repeated parameter becomes a list).
    pub fn from_query(kind: ReadKind, pairs: &[(String, String)], entries: u64) -> Self {
        let mut filters = Map::new();
        for (k, v) in pairs.iter().filter(|(k, _)| !PAGING.contains(&k.as_str())) {
            match filters.get_mut(k) {
                Some(Value::Array(list)) => list.push(json!(v)),
                Some(one) => *one = json!([one.take(), v]),
                None => {
                    filters.insert(k.clone(), json!(v));
                }
            }
        }
        Self {
            kind,
            filters,
            target: None,
            entries,
        }
    }

    pub fn of_one(kind: ReadKind, target: &str, entries: u64) -> Self {
        Self {
            kind,
            filters: Map::new(),
            target: Some(target.to_owned()),
            entries,
        }
    }

    /// What makes two reads the same look: kind, target and filters.
    fn identity(&self) -> String {
        let mut filters: Vec<_> = self.filters.iter().collect();
        filters.sort_by(|a, b| a.0.cmp(b.0));
        format!("{:?}|{:?}|{:?}", self.kind, self.target, filters)
    }

    /// The resource and details of its `audit_log.viewed` entry.
    pub fn recorded(&self) -> (Resource, Value) {
        let resource = Resource {
            kind: "audit_log".into(),
            id: self.target.clone().unwrap_or_else(|| "entries".into()),
            name: None,
        };
        let details = json!({
            "read": self.kind,
            "filters": self.filters,
            "entries": self.entries,
        });
        (resource, details)
    }
}

/// Which reads start a new look. Bounded: when full, looks older than the
/// window are forgotten, and if none are, everything is (recording a look
/// twice beats unbounded memory).
#[derive(Debug)]
pub struct Dedup {
    seen: HashMap<(OrgId, String, String), Timestamp>,
    capacity: usize,
}

impl Dedup {
    pub fn new(capacity: usize) -> Self {
        Self {
            seen: HashMap::new(),
            capacity: capacity.max(1),
        }
    }

    /// True when `principal`'s `read` is a new look at `now` (and from then
    /// on the window runs); false for a page-turn or a repeat within it.
    pub fn is_new_look(&mut self, org: OrgId, principal: &str, read: &Read, now: Timestamp) -> bool {
        let key = (org, principal.to_owned(), read.identity());
        if let Some(at) = self.seen.get(&key)
            && now.millis() - at.millis() < WINDOW_MS
        {
            return false;
        }
        if self.seen.len() >= self.capacity {
            self.seen.retain(|_, at| now.millis() - at.millis() < WINDOW_MS);
            if self.seen.len() >= self.capacity {
                self.seen.clear();
            }
        }
        self.seen.insert(key, now);
        true
    }

    /// Forgets a look whose recording failed, so the next read records it.
    pub fn forget(&mut self, org: OrgId, principal: &str, read: &Read) {
        self.seen.remove(&(org, principal.to_owned(), read.identity()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn pages_of_one_query_are_one_look_for_ten_minutes() {
        let mut d = Dedup::new(100);
        let first = Read::from_query(ReadKind::List, &pairs(&[("actor", "a"), ("limit", "5")]), 5);
        let page2 = Read::from_query(ReadKind::List, &pairs(&[("actor", "a"), ("cursor", "x")]), 5);
        let other = Read::from_query(ReadKind::List, &pairs(&[("actor", "b")]), 0);
        assert!(d.is_new_look(OrgId(1), "k", &first, Timestamp(0)));
        assert!(!d.is_new_look(OrgId(1), "k", &page2, Timestamp(1_000)));
        assert!(!d.is_new_look(OrgId(1), "k", &first, Timestamp(WINDOW_MS - 1)));
        assert!(
            d.is_new_look(OrgId(1), "k", &first, Timestamp(WINDOW_MS)),
            "after the window"
        );
        assert!(d.is_new_look(OrgId(1), "k", &other, Timestamp(1)), "another query");
        assert!(
            d.is_new_look(OrgId(1), "someone else", &first, Timestamp(1)),
            "another principal"
        );
        assert!(
            d.is_new_look(OrgId(2), "k", &first, Timestamp(1)),
            "another organization"
        );
    }

    #[test]
    fn parameter_order_does_not_make_a_new_look_and_repeats_become_lists() {
        let mut d = Dedup::new(10);
        let a = Read::from_query(
            ReadKind::List,
            &pairs(&[("event", "x.*"), ("actor", "a"), ("event", "y.*")]),
            1,
        );
        let b = Read::from_query(
            ReadKind::List,
            &pairs(&[("actor", "a"), ("event", "x.*"), ("event", "y.*")]),
            1,
        );
        assert_eq!(a.filters["event"], json!(["x.*", "y.*"]));
        assert!(d.is_new_look(OrgId(1), "k", &a, Timestamp(0)));
        assert!(!d.is_new_look(OrgId(1), "k", &b, Timestamp(0)));
    }

    #[test]
    fn memory_is_bounded_and_a_failed_recording_is_forgotten() {
        let mut d = Dedup::new(2);
        for i in 0..5 {
            let r = Read::of_one(ReadKind::Entry, &i.to_string(), 1);
            assert!(d.is_new_look(OrgId(1), "k", &r, Timestamp(0)));
            assert!(d.seen.len() <= 2);
        }
        let r = Read::of_one(ReadKind::Checkpoint, "checkpoint", 0);
        assert!(d.is_new_look(OrgId(1), "k", &r, Timestamp(0)));
        d.forget(OrgId(1), "k", &r);
        assert!(d.is_new_look(OrgId(1), "k", &r, Timestamp(1)));
    }

    #[test]
    fn the_entry_names_the_read_its_filters_and_count() {
        let r = Read::from_query(ReadKind::List, &pairs(&[("event", "api_key.*"), ("cursor", "c")]), 42);
        let (resource, details) = r.recorded();
        assert_eq!(resource.kind, "audit_log");
        assert_eq!(
            details,
            json!({"read": "list", "filters": {"event": "api_key.*"}, "entries": 42})
        );
    }
}

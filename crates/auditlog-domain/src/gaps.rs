//! Which sequence numbers missing from a complete export retention explains.
//!
//! Retention deletes entries, so a complete export of an old log has gaps.
//! Each purge pass records an `audit_log.retention_purged` entry saying how
//! many entries it removed (`count`) and the lowest and highest sequence
//! numbers among them (`first_seq`, `last_seq`). The range is a span, not a
//! list: a pass deletes by timestamp, and timestamps need not follow
//! sequence numbers, so entries inside the span may survive. What a verifier
//! can check is that every missing number is *accounted for*: assigned to a
//! purge entry whose span holds it, no entry taking more than its count,
//! and every entry's count used up (it removed that many, so that many
//! must be missing).
//!
//! Purge entries are themselves purged, one retention period after they
//! were written; the gaps they explained are then explained by nothing.
//! Those gaps lie below the oldest surviving purge entry, below one of the
//! expired purge entries (which a surviving pass removed and counted), and
//! among entries written before the newest surviving pass's cutoff. Within
//! that bound a gap is reported as expired with an expired purge entry;
//! anywhere else it fails.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::ops::RangeInclusive;

use crate::{ActorType, Entry, Timestamp};

/// The event a purge pass records.
pub const PURGE_EVENT: &str = "audit_log.retention_purged";

/// What one `audit_log.retention_purged` entry says it removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Purge {
    /// The purge entry's own sequence number.
    pub seq: u64,
    pub first_seq: u64,
    pub last_seq: u64,
    pub count: u64,
    pub cutoff: Timestamp,
}

impl Purge {
    /// The purge an entry records: `Ok(None)` for any other event, an error
    /// for a purge entry that auditlog did not make or whose details are
    /// not what retention writes.
    pub fn from_entry(entry: &Entry) -> Result<Option<Self>, String> {
        if entry.event != PURGE_EVENT {
            return Ok(None);
        }
        // Only the service's own retention worker purges; since ingest
        // refuses the `system` actor, an entry claiming otherwise explains
        // nothing.
        if entry.actor.kind != ActorType::System {
            return Err(format!(
                "recorded by {} {}, not by auditlog",
                entry.actor.kind.as_str(),
                entry.actor.id
            ));
        }
        let number = |key: &str| {
            entry
                .details
                .get(key)
                .and_then(serde_json::Value::as_u64)
                .ok_or_else(|| format!("details.{key} is not a sequence number or count"))
        };
        let cutoff = entry
            .details
            .get("cutoff")
            .and_then(|v| Timestamp::parse(v.as_str()?).ok())
            .ok_or("details.cutoff is not a timestamp")?;
        Ok(Some(Self {
            seq: u64::try_from(entry.seq).map_err(|_| "negative sequence number")?,
            first_seq: number("first_seq")?,
            last_seq: number("last_seq")?,
            count: number("count")?,
            cutoff,
        }))
    }

    /// Why this purge entry cannot be what retention wrote, if it cannot.
    fn contradiction(&self, present: &BTreeMap<u64, Timestamp>) -> Option<String> {
        let (first, last) = (self.first_seq, self.last_seq);
        if first == 0 || first > last || last >= self.seq {
            return Some(format!("its range seq {first}–{last} is not before it"));
        }
        if self.count == 0 || self.count > last - first + 1 {
            return Some(format!(
                "its count {} does not fit its range seq {first}–{last}",
                self.count
            ));
        }
        [first, last]
            .into_iter()
            .find(|s| present.contains_key(s))
            .map(|s| format!("it says seq {s} was removed, but the export holds it"))
    }
}

/// Missing entries one purge entry accounts for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expired {
    pub seqs: RangeInclusive<u64>,
    /// The purge entry's sequence number.
    pub by: u64,
}

/// A proven purge entry that contradicts the export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contradiction {
    /// The purge entry's sequence number.
    pub by: u64,
    pub why: String,
}

/// Missing entries nothing accounts for: deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unexplained {
    pub seqs: RangeInclusive<u64>,
    /// A purge entry whose range holds some of them, when one does: its
    /// count is used up by the other gaps there.
    pub within: Option<u64>,
}

/// The verdict on every missing sequence number.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Gaps {
    /// Accounted for by a purge entry in the export.
    pub expired: Vec<Expired>,
    /// Below the bound where expired purge entries may account for them.
    pub expired_unrecorded: Vec<RangeInclusive<u64>>,
    pub unexplained: Vec<Unexplained>,
    pub contradictions: Vec<Contradiction>,
}

/// Accounts for every number in `1..=size` missing from `present` (each
/// present entry's seq and `received_at`) with the `purges` found among
/// the export's proven entries.
pub fn explain(size: u64, present: &BTreeMap<u64, Timestamp>, purges: &[Purge]) -> Gaps {
    let mut gaps = Gaps::default();
    let mut valid = Vec::new();
    for p in purges {
        match p.contradiction(present) {
            Some(why) => gaps.contradictions.push(Contradiction { by: p.seq, why }),
            None => valid.push(*p),
        }
    }
    let missing = missing_runs(size, present);
    let (assigned, unassigned, left) = assign(&missing, &valid);
    gaps.expired = assigned;
    for (p, left) in valid.iter().zip(&left).filter(|(_, left)| **left > 0) {
        gaps.contradictions.push(Contradiction {
            by: p.seq,
            why: format!(
                "it removed {} entries in seq {}–{}, but only {} missing there are left to account for",
                p.count,
                p.first_seq,
                p.last_seq,
                p.count - left
            ),
        });
    }
    let bound = expired_purges_bound(&missing, present, &valid);
    for run in unassigned {
        let deleted = match bound {
            Some(b) if *run.end() <= b => {
                gaps.expired_unrecorded.push(run);
                continue;
            }
            Some(b) if *run.start() <= b => {
                gaps.expired_unrecorded.push(*run.start()..=b);
                b + 1..=*run.end()
            }
            _ => run,
        };
        let within = valid
            .iter()
            .find(|p| p.first_seq <= *deleted.end() && *deleted.start() <= p.last_seq)
            .map(|p| p.seq);
        gaps.unexplained.push(Unexplained { seqs: deleted, within });
    }
    gaps
}

/// The runs of numbers in `1..=size` absent from `present`, in order.
fn missing_runs(size: u64, present: &BTreeMap<u64, Timestamp>) -> Vec<RangeInclusive<u64>> {
    let mut runs = Vec::new();
    let mut next = 1;
    for &seq in present.keys().take_while(|s| **s <= size) {
        if seq > next {
            runs.push(next..=seq - 1);
        }
        next = next.max(seq + 1);
    }
    if next <= size {
        runs.push(next..=size);
    }
    runs
}

/// Assigns missing numbers to purges, lowest number first, each to the
/// purge with room whose range ends soonest: the classic greedy that
/// accounts for as many numbers as any assignment can. Works on runs, so a
/// million purged entries cost a few steps. Returns what was assigned,
/// what was not, and each purge's unused count.
fn assign(missing: &[RangeInclusive<u64>], purges: &[Purge]) -> (Vec<Expired>, Vec<RangeInclusive<u64>>, Vec<u64>) {
    let mut by_start: Vec<usize> = (0..purges.len()).collect();
    by_start.sort_by_key(|&i| purges[i].first_seq);
    let mut starts = by_start.into_iter().peekable();
    let mut left: Vec<u64> = purges.iter().map(|p| p.count).collect();
    let mut open = BinaryHeap::new();
    let (mut assigned, mut unassigned) = (Vec::new(), Vec::new());
    for run in missing {
        let mut m = *run.start();
        while m <= *run.end() {
            while let Some(i) = starts.next_if(|&i| purges[i].first_seq <= m) {
                open.push(Reverse((purges[i].last_seq, i)));
            }
            while open.peek().is_some_and(|Reverse((last, i))| *last < m || left[*i] == 0) {
                open.pop();
            }
            // Stop where another purge's range begins: it may end sooner.
            let next_start = starts.peek().map_or(u64::MAX, |&i| purges[i].first_seq - 1);
            let mut end = (*run.end()).min(next_start);
            match open.peek() {
                Some(&Reverse((last, i))) => {
                    end = end.min(last).min(m + left[i] - 1);
                    left[i] -= end - m + 1;
                    push_run(&mut assigned, m..=end, purges[i].seq);
                }
                None => unassigned.push(m..=end),
            }
            m = end + 1;
        }
    }
    (assigned, merge(unassigned), left)
}

/// Adds `seqs` to the runs, joining it to the previous run of the same
/// purge when they touch.
fn push_run(runs: &mut Vec<Expired>, seqs: RangeInclusive<u64>, by: u64) {
    if let Some(last) = runs.last_mut()
        && last.by == by
        && *last.seqs.end() + 1 == *seqs.start()
    {
        last.seqs = *last.seqs.start()..=*seqs.end();
        return;
    }
    runs.push(Expired { seqs, by });
}

fn merge(runs: Vec<RangeInclusive<u64>>) -> Vec<RangeInclusive<u64>> {
    let mut out: Vec<RangeInclusive<u64>> = Vec::new();
    for run in runs {
        match out.last_mut() {
            Some(last) if *last.end() + 1 == *run.start() => *last = *last.start()..=*run.end(),
            _ => out.push(run),
        }
    }
    out
}

/// The highest number at or below which expired purge entries may account
/// for a gap, if any.
///
/// Purge entries expire oldest first, so those gone all precede the oldest
/// surviving one. The newest gone one was removed, and counted, by a
/// surviving pass, so it is a missing number inside a surviving purge's
/// range, and everything the gone passes removed lies below it. It was
/// written before that pass's cutoff, so before every entry received since
/// the newest cutoff. The bound is the highest missing number meeting all
/// three.
fn expired_purges_bound(
    missing: &[RangeInclusive<u64>],
    present: &BTreeMap<u64, Timestamp>,
    purges: &[Purge],
) -> Option<u64> {
    let oldest_purge = purges.iter().map(|p| p.seq).min()?;
    let newest_cutoff = purges.iter().map(|p| p.cutoff).max()?;
    let received_since = present
        .iter()
        .find(|(_, received)| **received >= newest_cutoff)
        .map_or(u64::MAX, |(seq, _)| *seq);
    let below = oldest_purge.min(received_since);
    // The highest missing number below `below` inside some purge's range.
    purges
        .iter()
        .filter_map(|p| {
            let top = p.last_seq.min(below.saturating_sub(1));
            if top < p.first_seq {
                return None;
            }
            missing
                .iter()
                .rev()
                .filter(|run| *run.start() <= top && *run.end() >= p.first_seq)
                .map(|run| (*run.end()).min(top))
                .next()
        })
        .max()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000;

    fn purge(seq: u64, range: RangeInclusive<u64>, count: u64) -> Purge {
        Purge {
            seq,
            first_seq: *range.start(),
            last_seq: *range.end(),
            count,
            cutoff: Timestamp::from_millis(100 * DAY),
        }
    }

    /// Every number in `1..=size` but `gone`, all received on `day`.
    fn present_but(size: u64, gone: &[RangeInclusive<u64>], day: i64) -> BTreeMap<u64, Timestamp> {
        (1..=size)
            .filter(|s| !gone.iter().any(|g| g.contains(s)))
            .map(|s| (s, Timestamp::from_millis(day * DAY)))
            .collect()
    }

    #[test]
    fn a_complete_log_has_no_gaps() {
        assert_eq!(explain(5, &present_but(5, &[], 200), &[]), Gaps::default());
    }

    #[test]
    fn a_purged_range_is_accounted_for_by_its_purge_entry() {
        let gaps = explain(20, &present_but(20, &[1..=8], 200), &[purge(20, 1..=8, 8)]);
        assert_eq!(gaps.expired, [Expired { seqs: 1..=8, by: 20 }]);
        assert!(
            gaps.unexplained.is_empty() && gaps.contradictions.is_empty(),
            "{gaps:?}"
        );
    }

    #[test]
    fn a_gap_outside_every_purge_range_is_a_deletion() {
        let gaps = explain(20, &present_but(20, &[1..=8, 12..=13], 200), &[purge(20, 1..=8, 8)]);
        assert_eq!(gaps.unexplained, [unexplained(12..=13, None)]);
        assert!(gaps.expired_unrecorded.is_empty());
    }

    fn unexplained(seqs: RangeInclusive<u64>, within: Option<u64>) -> Unexplained {
        Unexplained { seqs, within }
    }

    #[test]
    fn a_deletion_inside_a_purge_range_breaks_its_count() {
        // The pass removed 1–12 but 5 and 9 (received after its cutoff,
        // timestamped later); then 9 was deleted by hand.
        let present = present_but(20, &[1..=4, 6..=12], 200);
        let purged = purge(20, 1..=12, 10);
        let gaps = explain(20, &present, &[purged]);
        assert_eq!(gaps.unexplained, [unexplained(12..=12, Some(20))]);
        assert!(gaps.expired_unrecorded.is_empty(), "{gaps:?}");
        let honest = explain(20, &present_but(20, &[1..=4, 6..=8, 10..=12], 200), &[purged]);
        assert!(
            honest.unexplained.is_empty() && honest.contradictions.is_empty(),
            "{honest:?}"
        );
    }

    #[test]
    fn a_purge_that_left_survivors_in_its_range_still_accounts_for_its_gaps() {
        let gaps = explain(20, &present_but(20, &[1..=3, 5..=8], 200), &[purge(20, 1..=8, 7)]);
        assert_eq!(
            gaps.expired,
            [Expired { seqs: 1..=3, by: 20 }, Expired { seqs: 5..=8, by: 20 }]
        );
        assert!(
            gaps.unexplained.is_empty() && gaps.contradictions.is_empty(),
            "{gaps:?}"
        );
    }

    #[test]
    fn overlapping_ranges_share_their_gaps_by_count() {
        // Pass one removed 1, 2 and 5; pass two 3, 4 and 6–10.
        let purges = [purge(11, 1..=5, 3), purge(12, 3..=10, 7)];
        let gaps = explain(12, &present_but(12, &[1..=10], 200), &purges);
        assert!(
            gaps.unexplained.is_empty() && gaps.contradictions.is_empty(),
            "{gaps:?}"
        );
        let total: u64 = gaps.expired.iter().map(|e| e.seqs.end() - e.seqs.start() + 1).sum();
        assert_eq!(total, 10);
    }

    #[test]
    fn a_purge_claiming_more_than_is_missing_is_a_contradiction() {
        let gaps = explain(20, &present_but(20, &[1..=2, 8..=8], 200), &[purge(20, 1..=8, 5)]);
        assert_eq!(gaps.contradictions.len(), 1, "{gaps:?}");
        assert!(gaps.contradictions[0].why.contains("only 3 missing"), "{gaps:?}");
    }

    #[test]
    fn a_purge_whose_ends_are_present_or_out_of_order_explains_nothing() {
        let present = present_but(20, &[2..=8], 200);
        for bad in [
            purge(20, 1..=8, 7),
            purge(5, 2..=8, 7),
            purge(20, 2..=8, 0),
            purge(20, 2..=8, 9),
        ] {
            let gaps = explain(20, &present, &[bad]);
            assert_eq!(gaps.contradictions.len(), 1, "{bad:?}: {gaps:?}");
            assert_eq!(gaps.unexplained, [unexplained(2..=8, None)], "{bad:?}");
        }
    }

    #[test]
    fn gaps_left_by_expired_purge_entries_pass_only_below_the_bound() {
        // An early pass (its entry at seq 5) removed 1–4; a later pass,
        // at seq 30, removed 5–10 and its entry is all that is left. Seq 20
        // was deleted by hand. Everything up to 29 was received before the
        // later pass's cutoff.
        let mut present = present_but(30, &[1..=10, 20..=20], 50);
        present.insert(30, Timestamp::from_millis(200 * DAY));
        let gaps = explain(30, &present, &[purge(30, 5..=10, 6)]);
        assert_eq!(gaps.expired, [Expired { seqs: 5..=10, by: 30 }]);
        assert_eq!(gaps.expired_unrecorded, [1..=4]);
        assert_eq!(gaps.unexplained, [unexplained(20..=20, None)]);
    }

    #[test]
    fn entries_received_after_the_cutoff_bound_what_expired_purges_explain() {
        // As above, but 3–30 arrived after the cutoff: nothing before them
        // can be an expired purge entry, so 1–2 are unexplained.
        let gaps = explain(30, &present_but(30, &[1..=2, 5..=10], 200), &[purge(30, 5..=10, 6)]);
        assert!(gaps.expired_unrecorded.is_empty(), "{gaps:?}");
        assert_eq!(gaps.unexplained, [unexplained(1..=2, None)]);
    }

    #[test]
    fn without_any_purge_entry_every_gap_is_a_deletion() {
        let gaps = explain(10, &present_but(10, &[1..=3], 50), &[]);
        assert_eq!(gaps.unexplained, [unexplained(1..=3, None)]);
        assert!(gaps.expired_unrecorded.is_empty());
    }

    /// An entry as an export line shows it (so a field added to entries
    /// later does not touch these tests).
    fn entry(actor_type: &str, details: serde_json::Value) -> Entry {
        serde_json::from_value(serde_json::json!({
            "id": "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", "seq": 40,
            "timestamp": "2026-08-06T12:00:00.000Z", "received_at": "2026-08-06T12:00:00.000Z",
            "actor": {"type": actor_type, "id": "system"}, "event": PURGE_EVENT,
            "resource": {"type": "audit_log", "id": "acme"}, "details": details,
            "ip_address": null, "user_agent": null, "request_id": null,
        }))
        .unwrap()
    }

    #[test]
    fn purge_entries_are_read_from_what_retention_records() {
        let details = serde_json::json!({"cutoff": "2026-05-08T12:00:00.000Z", "first_seq": 1,
                                         "last_seq": 8, "count": 8, "retention_days": 90});
        let p = Purge::from_entry(&entry("system", details.clone())).unwrap().unwrap();
        assert_eq!((p.seq, p.first_seq, p.last_seq, p.count), (40, 1, 8, 8));
        assert!(
            Purge::from_entry(&entry("service", details.clone()))
                .unwrap_err()
                .contains("not by auditlog")
        );
        let mut no_count = details;
        no_count["count"] = serde_json::json!("eight");
        assert!(
            Purge::from_entry(&entry("system", no_count))
                .unwrap_err()
                .contains("details.count")
        );
        let mut other = entry("system", serde_json::json!({}));
        other.event = "project.created".into();
        assert_eq!(Purge::from_entry(&other), Ok(None));
    }

    #[test]
    fn numbers_beyond_the_tree_are_not_gaps() {
        let present = present_but(12, &[], 50);
        assert_eq!(missing_runs(10, &present), Vec::<RangeInclusive<u64>>::new());
        assert_eq!(missing_runs(14, &present), [13..=14]);
    }
}

//! Every filter kind and the common combinations are answered by walking an
//! index in `(ts, seq)` order: no full scan and no sort of all matching
//! rows, which is what keeps a first page fast at any log size.

use auditlog_domain::cursor::Cursor;
use std::sync::Arc;

use auditlog_domain::filter::{Page, parse_listing};
use auditlog_domain::personal::PersonalData;
use auditlog_domain::{Catalog, OrgId, Timestamp};
use auditlog_sqlite::{SqliteStore, listing, rusqlite};

fn plan(conn: &rusqlite::Connection, q: &[(&str, &str)], after: bool) -> String {
    let pairs: Vec<_> = q.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let req = parse_listing(&pairs, &Catalog::builtin(), &[]).unwrap();
    let page = Page {
        limit: 51,
        after: after.then_some(Cursor {
            timestamp: Timestamp(1_790_000_000_000),
            seq: 10,
        }),
    };
    // As the store builds it: each person id also matches its token.
    let personal = PersonalData::new(&[1; 32], Arc::new(Catalog::builtin()));
    let f = &req.filter;
    let tokens = personal.tokens_for(f);
    let query = listing::build(OrgId(1), f, &tokens, page);
    let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {}", query.sql)).unwrap();
    let rows = stmt
        .query_map(rusqlite::params_from_iter(query.params.iter()), |r| {
            r.get::<_, String>(3)
        })
        .unwrap();
    rows.map(Result::unwrap).collect::<Vec<_>>().join("\n")
}

#[test]
fn every_filter_walks_an_index_without_sorting() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plans.db");
    let _store = SqliteStore::open(&path).unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[], "entries_by_time"),
        (&[("actor", "a@x.io")], "entries_by_actor"),
        (&[("event", "api_key.created")], "entries_by_event"),
        (&[("event", "api_key.*")], "entries_by_event"),
        (&[("event", "api_key.*"), ("event", "billing.*")], "entries_by_event"),
        (&[("resource_type", "project")], "entries_by_resource_type"),
        (&[("resource_id", "p_1")], "entries_by_resource_id"),
        (
            &[("resource_type", "project"), ("resource_id", "p_1")],
            "entries_by_resource_id",
        ),
        (
            &[("resource_type", "project"), ("from", "2026-01-01T00:00:00Z")],
            "entries_by_resource_type",
        ),
        (
            &[
                ("event", "organization.*"),
                ("event", "guardrail.*"),
                ("to", "2026-01-01T00:00:00Z"),
            ],
            "entries_by_time",
        ),
        (
            &[("from", "2026-01-01T00:00:00Z"), ("to", "2026-02-01T00:00:00Z")],
            "entries_by_time",
        ),
        (
            &[("actor", "a@x.io"), ("from", "2026-01-01T00:00:00Z")],
            "entries_by_actor",
        ),
        (
            &[
                ("actor", "a@x.io"),
                ("event", "api_key.*"),
                ("from", "2026-01-01T00:00:00Z"),
            ],
            "entries_by_actor",
        ),
    ];
    for (q, index) in cases {
        for after in [false, true] {
            let p = plan(&conn, q, after);
            assert!(p.contains(index), "{q:?} (cursor: {after}) should use {index}:\n{p}");
            // Merging a few per-event subqueries sorts each one's output, at
            // most `limit` rows; a sort straight over the table is the failure.
            let lines: Vec<&str> = p.lines().collect();
            for (i, line) in lines.iter().enumerate() {
                if line.contains("TEMP B-TREE") {
                    let bounded = i > 0 && lines[i - 1].starts_with("SCAN (subquery-");
                    assert!(bounded, "{q:?} (cursor: {after}) sorts matching rows:\n{p}");
                }
            }
            assert!(
                !p.contains("SCAN entries\n") && !p.ends_with("SCAN entries"),
                "{q:?} scans the table:\n{p}"
            );
        }
    }
}

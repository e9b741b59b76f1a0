//! Querying: every filter, their combinations, ordering and pagination.

use std::collections::HashSet;

use serde_json::{Value, json};

use crate::helpers::{TestApp, error_code, event, spawn_app};

/// Ten entries an hour apart, oldest first, varied in every filtered field.
async fn seeded() -> (TestApp, Vec<Value>) {
    let app = spawn_app().await;
    let rows = [
        ("alice@acme.com", "project.created", ("project", "p_1")),
        ("bob@acme.com", "project.renamed", ("project", "p_1")),
        ("alice@acme.com", "api_key.created", ("api_key", "lqt_aaaa1111")),
        ("lqt_ci7x2k9m", "api_key.revoked", ("api_key", "lqt_aaaa1111")),
        ("bob@acme.com", "guardrail.enabled", ("guardrail", "g_1")),
        ("alice@acme.com", "guardrail.disabled", ("guardrail", "g_1")),
        ("alice@acme.com", "project.deleted", ("project", "p_2")),
        (
            "bob@acme.com",
            "organization.member_role_changed",
            ("member", "bob@acme.com"),
        ),
        ("alice@acme.com", "api_key.created", ("api_key", "lqt_bbbb2222")),
        ("bob@acme.com", "project.created", ("project", "p_3")),
    ];
    let events: Vec<Value> = rows
        .iter()
        .enumerate()
        .map(|(i, (actor, ev, res))| {
            let mut e = event(actor, ev, *res);
            e["timestamp"] = json!(format!("2026-05-31T{:02}:00:00Z", i + 1));
            e
        })
        .collect();
    let acks = app.ingest(json!({ "events": events })).await;
    (app, acks)
}

/// A query and the sequence numbers it must return, in order.
type Case<'a> = (&'a [(&'a str, &'a str)], &'a [i64]);

fn seqs(entries: &[Value]) -> Vec<i64> {
    entries.iter().map(|e| e["seq"].as_i64().unwrap()).collect()
}

#[tokio::test]
async fn newest_first_with_every_filter_and_combination() {
    let (app, _) = seeded().await;
    let cases: &[Case] = &[
        (&[], &[10, 9, 8, 7, 6, 5, 4, 3, 2, 1]),
        (&[("actor", "bob@acme.com")], &[10, 8, 5, 2]),
        (&[("actor", "lqt_ci7x2k9m")], &[4]),
        (&[("event", "api_key.created")], &[9, 3]),
        (&[("event", "api_key.*")], &[9, 4, 3]),
        (&[("event", "api_key.*"), ("event", "guardrail.enabled")], &[9, 5, 4, 3]),
        (&[("event", "project.created,project.deleted")], &[10, 7, 1]),
        (&[("event", "*.created")], &[10, 9, 3, 1]),
        (&[("event", "*")], &[10, 9, 8, 7, 6, 5, 4, 3, 2, 1]),
        (&[("resource_type", "project")], &[10, 7, 2, 1]),
        (&[("resource_id", "p_1")], &[2, 1]),
        (
            &[("resource_type", "api_key"), ("resource_id", "lqt_aaaa1111")],
            &[4, 3],
        ),
        (&[("from", "2026-05-31T03:00:00Z")], &[10, 9, 8, 7, 6, 5, 4, 3]),
        (&[("to", "2026-05-31T03:00:00Z")], &[2, 1]),
        (
            &[("from", "2026-05-31T03:00:00Z"), ("to", "2026-05-31T06:00:00+00:00")],
            &[5, 4, 3],
        ),
        (
            &[
                ("actor", "alice@acme.com"),
                ("event", "api_key.*"),
                ("from", "2026-05-31T04:00:00Z"),
            ],
            &[9],
        ),
        (&[("actor", "alice@acme.com"), ("resource_type", "project")], &[7, 1]),
        (&[("actor", "nobody@acme.com")], &[]),
    ];
    for (query, want) in cases {
        let (status, body) = app.list(query).await;
        assert_eq!(status, 200, "{query:?}: {body}");
        let got = seqs(body["entries"].as_array().unwrap());
        assert_eq!(&got, want, "{query:?}");
    }
}

#[tokio::test]
async fn cursors_walk_every_entry_exactly_once() {
    let (app, _) = seeded().await;
    for limit in ["1", "3", "4", "10"] {
        let all = app.list_all(&[("limit", limit)]).await;
        assert_eq!(seqs(&all), (1..=10).rev().collect::<Vec<_>>(), "limit {limit}");
    }
    let (_, full_page) = app.list(&[("limit", "10")]).await;
    assert_eq!(full_page["next_cursor"], Value::Null, "no cursor to an empty page");
    let filtered = app.list_all(&[("limit", "1"), ("actor", "bob@acme.com")]).await;
    assert_eq!(seqs(&filtered), [10, 8, 5, 2]);
}

#[tokio::test]
async fn pages_neither_skip_nor_repeat_while_entries_arrive() {
    let (app, _) = seeded().await;
    let (_, first) = app.list(&[("limit", "4")]).await;
    let cursor = first["next_cursor"].as_str().unwrap().to_owned();
    // Arrivals: one newer than everything, one older than the page boundary.
    let mut newer = event("c@acme.com", "project.created", ("project", "new"));
    newer["timestamp"] = json!("2026-05-31T23:00:00Z");
    let mut older = event("c@acme.com", "project.created", ("project", "old"));
    older["timestamp"] = json!("2026-05-31T00:30:00Z");
    app.ingest(json!({"events": [newer, older]})).await;
    let rest = app.list_all(&[("limit", "4"), ("cursor", &cursor)]).await;
    let mut seen: Vec<i64> = seqs(first["entries"].as_array().unwrap());
    seen.extend(seqs(&rest));
    let unique: HashSet<_> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "nothing repeated: {seen:?}");
    for s in 1..=10 {
        assert!(unique.contains(&s), "{s} skipped");
    }
    assert_eq!(*seen.last().unwrap(), 12, "the older arrival shows up in its place");
}

#[tokio::test]
async fn one_entry_by_id() {
    let (app, acks) = seeded().await;
    let id = acks[2]["id"].as_str().unwrap();
    let resp = app
        .get(&app.keys.read, &format!("/v1/orgs/acme/audit/events/{id}"), &[])
        .await;
    assert_eq!(resp.status(), 200);
    let e: Value = resp.json().await.unwrap();
    assert_eq!(e["id"], id);
    assert_eq!(e["event"], "api_key.created");
    for missing in [uuid::Uuid::now_v7().to_string(), "not-a-uuid".into()] {
        let resp = app
            .get(&app.keys.read, &format!("/v1/orgs/acme/audit/events/{missing}"), &[])
            .await;
        assert_eq!(resp.status(), 404);
        assert_eq!(error_code(&resp.json().await.unwrap()), "not_found");
    }
}

#[tokio::test]
async fn bad_queries_are_refused_by_name() {
    let app = spawn_app().await;
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("limit", "0")], "limit"),
        (&[("limit", "1001")], "limit"),
        (&[("cursor", "garbage")], "cursor"),
        (&[("from", "last week")], "from"),
        (&[("event", "api_key.exploded")], "event"),
        (&[("event", "nothing.*")], "event"),
        (&[("event", "DROP TABLE")], "event"),
        (&[("colour", "red")], "colour"),
        (
            &[("from", "2026-05-02T00:00:00Z"), ("to", "2026-05-01T00:00:00Z")],
            "to",
        ),
    ];
    for (query, field) in cases {
        let (status, body) = app.list(query).await;
        assert_eq!(status, 400, "{query:?}");
        assert_eq!(error_code(&body), "invalid_query");
        assert_eq!(body["error"]["details"][0]["field"], *field, "{query:?}: {body}");
    }
}

#[tokio::test]
async fn default_page_is_fifty() {
    let app = spawn_app().await;
    let events: Vec<Value> = (0..60)
        .map(|_| event("a@acme.com", "project.created", ("project", "p")))
        .collect();
    app.ingest(json!({ "events": events })).await;
    let (_, body) = app.list(&[]).await;
    assert_eq!(body["entries"].as_array().unwrap().len(), 50);
    assert!(body["next_cursor"].is_string());
}

#[tokio::test]
async fn after_seq_replays_a_gap_oldest_first() {
    let (app, _) = seeded().await;
    let (status, body) = app.list(&[("after_seq", "7")]).await;
    assert_eq!(status, 200);
    assert_eq!(seqs(body["entries"].as_array().unwrap()), [8, 9, 10]);
    let (_, body) = app
        .list(&[("after_seq", "2"), ("actor", "bob@acme.com"), ("limit", "2")])
        .await;
    assert_eq!(seqs(body["entries"].as_array().unwrap()), [5, 8]);
}

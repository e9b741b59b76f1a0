//! Querying: every filter, their combinations, ordering and pagination.

use std::collections::HashSet;

use serde_json::{Value, json};

use crate::helpers::{TestApp, error_code, event, spawn_app, spawn_app_with};

/// Ten entries an hour apart, oldest first, varied in every filtered field.
/// Ten entries, in a server that does not record reads: these tests count
/// what listings select, and a listing's own `audit_log.viewed` entries
/// (tested in `reads.rs`) would join the count.
async fn seeded() -> (TestApp, Vec<Value>) {
    let app = spawn_app_with(|c| c.record_reads = false).await;
    let rows = [
        ("alice@acme.com", "guardrail.created", ("guardrail", "g_1")),
        ("bob@acme.com", "guardrail.updated", ("guardrail", "g_1")),
        ("alice@acme.com", "alert.created", ("alert", "al_1")),
        ("lqt_ci7x2k9m", "alert.deleted", ("alert", "al_1")),
        ("bob@acme.com", "prompt.version_published", ("prompt", "support-bot")),
        (
            "alice@acme.com",
            "prompt.version_rolled_back",
            ("prompt", "support-bot"),
        ),
        ("alice@acme.com", "guardrail.deleted", ("guardrail", "g_2")),
        (
            "bob@acme.com",
            "billing.payment_method_changed",
            ("payment_method", "pm_1"),
        ),
        ("alice@acme.com", "alert.created", ("alert", "al_2")),
        ("bob@acme.com", "guardrail.created", ("guardrail", "g_3")),
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
        (&[("event", "alert.created")], &[9, 3]),
        (&[("event", "alert.*")], &[9, 4, 3]),
        (
            &[("event", "alert.*"), ("event", "prompt.version_published")],
            &[9, 5, 4, 3],
        ),
        (&[("event", "guardrail.created,guardrail.deleted")], &[10, 7, 1]),
        (&[("event", "*.created")], &[10, 9, 3, 1]),
        (&[("event", "*")], &[10, 9, 8, 7, 6, 5, 4, 3, 2, 1]),
        (&[("resource_type", "guardrail")], &[10, 7, 2, 1]),
        (&[("resource_id", "g_1")], &[2, 1]),
        (&[("resource_type", "alert"), ("resource_id", "al_1")], &[4, 3]),
        (&[("from", "2026-05-31T03:00:00Z")], &[10, 9, 8, 7, 6, 5, 4, 3]),
        (&[("to", "2026-05-31T03:00:00Z")], &[2, 1]),
        (
            &[("from", "2026-05-31T03:00:00Z"), ("to", "2026-05-31T06:00:00+00:00")],
            &[5, 4, 3],
        ),
        (
            &[
                ("actor", "alice@acme.com"),
                ("event", "alert.*"),
                ("from", "2026-05-31T04:00:00Z"),
            ],
            &[9],
        ),
        (&[("actor", "alice@acme.com"), ("resource_type", "guardrail")], &[7, 1]),
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
    let mut newer = event("c@acme.com", "guardrail.created", ("guardrail", "new"));
    newer["timestamp"] = json!("2026-05-31T23:00:00Z");
    let mut older = event("c@acme.com", "guardrail.created", ("guardrail", "old"));
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
    assert_eq!(e["event"], "alert.created");
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
        .map(|_| event("a@acme.com", "guardrail.created", ("guardrail", "g")))
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

/// Separate parameters, the same filter as q, and what both return.
type SameInQ<'a> = (&'a [(&'a str, &'a str)], &'a str, &'a [i64]);

#[tokio::test]
async fn q_selects_what_the_separate_parameters_select() {
    let (app, _) = seeded().await;
    let cases: &[SameInQ] = &[
        (&[("actor", "bob@acme.com")], "actor:bob@acme.com", &[10, 8, 5, 2]),
        (
            &[("event", "alert.*"), ("event", "prompt.version_published")],
            "event:alert.* event:prompt.version_published",
            &[9, 5, 4, 3],
        ),
        (
            &[("event", "guardrail.created,guardrail.deleted")],
            "event:guardrail.created,guardrail.deleted",
            &[10, 7, 1],
        ),
        (&[("resource_type", "guardrail")], "resource:guardrail", &[10, 7, 2, 1]),
        (
            &[("resource_type", "alert"), ("resource_id", "al_1")],
            "resource:alert:al_1",
            &[4, 3],
        ),
        (
            &[("resource_type", "payment_method"), ("resource_id", "pm_1")],
            "resource:payment_method:pm_1",
            &[8],
        ),
        (
            &[("from", "2026-05-31T03:00:00Z"), ("to", "2026-05-31T06:00:00+00:00")],
            "after:2026-05-31T03:00:00Z before:2026-05-31T06:00:00+00:00",
            &[5, 4, 3],
        ),
        (
            &[("from", "2026-05-31T00:00:00Z"), ("to", "2026-06-01T00:00:00Z")],
            "after:2026-05-31 before:2026-06-01",
            &[10, 9, 8, 7, 6, 5, 4, 3, 2, 1],
        ),
        (
            &[
                ("actor", "alice@acme.com"),
                ("event", "alert.*"),
                ("from", "2026-05-31T04:00:00Z"),
            ],
            r#"  Event:alert.*   ACTOR:"alice@acme.com" after:2026-05-31T04:00:00Z "#,
            &[9],
        ),
        (&[], "", &[10, 9, 8, 7, 6, 5, 4, 3, 2, 1]),
    ];
    for (separate, q, want) in cases {
        let (status, by_params) = app.list(separate).await;
        assert_eq!(status, 200, "{separate:?}: {by_params}");
        assert_eq!(seqs(by_params["entries"].as_array().unwrap()), *want, "{separate:?}");
        let (status, by_q) = app.list(&[("q", q)]).await;
        assert_eq!(status, 200, "{q}: {by_q}");
        assert_eq!(seqs(by_q["entries"].as_array().unwrap()), *want, "{q}");
        assert_eq!(by_q, by_params, "{q} and {separate:?}");
    }
    // q and separate parameters for different fields combine, and q's
    // filter holds across pages.
    let mixed = app
        .list_all(&[
            ("q", "event:alert.*,guardrail.*"),
            ("actor", "alice@acme.com"),
            ("limit", "1"),
        ])
        .await;
    assert_eq!(seqs(&mixed), [9, 7, 3, 1]);
}

#[tokio::test]
async fn export_honours_q() {
    let (app, _) = seeded().await;
    let mut spaced = event("ops@acme.com", "guardrail.created", ("guardrail", "Prod EU:1"));
    spaced["timestamp"] = json!("2026-05-31T11:00:00Z");
    app.ingest(json!({ "events": [spaced] })).await;

    let resp = app
        .get(
            &app.keys.read,
            "/v1/orgs/acme/audit/export",
            &[
                ("format", "csv"),
                ("q", "actor:alice@acme.com event:alert.*,guardrail.*"),
            ],
        )
        .await;
    assert_eq!(resp.status(), 200);
    let csv_text = resp.text().await.unwrap();
    let exported: Vec<i64> = csv::Reader::from_reader(csv_text.as_bytes())
        .records()
        .map(|r| r.unwrap()[1].parse().unwrap())
        .collect();
    assert_eq!(exported, [9, 7, 3, 1]);

    // The export records the filter q resolved to.
    let (_, audited) = app.list(&[("event", "data_export.requested")]).await;
    let requested = &audited["entries"][0];
    assert_eq!(
        requested["details"]["filters"],
        json!({"actor": "alice@acme.com", "event": ["alert.*", "guardrail.*"]})
    );

    let resp = app
        .get(
            &app.keys.read,
            "/v1/orgs/acme/audit/export",
            &[("format", "jsonl"), ("q", r#"resource:guardrail:"Prod EU:1""#)],
        )
        .await;
    assert_eq!(resp.status(), 200);
    let lines: Vec<Value> = resp
        .text()
        .await
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1);
    assert_eq!(
        lines[0]["resource"]["id"], "Prod EU:1",
        "quoted, with a colon in the id"
    );
}

/// A bad q, other parameters beside it, the problem's code, and the text of
/// q the problem points at.
type BadQ<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str, &'a str);

#[tokio::test]
async fn a_bad_q_is_refused_naming_q_and_where() {
    let app = spawn_app().await;
    let (status, body) = app.list(&[("q", "actor:alice acter:bob")]).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(error_code(&body), "invalid_query");
    let message =
        "at character 12: unknown key \"acter\"; expected actor, event, resource, submitted_by, after, before";
    assert_eq!(body["error"]["message"], message);
    assert_eq!(
        body["error"]["details"],
        json!([{"field": "q", "code": "invalid_query", "message": message, "position": 12, "length": 5}])
    );

    let cases: &[BadQ] = &[
        ("bob", &[], "invalid_query", "bob"),
        (r#"actor:"Jane Doe"#, &[], "invalid_query", r#""Jane Doe"#),
        ("after:yesterday", &[], "invalid_query", "yesterday"),
        ("event:api_key.* event:nothing.*", &[], "unknown_event", "nothing.*"),
        ("actor:a actor:b", &[], "invalid_query", "actor:b"),
        (
            "event:* actor:a",
            &[("actor", "b")],
            "conflicting_parameters",
            "actor:a",
        ),
        (
            "after:2026-05-01",
            &[("from", "2026-05-01T00:00:00Z")],
            "conflicting_parameters",
            "after:2026-05-01",
        ),
    ];
    for (q, others, code, covered) in cases {
        let mut query = vec![("q", *q)];
        query.extend_from_slice(others);
        for path in ["/v1/orgs/acme/audit/events", "/v1/orgs/acme/audit/export"] {
            let resp = app.get(&app.keys.read, path, &query).await;
            assert_eq!(resp.status(), 400, "{path} {q}");
            let body: Value = resp.json().await.unwrap();
            assert_eq!(error_code(&body), "invalid_query", "{body}");
            let problem = &body["error"]["details"][0];
            assert_eq!(problem["field"], "q", "{q}: {body}");
            assert_eq!(problem["code"], *code, "{q}: {body}");
            let (at, len) = (
                problem["position"].as_u64().unwrap(),
                problem["length"].as_u64().unwrap(),
            );
            let pointed: String = q.chars().skip(at as usize).take(len as usize).collect();
            assert_eq!(pointed, *covered, "{q}: {body}");
            let message = problem["message"].as_str().unwrap();
            assert!(message.starts_with(&format!("at character {at}: ")), "{message}");
        }
    }
    assert_eq!(app.log_size().await, 0, "a refused export records nothing");
}

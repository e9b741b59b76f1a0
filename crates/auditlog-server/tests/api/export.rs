//! Export: CSV, JSON Lines and OCSF events of exactly the filtered view,
//! streamed, and audited.

use serde_json::{Value, json};

use crate::helpers::{TestApp, error_code, event, spawn_app, spawn_app_with};

async fn export(app: &TestApp, query: &[(&str, &str)]) -> (reqwest::header::HeaderMap, String) {
    let resp = app.get(&app.keys.read, "/v1/orgs/acme/audit/export", query).await;
    assert_eq!(resp.status(), 200);
    let headers = resp.headers().clone();
    (headers, resp.text().await.unwrap())
}

fn records(csv_text: &str) -> Vec<Vec<String>> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(csv_text.as_bytes())
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect()
}

#[tokio::test]
async fn csv_has_the_contract_columns_and_exactly_the_filtered_rows() {
    let app = spawn_app().await;
    let mut e1 = event("alice@acme.com", "guardrail.updated", ("guardrail", "g_1"));
    e1["resource"]["name"] = json!("PII, \"EU\"; 'main'");
    e1["user_agent"] = json!("Mozilla/5.0 (X11; Linux)");
    let e2 = event("=HYPERLINK(\"http://evil\")", "guardrail.created", ("guardrail", "g_2"));
    let mut e3 = event("zoë@例え.jp", "alert.created", ("alert", "al_1"));
    e3["details"]["note"] = json!("naïve ✓");
    app.ingest(json!({"events": [e1, e2, e3]})).await;

    let (headers, body) = export(&app, &[("event", "guardrail.*")]).await;
    assert_eq!(headers["content-type"], "text/csv; charset=utf-8");
    let disposition = headers["content-disposition"].to_str().unwrap();
    assert_eq!(disposition, "attachment; filename=\"audit-acme-20260601T120000Z.csv\"");
    assert!(body.ends_with("\r\n"));
    let rows = records(&body);
    assert_eq!(
        rows[0],
        [
            "id",
            "seq",
            "timestamp",
            "actor_type",
            "actor",
            "event",
            "resource_type",
            "resource_id",
            "resource_name",
            "details",
            "ip_address",
            "user_agent",
            "submitted_by"
        ]
    );
    assert_eq!(rows.len(), 3, "header and the two guardrail entries");
    // Newest first: seq 2 then 1.
    assert_eq!(rows[1][1], "2");
    assert_eq!(rows[1][4], "'=HYPERLINK(\"http://evil\")", "formula neutralised");
    assert_eq!(rows[2][1], "1");
    assert_eq!(rows[2][2], "2026-06-01T12:00:00.000Z");
    assert_eq!(rows[2][3], "user");
    assert_eq!(rows[2][8], "PII, \"EU\"; 'main'", "quotes and commas survive");
    assert_eq!(
        rows[2][9],
        r#"{"name":"PII","changes":{"threshold":{"old":0.5,"new":0.8}}}"#
    );
    assert_eq!(rows[2][10], "127.0.0.1");
    assert_eq!(rows[2][11], "Mozilla/5.0 (X11; Linux)");
    let write_key = app.keys.write.split('_').take(2).collect::<Vec<_>>().join("_");
    assert_eq!(rows[2][12], format!("api_key:{write_key}"), "who submitted it, last");

    let (_, all) = export(&app, &[("actor", "zoë@例え.jp")]).await;
    let rows = records(&all);
    assert_eq!(rows[1][4], "zoë@例え.jp");
    assert!(rows[1][9].contains("naïve ✓"));
}

#[tokio::test]
async fn jsonl_matches_the_query_api_across_many_pages() {
    // Reads unrecorded, so the listing compared with the export adds
    // nothing to the log between them.
    let app = spawn_app_with(|c| c.record_reads = false).await;
    for chunk in 0..3 {
        let events: Vec<Value> = (0..900)
            .map(|i| {
                event(
                    "a@acme.com",
                    "guardrail.created",
                    ("guardrail", &format!("g_{chunk}_{i}")),
                )
            })
            .collect();
        app.ingest(json!({ "events": events })).await;
    }
    let (headers, body) = export(&app, &[("format", "jsonl"), ("resource_type", "guardrail")]).await;
    assert!(headers["content-disposition"].to_str().unwrap().ends_with(".jsonl\""));
    let exported: Vec<Value> = body.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let listed = app.list_all(&[("resource_type", "guardrail"), ("limit", "1000")]).await;
    assert_eq!(exported.len(), 2700);
    assert_eq!(
        exported, listed,
        "the export is exactly the filtered view, in the same order"
    );

    let (_, csv_body) = export(&app, &[]).await;
    // The first export's own two audit entries are in the second.
    assert_eq!(records(&csv_body).len(), 1 + 2700 + 2);
}

#[tokio::test]
async fn ocsf_is_one_event_per_entry_in_the_order_of_the_jsonl_export() {
    // Reads unrecorded, and a filter the exports' own entries fall outside,
    // so both exports see the same entries.
    let app = spawn_app_with(|c| c.record_reads = false).await;
    for chunk in 0..3 {
        // More than a page (2000 rows), of more than one class.
        let events: Vec<Value> = (0..800)
            .map(|i| {
                let (name, kind) = if i % 3 == 0 {
                    ("alert.created", "alert")
                } else {
                    ("guardrail.created", "guardrail")
                };
                let mut e = event("a@acme.com", name, (kind, &format!("r_{chunk}_{i}")));
                e["actor"] = json!(format!("user{}@acme.com", i % 7));
                e
            })
            .collect();
        app.ingest(json!({ "events": events })).await;
    }
    let filter = [("event", "guardrail.*"), ("event", "alert.*")];
    let (_, jsonl) = export(&app, &[&[("format", "jsonl")], &filter[..]].concat()).await;
    let (headers, ocsf) = export(&app, &[&[("format", "ocsf")], &filter[..]].concat()).await;
    assert_eq!(headers["content-type"], "application/jsonl; charset=utf-8");
    let disposition = headers["content-disposition"].to_str().unwrap();
    assert_eq!(
        disposition,
        "attachment; filename=\"audit-acme-20260601T120000Z.ocsf.jsonl\""
    );
    let entries: Vec<Value> = jsonl.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let events: Vec<Value> = ocsf.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(entries.len(), 2400);
    assert_eq!(events.len(), entries.len(), "one event per entry");
    for (e, ev) in entries.iter().zip(&events) {
        assert!(ev["class_uid"].is_u64(), "{ev}");
        assert_eq!(ev["metadata"]["uid"], e["id"], "in the same order");
        assert_eq!(ev["metadata"]["sequence"], e["seq"]);
        assert_eq!(ev["metadata"]["event_code"], e["event"]);
        assert_eq!(ev["metadata"]["tenant_uid"], "acme");
    }
    let classes: std::collections::BTreeSet<u64> = events.iter().map(|e| e["class_uid"].as_u64().unwrap()).collect();
    assert!(!classes.is_empty());

    let requested = app.list_all(&[("event", "data_export.requested")]).await;
    assert_eq!(requested[0]["details"]["format"], "ocsf", "recorded with its format");
    let downloaded = app.list_all(&[("event", "data_export.downloaded")]).await;
    assert_eq!(downloaded[0]["details"]["format"], "ocsf");
    assert_eq!(downloaded[0]["details"]["bytes"], ocsf.len());

    let resp = app
        .get(
            &app.keys.read,
            "/v1/orgs/acme/audit/export",
            &[("format", "ocsf"), ("proofs", "true")],
        )
        .await;
    assert_eq!(resp.status(), 400, "proofs only fit entry lines");
}

#[tokio::test]
async fn exports_are_audited_with_their_filters_rows_and_bytes() {
    // Reads unrecorded, so the listing below adds no entry to the export
    // that follows it.
    let app = spawn_app_with(|c| c.record_reads = false).await;
    app.ingest(json!({"events": [
        event("a@acme.com", "guardrail.created", ("guardrail", "g_1")),
        event("b@acme.com", "alert.created", ("alert", "al_1")),
    ]}))
    .await;
    let (_, body) = export(&app, &[("event", "guardrail.*"), ("actor", "a@acme.com")]).await;
    let data_exports = app.list_all(&[("event", "data_export.*")]).await;
    assert_eq!(data_exports.len(), 2);
    let (downloaded, requested) = (&data_exports[0], &data_exports[1]);
    assert_eq!(requested["event"], "data_export.requested");
    assert_eq!(requested["details"]["format"], "csv");
    assert_eq!(
        requested["details"]["filters"],
        json!({"actor": "a@acme.com", "event": ["guardrail.*"]})
    );
    assert_eq!(requested["actor"]["id"], &app.keys.read[..12]);
    assert_eq!(downloaded["event"], "data_export.downloaded");
    assert_eq!(downloaded["details"]["rows"], 1);
    assert_eq!(downloaded["details"]["bytes"], body.len());
    assert_eq!(
        downloaded["resource"]["id"], requested["resource"]["id"],
        "both name the same export"
    );

    // The export is a snapshot: its own audit entries are not in it.
    let (_, again) = export(&app, &[("format", "jsonl")]).await;
    assert_eq!(
        again.lines().count(),
        4,
        "2 entries + the first export's 2 audit entries"
    );
}

#[tokio::test]
async fn bad_export_requests_are_refused() {
    let app = spawn_app().await;
    for query in [[("format", "xlsx")], [("limit", "10")], [("event", "nope.nope")]] {
        let resp = app.get(&app.keys.read, "/v1/orgs/acme/audit/export", &query).await;
        assert_eq!(resp.status(), 400, "{query:?}");
        let body = resp.json().await.unwrap();
        assert_eq!(error_code(&body), "invalid_query");
        if query[0].0 == "format" {
            let message = body["error"]["message"].as_str().unwrap();
            assert!(message.contains("csv, jsonl or ocsf"), "the allowed values: {message}");
        }
    }
    assert_eq!(app.log_size().await, 0, "a refused export records nothing");
}

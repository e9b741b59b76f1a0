//! Reads of the log are recorded as `audit_log.viewed`: who looked, at
//! what, with which filters, and how much came back; one entry per look.

use std::time::Duration;

use auditlog_domain::Role;
use auditlog_domain::read_audit::WINDOW_MS;
use serde_json::{Value, json};

use crate::helpers::{TestApp, person, spawn_app_with};

/// The `audit_log.viewed` entries so far, oldest first, once `n` are there:
/// they are committed just after the read is answered.
async fn viewed(app: &TestApp, n: usize) -> Vec<Value> {
    for _ in 0..1000 {
        let (_, body) = app.list(&[("event", "audit_log.viewed"), ("limit", "1000")]).await;
        let mut got: Vec<Value> = body["entries"].as_array().unwrap().clone();
        // The look just taken is itself one.
        got.retain(|e| e["details"]["filters"] != json!({"event": "audit_log.viewed", "limit": "1000"}));
        got.retain(|e| e["details"]["filters"] != json!({"event": "audit_log.viewed"}));
        if got.len() >= n {
            got.reverse();
            return got;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("fewer than {n} audit_log.viewed entries");
}

/// Reads are recorded, as they are by default outside the tests.
fn recording(c: &mut auditlog_server::ServerConfig) {
    c.record_reads = true;
}

fn guardrail(i: usize) -> Value {
    json!({"event": "guardrail.enabled", "actor": "ops@acme.com",
           "resource": {"type": "guardrail", "id": format!("g_{i}")}, "details": {"name": "PII"}})
}

#[tokio::test]
async fn a_query_and_its_pages_are_one_look_for_ten_minutes() {
    let app = spawn_app_with(recording).await;
    app.ingest(json!({"events": (0..5).map(guardrail).collect::<Vec<_>>()}))
        .await;
    let query = [("event", "guardrail.*"), ("limit", "2")];
    let (_, first) = app.list(&query).await;
    let cursor = first["next_cursor"].as_str().unwrap().to_owned();
    app.list(&[("event", "guardrail.*"), ("limit", "2"), ("cursor", &cursor)])
        .await;
    app.list(&query).await;
    let one = viewed(&app, 1).await;
    assert_eq!(one.len(), 1, "{one:?}");
    let v = &one[0];
    assert_eq!(v["actor"]["id"], app.keys.read[..12]);
    assert_eq!(v["submitted_by"]["kind"], "api_key");
    assert_eq!(v["details"]["read"], "list");
    assert_eq!(v["details"]["filters"], json!({"event": "guardrail.*"}));
    assert_eq!(v["details"]["entries"], 2);
    // Another query is another look; the same one after ten minutes too.
    app.list(&[("actor", "ops@acme.com")]).await;
    viewed(&app, 2).await;
    app.clock.advance_millis(WINDOW_MS);
    app.list(&query).await;
    let three = viewed(&app, 3).await;
    assert_eq!(three[2]["details"]["filters"], json!({"event": "guardrail.*"}));
}

#[tokio::test]
async fn one_entry_checkpoints_and_proofs_are_recorded_exports_are_not() {
    let app = spawn_app_with(recording).await;
    let ingested = app.ingest(guardrail(1)).await;
    let id = ingested[0]["id"].as_str().unwrap();
    let read = &app.keys.read;
    assert_eq!(
        app.get(read, &format!("/v1/orgs/acme/audit/events/{id}"), &[])
            .await
            .status(),
        200
    );
    let checkpoint = app.get(read, "/v1/orgs/acme/audit/checkpoint", &[]).await;
    assert_eq!(checkpoint.status(), 200);
    let inclusion = app
        .get(
            read,
            "/v1/orgs/acme/audit/proofs/inclusion",
            &[("seq", "1"), ("tree_size", "1")],
        )
        .await;
    assert_eq!(inclusion.status(), 200);
    let consistency = app
        .get(
            read,
            "/v1/orgs/acme/audit/proofs/consistency",
            &[("from", "1"), ("to", "1")],
        )
        .await;
    assert_eq!(consistency.status(), 200);
    let export = app
        .get(read, "/v1/orgs/acme/audit/export", &[("format", "jsonl")])
        .await;
    assert_eq!(export.status(), 200);
    let _ = export.text().await;
    let got = viewed(&app, 4).await;
    let reads: Vec<&str> = got.iter().map(|e| e["details"]["read"].as_str().unwrap()).collect();
    assert_eq!(reads, ["entry", "checkpoint", "inclusion_proof", "consistency_proof"]);
    assert_eq!(got[0]["resource"]["id"], id);
    assert_eq!(got[2]["details"]["filters"], json!({"seq": "1", "tree_size": "1"}));
}

#[tokio::test]
async fn a_person_reading_the_audit_page_is_recorded_with_their_session() {
    let app = spawn_app_with(recording).await;
    person(app.store.as_ref(), &app.acme, "olivia@acme.com", Role::Owner).await;
    let b = app.login("olivia@acme.com").await;
    let resp = app
        .as_browser(&b, reqwest::Method::GET, "/orgs/acme/audit?range=24h")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let v = &viewed(&app, 1).await[0];
    assert_eq!(v["actor"]["id"], "olivia@acme.com");
    assert_eq!(v["submitted_by"], json!({"kind": "session", "id": "olivia@acme.com"}));
    assert_eq!(v["details"]["filters"], json!({"range": "24h"}));
}

#[tokio::test]
async fn with_reads_unrecorded_a_listing_adds_nothing() {
    let app = spawn_app_with(|c| c.record_reads = false).await;
    app.ingest(guardrail(1)).await;
    let before = app.log_size().await;
    for _ in 0..3 {
        app.list(&[("actor", "ops@acme.com")]).await;
    }
    // A read that is recorded goes through the same writer; one more write
    // after the listings and waiting for it shows none was queued before.
    app.ingest(guardrail(2)).await;
    assert_eq!(app.log_size().await, before + 1);
}

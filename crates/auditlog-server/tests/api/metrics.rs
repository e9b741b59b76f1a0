//! `GET /metrics`: what an operator's scraper sees.

use serde_json::json;

use crate::helpers::{event, spawn_app};

#[tokio::test]
async fn metrics_count_ingest_and_commits_without_naming_tenants() {
    let app = spawn_app().await;
    app.ingest(json!({"events": [
        event("a@acme.com", "guardrail.created", ("guardrail", "g1")),
        event("a@acme.com", "guardrail.created", ("guardrail", "g2")),
    ]}))
    .await;
    let refused = app
        .post_events(&app.keys.write, &json!({"event": "no.such_event"}))
        .await;
    assert_eq!(refused.status(), 422);

    let resp = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    let text = resp.text().await.unwrap();
    for line in [
        "auditlog_ingest_entries_total 2",
        "auditlog_ingest_requests_total{outcome=\"created\"} 1",
        "auditlog_ingest_requests_total{outcome=\"refused\"} 1",
        "auditlog_commits_total{outcome=\"committed\"}",
        "auditlog_ingest_request_duration_seconds_count 2",
        "auditlog_writer_queue_depth",
    ] {
        assert!(text.contains(line), "{line} missing from:\n{text}");
    }
    // No organization, key or person appears: the endpoint needs no key.
    for secret in ["acme", "globex", "lqt_", "a@acme.com"] {
        assert!(!text.contains(secret), "{secret} leaked into:\n{text}");
    }
}

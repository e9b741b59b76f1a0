//! Every door into the log records who vouched for the entry, set by the
//! service: an API key's ingest, a person's session, the service's own
//! work. (The command line's door is tested in `auditlog`'s CLI tests.)

use std::sync::Arc;

use auditlog_domain::{Clock, Role};
use auditlog_server::Writer;
use auditlog_server::workers::retention::purge_once;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, person, spawn_app_with};

async fn one(app: &TestApp, event: &str) -> Value {
    let (status, body) = app.list(&[("event", event), ("limit", "1")]).await;
    assert_eq!(status, 200, "{body}");
    body["entries"][0].clone()
}

#[tokio::test]
async fn each_door_names_its_credential() {
    let app = spawn_app_with(|c| c.retention.background = false).await;
    // An API key, through ingest: the key's prefix, whatever actor it
    // asserts.
    let old = json!({"event": "guardrail.enabled", "actor": "someone@else.com",
                     "resource": {"type": "guardrail", "id": "g_1"}, "details": {"name": "PII"},
                     "timestamp": "2026-05-01T00:00:00Z"});
    app.ingest(old).await;
    let ingested = one(&app, "guardrail.enabled").await;
    assert_eq!(ingested["actor"]["id"], "someone@else.com");
    assert_eq!(
        ingested["submitted_by"],
        json!({"kind": "api_key", "id": &app.keys.write[..12]})
    );
    assert_eq!(ingested["canonical_version"], 3);

    // A person, through the management API: their session.
    person(app.store.as_ref(), &app.acme, "olivia@acme.com", Role::Owner).await;
    let olivia = app.login("olivia@acme.com").await;
    let resp = app
        .as_browser(&olivia, Method::PATCH, "/v1/orgs/acme")
        .json(&json!({"name": "Acme Corp"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let renamed = one(&app, "organization.renamed").await;
    assert_eq!(
        renamed["submitted_by"],
        json!({"kind": "session", "id": "olivia@acme.com"})
    );

    // The service itself: a retention purge.
    app.clock
        .set(auditlog_domain::Timestamp::parse("2026-08-15T00:00:00Z").unwrap());
    let clock: Arc<dyn Clock> = Arc::new(app.clock.clone());
    let (writer, task) = Writer::spawn(app.store.clone(), clock.clone(), Default::default());
    purge_once(app.store.as_ref(), &writer, clock.as_ref(), 100)
        .await
        .unwrap();
    drop(writer);
    task.await.unwrap();
    let purge = one(&app, "audit_log.retention_purged").await;
    assert_eq!(purge["submitted_by"], json!({"kind": "service", "id": "auditlog"}));
    assert_eq!(purge["actor"]["type"], "system");
}

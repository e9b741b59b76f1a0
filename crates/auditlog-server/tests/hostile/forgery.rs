//! Finding 3 (the provenance issue): any `audit:write` key could ingest the
//! events the service records about itself, with any actor, `system`
//! included. Every service-only event of the catalog and every reserved
//! actor type is tried here, alone and hidden in an otherwise valid batch of
//! 1000, with keys of every scope that may write and from a member's own
//! key: each is refused whole with `reserved_event`, and nothing is written.

use auditlog_domain::Role;
use auditlog_domain::api_key::Scope;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, error_code, key, person, spawn_app};

/// A valid producer event.
fn valid(i: usize) -> Value {
    json!({"event": "guardrail.updated", "actor": "billing-service",
           "resource": {"type": "guardrail", "id": format!("g_{i}")},
           "details": {"name": "PII", "changes": {"n": i}}})
}

/// The service's own events, as the catalog says, with details that would
/// otherwise pass.
async fn service_events(app: &TestApp) -> Vec<Value> {
    let catalog: Value = app
        .client
        .get(app.url("/v1/audit/catalog"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut out = Vec::new();
    for category in catalog["categories"].as_array().unwrap() {
        for e in category["events"].as_array().unwrap() {
            if e["recorded_by"] == "service" {
                let details: serde_json::Map<String, Value> = e["required_details"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|k| (k.as_str().unwrap().to_owned(), json!("forged")))
                    .collect();
                out.push(json!({"event": e["name"], "actor": "victim@acme.com",
                                "resource": {"type": "member", "id": "victim@acme.com"},
                                "details": details}));
            }
        }
    }
    assert!(out.len() >= 25, "the catalog marks the service's events: {}", out.len());
    out
}

/// The reserved actor types, each spelled as a client could.
fn reserved_actors() -> Vec<Value> {
    let mut system_type = valid(0);
    system_type["actor_type"] = json!("system");
    let mut system_name = valid(0);
    system_name["actor"] = json!("system");
    let mut system_object = valid(0);
    system_object["actor"] = json!({"type": "system", "id": "retention"});
    vec![system_type, system_name, system_object]
}

/// Posts `body` with `key` and insists it is refused with `reserved_event`
/// naming the event at `index`.
async fn refused(app: &TestApp, key: &str, body: &Value, index: usize) {
    let resp = app.post_events(key, body).await;
    let status = resp.status();
    let v: Value = resp.json().await.unwrap();
    assert_eq!(status, 422, "{v}");
    assert_eq!(error_code(&v), "reserved_event", "{v}");
    let problems = v["error"]["details"].as_array().unwrap();
    assert_eq!(problems.len(), 1, "{v}");
    assert_eq!(problems[0]["index"], index, "{v}");
    assert_eq!(problems[0]["code"], "reserved_event", "{v}");
}

/// Every key that may write: each scope combination, and a key a `member`
/// created for themselves.
async fn writers(app: &TestApp) -> Vec<String> {
    let mut keys = Vec::new();
    for scopes in [
        vec![Scope::AuditWrite],
        vec![Scope::AuditWrite, Scope::AuditRead],
        vec![Scope::AuditWrite, Scope::Admin],
        vec![Scope::AuditWrite, Scope::AuditRead, Scope::Admin],
    ] {
        keys.push(key(app.store.as_ref(), &app.acme, scopes).await);
    }
    person(app.store.as_ref(), &app.acme, "mel@acme.com", Role::Member).await;
    let mel = app.login("mel@acme.com").await;
    let resp = app
        .as_browser(&mel, Method::POST, "/v1/orgs/acme/api-keys")
        .json(&json!({"name": "mine", "scopes": ["audit:write"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let created: Value = resp.json().await.unwrap();
    keys.push(created["key"].as_str().unwrap().to_owned());
    keys
}

#[tokio::test]
async fn no_key_can_ingest_the_services_own_events_or_actors() {
    let app = spawn_app().await;
    let keys = writers(&app).await;
    // Each key's first use records its own last-use entry; let that settle
    // before counting.
    for k in &keys {
        assert_eq!(app.post_events(k, &valid(0)).await.status(), 201);
    }
    let before = app.log_size().await;
    let mut forged = service_events(&app).await;
    forged.extend(reserved_actors());
    for (n, bad) in forged.iter().enumerate() {
        let key = &keys[n % keys.len()];
        refused(&app, key, bad, 0).await;
        refused(&app, key, &json!({"events": [bad]}), 0).await;
    }
    assert_eq!(app.log_size().await, before, "nothing written");
}

#[tokio::test]
async fn a_forgery_hidden_in_a_full_batch_refuses_the_whole_batch() {
    let app = spawn_app().await;
    let keys = writers(&app).await;
    for k in &keys {
        assert_eq!(app.post_events(k, &valid(0)).await.status(), 201);
    }
    let before = app.log_size().await;
    let mut forged = service_events(&app).await;
    forged.extend(reserved_actors());
    for (n, bad) in forged.iter().enumerate() {
        let at = (n * 379 + 17) % 1000;
        let mut batch: Vec<Value> = (0..1000).map(valid).collect();
        batch[at] = bad.clone();
        refused(&app, &keys[n % keys.len()], &json!({ "events": batch }), at).await;
    }
    assert_eq!(app.log_size().await, before, "not one event of any batch written");
}

#[tokio::test]
async fn a_client_cannot_say_who_submitted_an_entry() {
    let app = spawn_app().await;
    let mut e = valid(1);
    e["submitted_by"] = json!({"kind": "service", "id": "auditlog"});
    let resp = app.post_events(&app.keys.write, &e).await;
    assert_eq!(resp.status(), 422);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["details"][0]["field"], "submitted_by", "{v}");
    assert_eq!(v["error"]["details"][0]["code"], "unknown_field", "{v}");
    // What the service sets instead: the key that sent it.
    let ok = app.ingest(valid(2)).await;
    let (_, one) = app
        .list(&[("q", &format!("submitted_by:api_key:{}", &app.keys.write[..12]))])
        .await;
    let ids: Vec<&Value> = one["entries"].as_array().unwrap().iter().map(|e| &e["id"]).collect();
    assert!(ids.contains(&&ok[0]["id"]), "{one}");
    assert_eq!(one["entries"][0]["submitted_by"]["kind"], "api_key");
}

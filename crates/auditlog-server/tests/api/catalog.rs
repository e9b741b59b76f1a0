//! The catalog endpoint, operator extensions, health and unknown routes.

use std::sync::Arc;

use auditlog_domain::Catalog;
use serde_json::{Value, json};

use crate::helpers::{error_code, spawn_app, spawn_app_with};

#[tokio::test]
async fn the_catalog_lists_every_event_by_category() {
    let app = spawn_app().await;
    let v: Value = app
        .client
        .get(app.url("/v1/audit/catalog"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let cats = v["categories"].as_array().unwrap();
    let events: usize = cats.iter().map(|c| c["events"].as_array().unwrap().len()).sum();
    assert_eq!(events, Catalog::builtin().len());
    let org = cats.iter().find(|c| c["name"] == "organization").unwrap();
    let role = org["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "organization.member_role_changed")
        .unwrap();
    assert_eq!(role["required_details"], json!(["member", "old_role", "new_role"]));
    assert!(role["description"].as_str().unwrap().len() > 10);
}

#[tokio::test]
async fn operators_can_extend_the_catalog() {
    let mut catalog = Catalog::builtin();
    catalog
        .extend_from_toml(
            "ext",
            "[categories]\ndataset = \"Datasets\"\n[[event]]\nname = \"dataset.created\"\ndescription = \"A dataset was created.\"\nrequired_details = [\"rows\"]\n",
        )
        .unwrap();
    let app = spawn_app_with(|c| c.runtime.catalog = Arc::new(catalog)).await;
    let ok = json!({"event": "dataset.created", "resource": {"type": "dataset", "id": "d_1"}, "details": {"rows": 10}});
    app.ingest(ok).await;
    let missing = json!({"event": "dataset.created", "resource": {"type": "dataset", "id": "d_1"}});
    assert_eq!(app.post_events(&app.keys.write, &missing).await.status(), 422);
    let (_, listed) = app.list(&[("event", "dataset.*")]).await;
    assert_eq!(listed["entries"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn health_readiness_and_unknown_routes() {
    let app = spawn_app().await;
    for path in ["/healthz", "/readyz"] {
        let resp = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{path}");
    }
    let resp = app.client.get(app.url("/v1/nothing")).send().await.unwrap();
    assert_eq!(resp.status(), 404);
    assert_eq!(error_code(&resp.json().await.unwrap()), "not_found");
    let resp = app
        .client
        .delete(app.url("/v1/orgs/acme/audit/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 405);
    assert_eq!(error_code(&resp.json().await.unwrap()), "method_not_allowed");
}

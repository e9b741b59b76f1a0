//! Finding 8: escalation and SSRF. An `admin` key, which manages the
//! organization but may not read its log, minted an `audit:read` key and
//! read the log with it; and webhook URLs on IPv6 translation ranges that
//! hide loopback (SIIT `::ffff:0:7f00:1`, local-use NAT64
//! `64:ff9b:1::7f00:1`) were accepted. Now a key can only be given scopes
//! its creator holds, and both ranges are refused.

use auditlog_domain::api_key::Scope;
use serde_json::{Value, json};

use crate::helpers::*;

#[tokio::test]
async fn an_admin_key_cannot_mint_a_key_that_reads_the_log() {
    let app = spawn_app().await;
    let admin = key(app.store.as_ref(), &app.acme, vec![Scope::Admin]).await;
    let read_log = |k: String| {
        let app = &app;
        async move { app.get(&k, "/v1/orgs/acme/audit/events", &[]).await.status() }
    };
    assert_eq!(read_log(admin.clone()).await, 403, "the admin key itself may not read");
    for scopes in [
        json!(["audit:read"]),
        json!(["admin", "audit:read"]),
        json!(["audit:write"]),
    ] {
        let resp = app
            .client
            .post(app.url("/v1/orgs/acme/api-keys"))
            .bearer_auth(&admin)
            .json(&json!({"name": "escalate", "scopes": scopes}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 403, "{scopes}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(error_code(&body), "scope_not_held", "{body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains("audit:"), "names the scope: {message}");
        assert!(body.get("key").is_none());
    }
    // What it holds it may still hand on.
    let resp = app
        .client
        .post(app.url("/v1/orgs/acme/api-keys"))
        .bearer_auth(&admin)
        .json(&json!({"name": "deputy", "scopes": ["admin"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let deputy: Value = resp.json().await.unwrap();
    assert_eq!(read_log(deputy["key"].as_str().unwrap().to_owned()).await, 403);
}

#[tokio::test]
async fn webhooks_cannot_reach_loopback_through_translation_ranges() {
    let app = spawn_app().await;
    let admin = key(app.store.as_ref(), &app.acme, vec![Scope::Admin]).await;
    for url in [
        "https://[::ffff:0:7f00:1]/hook",
        "https://[64:ff9b:1::7f00:1]/hook",
        "https://[64:ff9b:1:7f00:0:100::]/hook",
    ] {
        let resp = app
            .client
            .post(app.url("/v1/orgs/acme/webhooks"))
            .bearer_auth(&admin)
            .json(&json!({"url": url}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 422, "{url}");
        let body: Value = resp.json().await.unwrap();
        assert!(body.to_string().contains("not a public address"), "{url}: {body}");
    }
}

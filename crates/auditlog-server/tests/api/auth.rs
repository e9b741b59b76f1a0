//! Authentication, scopes and isolation between organizations.

use serde_json::{Value, json};

use crate::helpers::{error_code, event, spawn_app};

#[tokio::test]
async fn missing_or_bad_credentials_get_401() {
    let app = spawn_app().await;
    let url = app.url("/v1/orgs/acme/audit/events");
    let resp = app.client.get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(error_code(&resp.json().await.unwrap()), "unauthenticated");

    let k = &app.keys.read;
    let typo = format!("{}{}{}", &k[..20], if &k[20..21] == "a" { "b" } else { "a" }, &k[21..]);
    let unknown = auditlog_domain::api_key::generate().secret;
    for bad in [
        "Basic abc",
        "Bearer",
        "Bearer lqt_short",
        typo.as_str(),
        &format!("Bearer {unknown}"),
    ] {
        let header = if bad.starts_with("Bearer") || bad.starts_with("Basic") {
            bad.to_owned()
        } else {
            format!("Bearer {bad}")
        };
        let resp = app
            .client
            .get(&url)
            .header("authorization", header)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 401, "{bad}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(error_code(&body), "unauthenticated");
    }
    let resp = app.client.get(&url).bearer_auth(&typo).send().await.unwrap();
    let body: Value = resp.json().await.unwrap();
    assert!(
        body["error"]["message"].as_str().unwrap().contains("checksum"),
        "{body}"
    );
}

#[tokio::test]
async fn scopes_are_enforced() {
    let app = spawn_app().await;
    // A write key cannot read, query, fetch or export.
    for path in ["/v1/orgs/acme/audit/events", "/v1/orgs/acme/audit/export"] {
        let resp = app.get(&app.keys.write, path, &[]).await;
        assert_eq!(resp.status(), 403, "{path}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(error_code(&body), "missing_scope");
        assert!(body["error"]["message"].as_str().unwrap().contains("audit:read"));
    }
    // A read key cannot write.
    let resp = app
        .post_events(
            &app.keys.read,
            &event("a@acme.com", "guardrail.created", ("guardrail", "g")),
        )
        .await;
    assert_eq!(resp.status(), 403);
    assert!(resp.text().await.unwrap().contains("audit:write"));
    assert_eq!(app.log_size().await, 0);
}

#[tokio::test]
async fn a_key_of_another_organization_gets_403_and_no_data() {
    let app = spawn_app().await;
    app.ingest(event("secret@acme.com", "guardrail.created", ("guardrail", "g_secret")))
        .await;
    let resp = app.get(&app.keys.other_org, "/v1/orgs/acme/audit/events", &[]).await;
    assert_eq!(resp.status(), 403);
    let text = resp.text().await.unwrap();
    assert!(!text.contains("secret@acme.com"));
    assert_eq!(error_code(&serde_json::from_str(&text).unwrap()), "wrong_organization");
    let resp = app
        .post_events(
            &app.keys.other_org,
            &event("x@globex.com", "guardrail.created", ("guardrail", "g")),
        )
        .await;
    assert_eq!(resp.status(), 403);
    // An organization that does not exist answers the same, so keys cannot probe.
    let resp = app.get(&app.keys.read, "/v1/orgs/initech/audit/events", &[]).await;
    assert_eq!(resp.status(), 403);
}

#[tokio::test]
async fn organizations_never_see_each_others_entries() {
    let app = spawn_app().await;
    let acme = app
        .ingest(event("a@acme.com", "guardrail.created", ("guardrail", "shared")))
        .await;
    let resp = app
        .client
        .post(app.url("/v1/orgs/globex/audit/events"))
        .bearer_auth(&app.keys.other_org)
        .json(&event("a@acme.com", "guardrail.created", ("guardrail", "shared")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let globex: Value = resp.json().await.unwrap();
    let globex_id = globex["entries"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(globex["entries"][0]["seq"], 1, "each organization has its own sequence");

    let all = app.list_all(&[("resource_id", "shared")]).await;
    assert_eq!(all.len(), 1);
    assert_eq!(all[0]["id"], acme[0]["id"]);
    let resp = app
        .get(&app.keys.read, &format!("/v1/orgs/acme/audit/events/{globex_id}"), &[])
        .await;
    assert_eq!(resp.status(), 404);
    let resp = app
        .get(&app.keys.read, "/v1/orgs/acme/audit/export", &[("format", "jsonl")])
        .await;
    let body = resp.text().await.unwrap();
    assert!(!body.contains(&globex_id));
    let _ = json!(null);
}

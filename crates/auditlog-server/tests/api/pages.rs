//! The web pages over plain HTTP: who is let in, the headers every page
//! carries, escaping, the sign-in and sign-out forms' defences, and that a
//! page never shows another organization's entries. The browser test
//! (`crates/auditlog/tests/browser.rs`) covers what needs a real browser.

use auditlog_domain::Role;
use reqwest::redirect::Policy;
use serde_json::json;

use crate::helpers::*;

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder().redirect(Policy::none()).build().unwrap()
}

/// Signs in through the form; returns the session cookie.
async fn form_sign_in(app: &TestApp, email: &str) -> String {
    let resp = no_redirects()
        .post(app.url("/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "email={}&password={}&next=%2Forgs%2Facme%2Faudit",
            email,
            PASSWORD.replace(' ', "+")
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303, "{email} signs in");
    assert_eq!(resp.headers()["location"], "/orgs/acme/audit");
    let set_cookie = resp.headers()["set-cookie"].to_str().unwrap();
    assert!(
        set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Strict"),
        "{set_cookie}"
    );
    set_cookie.split(';').next().unwrap().to_owned()
}

async fn page(app: &TestApp, cookie: Option<&str>, path: &str) -> (u16, reqwest::header::HeaderMap, String) {
    let mut req = no_redirects().get(app.url(path));
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    (status, headers, resp.text().await.unwrap())
}

#[tokio::test]
async fn anonymous_visitors_are_sent_to_sign_in_and_back() {
    let app = spawn_app().await;
    let (status, headers, _) = page(&app, None, "/orgs/acme/audit?event=api_key.*").await;
    assert_eq!(status, 303);
    assert_eq!(
        headers["location"],
        "/login?next=%2Forgs%2Facme%2Faudit%3Fevent%3Dapi_key.*"
    );
    let (status, _, html) = page(&app, None, "/login?next=%2F%2Fevil.example").await;
    assert_eq!(status, 200);
    assert!(html.contains(r#"name="next" value="/""#), "only local paths: {html}");
}

#[tokio::test]
async fn every_page_carries_a_strict_policy_and_escapes_the_log() {
    let app = spawn_app().await;
    person(app.store.as_ref(), &app.acme, "ada@acme.com", Role::Owner).await;
    let evil = "<script>alert(1)</script>";
    app.ingest(json!({
        "event": "guardrail.created",
        "actor": evil,
        "resource": {"type": "guardrail", "id": "g_\"><img src=x>", "name": "<b>bold</b>"},
        "details": {"name": "</td><script>x()</script>", "type": "pii"}
    }))
    .await;
    let cookie = form_sign_in(&app, "ada@acme.com").await;
    let (status, headers, html) = page(&app, Some(&cookie), "/orgs/acme/audit").await;
    assert_eq!(status, 200);
    let csp = headers["content-security-policy"].to_str().unwrap();
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "frame-ancestors 'none'",
        "form-action 'self'",
    ] {
        assert!(csp.contains(directive), "{csp}");
    }
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["cache-control"], "no-store");
    assert!(!html.contains("<script>alert"), "the actor is escaped");
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(!html.contains("<img src=x>") && !html.contains("<b>bold</b>"));
    assert!(!html.contains("<script>x()"));
    // The only script is our own file; no inline code for the policy to allow.
    assert_eq!(html.matches("<script").count(), 1);
    assert!(html.contains(r#"<script src="/assets/app.js?v="#));
    assert!(html.contains("Entries are kept for 90 days on the Team plan."));
    // A real table, and a label for every control of the filter form.
    assert!(html.contains(r#"<th scope="col">Timestamp (UTC)</th>"#), "{html}");
    assert!(html.contains("<caption"));
    let form = html
        .split(r#"<form id="filters""#)
        .nth(1)
        .unwrap()
        .split("</form>")
        .next()
        .unwrap();
    let ids: Vec<&str> = form
        .split(" id=\"")
        .skip(1)
        .map(|rest| rest.split('"').next().unwrap())
        .filter(|id| !id.ends_with("-help"))
        .collect();
    assert!(ids.len() >= 8, "{ids:?}");
    for id in ids {
        assert!(form.contains(&format!(r#"<label for="{id}">"#)), "no label for #{id}");
    }

    let (status, headers, _) = page(&app, None, "/assets/app.js").await;
    assert_eq!(status, 200);
    assert!(headers["content-type"].to_str().unwrap().starts_with("text/javascript"));
}

#[tokio::test]
async fn members_and_viewers_are_told_which_role_they_need() {
    let app = spawn_app().await;
    person(app.store.as_ref(), &app.acme, "mo@acme.com", Role::Member).await;
    person(app.store.as_ref(), &app.acme, "vi@acme.com", Role::Viewer).await;
    app.ingest(event("ada@acme.com", "guardrail.created", ("guardrail", "g_secret")))
        .await;
    for email in ["mo@acme.com", "vi@acme.com"] {
        let cookie = form_sign_in(&app, email).await;
        let (status, _, html) = page(&app, Some(&cookie), "/orgs/acme/audit").await;
        assert_eq!(status, 403, "{email}");
        assert!(html.contains("You need the owner or admin role"), "{html}");
        assert!(!html.contains("g_secret"));
        let entry = app.list(&[]).await.1["entries"][0]["id"].as_str().unwrap().to_owned();
        let (status, _, html) = page(&app, Some(&cookie), &format!("/orgs/acme/audit/entries/{entry}")).await;
        assert_eq!(status, 403);
        assert!(!html.contains("g_secret"));
    }
}

#[tokio::test]
async fn another_organizations_log_is_not_found() {
    let app = spawn_app().await;
    person(app.store.as_ref(), &app.acme, "ada@acme.com", Role::Owner).await;
    let resp = app
        .client
        .post(app.url("/v1/orgs/globex/audit/events"))
        .bearer_auth(&app.keys.other_org)
        .json(&event(
            "gus@globex.com",
            "guardrail.created",
            ("guardrail", "g_globex_only"),
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let globex_entry: serde_json::Value = resp.json().await.unwrap();
    let id = globex_entry["entries"][0]["id"].as_str().unwrap();
    let cookie = form_sign_in(&app, "ada@acme.com").await;
    let (status, _, html) = page(&app, Some(&cookie), "/orgs/globex/audit").await;
    assert_eq!(status, 404);
    assert!(!html.contains("g_globex_only"));
    // An entry id of another organization under this one's path: not found.
    let (status, _, html) = page(&app, Some(&cookie), &format!("/orgs/acme/audit/entries/{id}")).await;
    assert_eq!(status, 404);
    assert!(!html.contains("g_globex_only"));
}

#[tokio::test]
async fn the_page_shows_the_filtered_view_and_explains_bad_filters() {
    let app = spawn_app().await;
    person(app.store.as_ref(), &app.acme, "ada@acme.com", Role::Admin).await;
    app.ingest(event(
        "ada@acme.com",
        "guardrail.created",
        ("guardrail", "g_only_guardrail"),
    ))
    .await;
    app.ingest(event("bob@acme.com", "alert.created", ("alert", "al_latency")))
        .await;
    let cookie = form_sign_in(&app, "ada@acme.com").await;

    let (status, _, html) = page(&app, Some(&cookie), "/orgs/acme/audit?q=event:alert.*").await;
    assert_eq!(status, 200);
    assert!(
        html.contains("al_latency") && !html.contains("g_only_guardrail"),
        "{html}"
    );
    // The export link asks for the same view.
    assert!(
        html.contains("/v1/orgs/acme/audit/export?format=csv&amp;q=event%3Aalert.*"),
        "{html}"
    );

    let (status, _, html) = page(&app, Some(&cookie), "/orgs/acme/audit?q=actor:bob+acter:x").await;
    assert_eq!(status, 400);
    assert!(html.contains(r#"role="alert""#));
    assert!(html.contains("<mark>acter</mark>"), "the bad key is marked: {html}");

    let (status, _, html) = page(&app, Some(&cookie), "/orgs/acme/audit?range=custom&from=2026-02-30").await;
    assert_eq!(status, 400);
    assert!(html.contains("is not a date"), "{html}");

    let (status, _, html) = page(&app, Some(&cookie), "/orgs/acme/audit?actor=nobody@acme.com").await;
    assert_eq!(status, 200);
    assert!(html.contains("No entries match these filters."));
}

#[tokio::test]
async fn forms_refuse_other_sites_and_sign_out_needs_the_token() {
    let app = spawn_app().await;
    person(app.store.as_ref(), &app.acme, "ada@acme.com", Role::Owner).await;
    let resp = no_redirects()
        .post(app.url("/login"))
        .header("origin", "https://evil.example")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("email=ada%40acme.com&password={}", PASSWORD.replace(' ', "+")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    assert!(resp.headers().get("set-cookie").is_none());

    let resp = no_redirects()
        .post(app.url("/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("email=ada%40acme.com&password=wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert!(resp.text().await.unwrap().contains("Wrong email or password."));

    let cookie = form_sign_in(&app, "ada@acme.com").await;
    let sign_out = |body: &'static str| {
        no_redirects()
            .post(app.url("/logout"))
            .header("cookie", &cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
    };
    assert_eq!(sign_out("csrf_token=guess").await.unwrap().status(), 403);
    assert_eq!(
        page(&app, Some(&cookie), "/orgs/acme/audit").await.0,
        200,
        "still signed in"
    );

    let (_, _, html) = page(&app, Some(&cookie), "/orgs/acme/audit").await;
    let token = html
        .split(r#"name="csrf_token" value=""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned();
    let resp = no_redirects()
        .post(app.url("/logout"))
        .header("cookie", &cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("csrf_token={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    assert_eq!(page(&app, Some(&cookie), "/orgs/acme/audit").await.0, 303, "signed out");
}

/// Where an organization enforces single sign-on, the email step says so
/// and offers its provider, a password is refused, and the break-glass box
/// lets an owner (and only an owner) in.
#[tokio::test]
async fn the_sign_in_form_knows_enforced_single_sign_on() {
    use auditlog_domain::change::Change;
    use auditlog_domain::org::{Sso, SsoConfig};
    use auditlog_domain::store::AppendRequest;

    let app = spawn_app().await;
    person(app.store.as_ref(), &app.acme, "ada@acme.com", Role::Owner).await;
    person(app.store.as_ref(), &app.acme, "bob@acme.com", Role::Admin).await;
    let enforce = Change::ConfigureSso(Some(SsoConfig {
        settings: Sso {
            issuer: "https://login.acme.com".into(),
            client_id: "c".into(),
            enforced: true,
            allowed_domains: vec![],
            provision_role: None,
            client_secret_set: true,
        },
        sealed_secret: Some(app.sealer.seal(b"s")),
    }));
    let entry = auditlog_domain::NewEntry::by_system(
        auditlog_domain::Timestamp(1),
        "organization.sso_configured",
        auditlog_domain::entry::Resource {
            kind: "organization".into(),
            id: "acme".into(),
            name: None,
        },
        json!({"issuer": "https://login.acme.com", "client_id": "c", "enforced": true}),
    );
    let request = AppendRequest {
        org_id: app.acme.id,
        changes: vec![enforce],
        entries: vec![entry],
    };
    app.store
        .append(vec![request], auditlog_domain::Timestamp(1))
        .await
        .unwrap();

    let post = |body: String| {
        no_redirects()
            .post(app.url("/login"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
    };
    let step = post("email=bob%40acme.com&next=%2F".into()).await.unwrap();
    assert_eq!(step.status(), 200);
    let html = step.text().await.unwrap();
    assert!(html.contains("Continue to acme with single sign-on"), "{html}");
    assert!(html.contains("accepts only single sign-on"), "{html}");
    assert!(
        html.contains("name=\"break_glass\""),
        "offered to whoever types the email"
    );

    let password = PASSWORD.replace(' ', "+");
    let refused = post(format!("email=bob%40acme.com&password={password}")).await.unwrap();
    assert_eq!(refused.status(), 403);
    assert!(refused.text().await.unwrap().contains("requires single sign-on"));
    let not_owner = post(format!("email=bob%40acme.com&password={password}&break_glass=true"))
        .await
        .unwrap();
    assert_eq!(not_owner.status(), 403);
    let owner = post(format!("email=ada%40acme.com&password={password}&break_glass=true"))
        .await
        .unwrap();
    assert_eq!(owner.status(), 303);
    assert!(
        owner.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .starts_with("auditlog_session=")
    );
}

//! Signing in and out, cookies, CSRF and the limits on failed sign-ins.

use auditlog_domain::Role;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, error_code, newest, person, spawn_app};

#[tokio::test]
async fn login_sets_a_strict_http_only_cookie_and_logout_ends_it() {
    let app = spawn_app().await;
    person(app.store.as_ref(), &app.acme, "olivia@acme.com", Role::Owner).await;
    let resp = app
        .client
        .post(app.url("/v1/session"))
        .json(&json!({"email": "Olivia@ACME.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let cookie = resp.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.starts_with("auditlog_session="));
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=43200"] {
        assert!(cookie.contains(attr), "{cookie} lacks {attr}");
    }
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["email"], "olivia@acme.com");
    assert_eq!(body["organizations"][0]["role"], "owner");

    let b = app.login("olivia@acme.com").await;
    assert_eq!(
        app.as_browser(&b, Method::GET, "/v1/orgs/acme")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let resp = app.as_browser(&b, Method::DELETE, "/v1/session").send().await.unwrap();
    assert_eq!(resp.status(), 204);
    assert!(resp.headers()["set-cookie"].to_str().unwrap().contains("Max-Age=0"));
    let resp = app.as_browser(&b, Method::GET, "/v1/orgs/acme").send().await.unwrap();
    assert_eq!(resp.status(), 401, "the session is gone server-side too");
}

#[tokio::test]
async fn wrong_passwords_and_unknown_people_get_the_same_401() {
    let app = spawn_app().await;
    person(app.store.as_ref(), &app.acme, "olivia@acme.com", Role::Owner).await;
    let mut messages = Vec::new();
    for (email, password) in [("olivia@acme.com", "wrong password!"), ("nobody@acme.com", PASSWORD)] {
        let resp = app
            .client
            .post(app.url("/v1/session"))
            .json(&json!({"email": email, "password": password}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 401);
        assert!(resp.headers().get("set-cookie").is_none());
        let body: Value = resp.json().await.unwrap();
        messages.push(body["error"]["message"].as_str().unwrap().to_owned());
    }
    assert_eq!(messages[0], messages[1]);
    let resp = app
        .client
        .post(app.url("/v1/session"))
        .json(&json!({"email": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
}

#[tokio::test]
async fn failed_logins_are_limited_per_account() {
    let app = spawn_app().await;
    person(app.store.as_ref(), &app.acme, "olivia@acme.com", Role::Owner).await;
    let attempt = |password: &'static str| {
        let req = app
            .client
            .post(app.url("/v1/session"))
            .json(&json!({"email": "olivia@acme.com", "password": password}));
        async move { req.send().await.unwrap() }
    };
    for _ in 0..5 {
        assert_eq!(attempt("guess guess guess").await.status(), 401);
    }
    let resp = attempt(PASSWORD).await;
    assert_eq!(resp.status(), 429, "even the right password waits");
    let wait: u64 = resp.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((60..=900).contains(&wait), "{wait}");
    assert_eq!(error_code(&resp.json().await.unwrap()), "too_many_requests");
    // The window passes (on the injected clock).
    app.clock.advance_millis(15 * 60 * 1000 + 1);
    assert_eq!(attempt(PASSWORD).await.status(), 200);
}

#[tokio::test]
async fn cookie_requests_that_change_state_need_the_csrf_token() {
    let app = spawn_app().await;
    person(app.store.as_ref(), &app.acme, "olivia@acme.com", Role::Owner).await;
    let b = app.login("olivia@acme.com").await;
    let without = app
        .client
        .post(app.url("/v1/orgs/acme/projects"))
        .header("cookie", &b.cookie)
        .json(&json!({"name": "Sneaky"}))
        .send()
        .await
        .unwrap();
    assert_eq!(without.status(), 403);
    assert_eq!(error_code(&without.json().await.unwrap()), "csrf");
    let wrong = app
        .client
        .post(app.url("/v1/orgs/acme/projects"))
        .header("cookie", &b.cookie)
        .header("x-csrf-token", "guess")
        .json(&json!({"name": "Sneaky"}))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 403);
    let reads = app
        .client
        .get(app.url("/v1/orgs/acme/projects"))
        .header("cookie", &b.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(reads.status(), 200, "reads need no token");
    let ok = app
        .as_browser(&b, Method::POST, "/v1/orgs/acme/projects")
        .json(&json!({"name": "Fine"}))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 201);
    assert_eq!(
        app.list_all(&[("event", "project.created")]).await.len(),
        1,
        "only the real request recorded"
    );
}

#[tokio::test]
async fn sessions_that_end_without_a_sign_out_are_recorded_once() {
    use auditlog_server::workers::sessions::end_expired;
    use auditlog_server::workers::writer::Writer;
    use std::sync::Arc;

    let app = crate::helpers::spawn_app_with(|c| c.retention.background = false).await;
    person(app.store.as_ref(), &app.acme, "olivia@acme.com", Role::Owner).await;
    person(app.store.as_ref(), &app.acme, "bob@acme.com", Role::Viewer).await;
    let olivia = app.login("olivia@acme.com").await;
    app.login("bob@acme.com").await;

    // Removed from the organization: bob's live session stops reaching it.
    let resp = app
        .as_browser(&olivia, Method::DELETE, "/v1/orgs/acme/members/bob@acme.com")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    let ended = newest(&app, "session.ended").await;
    assert_eq!(
        ended["details"],
        json!({"member": "bob@acme.com", "reason": "member_removed", "sessions": 1})
    );

    // Past its expiry, olivia's session is ended and recorded, once.
    app.clock.advance_millis(auditlog_domain::session::SESSION_TTL_MS + 1);
    let clock: Arc<dyn auditlog_domain::Clock> = Arc::new(app.clock.clone());
    let (writer, task) = Writer::spawn(app.store.clone(), clock.clone(), Default::default());
    assert_eq!(
        end_expired(app.store.as_ref(), &writer, clock.as_ref()).await.unwrap(),
        1
    );
    assert_eq!(
        end_expired(app.store.as_ref(), &writer, clock.as_ref()).await.unwrap(),
        0
    );
    drop(writer);
    task.await.unwrap();
    let ended = newest(&app, "session.ended").await;
    assert_eq!(ended["details"]["member"], "olivia@acme.com");
    assert_eq!(ended["details"]["reason"], "expired");
    assert_eq!(ended["submitted_by"], json!({"kind": "service", "id": "auditlog"}));
}

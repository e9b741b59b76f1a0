//! Finding 6: sign-in CSRF through the JSON API. `POST /v1/session` read a
//! `text/plain` body from any `Origin`, so a page of another site, posting
//! a form with `enctype=text/plain` whose one field spells out JSON, signed
//! the visitor's browser in as the attacker. Now the JSON API reads only
//! `application/json`, and no state-changing route, API or form, accepts a
//! request a browser says came from another site's page.

use auditlog_domain::Role;
use reqwest::Method;
use reqwest::redirect::Policy;
use serde_json::{Value, json};

use crate::helpers::*;

const EVIL: &str = "https://evil.example";

/// What a browser posts for `<form enctype="text/plain">` with one field
/// named `{"email":"mallory@acme.com","password":"…","x":"` and value `"}`.
fn text_plain_login() -> String {
    format!(r#"{{"email":"mallory@acme.com","password":"{PASSWORD}","x":"="}}"#)
}

async fn refused(resp: reqwest::Response, status: u16, code: &str) -> Value {
    assert_eq!(resp.status(), status);
    assert!(resp.headers().get("set-cookie").is_none(), "no session handed out");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(error_code(&body), code, "{body}");
    body
}

#[tokio::test]
async fn a_cross_site_text_plain_form_cannot_sign_a_browser_in() {
    let app = spawn_app().await;
    person(app.store.as_ref(), &app.acme, "mallory@acme.com", Role::Viewer).await;
    let post = || {
        app.client
            .post(app.url("/v1/session"))
            .header("content-type", "text/plain")
            .body(text_plain_login())
    };
    // As the browser sends it, from the attacker's page.
    let body = refused(
        post().header("origin", EVIL).send().await.unwrap(),
        403,
        "cross_site_request",
    )
    .await;
    assert!(body["error"]["message"].as_str().unwrap().contains(EVIL), "{body}");
    // A browser that only says where the request came from in metadata.
    let resp = post().header("sec-fetch-site", "cross-site").send().await.unwrap();
    refused(resp, 403, "cross_site_request").await;
    // Even with no origin at all, the JSON API does not read text.
    let body = refused(post().send().await.unwrap(), 415, "unsupported_media_type").await;
    assert!(
        body["error"]["message"].as_str().unwrap().contains("text/plain"),
        "{body}"
    );
    let resp = app
        .client
        .post(app.url("/v1/session"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("email=mallory%40acme.com")
        .send()
        .await
        .unwrap();
    refused(resp, 415, "unsupported_media_type").await;

    // JSON, with a charset or without, from this service's own page or
    // from no page at all, still signs in.
    let own = app.base.clone();
    for (content_type, origin) in [
        ("application/json", None),
        ("application/json; charset=utf-8", Some(own.as_str())),
    ] {
        let mut req = app
            .client
            .post(app.url("/v1/session"))
            .header("content-type", content_type)
            .body(json!({"email": "mallory@acme.com", "password": PASSWORD}).to_string());
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        assert_eq!(req.send().await.unwrap().status(), 200, "{content_type} {origin:?}");
    }
}

#[tokio::test]
async fn every_state_changing_route_refuses_other_sites() {
    let app = spawn_app().await;
    person(app.store.as_ref(), &app.acme, "ada@acme.com", Role::Owner).await;
    let ada = app.login("ada@acme.com").await;
    for (method, path, body) in [
        (Method::POST, "/v1/orgs/acme/projects", Some(json!({"name": "Forged"}))),
        (Method::PATCH, "/v1/orgs/acme", Some(json!({"name": "Forged"}))),
        (Method::DELETE, "/v1/session", None),
        (Method::PUT, "/v1/orgs/acme", Some(json!({"name": "Forged"}))),
    ] {
        let mut req = app.as_browser(&ada, method.clone(), path).header("origin", EVIL);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 403, "{method} {path}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(error_code(&body), "cross_site_request", "{method} {path}");
    }
    // Nothing happened: the session lives and the organization kept its name.
    let org: Value = app
        .as_browser(&ada, Method::GET, "/v1/orgs/acme")
        .header("origin", EVIL)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(org["name"], "acme", "reads are not refused, and nothing changed");

    // The sign-in form: refused from another site, fine from this one.
    let no_redirects = reqwest::Client::builder().redirect(Policy::none()).build().unwrap();
    let form = |origin: &str| {
        no_redirects
            .post(app.url("/login"))
            .header("origin", origin)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("email=ada%40acme.com&password={}", PASSWORD.replace(' ', "+")))
            .send()
    };
    refused(form(EVIL).await.unwrap(), 403, "cross_site_request").await;
    refused(form("null").await.unwrap(), 403, "cross_site_request").await;
    let own = form(&app.base).await.unwrap();
    assert_eq!(own.status(), 303);
    assert!(own.headers().get("set-cookie").is_some());
}

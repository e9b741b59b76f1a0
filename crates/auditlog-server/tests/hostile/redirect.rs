//! Finding 5: the sign-in form's `next` sent browsers to another host.
//! `next=/%09/evil.example/x` came back as `Location: /\t/evil.example/x`,
//! which a browser reads as `//evil.example/x`. Every such `next` must now
//! land on the home page, while a path of this site is still honoured.
//! The full corpus of bypasses is the unit test beside `safe_next`.

use auditlog_domain::Role;
use reqwest::redirect::Policy;

use crate::helpers::*;

/// Signs in through the form with this `next`, already form-encoded;
/// returns where the answer sends the browser.
async fn sign_in_then(app: &TestApp, encoded_next: &str) -> String {
    let resp = reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap()
        .post(app.url("/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "email=ada%40acme.com&password={}&next={encoded_next}",
            PASSWORD.replace(' ', "+")
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303, "signed in with next={encoded_next}");
    resp.headers()["location"].to_str().unwrap().to_owned()
}

#[tokio::test]
async fn sign_in_never_redirects_to_another_host() {
    let app = spawn_app().await;
    person(app.store.as_ref(), &app.acme, "ada@acme.com", Role::Owner).await;
    for next in [
        // The finding as reported: the tab arrives decoded.
        "/%09/evil.example/x",
        "%2F%09%2Fevil.example%2Fx",
        "/%0A/evil.example",
        "//evil.example",
        "/%5Cevil.example",
        "%2F%255Cevil.example",
        "%2F%252F%2Fevil.example",
        "%2F%EF%BC%8Fevil.example",
        "https://evil.example/",
    ] {
        assert_eq!(sign_in_then(&app, next).await, "/", "next={next}");
    }
    assert_eq!(
        sign_in_then(&app, "%2Forgs%2Facme%2Faudit%3Factor%3Dada%2540acme.com").await,
        "/orgs/acme/audit?actor=ada%40acme.com",
        "a path of this site is kept"
    );
}

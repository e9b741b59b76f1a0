//! Finding 7: anyone could lock anyone out. Five failed sign-ins at an
//! account, from any addresses, made even the right password answer 429.
//! Now failures refuse per address and per account at one address; an
//! account's failures from everywhere only slow it, so its owner, at their
//! own address, still gets in.
//!
//! The client's address comes from `X-Forwarded-For`, the test's loopback
//! connection being a trusted proxy, so one test plays many addresses.

use auditlog_domain::Role;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

const OWNER: &str = "olivia@acme.com";
const HOME: &str = "203.0.113.5";

async fn behind_a_proxy(per_ip: usize) -> TestApp {
    let app = spawn_app_with(|c| {
        c.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
        c.login.per_ip = per_ip;
    })
    .await;
    person(app.store.as_ref(), &app.acme, OWNER, Role::Owner).await;
    person(app.store.as_ref(), &app.acme, "ada@acme.com", Role::Admin).await;
    app
}

async fn sign_in(app: &TestApp, email: &str, password: &str, from: &str) -> StatusCode {
    app.client
        .post(app.url("/v1/session"))
        .header("x-forwarded-for", from)
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn failures_from_many_addresses_do_not_lock_the_owner_out() {
    let app = behind_a_proxy(20).await;
    for i in 0..6 {
        let status = sign_in(&app, OWNER, "guess", &format!("198.51.100.{i}")).await;
        assert_eq!(status, 401, "guess {i}");
    }
    assert_eq!(sign_in(&app, OWNER, PASSWORD, HOME).await, 200, "the owner gets in");

    // One address guessing at the account is still stopped there, right
    // password or not, while the owner is not.
    let guesser = "198.51.100.99";
    for _ in 0..5 {
        assert_eq!(sign_in(&app, OWNER, "guess", guesser).await, 401);
    }
    assert_eq!(sign_in(&app, OWNER, PASSWORD, guesser).await, 429);
    assert_eq!(sign_in(&app, OWNER, PASSWORD, HOME).await, 200);
    app.clock.advance_millis(15 * 60 * 1000 + 1);
    assert_eq!(sign_in(&app, OWNER, PASSWORD, guesser).await, 200, "the window passed");
}

#[tokio::test]
async fn one_address_guessing_at_many_accounts_is_refused() {
    let app = behind_a_proxy(3).await;
    let guesser = "198.51.100.42";
    for who in ["nobody@acme.com", "ada@acme.com", OWNER] {
        assert_eq!(sign_in(&app, who, "guess", guesser).await, 401);
    }
    assert_eq!(sign_in(&app, "ada@acme.com", PASSWORD, guesser).await, 429);
    assert_eq!(sign_in(&app, "ada@acme.com", PASSWORD, HOME).await, 200);
}

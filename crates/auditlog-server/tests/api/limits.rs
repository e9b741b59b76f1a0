//! Request rates per API key and per client address: past them, 429 with
//! `Retry-After` and a JSON error, and nothing recorded.

use auditlog_domain::Role;
use auditlog_domain::rate_limit::Rate;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, event, person, spawn_app, spawn_app_with};

fn slow(burst: f64) -> Rate {
    Rate { per_second: 0.5, burst }
}

async fn assert_limited(resp: reqwest::Response) {
    assert_eq!(resp.status(), 429);
    let wait: u64 = resp.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&wait), "retry after {wait} s");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "too_many_requests");
}

#[tokio::test]
async fn ingest_is_limited_per_key_and_refused_requests_record_nothing() {
    let app = spawn_app_with(|c| c.rate_limits.ingest_per_key = slow(2.0)).await;
    let ev = |id: &str| json!(event("a@acme.com", "guardrail.created", ("guardrail", id)));
    for id in ["p1", "p2"] {
        assert_eq!(app.post_events(&app.keys.write, &ev(id)).await.status(), 201);
    }
    assert_limited(app.post_events(&app.keys.write, &ev("p3")).await).await;
    // Another key (of another organization) has a bucket of its own.
    let other = app
        .client
        .post(app.url("/v1/orgs/globex/audit/events"))
        .bearer_auth(&app.keys.other_org)
        .json(&ev("g1"))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 201);
    // Two seconds later the key may send again.
    app.clock.advance_millis(2000);
    assert_eq!(app.post_events(&app.keys.write, &ev("p4")).await.status(), 201);
    let listed: Value = app
        .get(&app.keys.read, "/v1/orgs/acme/audit/events", &[("resource_id", "p3")])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        listed["entries"].as_array().unwrap().len(),
        0,
        "the refused event was not recorded"
    );
}

#[tokio::test]
async fn ingest_is_limited_per_client_address_across_keys() {
    let app = spawn_app_with(|c| c.rate_limits.ingest_per_ip = slow(1.0)).await;
    let ev = json!(event("a@acme.com", "guardrail.created", ("guardrail", "g1")));
    assert_eq!(app.post_events(&app.keys.write, &ev).await.status(), 201);
    let other = app
        .client
        .post(app.url("/v1/orgs/globex/audit/events"))
        .bearer_auth(&app.keys.other_org)
        .json(&ev)
        .send()
        .await
        .unwrap();
    assert_limited(other).await;
}

#[tokio::test]
async fn sign_in_attempts_are_limited_per_address_even_with_the_right_password() {
    let app = spawn_app_with(|c| c.rate_limits.login_per_ip = slow(2.0)).await;
    person(app.store.as_ref(), &app.acme, "olga@acme.com", Role::Owner).await;
    let attempt = |password: &'static str| {
        app.client
            .post(app.url("/v1/session"))
            .json(&json!({"email": "olga@acme.com", "password": password}))
            .send()
    };
    assert_eq!(attempt("wrong password here").await.unwrap().status(), 401);
    assert_eq!(attempt(PASSWORD).await.unwrap().status(), 200);
    assert_limited(attempt(PASSWORD).await.unwrap()).await;
}

#[tokio::test]
async fn a_request_past_its_time_gets_a_json_503_saying_it_may_have_happened() {
    let app = spawn_app_with(|c| c.request_timeout = std::time::Duration::from_millis(1)).await;
    person(app.store.as_ref(), &app.acme, "olga@acme.com", Role::Owner).await;
    // Checking a password takes far longer than a millisecond.
    let resp = app
        .client
        .post(app.url("/v1/session"))
        .json(&json!({"email": "olga@acme.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 503);
    assert!(resp.headers().contains_key("retry-after"));
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "timeout");
    assert!(body["error"]["message"].as_str().unwrap().contains("may or may not"));
}

#[tokio::test]
async fn connections_past_the_cap_wait_until_one_closes() {
    let app = spawn_app_with(|c| c.max_connections = 2).await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    let idle: Vec<tokio::net::TcpStream> = vec![
        tokio::net::TcpStream::connect(&addr).await.unwrap(),
        tokio::net::TcpStream::connect(&addr).await.unwrap(),
    ];
    // Give the server a moment to take both.
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let quick = reqwest::Client::builder()
        .timeout(std::time::Duration::from_millis(500))
        .build()
        .unwrap();
    assert!(
        quick.get(app.url("/healthz")).send().await.is_err(),
        "a third connection is not served while two are open"
    );
    drop(idle);
    let patient = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(5))
        .build()
        .unwrap();
    let resp = patient.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn a_client_too_slow_with_its_headers_is_disconnected_and_frees_its_place() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_app_with(|c| {
        c.max_connections = 2;
        c.header_read_timeout = std::time::Duration::from_millis(300);
    })
    .await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    // One starts a request and never finishes its headers; one says nothing.
    let mut slow = tokio::net::TcpStream::connect(&addr).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    let mut silent = tokio::net::TcpStream::connect(&addr).await.unwrap();
    for stream in [&mut slow, &mut silent] {
        let mut buf = [0u8; 256];
        let read = tokio::time::timeout(std::time::Duration::from_secs(5), stream.read(&mut buf))
            .await
            .expect("the server closes a connection whose headers do not arrive in time");
        // Closed, possibly after a short error answer; never a 200.
        if let Ok(n) = read {
            assert!(!String::from_utf8_lossy(&buf[..n]).contains(" 200 "));
        }
    }
    let resp = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(5))
        .build()
        .unwrap()
        .get(app.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn oversized_headers_and_query_strings_are_refused_with_json() {
    let app = spawn_app().await;
    let resp = app
        .client
        .get(app.url("/v1/audit/catalog"))
        .header("x-padding", "a".repeat(20 * 1024))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 431);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "headers_too_large");
    assert!(body["error"]["message"].as_str().unwrap().contains("16384 bytes"));

    // Far past any limit, hyper refuses before the router sees it.
    let resp = app
        .client
        .get(app.url("/healthz"))
        .header("x-padding", "a".repeat(200 * 1024))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 431);

    let (status, body) = app.list(&[("q", &"a".repeat(9 * 1024))]).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "query_too_long");
}

#[tokio::test]
async fn parameters_an_operation_does_not_take_are_refused_by_name() {
    let app = spawn_app().await;
    // An operation that takes none.
    let resp = app.get(&app.keys.read, "/v1/audit/catalog", &[("verbose", "1")]).await;
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_query");
    assert_eq!(body["error"]["details"][0]["field"], "verbose");
    assert_eq!(body["error"]["details"][0]["code"], "unknown_parameter");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("takes no query parameters")
    );
    // One that takes some: the known pass, an unknown is named with the list.
    let resp = app
        .get(&app.keys.read, "/v1/orgs/acme/audit/checkpoint", &[("format", "note")])
        .await;
    assert_eq!(resp.status(), 200);
    let resp = app
        .get(&app.keys.read, "/v1/orgs/acme/audit/checkpoint", &[("fromat", "note")])
        .await;
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert!(body["error"]["message"].as_str().unwrap().contains("format"));
    // The pages are not held to the API's document.
    let resp = app.client.get(app.url("/login?next=%2F")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
}

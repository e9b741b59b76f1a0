//! Webhooks end to end, against a real receiver: signatures that an
//! independent implementation accepts, both payload formats (the entry, and
//! its OCSF event), retries through failures, restarts and timeouts,
//! disabling, rotation, and delivery after a crash.

use std::sync::Arc;
use std::time::Duration;

use auditlog_domain::webhook::Secret;
use auditlog_domain::{Clock, Role, SystemClock, Timestamp};
use auditlog_server::workers::dispatcher::{Dispatcher, DispatcherConfig};
use auditlog_server::workers::webhook_client::{DestinationPolicy, WebhookClient};
use auditlog_server::{ServerConfig, Writer};
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{Browser, TestApp, event, person, spawn_app_with};
use crate::receiver::{Behaviour, Receiver};

fn loopback(c: &mut ServerConfig) {
    c.webhook_policy = DestinationPolicy {
        allowed_subnets: vec!["127.0.0.0/8".parse().unwrap()],
        allow_http: true,
    };
    c.webhook_timeout = Duration::from_millis(500);
    // Tests drive dispatcher rounds themselves.
    c.dispatcher.background = false;
}

/// An app whose clock is the real one (so an independent verifier accepts
/// the timestamps), with an admin signed in.
async fn app_at_real_time() -> (TestApp, Browser) {
    let app = spawn_app_with(loopback).await;
    app.clock.set(SystemClock.now());
    person(app.store.as_ref(), &app.acme, "adam@acme.com", Role::Admin).await;
    let admin = app.login("adam@acme.com").await;
    (app, admin)
}

/// A dispatcher on the app's store and clock, for driving rounds by hand.
fn dispatcher(app: &TestApp) -> (Dispatcher, tokio::task::JoinHandle<()>) {
    let clock: Arc<dyn Clock> = Arc::new(app.clock.clone());
    let (writer, task) = Writer::spawn(app.store.clone(), clock.clone(), Default::default());
    let client = WebhookClient::new(
        DestinationPolicy {
            allowed_subnets: vec!["127.0.0.0/8".parse().unwrap()],
            allow_http: true,
        },
        Duration::from_millis(500),
    )
    .unwrap()
    .with_sealer(app.sealer.clone());
    (
        Dispatcher::new(app.store.clone(), writer, clock, client, DispatcherConfig::default()),
        task,
    )
}

async fn create_hook(app: &TestApp, admin: &Browser, url: &str, events: &[&str]) -> Value {
    let resp = app
        .as_browser(admin, Method::POST, "/v1/orgs/acme/webhooks")
        .json(&json!({"url": url, "events": events, "description": "siem"}))
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(status, 201, "{body}");
    body
}

/// A new server on the stopped app's database, with its signing key (which
/// seals the webhook secrets) and its dispatcher running in the background.
async fn restart_delivering(stopped: &TestApp) -> crate::helpers::Running {
    let key = stopped.checkpoint_key.clone();
    crate::helpers::spawn_on(&stopped.db, |c| {
        c.checkpoints.key = key;
        c.webhook_policy = DestinationPolicy {
            allowed_subnets: vec!["127.0.0.0/8".parse().unwrap()],
            allow_http: true,
        };
        c.dispatcher.poll_interval = Duration::from_millis(50);
    })
    .await
}

fn signatures_ok(secret: &str, r: &crate::receiver::Received) -> bool {
    let wh = standardwebhooks::Webhook::new(secret).unwrap();
    let id = r.headers["webhook-id"].to_str().unwrap();
    let ts: i64 = r.headers["webhook-timestamp"].to_str().unwrap().parse().unwrap();
    let want = wh.sign(id, ts, &r.body).unwrap();
    r.headers["webhook-signature"]
        .to_str()
        .unwrap()
        .split(' ')
        .any(|s| s == want)
}

#[tokio::test]
async fn matching_entries_arrive_signed_as_the_specification_says() {
    let (app, admin) = app_at_real_time().await;
    let mut rx = Receiver::start(Behaviour::Ok).await;
    let hook = create_hook(&app, &admin, &rx.url(), &["alert.created", "guardrail.created"]).await;
    let secret = hook["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"));
    let listed = app
        .as_browser(&admin, Method::GET, "/v1/orgs/acme/webhooks")
        .send()
        .await
        .unwrap();
    assert!(
        !listed.text().await.unwrap().contains(&secret[6..]),
        "the secret is shown once"
    );

    let acks = app
        .ingest(json!({"events": [
            event("a@acme.com", "guardrail.created", ("guardrail", "g_1")),
            event("a@acme.com", "guardrail.deleted", ("guardrail", "g_1")),
            event("a@acme.com", "alert.created", ("alert", "al_1")),
        ]}))
        .await;
    let (d, _w) = dispatcher(&app);
    assert_eq!(d.step().await.unwrap(), 2);
    let got = rx.drain();
    assert_eq!(got.len(), 2, "the guardrail.deleted entry does not match");
    let wh = standardwebhooks::Webhook::new(&secret).unwrap();
    for r in &got {
        // The independent implementation, timestamp tolerance included.
        wh.verify(&r.body, &r.headers).expect("signature verifies");
        assert_eq!(r.headers["content-type"], "application/json");
        let payload: Value = serde_json::from_slice(&r.body).unwrap();
        let id = payload["data"]["id"].as_str().unwrap();
        let resp = app
            .get(&app.keys.read, &format!("/v1/orgs/acme/audit/events/{id}"), &[])
            .await;
        let from_api: Value = resp.json().await.unwrap();
        assert_eq!(
            payload["data"], from_api,
            "the entry exactly as the query API returns it"
        );
        assert_eq!(payload["type"], payload["data"]["event"]);
        assert!(payload["data"]["seq"].as_i64().unwrap() > 0);
    }
    let seqs: Vec<i64> = got
        .iter()
        .map(|r| {
            serde_json::from_slice::<Value>(&r.body).unwrap()["data"]["seq"]
                .as_i64()
                .unwrap()
        })
        .collect();
    assert!(seqs.contains(&acks[0]["seq"].as_i64().unwrap()) && seqs.contains(&acks[2]["seq"].as_i64().unwrap()));
    assert_eq!(d.step().await.unwrap(), 0, "delivered once");
    let created = app.list_all(&[("event", "webhook.created")]).await;
    assert_eq!(created[0]["details"]["url"], rx.url());
}

/// The receiver's one message, its body as JSON.
fn only_body(rx: &mut Receiver) -> (crate::receiver::Received, Value) {
    let mut got = rx.drain();
    assert_eq!(got.len(), 1, "one message");
    let r = got.pop().unwrap();
    let body = serde_json::from_slice(&r.body).unwrap();
    (r, body)
}

#[tokio::test]
async fn an_ocsf_endpoint_gets_the_entrys_ocsf_event_signed_and_the_default_is_unchanged() {
    let (app, admin) = app_at_real_time().await;
    let (mut plain_rx, mut ocsf_rx) = (
        Receiver::start(Behaviour::Ok).await,
        Receiver::start(Behaviour::Ok).await,
    );
    let plain = create_hook(&app, &admin, &plain_rx.url(), &["guardrail.*"]).await;
    assert_eq!(plain["payload_format"], "auditlog", "the default");
    let resp = app
        .as_browser(&admin, Method::POST, "/v1/orgs/acme/webhooks")
        .json(&json!({"url": ocsf_rx.url(), "events": ["guardrail.*"], "payload_format": "ocsf"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let ocsf: Value = resp.json().await.unwrap();
    assert_eq!(ocsf["payload_format"], "ocsf");
    let created = app.list_all(&[("event", "webhook.created")]).await;
    assert_eq!(created[0]["details"]["payload_format"], "ocsf", "recorded");

    let acks = app
        .ingest(json!({"events": [event("a@acme.com", "guardrail.created", ("guardrail", "g_1"))]}))
        .await;
    let (d, _w) = dispatcher(&app);
    assert_eq!(d.step().await.unwrap(), 2);
    let id = acks[0]["id"].as_str().unwrap();
    let resp = app
        .get(&app.keys.read, &format!("/v1/orgs/acme/audit/events/{id}"), &[])
        .await;
    let api_text = resp.text().await.unwrap();
    let api: Value = serde_json::from_str(&api_text).unwrap();

    let (r, body) = only_body(&mut ocsf_rx);
    let wh = standardwebhooks::Webhook::new(ocsf["secret"].as_str().unwrap()).unwrap();
    wh.verify(&r.body, &r.headers).expect("the same signature scheme");
    assert_eq!(r.headers["content-type"], "application/json");
    assert_eq!(
        (&body["type"], &body["timestamp"]),
        (&api["event"], &api["timestamp"]),
        "the same envelope"
    );
    let entry: auditlog_domain::Entry = serde_json::from_value(api.clone()).unwrap();
    let class = auditlog_domain::siem::class_of("guardrail.created").class;
    assert_eq!(body["data"]["class_uid"], class.uid());
    assert_eq!(body["data"]["metadata"]["uid"], id);
    assert_eq!(body["data"]["metadata"]["sequence"], acks[0]["seq"]);
    assert_eq!(
        body["data"],
        auditlog_domain::siem::ocsf::event(&entry, "acme"),
        "the stream's event"
    );

    // The default body, byte for byte: the entry as the API returns it in
    // the envelope, as before there was a choice.
    let (r, _) = only_body(&mut plain_rx);
    let want = format!(
        r#"{{"type":"guardrail.created","timestamp":{},"data":{api_text}}}"#,
        api["timestamp"]
    );
    assert_eq!(std::str::from_utf8(&r.body).unwrap(), want);
    assert!(signatures_ok(plain["secret"].as_str().unwrap(), &r));

    // The test message comes in the endpoint's format too.
    let path = format!("/v1/orgs/acme/webhooks/{}", ocsf["id"].as_str().unwrap());
    let resp = app
        .as_browser(&admin, Method::POST, &format!("{path}/test"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let (_, body) = only_body(&mut ocsf_rx);
    assert_eq!(body["type"], "webhook.test");
    assert_eq!(body["data"]["metadata"]["event_code"], "webhook.test");
    assert!(body["data"]["class_uid"].is_u64(), "{body}");
}

#[tokio::test]
async fn an_unknown_payload_format_is_refused_naming_the_field_and_a_change_is_recorded() {
    let (app, admin) = app_at_real_time().await;
    let rx = Receiver::start(Behaviour::Ok).await;
    let refused = |resp: reqwest::Response| async move {
        assert_eq!(resp.status(), 422);
        let body: Value = resp.json().await.unwrap();
        let problem = &body["error"]["details"][0];
        assert_eq!(problem["field"], "payload_format", "{body}");
        let message = problem["message"].as_str().unwrap();
        assert!(message.contains("auditlog or ocsf"), "the allowed values: {message}");
    };
    let resp = app
        .as_browser(&admin, Method::POST, "/v1/orgs/acme/webhooks")
        .json(&json!({"url": rx.url(), "payload_format": "OCSF"}))
        .send()
        .await
        .unwrap();
    refused(resp).await;
    assert!(
        app.list_all(&[("event", "webhook.created")]).await.is_empty(),
        "nothing made"
    );

    let hook = create_hook(&app, &admin, &rx.url(), &[]).await;
    let path = format!("/v1/orgs/acme/webhooks/{}", hook["id"].as_str().unwrap());
    let patch = |format: &str| {
        app.as_browser(&admin, Method::PATCH, &path)
            .json(&json!({"payload_format": format}))
            .send()
    };
    refused(patch("cef").await.unwrap()).await;
    let resp = patch("ocsf").await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.json::<Value>().await.unwrap()["payload_format"], "ocsf");
    let updated = app.list_all(&[("event", "webhook.updated")]).await;
    assert_eq!(updated.len(), 1);
    assert_eq!(
        updated[0]["details"]["changes"],
        json!({"payload_format": {"old": "auditlog", "new": "ocsf"}})
    );
    let shown: Value = app
        .as_browser(&admin, Method::GET, &path)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(shown["payload_format"], "ocsf", "kept");
}

#[tokio::test]
async fn every_entry_arrives_through_failures_restarts_and_timeouts() {
    let (app, admin) = app_at_real_time().await;
    let mut rx = Receiver::start(Behaviour::FailFraction(0.5)).await;
    let hook = create_hook(&app, &admin, &rx.url(), &["guardrail.*"]).await;
    let secret = hook["secret"].as_str().unwrap().to_owned();
    let events: Vec<Value> = (0..30)
        .map(|i| event("a@acme.com", "guardrail.created", ("guardrail", &format!("g_{i}"))))
        .collect();
    let acks = app.ingest(json!({ "events": events })).await;
    app.ingest(event("a@acme.com", "alert.created", ("alert", "al_2")))
        .await;
    let (d, _w) = dispatcher(&app);

    // Each round gives every pending delivery one attempt. Five rounds of
    // trouble, then the receiver behaves: within the eight attempts of the
    // schedule, so every entry must get through.
    let mut received = Vec::new();
    for round in 0..8 {
        match round {
            1 => rx.stop(),
            2 => {
                rx.restart().await;
                rx.set(Behaviour::Slow(Duration::from_millis(900)));
            }
            3 => rx.set(Behaviour::FailFraction(0.3)),
            5 => rx.set(Behaviour::Ok),
            _ => {}
        }
        d.step().await.unwrap();
        received.extend(rx.drain());
        // Past the longest gap in the schedule (10 h + 20% jitter): every retry is due.
        app.clock.advance_millis(13 * 60 * 60 * 1000);
    }

    let mut arrived = std::collections::HashSet::new();
    for r in &received {
        assert!(signatures_ok(&secret, r), "every signature verifies");
        let p: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(p["type"], "guardrail.created", "non-matching entries never arrive");
        if r.status == 200 {
            arrived.insert(p["data"]["seq"].as_i64().unwrap());
        }
    }
    for a in &acks {
        assert!(
            arrived.contains(&a["seq"].as_i64().unwrap()),
            "entry {} never arrived",
            a["seq"]
        );
    }
    let ids: std::collections::HashSet<&str> = received
        .iter()
        .map(|r| r.headers["webhook-id"].to_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 30, "one stable webhook-id per entry, however many attempts");
    let id = hook["id"].as_str().unwrap();
    // Days have passed on the clock: the session has expired; sign in again.
    let admin = app.login("adam@acme.com").await;
    let resp = app
        .as_browser(&admin, Method::GET, &format!("/v1/orgs/acme/webhooks/{id}/deliveries"))
        .send()
        .await
        .unwrap();
    let log: Value = resp.json().await.unwrap();
    let log = log["deliveries"].as_array().unwrap();
    assert!(
        log.iter().any(|d| d["attempts"].as_i64().unwrap() > 1),
        "some needed retries"
    );
    assert!(log.iter().all(|d| d["status"] == "delivered"));
}

#[tokio::test]
async fn gone_disables_at_once_and_is_recorded() {
    let (app, admin) = app_at_real_time().await;
    let mut rx = Receiver::start(Behaviour::Status(410)).await;
    let hook = create_hook(&app, &admin, &rx.url(), &[]).await;
    app.ingest(event("a@acme.com", "guardrail.created", ("guardrail", "g")))
        .await;
    let (d, _w) = dispatcher(&app);
    d.step().await.unwrap();
    // The round that met the 410 had claimed everything due; nothing after it.
    assert!(!rx.drain().is_empty());
    let id = hook["id"].as_str().unwrap();
    let w: Value = app
        .as_browser(&admin, Method::GET, &format!("/v1/orgs/acme/webhooks/{id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(w["enabled"], false);
    let disabled = app.list_all(&[("event", "webhook.disabled")]).await;
    assert_eq!(disabled.len(), 1, "recorded once");
    assert!(disabled[0]["details"]["reason"].as_str().unwrap().contains("410"));
    app.ingest(event("a@acme.com", "guardrail.created", ("guardrail", "g2")))
        .await;
    d.step().await.unwrap();
    assert!(rx.drain().is_empty(), "a disabled endpoint gets nothing");
}

#[tokio::test]
async fn retry_after_is_honoured_and_five_days_of_failure_disable() {
    let (app, admin) = app_at_real_time().await;
    let mut rx = Receiver::start(Behaviour::TooManyRequests { retry_after_secs: 3600 }).await;
    let hook = create_hook(&app, &admin, &rx.url(), &["guardrail.*"]).await;
    let id = hook["id"].as_str().unwrap().to_owned();
    app.ingest(event("a@acme.com", "guardrail.created", ("guardrail", "g")))
        .await;
    let (d, _w) = dispatcher(&app);
    d.step().await.unwrap();
    let start = app.clock.now();
    let log: Value = app
        .as_browser(&admin, Method::GET, &format!("/v1/orgs/acme/webhooks/{id}/deliveries"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let next = Timestamp::parse(log["deliveries"][0]["next_attempt_at"].as_str().unwrap()).unwrap();
    assert!(
        next >= start.plus_millis(3_599_000),
        "Retry-After: 3600 pushes the retry an hour out"
    );
    assert_eq!(log["deliveries"][0]["last_status"], 429);

    rx.set(Behaviour::Status(500));
    for _ in 0..6 {
        app.clock.advance_millis(24 * 60 * 60 * 1000);
        app.ingest(event("a@acme.com", "guardrail.created", ("guardrail", "g")))
            .await;
        d.step().await.unwrap();
    }
    rx.drain();
    let disabled = app.list_all(&[("event", "webhook.disabled")]).await;
    assert_eq!(disabled.len(), 1);
    assert!(disabled[0]["details"]["reason"].as_str().unwrap().contains("5 days"));
    assert_eq!(disabled[0]["actor"]["type"], "system");
}

#[tokio::test]
async fn rotation_signs_with_both_secrets_during_the_overlap() {
    let (app, admin) = app_at_real_time().await;
    let mut rx = Receiver::start(Behaviour::Ok).await;
    let hook = create_hook(&app, &admin, &rx.url(), &["guardrail.*"]).await;
    let id = hook["id"].as_str().unwrap();
    let old = hook["secret"].as_str().unwrap().to_owned();
    let rotated: Value = app
        .as_browser(
            &admin,
            Method::POST,
            &format!("/v1/orgs/acme/webhooks/{id}/rotate-secret"),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let new = rotated["secret"].as_str().unwrap().to_owned();
    assert_ne!(old, new);
    app.ingest(event("a@acme.com", "guardrail.created", ("guardrail", "g")))
        .await;
    let (d, _w) = dispatcher(&app);
    d.step().await.unwrap();
    let r = rx.drain().pop().unwrap();
    assert!(
        signatures_ok(&old, &r) && signatures_ok(&new, &r),
        "both sign during the overlap"
    );
    app.clock.advance_millis(25 * 60 * 60 * 1000);
    app.ingest(event("a@acme.com", "guardrail.created", ("guardrail", "g2")))
        .await;
    d.step().await.unwrap();
    let r = rx.drain().pop().unwrap();
    assert!(
        signatures_ok(&new, &r) && !signatures_ok(&old, &r),
        "only the new one after it"
    );
    assert_eq!(app.list_all(&[("event", "webhook.secret_rotated")]).await.len(), 1);
}

#[tokio::test]
async fn signing_secrets_are_sealed_at_rest() {
    let (app, admin) = app_at_real_time().await;
    let rx = Receiver::start(Behaviour::Ok).await;
    let hook = create_hook(&app, &admin, &rx.url(), &["guardrail.*"]).await;
    let id = hook["id"].as_str().unwrap();
    let shown = Secret::from_whsec(hook["secret"].as_str().unwrap()).unwrap();
    let stored = app.store.webhook(app.acme.id, id).await.unwrap().unwrap();
    let contains = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
    assert!(
        !contains(&stored.secret.0, &shown.0),
        "the database does not hold the secret"
    );
    assert_eq!(app.sealer.open(&stored.secret.0).unwrap(), shown.0);
    assert!(
        auditlog_domain::sealed::SecretSealer::derive(&[0u8; 32])
            .open(&stored.secret.0)
            .is_err(),
        "another key cannot open it"
    );

    let rotated: Value = app
        .as_browser(
            &admin,
            Method::POST,
            &format!("/v1/orgs/acme/webhooks/{id}/rotate-secret"),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let new = Secret::from_whsec(rotated["secret"].as_str().unwrap()).unwrap();
    let stored = app.store.webhook(app.acme.id, id).await.unwrap().unwrap();
    assert!(!contains(&stored.secret.0, &new.0));
    assert_eq!(app.sealer.open(&stored.secret.0).unwrap(), new.0);
    let (previous, _) = stored.previous_secret.unwrap();
    assert_eq!(app.sealer.open(&previous.0).unwrap(), shown.0);
}

#[tokio::test]
async fn endpoints_are_managed_validated_and_tested() {
    let (app, admin) = app_at_real_time().await;
    let mut rx = Receiver::start(Behaviour::Ok).await;
    for (url, why) in [
        ("http://example.com/hook", "http"),
        ("ftp://example.com/", "scheme"),
        ("https://user:pw@example.com/", "credentials"),
        ("https://10.0.0.1/hook", "private"),
        ("https://169.254.169.254/latest", "metadata"),
        ("https://[::ffff:192.168.0.1]/", "mapped"),
        ("not a url", "garbage"),
    ] {
        let strict = spawn_app_with(|c| c.dispatcher.background = false).await;
        person(strict.store.as_ref(), &strict.acme, "adam@acme.com", Role::Admin).await;
        let b = strict.login("adam@acme.com").await;
        let resp = strict
            .as_browser(&b, Method::POST, "/v1/orgs/acme/webhooks")
            .json(&json!({"url": url}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 422, "{why}: {url}");
    }
    let resp = app
        .as_browser(&admin, Method::POST, "/v1/orgs/acme/webhooks")
        .json(&json!({"url": rx.url(), "events": ["nothing.*"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 422);

    let hook = create_hook(&app, &admin, &rx.url(), &[]).await;
    let id = hook["id"].as_str().unwrap();
    let path = format!("/v1/orgs/acme/webhooks/{id}");
    let test: Value = app
        .as_browser(&admin, Method::POST, &format!("{path}/test"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(test["delivered"], true, "{test}");
    let r = rx.drain().pop().unwrap();
    assert!(signatures_ok(hook["secret"].as_str().unwrap(), &r));
    assert_eq!(
        serde_json::from_slice::<Value>(&r.body).unwrap()["type"],
        "webhook.test"
    );

    let resp = app
        .as_browser(&admin, Method::PATCH, &path)
        .json(&json!({"events": ["billing.*"], "description": "billing only"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let updated = &app.list_all(&[("event", "webhook.updated")]).await[0];
    assert_eq!(
        updated["details"]["changes"]["events"],
        json!({"old": [], "new": ["billing.*"]})
    );
    let resp = app
        .as_browser(&admin, Method::PATCH, &path)
        .json(&json!({"enabled": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let disabled = &app.list_all(&[("event", "webhook.disabled")]).await[0];
    assert_eq!(disabled["details"]["reason"], "disabled by adam@acme.com");
    let resp = app.as_browser(&admin, Method::DELETE, &path).send().await.unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(app.list_all(&[("event", "webhook.deleted")]).await.len(), 1);
    assert_eq!(
        app.as_browser(&admin, Method::GET, &path)
            .send()
            .await
            .unwrap()
            .status(),
        404
    );

    // Members may not see or touch webhooks.
    person(app.store.as_ref(), &app.acme, "mia@acme.com", Role::Member).await;
    let member = app.login("mia@acme.com").await;
    let resp = app
        .as_browser(&member, Method::GET, "/v1/orgs/acme/webhooks")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
}

#[tokio::test]
async fn a_failed_delivery_can_be_retried_by_hand() {
    let (app, admin) = app_at_real_time().await;
    let mut rx = Receiver::start(Behaviour::Status(500)).await;
    let hook = create_hook(&app, &admin, &rx.url(), &["guardrail.*"]).await;
    let id = hook["id"].as_str().unwrap();
    app.ingest(event("a@acme.com", "guardrail.created", ("guardrail", "g")))
        .await;
    let (d, _w) = dispatcher(&app);
    for _ in 0..9 {
        d.step().await.unwrap();
        app.clock.advance_millis(13 * 60 * 60 * 1000);
    }
    assert_eq!(rx.drain().len(), 8, "the whole schedule: eight attempts");
    let admin = app.login("adam@acme.com").await;
    let path = format!("/v1/orgs/acme/webhooks/{id}/deliveries");
    let log: Value = app
        .as_browser(&admin, Method::GET, &path)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let delivery = &log["deliveries"][0];
    assert_eq!(delivery["status"], "failed");
    assert_eq!(delivery["attempts"], 8);
    rx.set(Behaviour::Ok);
    let dlv = delivery["id"].as_str().unwrap();
    let resp = app
        .as_browser(&admin, Method::POST, &format!("{path}/{dlv}/retry"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    d.step().await.unwrap();
    assert_eq!(rx.drain().len(), 1);
    let log: Value = app
        .as_browser(&admin, Method::GET, &path)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(log["deliveries"][0]["status"], "delivered");
    let resp = app
        .as_browser(&admin, Method::POST, &format!("{path}/dlv_nope/retry"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
}

#[tokio::test]
async fn deliveries_committed_before_a_crash_are_made_after_restart() {
    // The first server commits entries but never delivers: it is stopped
    // (its dispatcher off) with the outbox full.
    let mut rx = Receiver::start(Behaviour::Ok).await;
    let mut first = spawn_app_with(loopback).await;
    first.clock.set(SystemClock.now());
    person(first.store.as_ref(), &first.acme, "adam@acme.com", Role::Admin).await;
    let admin = first.login("adam@acme.com").await;
    create_hook(&first, &admin, &rx.url(), &["guardrail.*"]).await;
    let events: Vec<Value> = (0..20)
        .map(|i| event("a@acme.com", "guardrail.created", ("guardrail", &format!("g{i}"))))
        .collect();
    let acks = first.ingest(json!({ "events": events })).await;
    first.stop().await;
    assert!(rx.drain().is_empty());

    let second = restart_delivering(&first).await;
    let mut seen = std::collections::HashSet::new();
    while seen.len() < acks.len() {
        let r = tokio::time::timeout(Duration::from_secs(20), rx.rx.recv())
            .await
            .expect("deliveries resume after the restart")
            .unwrap();
        seen.insert(
            serde_json::from_slice::<Value>(&r.body).unwrap()["data"]["seq"]
                .as_i64()
                .unwrap(),
        );
    }
    drop(second);
}

/// Deliveries to one receiver reuse their connections: a new connection per
/// delivery would cost a handshake on both sides of every one.
#[tokio::test]
async fn deliveries_reuse_connections() {
    use axum::serve::ListenerExt;
    use std::sync::atomic::{AtomicUsize, Ordering};

    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap();
    let listener = tcp.tap_io(move |_| {
        counter.fetch_add(1, Ordering::SeqCst);
    });
    let app = axum::Router::new().route("/hook", axum::routing::post(|| async { "received, thank you" }));
    tokio::spawn(async move { axum::serve(listener, app).await });

    let client = WebhookClient::new(
        DestinationPolicy {
            allowed_subnets: vec!["127.0.0.0/8".parse().unwrap()],
            allow_http: true,
        },
        Duration::from_secs(5),
    )
    .unwrap();
    let secret = auditlog_domain::webhook::Secret::generate();
    let url = format!("http://{addr}/hook");
    for n in 0..20 {
        let sent = client
            .send(
                &url,
                &[&secret],
                &format!("msg_{n}"),
                auditlog_domain::Timestamp(0),
                b"{}".to_vec(),
            )
            .await;
        assert_eq!(sent.status, Some(200), "{:?}", sent.error);
    }
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        1,
        "20 sequential deliveries, one connection"
    );
}

/// A secret stored in clear, as versions before sealing wrote it, is sealed
/// when a server starts on the database, and deliveries are still signed
/// with the same secret.
#[tokio::test]
async fn secrets_stored_in_clear_are_sealed_when_a_server_starts() {
    use auditlog_domain::change::Change;
    use auditlog_domain::sealed::SecretSealer;
    use auditlog_domain::store::AppendRequest;
    use auditlog_domain::webhook::Endpoint;

    let mut rx = Receiver::start(Behaviour::Ok).await;
    let mut first = spawn_app_with(loopback).await;
    first.clock.set(SystemClock.now());
    let plain = Secret::generate();
    let old = Endpoint {
        id: "wh_old".into(),
        url: rx.url(),
        description: String::new(),
        events: vec![],
        enabled: true,
        secret: plain.clone(),
        previous_secret: None,
        created_at: first.clock.now(),
        failing_since: None,
        disabled_reason: None,
        payload_format: Default::default(),
    };
    let written = first
        .store
        .append(
            vec![AppendRequest {
                org_id: first.acme.id,
                changes: vec![Change::CreateWebhook(old)],
                entries: vec![],
            }],
            first.clock.now(),
        )
        .await
        .unwrap();
    assert!(written[0].is_ok());
    first
        .ingest(json!({"events": [event("a@acme.com", "guardrail.created", ("guardrail", "g1"))]}))
        .await;
    first.stop().await;

    let second = restart_delivering(&first).await;
    let delivered = tokio::time::timeout(Duration::from_secs(20), rx.rx.recv())
        .await
        .expect("the pending delivery is made")
        .unwrap();
    assert!(
        signatures_ok(&plain.to_whsec(), &delivered),
        "signed with the same secret"
    );
    let stored = first.store.webhook(first.acme.id, "wh_old").await.unwrap().unwrap();
    assert!(!SecretSealer::needs_sealing(&stored.secret.0), "sealed at start");
    assert_eq!(first.sealer.open(&stored.secret.0).unwrap(), plain.0);
    drop(second);
}

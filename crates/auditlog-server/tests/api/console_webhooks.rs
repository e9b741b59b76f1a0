//! The Webhooks pages over plain HTTP, against a real receiver: adding an
//! endpoint with the event picker and the payload format (a refused URL
//! said on the page, what was typed kept), its secret shown once, a test event and the receiver's
//! answer, the delivery log with the receiver's words and a redelivery,
//! disabling, rotating and deleting, each recorded as the API records it.

use std::time::Duration;

use auditlog_domain::Role;
use auditlog_server::ServerConfig;
use auditlog_server::workers::webhook_client::DestinationPolicy;
use serde_json::{Value, json};

use crate::helpers::*;
use crate::receiver::{Behaviour, Receiver};

fn loopback(c: &mut ServerConfig) {
    c.webhook_policy = DestinationPolicy {
        allowed_subnets: vec!["127.0.0.0/8".parse().unwrap()],
        allow_http: true,
    };
    c.webhook_timeout = Duration::from_secs(5);
}

/// Adds an endpoint for `url` through the form; returns its id.
async fn add(admin: &Forms<'_>, url: &str, events: &[&str]) -> String {
    let mut fields = vec![("url", url), ("description", "siem")];
    fields.extend(events.iter().map(|e| ("event", *e)));
    let (status, html) = admin.post("/orgs/acme/webhooks", &fields).await;
    assert_eq!(status, 200, "{html}");
    let secret = html
        .split(r#"id="new-secret" type="text" readonly value=""#)
        .nth(1)
        .unwrap();
    assert!(secret.starts_with("whsec_"), "the secret is shown once: {secret}");
    let created = newest(admin.app, "webhook.created").await;
    assert_by_session(&created, "wes@acme.com");
    created["resource"]["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn an_endpoint_is_added_with_the_event_picker_and_a_bad_url_is_said_on_the_page() {
    let app = spawn_app_with(loopback).await;
    let wes = signed_in(&app, "wes@acme.com", Role::Admin).await;
    let (status, html) = wes.get("/orgs/acme/webhooks").await;
    assert_eq!(status, 200);
    assert!(
        html.contains(r#"value="api_key.*""#) && html.contains(r#"value="api_key.created""#),
        "the picker"
    );

    let before = app.log_size().await;
    let (status, html) = wes
        .post(
            "/orgs/acme/webhooks",
            &[
                ("url", "http://10.1.2.3/hook"),
                ("description", "kept <as typed>"),
                ("event", "api_key.*"),
            ],
        )
        .await;
    assert_eq!(status, 422, "{html}");
    assert!(html.contains(r#"role="alert""#) && html.contains("10.1.2.3"), "{html}");
    assert!(
        html.contains(r#"value="kept &lt;as typed&gt;""#),
        "what was typed stays: {html}"
    );
    assert!(html.contains(r#"value="api_key.*" checked"#), "and what was ticked");
    assert_eq!(app.log_size().await, before, "nothing recorded");

    let receiver = Receiver::start(Behaviour::Ok).await;
    let id = add(&wes, &receiver.url(), &["api_key.*", "organization.member_invited"]).await;
    let (_, html) = wes.get("/orgs/acme/webhooks").await;
    assert!(html.contains(&format!(r#"href="/orgs/acme/webhooks/{id}""#)), "{html}");
    assert!(
        html.contains("<code>api_key.*</code>") && html.contains("none yet"),
        "{html}"
    );
    assert!(!html.contains("whsec_"), "the secret is never listed");
}

#[tokio::test]
async fn a_test_event_shows_the_receivers_answer() {
    let app = spawn_app_with(loopback).await;
    let wes = signed_in(&app, "wes@acme.com", Role::Owner).await;
    let mut receiver = Receiver::start(Behaviour::Status(503)).await;
    // Only producer events: the service's own entries do not go out to it.
    let id = add(&wes, &receiver.url(), &["guardrail.*"]).await;
    let (status, html) = wes.post(&format!("/orgs/acme/webhooks/{id}/test"), &[]).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("did not accept the test event"), "{html}");
    assert!(
        html.contains("HTTP 503: receiver says no: 503"),
        "the receiver's words: {html}"
    );
    receiver.set(Behaviour::Ok);
    let (_, html) = wes.post(&format!("/orgs/acme/webhooks/{id}/test"), &[]).await;
    assert!(
        html.contains("The receiver accepted the test event: HTTP 200"),
        "{html}"
    );
    let got = receiver.drain();
    assert_eq!(got.len(), 2);
    assert!(got.iter().all(|r| r.headers.contains_key("webhook-signature")));
}

#[tokio::test]
async fn the_delivery_log_shows_each_delivery_and_one_can_be_sent_again() {
    let app = spawn_app_with(loopback).await;
    let wes = signed_in(&app, "wes@acme.com", Role::Admin).await;
    let mut receiver = Receiver::start(Behaviour::Status(500)).await;
    let id = add(&wes, &receiver.url(), &["guardrail.*"]).await;
    let seq = app.ingest(event("svc", "guardrail.created", ("guardrail", "g1"))).await[0]["seq"].clone();
    let first = tokio::time::timeout(Duration::from_secs(30), receiver.rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.status, 500);
    let page = format!("/orgs/acme/webhooks/{id}");
    let mut html = String::new();
    for _ in 0..300 {
        html = wes.get(&page).await.1;
        if html.contains("receiver says no: 500") {
            break;
        }
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        html.contains("HTTP 500: receiver says no: 500"),
        "the attempt is logged: {html}"
    );
    assert!(
        html.contains("retrying") && html.contains(&format!("<th scope=\"row\">{seq}</th>")),
        "{html}"
    );

    receiver.set(Behaviour::Ok);
    let delivery = html
        .split("/deliveries/")
        .nth(1)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let (status, html) = wes.post(&format!("{page}/deliveries/{delivery}/redeliver"), &[]).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("is due again"), "{html}");
    let redelivered = newest(&app, "webhook.redelivered").await;
    assert_by_session(&redelivered, "wes@acme.com");
    assert_eq!(redelivered["details"]["delivery"], delivery.as_str());
    let again = tokio::time::timeout(Duration::from_secs(30), receiver.rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.status, 200, "sent again at once, not at the next scheduled retry");
    let (status, _) = wes.post(&format!("{page}/deliveries/d_nope/redeliver"), &[]).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn disabling_rotating_and_deleting_are_recorded() {
    let app = spawn_app_with(loopback).await;
    let wes = signed_in(&app, "wes@acme.com", Role::Admin).await;
    let receiver = Receiver::start(Behaviour::Ok).await;
    let id = add(&wes, &receiver.url(), &[]).await;
    let page = format!("/orgs/acme/webhooks/{id}");

    let (_, html) = wes.post(&format!("{page}/disable"), &[]).await;
    assert!(html.contains("<strong class=\"warning\">Disabled</strong>"), "{html}");
    let disabled = newest(&app, "webhook.disabled").await;
    assert_by_session(&disabled, "wes@acme.com");
    assert_eq!(disabled["details"]["reason"], "disabled by wes@acme.com");
    wes.post(&format!("{page}/enable"), &[]).await;
    assert_eq!(
        newest(&app, "webhook.updated").await["details"]["changes"]["enabled"]["new"],
        true
    );

    let (_, html) = wes
        .post(
            &page,
            &[
                ("url", &receiver.url()),
                ("description", "renamed"),
                ("event", "project.*"),
            ],
        )
        .await;
    assert!(
        html.contains("Saved.") && html.contains("<code>project.*</code>"),
        "{html}"
    );

    let (status, html) = wes.get(&format!("{page}/rotate")).await;
    assert_eq!(status, 200);
    assert!(
        html.contains("keeps signing too, for 24 hours"),
        "the overlap is stated: {html}"
    );
    let (_, html) = wes.post(&format!("{page}/rotate"), &[]).await;
    assert!(
        html.contains(r#"id="new-secret""#) && html.contains("keeps signing until"),
        "{html}"
    );
    assert_by_session(&newest(&app, "webhook.secret_rotated").await, "wes@acme.com");

    let (status, _) = wes.get(&format!("{page}/delete")).await;
    assert_eq!(status, 200);
    let (status, _) = wes.post(&format!("{page}/delete"), &[]).await;
    assert_eq!(status, 200);
    assert_by_session(&newest(&app, "webhook.deleted").await, "wes@acme.com");
    let (status, _) = wes.get(&page).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn the_payload_format_is_chosen_when_adding_and_changed_in_the_settings() {
    let app = spawn_app_with(loopback).await;
    let wes = signed_in(&app, "wes@acme.com", Role::Admin).await;
    let (_, html) = wes.get("/orgs/acme/webhooks").await;
    assert!(
        html.contains(r#"<label for="webhook-payload-format">Payload format</label>"#)
            && html.contains(r#"<select id="webhook-payload-format" name="payload_format" aria-describedby="webhook-payload-format-hint">"#)
            && html.contains(r#"id="webhook-payload-format-hint""#),
        "a labelled select, its hint tied to it: {html}"
    );
    assert!(
        html.contains(r#"<option value="auditlog" selected>"#),
        "the default chosen: {html}"
    );

    let receiver = Receiver::start(Behaviour::Ok).await;
    let url = receiver.url();
    let (status, html) = wes
        .post(
            "/orgs/acme/webhooks",
            &[("url", url.as_str()), ("payload_format", "ocsf")],
        )
        .await;
    assert_eq!(status, 200, "{html}");
    let created = newest(&app, "webhook.created").await;
    assert_eq!(created["details"]["payload_format"], "ocsf");
    let page = format!("/orgs/acme/webhooks/{}", created["resource"]["id"].as_str().unwrap());
    let (_, html) = wes.get(&page).await;
    assert!(html.contains("OCSF 1.8.0: the entry as an OCSF event"), "shown: {html}");
    assert!(
        html.contains(r#"<option value="ocsf" selected>"#),
        "and chosen in the form: {html}"
    );

    let (status, html) = wes
        .post(&page, &[("url", url.as_str()), ("payload_format", "xml")])
        .await;
    assert_eq!(status, 422, "{html}");
    assert!(
        html.contains(r#"role="alert""#) && html.contains("auditlog or ocsf"),
        "{html}"
    );
    let (status, html) = wes
        .post(&page, &[("url", url.as_str()), ("payload_format", "auditlog")])
        .await;
    assert_eq!(status, 200, "{html}");
    assert_eq!(
        newest(&app, "webhook.updated").await["details"]["changes"]["payload_format"],
        json!({"old": "ocsf", "new": "auditlog"})
    );
}

#[tokio::test]
async fn a_member_cannot_open_or_post_to_the_webhooks_pages() {
    let app = spawn_app_with(loopback).await;
    let wes = signed_in(&app, "wes@acme.com", Role::Admin).await;
    let receiver = Receiver::start(Behaviour::Ok).await;
    let id = add(&wes, &receiver.url(), &["guardrail.*"]).await;
    let mo = signed_in(&app, "mo@acme.com", Role::Member).await;
    let before = app.log_size().await;
    assert_eq!(mo.get("/orgs/acme/webhooks").await.0, 403);
    assert_eq!(mo.get(&format!("/orgs/acme/webhooks/{id}")).await.0, 403);
    for path in [
        "/orgs/acme/webhooks".to_owned(),
        format!("/orgs/acme/webhooks/{id}/disable"),
        format!("/orgs/acme/webhooks/{id}/rotate"),
        format!("/orgs/acme/webhooks/{id}/delete"),
        format!("/orgs/acme/webhooks/{id}/test"),
    ] {
        let (status, _) = mo.post(&path, &[("url", "https://x.example/h")]).await;
        assert_eq!(status, 403, "{path}");
    }
    assert_eq!(app.log_size().await, before);
    assert!(receiver.rx.is_empty(), "no test event went out");
}

#[tokio::test]
async fn a_replay_sends_a_receiver_the_entries_from_a_seq_on_again() {
    let app = spawn_app_with(loopback).await;
    let wes = signed_in(&app, "wes@acme.com", Role::Admin).await;
    let mut receiver = Receiver::start(Behaviour::Ok).await;
    let id = add(&wes, &receiver.url(), &["guardrail.*"]).await;
    let mut seqs = Vec::new();
    for g in ["g1", "g2", "g3"] {
        let e = app.ingest(event("svc", "guardrail.created", ("guardrail", g))).await;
        seqs.push(e[0]["seq"].as_i64().unwrap());
    }
    let delivered_seq = |r: &crate::receiver::Received| {
        serde_json::from_slice::<Value>(&r.body).unwrap()["data"]["seq"]
            .as_i64()
            .unwrap()
    };
    let mut first = Vec::new();
    for _ in 0..3 {
        let r = tokio::time::timeout(Duration::from_secs(30), receiver.rx.recv())
            .await
            .unwrap()
            .unwrap();
        first.push(delivered_seq(&r));
    }
    // Each once; the dispatcher sends a round's deliveries side by side, so
    // two claimed in one round may arrive in either order.
    first.sort_unstable();
    assert_eq!(first, seqs, "delivered once each");

    let (status, html) = wes
        .post(
            &format!("/orgs/acme/webhooks/{id}/replay"),
            &[("from_seq", &seqs[1].to_string())],
        )
        .await;
    assert_eq!(status, 200, "{html}");
    assert!(
        html.contains("2 entries from seq"),
        "only the endpoint's events are queued: {html}"
    );
    let mut again = Vec::new();
    for _ in 0..2 {
        let r = tokio::time::timeout(Duration::from_secs(30), receiver.rx.recv())
            .await
            .unwrap()
            .unwrap();
        again.push(delivered_seq(&r));
    }
    again.sort_unstable();
    assert_eq!(again, seqs[1..].to_vec());
    let replayed = newest(&app, "webhook.replayed").await;
    assert_by_session(&replayed, "wes@acme.com");
    assert_eq!(replayed["details"]["from_seq"], seqs[1]);
    assert_eq!(replayed["details"]["queued"], 2);

    let (status, html) = wes
        .post(&format!("/orgs/acme/webhooks/{id}/replay"), &[("from_seq", "zero")])
        .await;
    assert_eq!(status, 422, "{html}");
    let resp = app
        .as_browser(
            &wes.b,
            reqwest::Method::POST,
            &format!("/v1/orgs/acme/webhooks/{id}/replay"),
        )
        .json(&json!({"from_seq": 0}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 422);
}

//! The Streams page over plain HTTP, against a syslog receiver on loopback:
//! adding a stream through the form (a refused URL said on the page, what
//! was typed kept but for the client key), its health and progress in
//! words, disabling, enabling and deleting after a confirmation, each
//! recorded as the API records it; the client key never in a page; members
//! and forms without the session's token refused, nothing recorded.

use std::time::Duration;

use auditlog_domain::Role;
use auditlog_server::ServerConfig;
use auditlog_server::workers::streams::StreamPolicy;
use serde_json::json;

use crate::helpers::*;
use crate::syslog_receiver::SyslogReceiver;

/// A self-signed client certificate and its key, made for these tests.
const CERT: &str = "-----BEGIN CERTIFICATE-----
MIIBljCCATugAwIBAgIUWA2rc3621S+D+dClcmU3EA0/kxIwCgYIKoZIzj0EAwIw
HzEdMBsGA1UEAwwUYXVkaXRsb2cgdGVzdCBjbGllbnQwIBcNMjYxMjA3MTYwMzU4
WhgPMjEyNjExMTMxNjAzNThaMB8xHTAbBgNVBAMMFGF1ZGl0bG9nIHRlc3QgY2xp
ZW50MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEJ6qMpFyxTXOUg3DqBs5yO212
9KJ6qrpwdeP4LRgygWUc/ucWe7H5K6GLeh/bM3d8pJkCGwudm5ArQZmaWGJTa6NT
MFEwHQYDVR0OBBYEFOs3dR0D0SdZwQhZtmIrg8FIzgWAMB8GA1UdIwQYMBaAFOs3
dR0D0SdZwQhZtmIrg8FIzgWAMA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZIzj0EAwID
SQAwRgIhAOPCofvMRFcieZ+hHVEdAUJsPRK9/Rn3q3v+sFD4vCQQAiEA56gaHZDb
mxF1/lXxstSIzgiAEVrWKwiyzBtr7c8QnKQ=
-----END CERTIFICATE-----
";
const KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgpCcxvb7Lss3V8PsS
ODV7BOttfTt8bl7HGQiOoEIUnE+hRANCAAQnqoykXLFNc5SDcOoGznI7bXb0onqq
unB14/gtGDKBZRz+5xZ7sfkroYt6H9szd3ykmQIbC52bkCtBmZpYYlNr
-----END PRIVATE KEY-----
";

/// What would give the key away: any line of its body.
fn shows_key(html: &str) -> bool {
    KEY.lines().skip(1).take(3).any(|line| html.contains(line))
}

/// As a browser sends a text area: lines ended with CRLF.
fn crlf(pem: &str) -> String {
    pem.replace('\n', "\r\n")
}

fn loopback(c: &mut ServerConfig) {
    c.streams.policy = StreamPolicy {
        allowed_subnets: vec!["127.0.0.0/8".parse().unwrap()],
        allow_plaintext: true,
    };
    c.streams.poll_interval = Duration::from_millis(100);
}

/// Adds a stream to `url` through the form, with `more` fields; returns
/// its id and the page that answered.
async fn add(admin: &Forms<'_>, url: &str, more: &[(&str, &str)]) -> (String, String) {
    let mut fields = vec![("url", url), ("format", "cef"), ("description", "to the SIEM")];
    fields.retain(|(k, _)| !more.iter().any(|(m, _)| m == k));
    fields.extend_from_slice(more);
    let (status, html) = admin.post("/orgs/acme/streams", &fields).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("is added"), "{html}");
    let created = newest(admin.app, "stream.created").await;
    assert_by_session(&created, "wes@acme.com");
    (created["resource"]["id"].as_str().unwrap().to_owned(), html)
}

/// A loopback port nobody listens on.
fn closed_port() -> std::net::SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// The Streams page, once `done` holds for it (the sender works on its own).
async fn page_once(admin: &Forms<'_>, what: &str, done: impl Fn(&str) -> bool) -> String {
    let mut html = String::new();
    for _ in 0..300 {
        html = admin.get("/orgs/acme/streams").await.1;
        if done(&html) {
            return html;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the page never said {what}: {html}");
}

/// The first stream's "Delivered through" cell.
fn delivered_through(html: &str) -> i64 {
    let cell = html.split("<td>seq ").nth(1).unwrap();
    cell.split('<').next().unwrap().parse().unwrap()
}

#[tokio::test]
async fn a_stream_is_added_through_the_form_and_listed_with_how_far_it_has_delivered() {
    let app = spawn_app_with(loopback).await;
    let wes = signed_in(&app, "wes@acme.com", Role::Admin).await;
    let (status, html) = wes.get("/orgs/acme/streams").await;
    assert_eq!(status, 200);
    assert!(html.contains(r#"id="create-stream""#), "{html}");
    assert!(
        html.contains(r#"href="/orgs/acme/streams" aria-current="page">Streams</a>"#),
        "in the sidebar: {html}"
    );
    assert!(
        html.contains(r#"id="stream-facility" type="number" name="facility" min="0" max="23" required value="13""#)
    );
    assert!(html.contains("No streams yet."));

    let receiver = SyslogReceiver::start().await;
    let more = [
        ("format", "ocsf"),
        ("events", "guardrail.*, api_key.created"),
        ("facility", "10"),
        ("app_name", "audit-app"),
    ];
    let (id, html) = add(&wes, &receiver.url(), &more).await;
    assert!(html.contains(&format!("<code>{id}</code>")), "{html}");
    assert!(!html.contains(r#"value="audit-app""#), "the form is empty again");
    let created = newest(&app, "stream.created").await;
    assert_eq!(
        (&created["details"]["format"], &created["details"]["events"]),
        (&json!("ocsf"), &json!(["guardrail.*", "api_key.created"]))
    );
    assert_eq!(
        (&created["details"]["facility"], &created["details"]["app_name"]),
        (&json!(10), &json!("audit-app"))
    );

    let (_, html) = wes.get("/orgs/acme/streams").await;
    for shown in [
        format!("<code>{}</code>", receiver.url()),
        "OCSF<br><span class=\"muted\">facility 10, audit-app</span>".to_owned(),
        "<code>guardrail.*</code> <code>api_key.created</code>".to_owned(),
        "<td>Healthy</td>".to_owned(),
        "not yet".to_owned(),
        format!(r#"action="/orgs/acme/streams/{id}/disable""#),
        format!(r#"href="/orgs/acme/streams/{id}/delete""#),
        format!(r#"href="/orgs/acme/audit?resource_type=stream&amp;resource_id={id}""#),
    ] {
        assert!(html.contains(&shown), "{shown}: {html}");
    }

    let seq = app.ingest(event("svc", "guardrail.created", ("guardrail", "g1"))).await[0]["seq"]
        .as_i64()
        .unwrap();
    assert!(delivered_through(&html) < seq);
    receiver.wait_for("the entry", |m| !m.is_empty()).await;
    // Reading the log through the API records entries too: through the
    // guardrail's seq, or later.
    let html = page_once(&wes, "the entry delivered", |h| delivered_through(h) >= seq).await;
    assert!(!html.contains("not yet") && html.contains("<td><time"), "{html}");
}

#[tokio::test]
async fn a_failing_stream_says_so_in_words_with_its_last_error_then_turns_unhealthy() {
    let app = spawn_app_with(|c| {
        loopback(c);
        c.streams.unhealthy_after = Duration::from_secs(600);
    })
    .await;
    let wes = signed_in(&app, "wes@acme.com", Role::Owner).await;
    let closed = closed_port();
    add(&wes, &format!("syslog+tcp://{closed}"), &[]).await;
    let failing = r#"<strong class="warning">Failing</strong>"#;
    let html = page_once(&wes, failing, |h| h.contains(failing)).await;
    assert!(html.contains("since <time"), "{html}");
    assert!(html.contains("<code>connecting"), "the last error: {html}");
    app.clock.advance_millis(601_000);
    let (_, html) = wes.get("/orgs/acme/streams").await;
    assert!(html.contains(r#"<strong class="warning">Unhealthy</strong>"#), "{html}");
}

#[tokio::test]
async fn disabling_enabling_and_deleting_after_a_confirmation_are_recorded() {
    let app = spawn_app_with(loopback).await;
    let wes = signed_in(&app, "wes@acme.com", Role::Admin).await;
    let receiver = SyslogReceiver::start().await;
    let (id, _) = add(&wes, &receiver.url(), &[]).await;
    let base = format!("/orgs/acme/streams/{id}");

    let (status, html) = wes.post(&format!("{base}/disable"), &[]).await;
    assert_eq!(status, 200, "{html}");
    assert!(
        html.contains(r#"<strong class="warning">Disabled</strong>"#)
            && html.contains(&format!(r#"action="{base}/enable""#)),
        "{html}"
    );
    let disabled = newest(&app, "stream.updated").await;
    assert_by_session(&disabled, "wes@acme.com");
    assert_eq!(
        disabled["details"]["changes"]["enabled"],
        json!({"old": true, "new": false})
    );
    let (status, html) = wes.post(&format!("{base}/enable"), &[]).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("<td>Healthy</td>"), "{html}");
    let enabled = newest(&app, "stream.updated").await;
    assert_by_session(&enabled, "wes@acme.com");
    assert_eq!(enabled["details"]["changes"]["enabled"]["new"], true);

    let (status, html) = wes.get(&format!("{base}/delete")).await;
    assert_eq!(status, 200);
    assert!(
        html.contains(&format!("Delete the stream to {}?", receiver.url())),
        "{html}"
    );
    assert_eq!(newest(&app, "stream.deleted").await, serde_json::Value::Null, "not yet");
    let (status, html) = wes.post(&format!("{base}/delete"), &[]).await;
    assert_eq!(status, 200, "{html}");
    assert!(
        html.contains(&format!("Deleted stream <code>{id}</code>")) && html.contains("No streams yet."),
        "{html}"
    );
    let deleted = newest(&app, "stream.deleted").await;
    assert_by_session(&deleted, "wes@acme.com");
    assert_eq!(deleted["resource"]["id"], id.as_str());
    assert_eq!(wes.get(&format!("{base}/delete")).await.0, 404);
    let (status, html) = wes.post(&format!("{base}/disable"), &[]).await;
    assert_eq!(status, 404, "{html}");
    assert!(html.contains(r#"role="alert""#), "said on the page: {html}");
}

#[tokio::test]
async fn a_refused_stream_is_said_on_the_page_and_what_was_typed_stays_but_the_key() {
    let app = spawn_app_with(loopback).await;
    let wes = signed_in(&app, "wes@acme.com", Role::Admin).await;
    let before = app.log_size().await;
    let (cert, key) = (crlf(CERT), crlf(KEY));
    let typed = [
        ("url", "syslog+tls://10.1.2.3:6514"),
        ("format", "cef"),
        ("events", "api_key.*"),
        ("facility", "5"),
        ("app_name", "mine"),
        ("description", "kept <as typed>"),
        ("ca_pem", &cert),
        ("client_cert_pem", &cert),
        ("client_key_pem", &key),
    ];
    let (status, html) = wes.post("/orgs/acme/streams", &typed).await;
    assert_eq!(status, 422, "{html}");
    assert!(
        html.contains(r#"role="alert""#) && html.contains("10.1.2.3 is not a public address"),
        "{html}"
    );
    for kept in [
        r#"value="syslog+tls://10.1.2.3:6514""#,
        r#"<option value="cef" selected>"#,
        r#"value="api_key.*""#,
        r#"value="5""#,
        r#"value="mine""#,
        r#"value="kept &lt;as typed&gt;""#,
        r#"<details class="tls" open>"#,
    ] {
        assert!(html.contains(kept), "{kept}: {html}");
    }
    assert!(html.contains(&cert), "the certificates stay: {html}");
    assert!(!shows_key(&html), "the key does not: {html}");

    for (field, value, said) in [
        ("url", "https://siem.example.com", "unknown transport"),
        ("facility", "24", "a syslog facility is 0 to 23"),
        ("facility", "thirteen", "a syslog facility is 0 to 23"),
        ("events", "nothing.matches", "matches no event in the catalog"),
        ("app_name", "two words", "APP-NAME"),
        ("client_key_pem", "", "a client certificate needs its key"),
    ] {
        // Everything else acceptable: a loopback URL and matching TLS material.
        let mut fields: Vec<(&str, &str)> = typed
            .iter()
            .copied()
            .filter(|(k, _)| ![field, "url"].contains(k))
            .collect();
        if field != "url" {
            fields.push(("url", "syslog+tls://127.0.0.1:6514"));
        }
        fields.push((field, value));
        let (status, html) = wes.post("/orgs/acme/streams", &fields).await;
        assert_eq!(status, 422, "{field}={value}: {html}");
        assert!(html.contains(said), "{field}={value}: {html}");
        assert!(!shows_key(&html), "{html}");
    }
    assert_eq!(app.log_size().await, before, "nothing recorded");
    assert!(app.store.streams(app.acme.id).await.unwrap().is_empty());
}

#[tokio::test]
async fn the_client_key_is_taken_and_never_shown_again() {
    let app = spawn_app_with(loopback).await;
    let wes = signed_in(&app, "wes@acme.com", Role::Owner).await;
    let (cert, key) = (crlf(CERT), crlf(KEY));
    let (id, created) = add(
        &wes,
        "syslog+tls://127.0.0.1:6514",
        &[("ca_pem", &cert), ("client_cert_pem", &cert), ("client_key_pem", &key)],
    )
    .await;
    let entry = newest(&app, "stream.created").await;
    assert_eq!(
        (&entry["details"]["custom_ca"], &entry["details"]["client_certificate"]),
        (&json!(true), &json!(true))
    );
    let stored = app.store.stream(app.acme.id, &id).await.unwrap().unwrap();
    assert_eq!(
        stored.settings.tls.client_cert_pem.as_deref(),
        Some(CERT.trim_end()),
        "kept with the browser's CRLF turned to LF"
    );
    let (_, list) = wes.get("/orgs/acme/streams").await;
    assert!(list.contains("TLS with its own CA and a client certificate"), "{list}");
    let (_, confirm) = wes.get(&format!("/orgs/acme/streams/{id}/delete")).await;
    let (_, disabled) = wes.post(&format!("/orgs/acme/streams/{id}/disable"), &[]).await;
    let (_, trail) = wes
        .get(&format!("/orgs/acme/audit?resource_type=stream&resource_id={id}"))
        .await;
    assert!(trail.contains("stream.created"), "{trail}");
    for html in [&created, &list, &confirm, &disabled, &trail] {
        assert!(!shows_key(html), "{html}");
        assert!(!html.contains("PRIVATE KEY-----\r\n"), "{html}");
    }
    let disabled = newest(&app, "stream.updated").await;
    assert_eq!(
        disabled["details"]["changes"].as_object().unwrap().len(),
        1,
        "disabling changes nothing else, the key included: {disabled}"
    );
    assert!(
        app.store
            .stream(app.acme.id, &id)
            .await
            .unwrap()
            .unwrap()
            .settings
            .tls
            .client_key
            .is_some(),
        "the key is kept"
    );
}

#[tokio::test]
async fn a_member_cannot_open_or_post_to_the_streams_page() {
    let app = spawn_app_with(loopback).await;
    let wes = signed_in(&app, "wes@acme.com", Role::Admin).await;
    let receiver = SyslogReceiver::start().await;
    let (id, _) = add(&wes, &receiver.url(), &[]).await;
    let mo = signed_in(&app, "mo@acme.com", Role::Member).await;
    let before = app.log_size().await;
    let (status, html) = mo.get("/orgs/acme/streams").await;
    assert_eq!(status, 403, "{html}");
    assert!(html.contains("You cannot open the streams"), "{html}");
    assert!(
        !html.contains(r#"id="create-stream""#) && !html.contains(&receiver.url()),
        "{html}"
    );
    assert!(
        !mo.get("/orgs/acme/members").await.1.contains(">Streams</a>"),
        "not in the sidebar"
    );
    assert_eq!(mo.get(&format!("/orgs/acme/streams/{id}/delete")).await.0, 403);
    for path in [
        "/orgs/acme/streams".to_owned(),
        format!("/orgs/acme/streams/{id}/disable"),
        format!("/orgs/acme/streams/{id}/enable"),
        format!("/orgs/acme/streams/{id}/delete"),
    ] {
        let (status, html) = mo
            .post(&path, &[("url", "syslog+tcp://127.0.0.1:601"), ("format", "cef")])
            .await;
        assert_eq!(status, 403, "{path}: {html}");
        assert!(!html.contains(&receiver.url()), "nothing listed: {html}");
    }
    assert_eq!(app.log_size().await, before, "nothing recorded");
    let streams = app.store.streams(app.acme.id).await.unwrap();
    assert_eq!(streams.len(), 1);
    assert!(streams[0].settings.enabled);
}

#[tokio::test]
async fn forms_without_the_sessions_token_change_nothing() {
    let app = spawn_app_with(loopback).await;
    let wes = signed_in(&app, "wes@acme.com", Role::Owner).await;
    let receiver = SyslogReceiver::start().await;
    let (id, _) = add(&wes, &receiver.url(), &[]).await;
    let before = app.log_size().await;
    let url = receiver.url();
    let fields = [("url", url.as_str()), ("format", "cef")];
    for path in [
        "/orgs/acme/streams".to_owned(),
        format!("/orgs/acme/streams/{id}/disable"),
        format!("/orgs/acme/streams/{id}/enable"),
        format!("/orgs/acme/streams/{id}/delete"),
    ] {
        for csrf in [None, Some("forged")] {
            let (status, html) = wes.post_with(&path, &fields, csrf).await;
            assert_eq!(status, 403, "{path} with {csrf:?}: {html}");
            assert!(html.contains("did not carry your session"), "{html}");
        }
    }
    assert_eq!(app.log_size().await, before, "nothing recorded");
    let streams = app.store.streams(app.acme.id).await.unwrap();
    assert_eq!(streams.len(), 1);
    assert!(streams[0].settings.enabled);
}

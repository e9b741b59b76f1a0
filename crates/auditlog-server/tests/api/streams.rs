//! SIEM streams through the API: who may manage them, what is refused
//! and why, every change recorded; and delivery to a receiver on loopback
//! in `seq` order, at least once, through a receiver's restart, one that
//! stops reading, one that is not there, and two replicas on one database.
//! The real daemons over TLS are in the binary's tests (`streams.rs`).

use std::time::Duration;

use auditlog_domain::Role;
use auditlog_server::ServerConfig;
use auditlog_server::workers::streams::StreamPolicy;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{Browser, TestApp, error_code, event, newest, person, spawn_app_with, spawn_on};
use crate::syslog_receiver::{SyslogReceiver, seq_of};

fn loopback(c: &mut ServerConfig) {
    c.streams.policy = StreamPolicy {
        allowed_subnets: vec!["127.0.0.0/8".parse().unwrap()],
        allow_plaintext: true,
    };
    // Short leases: a stopped sender's stream is taken over quickly.
    c.streams.lease = Duration::from_millis(900);
    c.streams.write_timeout = Duration::from_secs(2);
    c.streams.poll_interval = Duration::from_millis(100);
}

/// A loopback port nobody listens on.
fn closed_port() -> std::net::SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// The service's metrics, as Prometheus scrapes them.
async fn metrics(app: &TestApp) -> String {
    let resp = app.client.get(app.url("/metrics")).send().await.unwrap();
    resp.text().await.unwrap()
}

async fn admin(app: &TestApp) -> Browser {
    person(app.store.as_ref(), &app.acme, "adam@acme.com", Role::Admin).await;
    app.login("adam@acme.com").await
}

async fn call(app: &TestApp, who: &Browser, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut req = app.as_browser(who, method, path);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn create(app: &TestApp, who: &Browser, body: Value) -> (u16, Value) {
    call(app, who, Method::POST, "/v1/orgs/acme/streams", Some(body)).await
}

/// Ingests `n` guardrail events, one request each.
async fn ingest(app: &TestApp, n: usize) {
    for i in 0..n {
        let e = event(&format!("p{i}@acme.com"), "guardrail.created", ("guardrail", "g1"));
        assert_eq!(app.post_events(&app.keys.write, &e).await.status(), 201);
    }
}

#[tokio::test]
async fn owners_and_admins_manage_streams_and_every_change_is_recorded() {
    let app = spawn_app_with(loopback).await;
    let adam = admin(&app).await;
    let receiver = SyslogReceiver::start().await;
    let (status, s) = create(
        &app,
        &adam,
        json!({"url": receiver.url(), "format": "cef", "events": ["api_key.*"]}),
    )
    .await;
    assert_eq!(status, 201, "{s}");
    let id = s["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("st_"));
    assert_eq!(
        (s["format"].as_str(), s["facility"].as_u64(), s["app_name"].as_str()),
        (Some("cef"), Some(13), Some("auditlog"))
    );
    assert_eq!(s["health"], "healthy");
    let created = newest(&app, "stream.created").await;
    assert_eq!(created["details"]["destination"], receiver.url());
    assert_eq!(created["details"]["events"], json!(["api_key.*"]));
    assert_eq!(created["submitted_by"]["kind"], "session");

    let path = format!("/v1/orgs/acme/streams/{id}");
    let (status, s) = call(
        &app,
        &adam,
        Method::PATCH,
        &path,
        Some(json!({"format": "ocsf", "app_name": "audit"})),
    )
    .await;
    assert_eq!(
        (status, s["format"].as_str(), s["app_name"].as_str()),
        (200, Some("ocsf"), Some("audit"))
    );
    let updated = newest(&app, "stream.updated").await;
    assert_eq!(
        updated["details"]["changes"]["format"],
        json!({"old": "cef", "new": "ocsf"})
    );
    let (_, listed) = call(&app, &adam, Method::GET, "/v1/orgs/acme/streams", None).await;
    assert_eq!(listed["streams"].as_array().unwrap().len(), 1);

    // Members, viewers and writing keys may not; other organizations see nothing.
    person(app.store.as_ref(), &app.acme, "mia@acme.com", Role::Member).await;
    let mia = app.login("mia@acme.com").await;
    assert_eq!(
        call(&app, &mia, Method::GET, "/v1/orgs/acme/streams", None).await.0,
        403
    );
    assert_eq!(
        create(&app, &mia, json!({"url": receiver.url(), "format": "cef"}))
            .await
            .0,
        403
    );
    let key = app.get(&app.keys.write, "/v1/orgs/acme/streams", &[]).await;
    assert_eq!(key.status(), 403);
    let other = app
        .get(&app.keys.other_org, &format!("/v1/orgs/globex/streams/{id}"), &[])
        .await;
    assert_eq!(other.status(), 403, "a write/read key cannot manage streams");

    // Nobody records stream changes through ingest.
    let forged = json!({"actor": "adam@acme.com", "event": "stream.deleted", "resource": {"type": "stream", "id": id},
        "details": {"destination": "syslog+tls://evil.example.com"}});
    let resp = app.post_events(&app.keys.write, &forged).await;
    assert_eq!(resp.status(), 422);
    assert_eq!(error_code(&resp.json().await.unwrap()), "reserved_event");

    assert_eq!(call(&app, &adam, Method::DELETE, &path, None).await.0, 204);
    assert_eq!(
        newest(&app, "stream.deleted").await["details"]["destination"],
        receiver.url()
    );
    assert_eq!(call(&app, &adam, Method::GET, &path, None).await.0, 404);
}

#[tokio::test]
async fn bad_streams_are_refused_with_the_field_and_nothing_is_recorded() {
    let app = spawn_app_with(|c| {
        c.streams.policy.allowed_subnets = vec!["127.0.0.0/8".parse().unwrap()];
    })
    .await;
    let adam = admin(&app).await;
    let size = app.log_size().await;
    for (body, code, says) in [
        (
            json!({"url": "syslog+tls://127.0.0.1:6514", "format": "leef"}),
            "unknown_format",
            "unknown format",
        ),
        (
            json!({"url": "syslog+udp://127.0.0.1", "format": "cef"}),
            "invalid_destination",
            "unknown transport",
        ),
        (
            json!({"url": "syslog+tcp://127.0.0.1", "format": "cef"}),
            "invalid_destination",
            "not allowed",
        ),
        (
            json!({"url": format!("syslog+tls://{}.example.com", "a".repeat(2048)), "format": "cef"}),
            "too_long",
            "2048",
        ),
        (
            json!({"url": "syslog+tls://10.1.2.3", "format": "cef"}),
            "invalid_destination",
            "not a public address",
        ),
        (
            json!({"url": "syslog+tls://169.254.169.254", "format": "cef"}),
            "invalid_destination",
            "not a public address",
        ),
        (
            json!({"url": "syslog+tls://127.0.0.1", "format": "cef", "facility": 24}),
            "invalid_value",
            "0 to 23",
        ),
        (
            json!({"url": "syslog+tls://127.0.0.1", "format": "cef", "app_name": "a b"}),
            "invalid_value",
            "APP-NAME",
        ),
        (
            json!({"url": "syslog+tls://127.0.0.1", "format": "cef", "events": ["nope.*"]}),
            "unknown_event",
            "matches no event",
        ),
        (
            json!({"url": "syslog+tls://127.0.0.1", "format": "cef", "tls": {"ca_pem": "not pem"}}),
            "invalid_tls",
            "CA",
        ),
        (
            json!({"url": "syslog+tls://127.0.0.1", "format": "cef", "tls": {"client_cert_pem": "x"}}),
            "invalid_tls",
            "key",
        ),
        (
            json!({"url": "syslog+tls://127.0.0.1", "format": "cef", "colour": "red"}),
            "invalid_json",
            "colour",
        ),
    ] {
        let (status, err) = create(&app, &adam, body.clone()).await;
        assert!(matches!(status, 400 | 422), "{body}: {status} {err}");
        assert!(
            error_code(&err) == code || err.to_string().contains(code),
            "{body}: {err}"
        );
        assert!(err.to_string().contains(says), "{body}: {err}");
    }
    assert_eq!(app.log_size().await, size, "nothing recorded");
}

#[tokio::test]
async fn entries_arrive_in_order_and_again_after_the_receiver_restarts() {
    let app = spawn_app_with(loopback).await;
    let adam = admin(&app).await;
    let mut receiver = SyslogReceiver::start().await;
    let (status, s) = create(
        &app,
        &adam,
        json!({"url": receiver.url(), "format": "rfc5424", "events": ["guardrail.*"]}),
    )
    .await;
    assert_eq!(status, 201, "{s}");
    ingest(&app, 30).await;
    let first = receiver.wait_for("30 entries", |m| m.len() >= 30).await;
    let seqs: Vec<i64> = first.iter().map(|(_, m)| seq_of(m)).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "in seq order: {seqs:?}");
    assert!(
        first.iter().all(|(_, m)| m.contains("guardrail.created")),
        "only what the patterns select"
    );

    receiver.stop();
    ingest(&app, 30).await;
    receiver.restart().await;
    ingest(&app, 10).await;
    let all = receiver
        .wait_for("70 distinct entries", |m| {
            let mut s: Vec<i64> = m.iter().map(|(_, m)| seq_of(m)).collect();
            s.dedup();
            s.sort();
            s.dedup();
            s.len() >= 70
        })
        .await;
    // Per connection, strictly in order; across, nothing missing.
    for conn in 1..=all.iter().map(|(c, _)| *c).max().unwrap() {
        let s: Vec<i64> = all.iter().filter(|(c, _)| *c == conn).map(|(_, m)| seq_of(m)).collect();
        assert!(s.windows(2).all(|w| w[0] < w[1]), "connection {conn}: {s:?}");
    }
    let (status, view) = call(
        &app,
        &adam,
        Method::GET,
        &format!("/v1/orgs/acme/streams/{}", s["id"].as_str().unwrap()),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert!(view["health"] == "healthy" || view["health"] == "failing", "{view}");
}

#[tokio::test]
async fn a_receiver_that_stops_reading_is_given_up_on_and_loses_nothing() {
    let app = spawn_app_with(loopback).await;
    let adam = admin(&app).await;
    let receiver = SyslogReceiver::start().await;
    let (_, s) = create(&app, &adam, json!({"url": receiver.url(), "format": "rfc5424"})).await;
    let id = s["id"].as_str().unwrap().to_owned();
    receiver.wait_for("the stream's own creation", |m| !m.is_empty()).await;
    receiver.set_reading(false);
    // Large entries, so the kernel's buffers fill and writes stall.
    let big = "x".repeat(12 * 1024);
    let mut sent = 0;
    loop {
        let mut e = event("p@acme.com", "guardrail.created", ("guardrail", "g1"));
        e["details"]["note"] = json!(big);
        let batch = json!({"events": vec![e; 50]});
        assert_eq!(app.post_events(&app.keys.write, &batch).await.status(), 201);
        sent += 50;
        let (_, view) = call(&app, &adam, Method::GET, &format!("/v1/orgs/acme/streams/{id}"), None).await;
        if view["last_error"].as_str().is_some_and(|e| e.contains("not reading")) {
            assert_eq!(view["health"], "failing");
            break;
        }
        assert!(sent < 20_000, "the stalled receiver was never noticed: {view}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    receiver.set_reading(true);
    let size = app.log_size().await;
    let all = receiver
        .wait_for("every entry", |m| m.iter().any(|(_, m)| seq_of(m) >= size))
        .await;
    let mut seqs: Vec<i64> = all.iter().map(|(_, m)| seq_of(m)).collect();
    seqs.sort();
    seqs.dedup();
    let first = seqs[0];
    assert_eq!(seqs, (first..=size).collect::<Vec<_>>(), "none missing");
}

#[tokio::test]
async fn a_stream_failing_longer_than_allowed_is_unhealthy_in_the_api_and_the_metrics() {
    let app = spawn_app_with(|c| {
        loopback(c);
        c.streams.unhealthy_after = Duration::from_secs(600);
    })
    .await;
    let adam = admin(&app).await;
    let closed = closed_port();
    let (_, s) = create(
        &app,
        &adam,
        json!({"url": format!("syslog+tcp://{closed}"), "format": "cef"}),
    )
    .await;
    let path = format!("/v1/orgs/acme/streams/{}", s["id"].as_str().unwrap());
    let view = loop {
        let (_, v) = call(&app, &adam, Method::GET, &path, None).await;
        if v["failing_since"].is_string() {
            break v;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(view["health"], "failing");
    assert!(view["last_error"].as_str().unwrap().contains("connecting"), "{view}");
    app.clock.advance_millis(601_000);
    let (_, view) = call(&app, &adam, Method::GET, &path, None).await;
    assert_eq!(view["health"], "unhealthy", "{view}");
    let metrics = loop {
        let text = metrics(&app).await;
        if text.contains("auditlog_streams_unhealthy 1") {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(metrics.contains("auditlog_stream_failures_total"));
    // Disabling and enabling again starts it afresh.
    call(&app, &adam, Method::PATCH, &path, Some(json!({"enabled": false}))).await;
    let (_, view) = call(&app, &adam, Method::PATCH, &path, Some(json!({"enabled": true}))).await;
    assert_eq!(
        (view["health"].as_str(), view["failing_since"].as_str()),
        (Some("healthy"), None)
    );
}

#[tokio::test]
async fn replicas_on_one_database_send_each_stream_from_one_place_at_a_time() {
    // Two replicas on the system clock send; the test's own server (on
    // its fixed clock, whose leases would never run out) only takes calls.
    let app = spawn_app_with(|c| {
        loopback(c);
        c.streams.background = false;
    })
    .await;
    let adam = admin(&app).await;
    // Leases long enough that a replica starved by a busy machine keeps
    // its stream: a takeover would be right, but not what is tested here.
    // Replicas share the signing key, which opens the sealed personal
    // values they send.
    let key = app.checkpoint_key.clone();
    let replica = |c: &mut ServerConfig| {
        loopback(c);
        c.streams.lease = Duration::from_secs(6);
        c.checkpoints.key = key.clone();
    };
    let _one = spawn_on(&app.db, replica).await;
    let _two = spawn_on(&app.db, replica).await;
    let receiver = SyslogReceiver::start().await;
    let (_, _s) = create(
        &app,
        &adam,
        json!({"url": receiver.url(), "format": "rfc5424", "events": ["guardrail.*"]}),
    )
    .await;
    ingest(&app, 40).await;
    let got = receiver.wait_for("40 entries", |m| m.len() >= 40).await;
    let seqs: Vec<i64> = got.iter().map(|(_, m)| seq_of(m)).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "one sender, in order, no repeats: {seqs:?}"
    );
    let connections: std::collections::HashSet<usize> = got.iter().map(|(c, _)| *c).collect();
    assert_eq!(connections.len(), 1, "one connection from one replica");
}

#[tokio::test]
async fn a_receiver_that_closes_mid_message_gets_the_whole_message_on_the_next_connection() {
    let app = spawn_app_with(loopback).await;
    let adam = admin(&app).await;
    let receiver = SyslogReceiver::start().await;
    receiver.cut_next_connection_after(100);
    let (status, _) = create(
        &app,
        &adam,
        json!({"url": receiver.url(), "format": "rfc5424", "events": ["guardrail.*"]}),
    )
    .await;
    assert_eq!(status, 201);
    let mut e = event("p@acme.com", "guardrail.created", ("guardrail", "g1"));
    e["details"]["note"] = json!("y".repeat(8 * 1024));
    assert_eq!(app.post_events(&app.keys.write, &e).await.status(), 201);
    let got = receiver.wait_for("the whole message", |m| !m.is_empty()).await;
    let (connection, message) = &got[0];
    assert!(*connection >= 2, "not on the connection that was cut");
    assert!(message.contains(&"y".repeat(8 * 1024)), "whole");
    assert!(message.contains("guardrail.created"));
}

/// The nice value of thread `tid` of this process (field 19 of its stat).
fn nice_of(task: &std::path::Path) -> i32 {
    let stat = std::fs::read_to_string(task.join("stat")).unwrap();
    // The name (field 2) is in parentheses and may hold spaces.
    let after_name = &stat[stat.rfind(')').unwrap() + 2..];
    after_name.split(' ').nth(16).unwrap().parse().unwrap()
}

#[tokio::test]
async fn streams_run_on_a_thread_that_yields_to_ingest() {
    if !cfg!(target_os = "linux") {
        eprintln!("*** SKIPPING: a per-thread nice value is Linux's ***");
        return;
    }
    let _app = spawn_app_with(loopback).await;
    let ours = nice_of(std::path::Path::new("/proc/thread-self"));
    let threads = || -> Vec<i32> {
        std::fs::read_dir("/proc/self/task")
            .unwrap()
            .filter_map(Result::ok)
            .filter(|t| std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim() == "auditlog-stream"))
            .map(|t| nice_of(&t.path()))
            .collect()
    };
    // The thread starts with the server's workers, and lowers itself first.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut seen = threads();
    while (seen.is_empty() || seen.iter().any(|&n| n != (ours + 5).min(19))) && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
        seen = threads();
    }
    assert!(!seen.is_empty(), "the streams' thread is running");
    assert!(
        seen.iter().all(|&n| n == (ours + 5).min(19)),
        "nice {seen:?}, the test's {ours}"
    );
}

#[tokio::test]
async fn entries_purged_before_a_stream_read_them_are_counted() {
    let app = spawn_app_with(|c| {
        loopback(c);
        c.retention.background = false;
    })
    .await;
    let adam = admin(&app).await;
    // The receiver is away: the stream cannot send.
    let closed = closed_port();
    let (_, s) = create(
        &app,
        &adam,
        json!({"url": format!("syslog+tcp://{closed}"), "format": "rfc5424", "events": ["guardrail.*"]}),
    )
    .await;
    let path = format!("/v1/orgs/acme/streams/{}", s["id"].as_str().unwrap());
    let events: Vec<Value> = (1..=10)
        .map(|day| {
            let mut e = event("a@acme.com", "guardrail.created", ("guardrail", &format!("day-{day}")));
            e["timestamp"] = json!(format!("2026-05-{day:02}T00:00:00Z"));
            e
        })
        .collect();
    assert_eq!(
        app.post_events(&app.keys.write, &json!({ "events": events }))
            .await
            .status(),
        201
    );
    // acme keeps 90 days: on 2026-08-06, May 1 to 8 are past it.
    app.clock
        .set(auditlog_domain::Timestamp::parse("2026-08-06T12:00:00Z").unwrap());
    let clock: std::sync::Arc<dyn auditlog_domain::Clock> = std::sync::Arc::new(app.clock.clone());
    let (writer, task) = auditlog_server::Writer::spawn(app.store.clone(), clock.clone(), Default::default());
    let purged = auditlog_server::workers::retention::purge_once(app.store.as_ref(), &writer, clock.as_ref(), 3)
        .await
        .unwrap();
    drop(writer);
    task.await.unwrap();
    assert_eq!(purged[0].purged.count, 8);

    let receiver = SyslogReceiver::start().await;
    // Two months on, the session has ended: sign in again.
    let adam = app.login("adam@acme.com").await;
    let (status, _) = call(&app, &adam, Method::PATCH, &path, Some(json!({"url": receiver.url()}))).await;
    assert_eq!(status, 200);
    let got = receiver.wait_for("what is left", |m| m.len() >= 2).await;
    let days: Vec<bool> = got
        .iter()
        .map(|(_, m)| m.contains("day-9") || m.contains("day-10"))
        .collect();
    assert_eq!(days, [true, true], "only what retention left");
    let metrics = metrics(&app).await;
    assert!(
        metrics.contains("auditlog_stream_entries_purged_unsent_total 8"),
        "{metrics}"
    );
    // The stream's view says so too, once the sender has reported.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let view = loop {
        let (_, v) = call(&app, &adam, Method::GET, &path, None).await;
        if v["purged_unsent"] != 0 || std::time::Instant::now() > deadline {
            break v;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(view["purged_unsent"], 8, "{view}");
}

//! Ingest: validation, defaults, batches, idempotency and durability of
//! what was acknowledged.

use serde_json::{Value, json};

use crate::helpers::{NOW, error_code, event, spawn_app, spawn_app_with};

#[tokio::test]
async fn a_single_event_is_recorded_with_defaults_from_the_request() {
    let app = spawn_app().await;
    let resp = app
        .client
        .post(app.url("/v1/orgs/acme/audit/events"))
        .bearer_auth(&app.keys.write)
        .header("x-request-id", "req-abc-123")
        .header("user-agent", "billing-service/1.0")
        .json(&json!({
            "event": "guardrail.created",
            "resource": {"type": "guardrail", "id": "g_1", "name": "PII"},
            "details": {"name": "PII", "type": "pii"}
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    assert_eq!(resp.headers()["x-request-id"], "req-abc-123");
    let body: Value = resp.json().await.unwrap();
    let ack = &body["entries"][0];
    assert_eq!(ack["seq"], 1);
    assert_eq!(ack["replayed"], false);

    let (_, listed) = app.list(&[]).await;
    let e = &listed["entries"][0];
    assert_eq!(e["id"], ack["id"]);
    assert_eq!(e["timestamp"], "2026-06-01T12:00:00.000Z", "defaults to now");
    assert_eq!(e["received_at"], "2026-06-01T12:00:00.000Z");
    let prefix = &app.keys.write[..12];
    assert_eq!(
        e["actor"],
        json!({"type": "api_key", "id": prefix}),
        "defaults to the calling key"
    );
    assert_eq!(e["ip_address"], "127.0.0.1", "defaults to the request's source");
    assert_eq!(e["request_id"], "req-abc-123");
    assert_eq!(e["resource"], json!({"type": "guardrail", "id": "g_1", "name": "PII"}));
    assert_eq!(e["details"], json!({"name": "PII", "type": "pii"}));
}

#[tokio::test]
async fn given_fields_are_kept_as_given() {
    let app = spawn_app().await;
    let mut ev = event("alice@acme.com", "alert.triggered", ("alert", "al_latency"));
    ev["timestamp"] = json!("2026-06-01T13:59:00.250+02:00");
    ev["ip_address"] = json!("2001:db8::42");
    ev["user_agent"] = json!("Mozilla/5.0");
    ev["request_id"] = json!("upstream-7");
    app.ingest(ev).await;
    let (_, listed) = app.list(&[]).await;
    let e = &listed["entries"][0];
    assert_eq!(e["timestamp"], "2026-06-01T11:59:00.250Z");
    assert_eq!(e["actor"], json!({"type": "user", "id": "alice@acme.com"}));
    assert_eq!(e["ip_address"], "2001:db8::42");
    assert_eq!(e["user_agent"], "Mozilla/5.0");
    assert_eq!(e["request_id"], "upstream-7");
    assert_eq!(e["details"]["value"], 812);
}

#[tokio::test]
async fn a_batch_gets_consecutive_sequence_numbers() {
    let app = spawn_app().await;
    let events: Vec<Value> = (0..250)
        .map(|i| event("a@acme.com", "guardrail.created", ("guardrail", &format!("g_{i}"))))
        .collect();
    let acks = app.ingest(json!({ "events": events })).await;
    let seqs: Vec<i64> = acks.iter().map(|a| a["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, (1..=250).collect::<Vec<_>>());
    assert_eq!(app.log_size().await, 250);
}

#[tokio::test]
async fn a_refused_batch_lists_every_problem_and_writes_nothing() {
    let app = spawn_app().await;
    let good = event("a@acme.com", "guardrail.created", ("guardrail", "g_1"));
    let mut bad_ip = good.clone();
    bad_ip["ip_address"] = json!("300.1.2.3");
    let unknown = json!({"event": "guardrail.exploded", "resource": {"type": "guardrail", "id": "g"}});
    let mut missing = event("a@acme.com", "alert.triggered", ("alert", "al_1"));
    missing["details"] = json!({"name": "Latency"});
    let mut extra = good.clone();
    extra["severity"] = json!("high");
    let mut future = good.clone();
    future["timestamp"] = json!("2026-06-01T12:06:00Z");
    let mut old = good.clone();
    old["timestamp"] = json!("2026-02-01T00:00:00Z");
    let mut huge = good.clone();
    huge["details"]["blob"] = json!("x".repeat(17 * 1024));

    let resp = app
        .post_events(
            &app.keys.write,
            &json!({"events": [good, bad_ip, unknown, missing, extra, future, old, huge]}),
        )
        .await;
    assert_eq!(resp.status(), 422);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(error_code(&body), "validation_failed");
    let got: Vec<(i64, String, String)> = body["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["index"].as_i64().unwrap(),
                d["field"].as_str().unwrap().to_owned(),
                d["code"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let want: Vec<(i64, String, String)> = [
        (1, "ip_address", "invalid_ip"),
        (2, "event", "unknown_event"),
        (3, "details.value", "missing_detail"),
        (3, "details.threshold", "missing_detail"),
        (4, "severity", "unknown_field"),
        (5, "timestamp", "in_future"),
        (6, "timestamp", "outside_retention"),
        (7, "details", "too_large"),
    ]
    .into_iter()
    .map(|(i, f, c)| (i, f.to_owned(), c.to_owned()))
    .collect();
    assert_eq!(got, want);
    assert!(
        body.to_string().contains("guardrail.exploded"),
        "the unknown event is named"
    );
    assert_eq!(app.log_size().await, 0, "nothing of a refused batch is written");
}

/// What auditlog records about itself (its `recorded_by = "service"`
/// events, and the `system` actor) cannot come in through ingest, alone or
/// inside a valid batch. `tests/hostile/forgery.rs` tries every such event.
#[tokio::test]
async fn the_services_own_events_are_refused() {
    let app = spawn_app().await;
    let good = event("a@acme.com", "guardrail.created", ("guardrail", "g_1"));
    let mut system = good.clone();
    system["actor"] = json!("system");
    for forged in [
        event("a@acme.com", "project.created", ("project", "p_1")),
        event("a@acme.com", "api_key.created", ("api_key", "lqt_ab12cd34")),
        event(
            "a@acme.com",
            "organization.member_role_changed",
            ("member", "bob@acme.com"),
        ),
        system,
    ] {
        let resp = app
            .post_events(&app.keys.write, &json!({"events": [good.clone(), forged.clone()]}))
            .await;
        assert_eq!(resp.status(), 422, "{forged}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(error_code(&body), "reserved_event", "{body}");
        assert_eq!(body["error"]["details"][0]["index"], 1, "{body}");
        assert_eq!(body["error"]["details"][0]["code"], "reserved_event", "{body}");
    }
    assert_eq!(app.log_size().await, 0, "nothing of a refused batch is written");
}

#[tokio::test]
async fn retention_window_follows_the_plan() {
    let app = spawn_app().await;
    // acme is on the team plan: 90 days.
    let mut ev = event("a@acme.com", "guardrail.created", ("guardrail", "g"));
    ev["timestamp"] = json!("2026-03-05T12:00:00Z"); // 88 days before NOW
    app.ingest(ev.clone()).await;
    ev["timestamp"] = json!("2026-03-01T12:00:00Z"); // 92 days before
    let resp = app.post_events(&app.keys.write, &ev).await;
    assert_eq!(resp.status(), 422);
    let body: Value = resp.json().await.unwrap();
    assert!(body.to_string().contains("90 days"), "{body}");
    // Skew: up to five minutes ahead of the server clock is accepted.
    ev["timestamp"] = json!("2026-06-01T12:04:59Z");
    app.ingest(ev).await;
    let _ = NOW;
}

#[tokio::test]
async fn malformed_bodies_get_a_clear_400() {
    let app = spawn_app().await;
    let resp = app
        .client
        .post(app.url("/v1/orgs/acme/audit/events"))
        .bearer_auth(&app.keys.write)
        .header("content-type", "application/json")
        .body("{\"event\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(error_code(&body), "invalid_json");
    for (body, code) in [
        (json!([]), "validation_failed"),
        (json!({"events": []}), "validation_failed"),
        (json!("text"), "validation_failed"),
    ] {
        let resp = app.post_events(&app.keys.write, &body).await;
        assert_eq!(resp.status(), 422);
        assert_eq!(error_code(&resp.json().await.unwrap()), code);
    }
}

#[tokio::test]
async fn batches_over_1000_events_are_refused() {
    let app = spawn_app().await;
    let events: Vec<Value> = (0..1001)
        .map(|_| event("a@acme.com", "guardrail.created", ("guardrail", "g")))
        .collect();
    let resp = app.post_events(&app.keys.write, &json!({ "events": events })).await;
    assert_eq!(resp.status(), 422);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["details"][0]["code"], "batch_too_large");
    assert_eq!(app.log_size().await, 0);
}

#[tokio::test]
async fn bodies_over_the_limit_get_413_as_json() {
    let app = spawn_app_with(|c| c.max_body_bytes = 64 * 1024).await;
    let events: Vec<Value> = (0..1000)
        .map(|_| event("a@acme.com", "guardrail.created", ("guardrail", "g")))
        .collect();
    let resp = app.post_events(&app.keys.write, &json!({ "events": events })).await;
    assert_eq!(resp.status(), 413);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(error_code(&body), "payload_too_large");
}

#[tokio::test]
async fn an_idempotency_key_returns_the_original_entry() {
    let app = spawn_app().await;
    let mut ev = event("a@acme.com", "guardrail.created", ("guardrail", "g_1"));
    ev["idempotency_key"] = json!("create-g_1");
    let first = app.ingest(ev.clone()).await;
    app.clock.advance_millis(60_000);
    let again = app.ingest(ev.clone()).await;
    assert_eq!(again[0]["id"], first[0]["id"]);
    assert_eq!(again[0]["seq"], first[0]["seq"]);
    assert_eq!(again[0]["timestamp"], first[0]["timestamp"]);
    assert_eq!(again[0]["replayed"], true);
    // Within one batch, too.
    let mut other = ev.clone();
    other["idempotency_key"] = json!("create-g_2");
    let acks = app.ingest(json!({"events": [other.clone(), other, ev]})).await;
    assert_eq!(acks[0]["replayed"], false);
    assert_eq!(acks[1]["id"], acks[0]["id"]);
    assert_eq!(acks[2]["id"], first[0]["id"]);
    assert_eq!(app.log_size().await, 2);
}

#[tokio::test]
async fn concurrent_requests_are_all_committed_with_gapless_sequences() {
    let app = spawn_app().await;
    let mut handles = Vec::new();
    for c in 0..40 {
        let client = app.client.clone();
        let url = app.url("/v1/orgs/acme/audit/events");
        let key = app.keys.write.clone();
        handles.push(tokio::spawn(async move {
            let events: Vec<Value> = (0..5)
                .map(|i| event("a@acme.com", "guardrail.created", ("guardrail", &format!("c{c}-{i}"))))
                .collect();
            let resp = client
                .post(url)
                .bearer_auth(key)
                .json(&json!({"events": events}))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 201);
            let body: Value = resp.json().await.unwrap();
            body["entries"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["seq"].as_i64().unwrap())
                .collect::<Vec<_>>()
        }));
    }
    let mut seqs = Vec::new();
    for h in handles {
        let mine = h.await.unwrap();
        assert!(
            mine.windows(2).all(|w| w[1] == w[0] + 1),
            "one request's entries stay together: {mine:?}"
        );
        seqs.extend(mine);
    }
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=200).collect::<Vec<_>>());
    let all = app.list_all(&[("limit", "1000")]).await;
    assert_eq!(all.len(), 200);
}

/// A request the store cannot commit (its organization does not exist)
/// fails alone: the requests the writer batched with it are committed, in
/// order, and acknowledged.
#[tokio::test]
async fn a_request_that_cannot_commit_fails_alone_in_its_batch() {
    use std::sync::Arc;

    use auditlog_domain::entry::{Actor, ActorType, Resource};
    use auditlog_domain::store::AppendRequest;
    use auditlog_domain::{Clock, NewEntry, OrgId};
    use auditlog_server::Writer;

    let app = spawn_app().await;
    let entry = |n: usize| NewEntry {
        timestamp: app.clock.now(),
        actor: Actor {
            kind: ActorType::User,
            id: "a@acme.com".into(),
        },
        event: "guardrail.created".into(),
        resource: Resource {
            kind: "guardrail".into(),
            id: format!("g{n}"),
            name: None,
        },
        details: json!({"name": "PII", "type": "pii"}).as_object().cloned().unwrap(),
        ip_address: None,
        user_agent: None,
        request_id: None,
        idempotency_key: None,
        submitted_by: auditlog_domain::SubmittedBy::new(auditlog_domain::SubmitterKind::ApiKey, "lqt_test0000"),
    };
    let clock: Arc<dyn Clock> = Arc::new(app.clock.clone());
    let (writer, task) = Writer::spawn(app.store.clone(), clock, Default::default());
    let missing = OrgId(app.acme.id.0.max(app.globex.id.0) + 1000);
    // Queued together, so the writer takes them as one batch.
    let (first, bad, last) = tokio::join!(
        writer.append(AppendRequest::entries(app.acme.id, vec![entry(1)])),
        writer.append(AppendRequest::entries(missing, vec![entry(2)])),
        writer.append(AppendRequest::entries(app.acme.id, vec![entry(3)])),
    );
    assert!(bad.is_err(), "the missing organization's request fails");
    let seqs: Vec<i64> = [first, last]
        .into_iter()
        .flat_map(|r| r.expect("committed"))
        .map(|a| a.entry.seq)
        .collect();
    assert_eq!(seqs, vec![1, 2]);
    assert_eq!(app.store.log_size(app.acme.id).await.unwrap(), 2);
    drop(writer);
    task.await.unwrap();
}

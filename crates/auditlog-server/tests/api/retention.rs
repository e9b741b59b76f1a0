//! Retention: the purger removes what the plan no longer keeps, records it,
//! and follows plan changes; time is moved by hand, never waited for.

use std::sync::Arc;

use auditlog_domain::Clock;
use auditlog_server::Writer;
use auditlog_server::workers::retention::purge_once;
use serde_json::{Value, json};

use crate::helpers::{TestApp, event, spawn_app_with};

/// One purge pass, driven by the test: the app's own purger is off, so its
/// pass at start cannot take the lease or the entries first.
async fn purge(app: &TestApp) -> Vec<auditlog_server::workers::retention::OrgPurge> {
    let clock: Arc<dyn Clock> = Arc::new(app.clock.clone());
    let (writer, task) = Writer::spawn(app.store.clone(), clock.clone(), Default::default());
    let out = purge_once(app.store.as_ref(), &writer, clock.as_ref(), 3)
        .await
        .unwrap();
    drop(writer);
    task.await.unwrap();
    out
}

fn at(day: u32) -> Value {
    let mut e = event("a@acme.com", "guardrail.created", ("guardrail", &format!("day-{day}")));
    e["timestamp"] = json!(format!("2026-05-{day:02}T00:00:00Z"));
    e
}

#[tokio::test]
async fn expired_entries_are_purged_in_batches_and_the_purge_is_recorded() {
    let app = spawn_app_with(|c| c.retention.background = false).await;
    let events: Vec<Value> = (1..=10).map(at).collect();
    app.ingest(json!({ "events": events })).await;
    // acme keeps 90 days; move to 2026-08-06: May 1..8 are now past it.
    app.clock
        .set(auditlog_domain::Timestamp::parse("2026-08-06T12:00:00Z").unwrap());
    let report = purge(&app).await;
    assert_eq!(report.len(), 1);
    assert_eq!(report[0].purged.count, 8);
    assert_eq!(
        (report[0].purged.first_seq, report[0].purged.last_seq),
        (Some(1), Some(8))
    );

    let left: Vec<String> = app
        .list_all(&[("event", "guardrail.created")])
        .await
        .iter()
        .map(|e| e["resource"]["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(left, ["day-10", "day-9"]);
    let purged = app.list_all(&[("event", "audit_log.retention_purged")]).await;
    assert_eq!(purged.len(), 1);
    let p = &purged[0];
    assert_eq!(p["actor"], json!({"type": "system", "id": "system"}));
    assert_eq!(p["details"]["count"], 8);
    assert_eq!(p["details"]["cutoff"], "2026-05-08T12:00:00.000Z");
    assert_eq!(p["details"]["first_seq"], 1);
    assert_eq!(p["details"]["last_seq"], 8);
    assert!(purge(&app).await.is_empty(), "nothing more to do, nothing recorded");
    assert_eq!(app.list_all(&[("event", "audit_log.retention_purged")]).await.len(), 1);
}

#[tokio::test]
async fn expired_entries_are_hidden_even_before_the_purge() {
    let app = spawn_app_with(|c| c.retention.background = false).await;
    let acks = app.ingest(json!({"events": [at(1), at(20)]})).await;
    app.clock
        .set(auditlog_domain::Timestamp::parse("2026-08-06T12:00:00Z").unwrap());
    // (Moving the clock a season on also records the keys' first use.)
    let all = app.list_all(&[("event", "guardrail.created")]).await;
    assert_eq!(all.len(), 1);
    assert_eq!(all[0]["resource"]["id"], "day-20");
    let old_id = acks[0]["id"].as_str().unwrap();
    let resp = app
        .get(&app.keys.read, &format!("/v1/orgs/acme/audit/events/{old_id}"), &[])
        .await;
    assert_eq!(resp.status(), 404);
    let resp = app
        .get(&app.keys.read, "/v1/orgs/acme/audit/export", &[("format", "jsonl")])
        .await;
    let body = resp.text().await.unwrap();
    assert!(!body.contains(old_id));
}

#[tokio::test]
async fn a_larger_plan_keeps_entries_from_then_on() {
    let app = spawn_app_with(|c| c.retention.background = false).await;
    app.ingest(json!({"events": [at(1)]})).await;
    // Upgrade acme to scale (365 days) before the 90 days run out.
    let org = app.store.org_by_slug("acme").await.unwrap().unwrap();
    let up = auditlog_domain::store::AppendRequest {
        org_id: org.id,
        changes: vec![auditlog_domain::change::Change::SetPlan {
            old: auditlog_domain::Plan::Team,
            new: auditlog_domain::Plan::Scale,
            enterprise_retention_days: None,
        }],
        entries: vec![],
    };
    app.store
        .append(vec![up], app.clock.now())
        .await
        .unwrap()
        .pop()
        .unwrap()
        .unwrap();
    app.clock
        .set(auditlog_domain::Timestamp::parse("2026-08-06T12:00:00Z").unwrap());
    assert!(purge(&app).await.is_empty());
    assert_eq!(app.list_all(&[("event", "guardrail.created")]).await.len(), 1);
}

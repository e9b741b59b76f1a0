//! Graceful shutdown finishes in-flight commits: whatever was acknowledged
//! is in the database afterwards.

use std::collections::HashSet;

use auditlog_domain::filter::{Filter, Page};
use serde_json::{Value, json};

use crate::helpers::{event, spawn_app};

#[tokio::test]
async fn acknowledged_entries_survive_shutdown_mid_load() {
    let mut app = spawn_app().await;
    let mut handles = Vec::new();
    for c in 0..32 {
        let client = app.client.clone();
        let url = app.url("/v1/orgs/acme/audit/events");
        let key = app.keys.write.clone();
        handles.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            for i in 0..50 {
                let ev = event("a@acme.com", "guardrail.created", ("guardrail", &format!("c{c}-{i}")));
                match client.post(&url).bearer_auth(&key).json(&json!(ev)).send().await {
                    Ok(resp) if resp.status() == 201 => {
                        let body: Value = resp.json().await.unwrap();
                        acked.push(body["entries"][0]["id"].as_str().unwrap().to_owned());
                    }
                    // Refused or cut off by the shutdown: not acknowledged.
                    _ => break,
                }
            }
            acked
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    app.stop().await;
    let mut acked = HashSet::new();
    for h in handles {
        acked.extend(h.await.unwrap());
    }
    assert!(!acked.is_empty(), "some requests were acknowledged before shutdown");

    let reopened = app.reopen().await;
    let stored = reopened
        .list(
            app.acme.id,
            &Filter::default(),
            Page {
                limit: 1000,
                after: None,
            },
        )
        .await
        .unwrap();
    let mut all = Vec::new();
    let mut page = Page {
        limit: 1000,
        after: None,
    };
    let mut batch = stored;
    loop {
        let done = batch.len() < 1000;
        if let Some(l) = batch.last() {
            page.after = Some(auditlog_domain::cursor::Cursor {
                timestamp: l.timestamp,
                seq: l.seq,
            });
        }
        all.extend(batch);
        if done {
            break;
        }
        batch = reopened.list(app.acme.id, &Filter::default(), page).await.unwrap();
    }
    let stored_ids: HashSet<String> = all.iter().map(|e| e.id.to_string()).collect();
    for id in &acked {
        assert!(stored_ids.contains(id), "acknowledged entry {id} was lost");
    }
    let mut seqs: Vec<i64> = all.iter().map(|e| e.seq).collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=all.len() as i64).collect::<Vec<_>>(), "gapless");
}

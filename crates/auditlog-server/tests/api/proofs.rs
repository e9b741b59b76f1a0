//! Tamper evidence over HTTP: signed checkpoints verify with the published
//! key, inclusion and consistency proofs from the API verify with the
//! RFC 9162 verifier, exports with proofs verify line by line, and the
//! service refuses to sign a log that contradicts an earlier checkpoint.

use auditlog_domain::Entry;
use auditlog_domain::canonical::entry_leaf_hash;
use auditlog_domain::checkpoint::parse_and_verify;
use auditlog_domain::merkle::{self, Hash};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;

use crate::helpers::*;

fn hash(v: &Value) -> Hash {
    STANDARD.decode(v.as_str().unwrap()).unwrap().try_into().unwrap()
}

fn hashes(v: &Value) -> Vec<Hash> {
    v.as_array().unwrap().iter().map(hash).collect()
}

async fn get(app: &TestApp, path: &str) -> (u16, Value) {
    let resp = app
        .client
        .get(app.url(path))
        .bearer_auth(&app.keys.read)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn ingest_n(app: &TestApp, n: usize) {
    let events: Vec<Value> = (0..n)
        .map(|i| event("ada@acme.com", "guardrail.created", ("guardrail", &format!("g_{i}"))))
        .collect();
    app.ingest(serde_json::json!({"events": events})).await;
}

#[tokio::test]
async fn checkpoints_and_proofs_verify_independently() {
    // Reads unrecorded: the log stays at the 13 entries the proofs are for.
    let app = spawn_app_with(|c| c.record_reads = false).await;
    ingest_n(&app, 13).await;
    let (status, key) = get(&app, "/v1/audit/signing-key").await;
    assert_eq!(status, 200);
    let verifier = key["verifier_key"].as_str().unwrap();

    let (status, first) = get(&app, "/v1/orgs/acme/audit/checkpoint").await;
    assert_eq!(status, 200, "{first}");
    let cp = parse_and_verify(first["note"].as_str().unwrap(), verifier).expect("the note verifies");
    assert_eq!(cp.size, 13);
    assert_eq!(cp.origin.as_str(), "auditlog/acme");
    assert_eq!(cp.root, hash(&first["root_hash"]));

    // Every entry is in the signed tree, by the hash of what the API returns.
    let entries: Vec<Entry> = serde_json::from_value(Value::Array(app.list_all(&[]).await)).unwrap();
    assert_eq!(entries.len(), 13);
    for e in &entries {
        let (status, p) = get(
            &app,
            &format!("/v1/orgs/acme/audit/proofs/inclusion?seq={}&tree_size=13", e.seq),
        )
        .await;
        assert_eq!(status, 200, "{p}");
        assert_eq!(hash(&p["leaf_hash"]), entry_leaf_hash(e));
        merkle::verify_inclusion(
            e.seq as u64 - 1,
            13,
            &entry_leaf_hash(e),
            &hashes(&p["proof"]),
            &cp.root,
        )
        .unwrap_or_else(|err| panic!("seq {}: {err}", e.seq));
    }

    // The query API carries the same leaf hashes on request.
    let (status, page) = get(&app, "/v1/orgs/acme/audit/events?proofs=true&limit=3").await;
    assert_eq!(status, 200, "{page}");
    for v in page["entries"].as_array().unwrap() {
        let e: Entry = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(hash(&v["leaf_hash"]), entry_leaf_hash(&e));
    }
    let (_, plain) = get(&app, "/v1/orgs/acme/audit/events?limit=1").await;
    assert!(plain["entries"][0].get("leaf_hash").is_none(), "only when asked");

    // The log grows; the new checkpoint is consistent with the first.
    ingest_n(&app, 6).await;
    let (_, second) = get(&app, "/v1/orgs/acme/audit/checkpoint").await;
    let cp2 = parse_and_verify(second["note"].as_str().unwrap(), verifier).unwrap();
    assert_eq!(cp2.size, 19);
    let (status, c) = get(&app, "/v1/orgs/acme/audit/proofs/consistency?from=13&to=19").await;
    assert_eq!(status, 200, "{c}");
    merkle::verify_consistency(13, 19, &cp.root, &cp2.root, &hashes(&c["proof"])).unwrap();
    // An older size is still served as signed.
    let (_, again) = get(&app, "/v1/orgs/acme/audit/checkpoint?tree_size=13").await;
    assert_eq!(again["note"], first["note"]);

    // Nonsense is refused with a reason.
    for bad in [
        "/v1/orgs/acme/audit/proofs/inclusion?seq=20",
        "/v1/orgs/acme/audit/proofs/inclusion?seq=0",
        "/v1/orgs/acme/audit/proofs/inclusion?seq=5&tree_size=4",
        "/v1/orgs/acme/audit/proofs/inclusion",
        "/v1/orgs/acme/audit/proofs/consistency?from=19&to=13",
        "/v1/orgs/acme/audit/proofs/consistency?from=1&to=99",
        "/v1/orgs/acme/audit/proofs/consistency?from=1&to=x",
        "/v1/orgs/acme/audit/checkpoint?tree_size=1000",
        "/v1/orgs/acme/audit/checkpoint?size=3",
        "/v1/orgs/acme/audit/checkpoint?format=",
        "/v1/orgs/acme/audit/checkpoint?format=text",
        "/v1/orgs/acme/audit/checkpoint?format=note&format=json",
    ] {
        let (status, body) = get(&app, bad).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(!error_code(&body).is_empty(), "{bad}: {body}");
    }
}

#[tokio::test]
async fn exports_carry_proofs_that_verify_line_by_line() {
    let app = spawn_app().await;
    ingest_n(&app, 9).await;
    app.ingest(event("bob@acme.com", "alert.created", ("alert", "al_1")))
        .await;
    let resp = app
        .client
        .get(app.url("/v1/orgs/acme/audit/export?format=jsonl&proofs=true&event=guardrail.*"))
        .bearer_auth(&app.keys.read)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let size: u64 = resp.headers()["x-auditlog-tree-size"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    // The snapshot is pinned before data_export.requested is recorded.
    assert_eq!(size, 10);
    let text = resp.text().await.unwrap();
    let (_, cp) = get(&app, &format!("/v1/orgs/acme/audit/checkpoint?tree_size={size}")).await;
    let root = hash(&cp["root_hash"]);
    let mut lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    // The last line is the signed checkpoint the proofs are for.
    let last = lines.pop().unwrap();
    assert_eq!(last["kind"], "checkpoint", "{last}");
    let note = app
        .get(
            &app.keys.read,
            "/v1/orgs/acme/audit/checkpoint",
            &[("tree_size", &size.to_string()), ("format", "note")],
        )
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(
        last["note"].as_str(),
        Some(note.as_str()),
        "the checkpoint of that size"
    );
    assert_eq!(lines.len(), 9, "the filter holds");
    for line in &lines {
        let entry: Entry = serde_json::from_value(line.clone()).unwrap();
        let leaf = entry_leaf_hash(&entry);
        assert_eq!(hash(&line["leaf_hash"]), leaf);
        let proof = &line["inclusion_proof"];
        assert_eq!(proof["tree_size"], size);
        merkle::verify_inclusion(entry.seq as u64 - 1, size, &leaf, &hashes(&proof["hashes"]), &root).unwrap();
    }
    let (status, body) = get(&app, "/v1/orgs/acme/audit/export?format=csv&proofs=true").await;
    assert_eq!(status, 400, "{body}");
}

#[tokio::test]
async fn a_rewritten_history_is_never_signed() {
    let app = spawn_app().await;
    ingest_n(&app, 8).await;
    let (status, _) = get(&app, "/v1/orgs/acme/audit/checkpoint").await;
    assert_eq!(status, 200);
    // Someone with the database rewrites the leaves' hashes.
    let zeroes = match app.db {
        crate::helpers::Database::Sqlite(_) => "zeroblob(length(hashes))",
        crate::helpers::Database::Postgres(_) => "decode(repeat('00', length(hashes)), 'hex')",
    };
    app.db
        .execute(&format!(
            "UPDATE merkle_leaves SET hashes = {zeroes} WHERE org_id = {}",
            app.acme.id.0
        ))
        .await;
    ingest_n(&app, 2).await;
    let (status, body) = get(&app, "/v1/orgs/acme/audit/checkpoint").await;
    assert_eq!(status, 500, "{body}");
    let (_, latest) = get(&app, "/v1/orgs/acme/audit/checkpoint?tree_size=8").await;
    assert!(
        latest["note"].as_str().unwrap().contains("\n8\n"),
        "the old checkpoint stands"
    );
}

#[tokio::test]
async fn checkpoints_are_signed_in_the_background_while_entries_arrive() {
    let app = spawn_app_with(|c| c.checkpoints.interval = std::time::Duration::from_millis(50)).await;
    ingest_n(&app, 5).await;
    let mut signed = None;
    for _ in 0..100 {
        signed = app.store.checkpoint(app.acme.id, None).await.unwrap();
        if signed.as_ref().is_some_and(|c| c.size == 5) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(signed.map(|c| c.size), Some(5), "signed without anyone asking");
    assert_eq!(
        app.store.checkpoint(app.globex.id, None).await.unwrap(),
        None,
        "an empty log is not signed"
    );
}

//! Erasing a person (`POST /v1/orgs/{org}/erasures`): owners only, every
//! read shows the person's values erased, no filter finds them, and every
//! exported line still proves its leaf, before and after.

use auditlog_domain::Entry;
use auditlog_domain::Role;
use auditlog_domain::canonical::entry_leaf_hash;
use auditlog_domain::merkle::{self, Hash};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::*;

fn hash(v: &Value) -> Hash {
    STANDARD.decode(v.as_str().unwrap()).unwrap().try_into().unwrap()
}

/// The organization's whole log as exported with proofs: each line's leaf
/// hash by seq, after checking the line rebuilds it and proves it against
/// the checkpoint the export ends with.
async fn proven_export(app: &TestApp) -> (Vec<Value>, Vec<(i64, Hash)>) {
    let resp = app
        .get(
            &app.keys.read,
            "/v1/orgs/acme/audit/export",
            &[("format", "jsonl"), ("proofs", "true")],
        )
        .await;
    assert_eq!(resp.status(), 200);
    let size: u64 = resp.headers()["x-auditlog-tree-size"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let mut lines: Vec<Value> = resp
        .text()
        .await
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    lines
        .pop()
        .filter(|l| l["kind"] == "checkpoint")
        .expect("the checkpoint line");
    let cp = app
        .get(
            &app.keys.read,
            "/v1/orgs/acme/audit/checkpoint",
            &[("tree_size", &size.to_string())],
        )
        .await
        .json::<Value>()
        .await
        .unwrap();
    let root = hash(&cp["root_hash"]);
    let mut leaves = Vec::new();
    for line in &lines {
        let entry: Entry = serde_json::from_value(line.clone()).unwrap();
        let leaf = entry_leaf_hash(&entry);
        assert_eq!(hash(&line["leaf_hash"]), leaf, "{line}");
        let path: Vec<Hash> = line["inclusion_proof"]["hashes"]
            .as_array()
            .unwrap()
            .iter()
            .map(hash)
            .collect();
        merkle::verify_inclusion(entry.seq as u64 - 1, size, &leaf, &path, &root).unwrap();
        leaves.push((entry.seq, leaf));
    }
    (lines, leaves)
}

async fn erase(app: &TestApp, who: &Browser, subject: &str) -> (u16, Value) {
    let resp = app
        .as_browser(who, Method::POST, "/v1/orgs/acme/erasures")
        .json(&json!({"subject": subject}))
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

#[tokio::test]
async fn an_owner_erases_one_person_and_every_proof_still_holds() {
    let app = spawn_app().await;
    person(app.store.as_ref(), &app.acme, "olive@acme.com", Role::Owner).await;
    person(app.store.as_ref(), &app.acme, "ada@acme.com", Role::Admin).await;
    person(app.store.as_ref(), &app.acme, "bob@acme.com", Role::Viewer).await;
    app.ingest(event("bob@acme.com", "alert.created", ("alert", "al_1")))
        .await;
    let ada = app.login("ada@acme.com").await;
    let resp = app
        .as_browser(&ada, Method::PATCH, "/v1/orgs/acme/members/bob@acme.com")
        .json(&json!({"role": "member"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let (_, before) = proven_export(&app).await;

    let olive = app.login("olive@acme.com").await;
    let (status, body) = erase(&app, &olive, " Bob@Acme.com").await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["entries"], 2, "bob's alert and the role change");
    let subject = body["subject"].as_str().unwrap().to_owned();

    // Every proof exported before still holds for the same leaves.
    let (lines, after) = proven_export(&app).await;
    for leaf in &before {
        assert!(after.contains(leaf), "seq {} keeps its leaf", leaf.0);
    }
    let text = lines.iter().map(Value::to_string).collect::<String>();
    assert!(!text.to_lowercase().contains("bob@acme.com"), "{text}");
    let changed = lines
        .iter()
        .find(|l| l["event"] == "organization.member_role_changed")
        .unwrap();
    assert_eq!(changed["actor"]["id"], "ada@acme.com");
    assert_eq!(changed["details"]["member"], "[erased]");
    assert_eq!(changed["details"]["new_role"], "member");
    assert_eq!(changed["personal"]["details.member"]["erased"], true);
    assert!(changed["personal"]["actor.id"]["salt"].is_string());
    let alert = lines.iter().find(|l| l["event"] == "alert.created").unwrap();
    assert_eq!(
        (&alert["actor"]["id"], &alert["ip_address"]),
        (&json!("[erased]"), &Value::Null)
    );

    // The erasure is recorded by pseudonym, never by email.
    let erased = newest(&app, "audit_log.subject_erased").await;
    assert_eq!(
        (&erased["details"]["subject"], &erased["details"]["entries"]),
        (&json!(subject), &json!(2))
    );
    assert_eq!(erased["actor"]["id"], "olive@acme.com");
    // Nothing finds bob any more; ada is still found.
    for q in [
        ("actor", "bob@acme.com"),
        ("resource_id", "bob@acme.com"),
        ("q", "actor:bob@acme.com"),
    ] {
        assert_eq!(app.list_all(&[q]).await, Vec::<Value>::new(), "{q:?}");
    }
    assert!(!app.list_all(&[("actor", "ada@acme.com")]).await.is_empty());
    let csv = app
        .get(&app.keys.read, "/v1/orgs/acme/audit/export", &[])
        .await
        .text()
        .await
        .unwrap();
    assert!(!csv.to_lowercase().contains("bob@"), "{csv}");
    assert!(csv.contains("[erased]"));
}

#[tokio::test]
async fn only_an_owner_signed_in_may_erase_and_bad_subjects_are_named() {
    let app = spawn_app().await;
    person(app.store.as_ref(), &app.acme, "olive@acme.com", Role::Owner).await;
    person(app.store.as_ref(), &app.acme, "ada@acme.com", Role::Admin).await;
    let ada = app.login("ada@acme.com").await;
    let (status, body) = erase(&app, &ada, "bob@acme.com").await;
    assert_eq!((status, error_code(&body)), (403, "insufficient_role".into()));
    let resp = app
        .client
        .post(app.url("/v1/orgs/acme/erasures"))
        .bearer_auth(&app.keys.read)
        .json(&json!({"subject": "bob@acme.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    let olive = app.login("olive@acme.com").await;
    for (subject, code) in [("  ", "required"), ("a\u{7}b", "control_character")] {
        let (status, body) = erase(&app, &olive, subject).await;
        assert_eq!(
            (status, error_code(&body)),
            (422, "validation_failed".to_owned()),
            "{body}"
        );
        assert_eq!(body["error"]["details"][0]["code"], code, "{body}");
    }
    assert!(app.list_all(&[("event", "audit_log.subject_erased")]).await.is_empty());
    // A person with no entries is erased, and recorded, all the same.
    let (status, body) = erase(&app, &olive, "nobody@acme.com").await;
    assert_eq!((status, &body["entries"]), (201, &json!(0)), "{body}");
    assert_eq!(app.list_all(&[("event", "audit_log.subject_erased")]).await.len(), 1);
}

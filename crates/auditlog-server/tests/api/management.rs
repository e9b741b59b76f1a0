//! The management API records every change itself, in the same transaction.

use auditlog_domain::Role;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{Browser, TestApp, error_code, person, send, spawn_app, spawn_app_with};

/// acme with an owner, an admin, a member and a viewer, all signed in.
async fn staffed() -> (TestApp, [Browser; 4]) {
    let app = spawn_app().await;
    for (email, role) in [
        ("olivia@acme.com", Role::Owner),
        ("adam@acme.com", Role::Admin),
        ("mia@acme.com", Role::Member),
        ("vic@acme.com", Role::Viewer),
    ] {
        person(app.store.as_ref(), &app.acme, email, role).await;
    }
    let owner = app.login("olivia@acme.com").await;
    let admin = app.login("adam@acme.com").await;
    let member = app.login("mia@acme.com").await;
    let viewer = app.login("vic@acme.com").await;
    (app, [owner, admin, member, viewer])
}

/// The newest entries of acme, read with the read key.
async fn recorded(app: &TestApp, event: &str) -> Vec<Value> {
    app.list_all(&[("event", event)]).await
}

#[tokio::test]
async fn renaming_and_sso_are_recorded_with_actor_ip_and_request_id() {
    let (app, [owner, ..]) = staffed().await;
    let resp = app
        .as_browser(&owner, Method::PATCH, "/v1/orgs/acme")
        .header("x-request-id", "rename-1")
        .header("user-agent", "Mozilla/5.0 test")
        .json(&json!({"name": "Acme Corporation", "sso": {"issuer": "https://login.acme.com", "client_id": "0oa1", "client_secret": "s3cret"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let org: Value = resp.json().await.unwrap();
    assert_eq!(org["name"], "Acme Corporation");
    assert_eq!(org["sso"]["client_secret_set"], true);

    let renamed = recorded(&app, "organization.renamed").await;
    assert_eq!(renamed.len(), 1);
    let e = &renamed[0];
    assert_eq!(e["actor"], json!({"type": "user", "id": "olivia@acme.com"}));
    assert_eq!(
        e["details"],
        json!({"old_name": "acme", "new_name": "Acme Corporation"})
    );
    assert_eq!(e["ip_address"], "127.0.0.1");
    assert_eq!(e["request_id"], "rename-1");
    assert_eq!(e["user_agent"], "Mozilla/5.0 test");
    let sso = recorded(&app, "organization.sso_configured").await;
    assert_eq!(sso[0]["details"]["issuer"], "https://login.acme.com");
}

#[tokio::test]
async fn names_and_sso_issuers_are_checked_as_sent() {
    let (app, [owner, ..]) = staffed().await;
    let padded = format!(" {}", "n".repeat(200));
    for body in [
        json!({"name": padded}),
        json!({"sso": {"issuer": "https://", "client_id": "0oa1"}}),
        // Read by URL parsers as the host `login.acme.com`, though written
        // with an empty authority.
        json!({"sso": {"issuer": "https:///login.acme.com", "client_id": "0oa1"}}),
        json!({"sso": {"issuer": "https:\\\\login.acme.com", "client_id": "0oa1"}}),
        json!({"sso": {"issuer": format!(" https://login.acme.com/{}", "x".repeat(490)), "client_id": "0oa1"}}),
        // No secret stored yet, and none given.
        json!({"sso": {"issuer": "https://login.acme.com", "client_id": "0oa1"}}),
        json!({"sso": {"issuer": "https://login.acme.com", "client_id": "0oa1", "client_secret": " "}}),
        json!({"sso": {"issuer": "https://login.acme.com", "client_id": "0oa1", "client_secret": "s",
                       "allowed_domains": ["acme.com", "not a domain"]}}),
        json!({"sso": {"issuer": "https://login.acme.com", "client_id": "0oa1", "client_secret": "s",
                       "provision_role": "owner"}}),
    ] {
        let (status, resp) = send(&app, &owner, Method::PATCH, "/v1/orgs/acme", Some(body.clone())).await;
        assert_eq!(status, 422, "{body}: {resp}");
        assert_eq!(error_code(&resp), "validation_failed");
    }
    let (status, resp) = send(
        &app,
        &owner,
        Method::POST,
        "/v1/orgs/acme/projects",
        Some(json!({"name": padded})),
    )
    .await;
    assert_eq!(status, 422, "{resp}");
    let (status, org) = send(&app, &owner, Method::GET, "/v1/orgs/acme", None).await;
    assert_eq!(status, 200);
    assert_eq!(org["name"], "acme", "nothing changed");
}

#[tokio::test]
async fn the_sso_client_secret_is_sealed_kept_and_never_shown() {
    let (app, [owner, ..]) = staffed().await;
    let settings = json!({"issuer": "https://login.acme.com", "client_id": "0oa1", "client_secret": "s3cret-value",
                          "allowed_domains": ["Acme.com", "acme.eu"], "provision_role": "viewer"});
    let (status, org) = send(
        &app,
        &owner,
        Method::PATCH,
        "/v1/orgs/acme",
        Some(json!({"sso": settings})),
    )
    .await;
    assert_eq!(status, 200, "{org}");
    assert_eq!(
        org["sso"],
        json!({"issuer": "https://login.acme.com", "client_id": "0oa1", "enforced": false,
               "allowed_domains": ["acme.com", "acme.eu"], "provision_role": "viewer", "client_secret_set": true})
    );
    let sealed = app.store.sso_client_secret(app.acme.id).await.unwrap().unwrap();
    assert_eq!(
        app.sealer.open(&sealed).unwrap(),
        b"s3cret-value",
        "sealed, not stored as sent"
    );
    assert!(!sealed.windows(12).any(|w| w == b"s3cret-value"));

    // Changed without a secret: the stored one stays.
    let (status, _) = send(
        &app,
        &owner,
        Method::PATCH,
        "/v1/orgs/acme",
        Some(json!({"sso": {"issuer": "https://login.acme.com", "client_id": "0oa2"}})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(app.store.sso_client_secret(app.acme.id).await.unwrap(), Some(sealed));
    let entries = recorded(&app, "organization.sso_configured").await;
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0]["details"]["client_secret_changed"], false);
    assert_eq!(entries[1]["details"]["client_secret_changed"], true);
    assert_eq!(entries[1]["details"]["allowed_domains"], json!(["acme.com", "acme.eu"]));
    for e in &entries {
        assert!(!e.to_string().contains("s3cret"), "{e}");
    }

    let (status, org) = send(&app, &owner, Method::PATCH, "/v1/orgs/acme", Some(json!({"sso": null}))).await;
    assert_eq!((status, &org["sso"]), (200, &Value::Null));
    assert_eq!(app.store.sso_client_secret(app.acme.id).await.unwrap(), None);
}

#[tokio::test]
async fn only_owners_change_the_plan_and_the_window_follows() {
    let (app, [owner, admin, ..]) = staffed().await;
    let (status, body) = send(
        &app,
        &admin,
        Method::PATCH,
        "/v1/orgs/acme",
        Some(json!({"plan": "scale"})),
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(error_code(&body), "insufficient_role");
    let (status, body) = send(
        &app,
        &owner,
        Method::PATCH,
        "/v1/orgs/acme",
        Some(json!({"plan": "scale"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["retention_days"], 365);
    let up = recorded(&app, "billing.plan_upgraded").await;
    assert_eq!(up[0]["details"]["old_plan"], "team");
    assert_eq!(up[0]["details"]["new_plan"], "scale");
    let (_, body) = send(
        &app,
        &owner,
        Method::PATCH,
        "/v1/orgs/acme",
        Some(json!({"plan": "enterprise", "retention_days": 3650})),
    )
    .await;
    assert_eq!(body["retention_days"], 3650);
    let (_, _) = send(
        &app,
        &owner,
        Method::PATCH,
        "/v1/orgs/acme",
        Some(json!({"plan": "team"})),
    )
    .await;
    let down = recorded(&app, "billing.plan_downgraded").await;
    assert_eq!(
        down[0]["details"],
        json!({"old_plan": "enterprise", "new_plan": "team", "old_retention_days": 3650, "new_retention_days": 90})
    );
    let (status, body) = send(
        &app,
        &owner,
        Method::PATCH,
        "/v1/orgs/acme",
        Some(json!({"retention_days": 10})),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    let (status, body) = send(
        &app,
        &owner,
        Method::PATCH,
        "/v1/orgs/acme",
        Some(json!({"colour": "red"})),
    )
    .await;
    assert_eq!(status, 400);
    assert!(body["error"]["message"].as_str().unwrap().contains("colour"));
}

#[tokio::test]
async fn members_are_added_changed_and_removed_with_their_entries() {
    let (app, [owner, admin, member, _]) = staffed().await;
    let (status, invited) = send(
        &app,
        &admin,
        Method::POST,
        "/v1/orgs/acme/members",
        Some(json!({"email": "New.Person@Acme.com", "role": "member"})),
    )
    .await;
    assert_eq!(status, 201);
    // A member once they accept, with a password of their own.
    let resp = app
        .client
        .post(app.url("/v1/invitations/accept"))
        .json(&json!({"token": invited["invitation"]["token"], "password": "my very own passphrase"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let (status, body) = send(
        &app,
        &admin,
        Method::PATCH,
        "/v1/orgs/acme/members/new.person@acme.com",
        Some(json!({"role": "admin"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let changed = recorded(&app, "organization.member_role_changed").await;
    assert_eq!(
        changed[0]["details"],
        json!({"member": "new.person@acme.com", "old_role": "member", "new_role": "admin"})
    );
    assert_eq!(changed[0]["actor"]["id"], "adam@acme.com");
    // Admins cannot make or touch owners; members cannot manage members.
    let (status, _) = send(
        &app,
        &admin,
        Method::POST,
        "/v1/orgs/acme/members",
        Some(json!({"email": "x@acme.com", "role": "owner"})),
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = send(
        &app,
        &admin,
        Method::DELETE,
        "/v1/orgs/acme/members/olivia@acme.com",
        None,
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = send(
        &app,
        &member,
        Method::POST,
        "/v1/orgs/acme/members",
        Some(json!({"email": "y@acme.com", "role": "viewer"})),
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = send(
        &app,
        &owner,
        Method::DELETE,
        "/v1/orgs/acme/members/new.person@acme.com",
        None,
    )
    .await;
    assert_eq!(status, 204);
    let removed = recorded(&app, "organization.member_removed").await;
    assert_eq!(
        removed[0]["details"],
        json!({"member": "new.person@acme.com", "role": "admin"})
    );
    let (_, list) = send(&app, &member, Method::GET, "/v1/orgs/acme/members", None).await;
    assert_eq!(list["members"].as_array().unwrap().len(), 4);
    let (status, body) = send(
        &app,
        &admin,
        Method::POST,
        "/v1/orgs/acme/members",
        Some(json!({"email": "mia@acme.com", "role": "viewer"})),
    )
    .await;
    assert_eq!(status, 409, "{body}");
    let (status, _) = send(
        &app,
        &admin,
        Method::POST,
        "/v1/orgs/acme/members",
        Some(json!({"email": "not an email", "role": "viewer"})),
    )
    .await;
    assert_eq!(status, 422);
}

#[tokio::test]
async fn the_last_owner_stays_and_a_refused_change_records_nothing() {
    let (app, [owner, ..]) = staffed().await;
    let before = app.log_size().await;
    for (method, body) in [(Method::PATCH, Some(json!({"role": "admin"}))), (Method::DELETE, None)] {
        let (status, resp) = send(&app, &owner, method, "/v1/orgs/acme/members/olivia@acme.com", body).await;
        assert_eq!(status, 409, "{resp}");
        assert_eq!(error_code(&resp), "last_owner");
    }
    assert_eq!(app.log_size().await, before, "nothing recorded");
    // With a second owner, the first may step down.
    send(
        &app,
        &owner,
        Method::PATCH,
        "/v1/orgs/acme/members/adam@acme.com",
        Some(json!({"role": "owner"})),
    )
    .await;
    let (status, _) = send(
        &app,
        &owner,
        Method::PATCH,
        "/v1/orgs/acme/members/olivia@acme.com",
        Some(json!({"role": "viewer"})),
    )
    .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_person_belongs_to_several_organizations_with_different_roles() {
    let app = spawn_app().await;
    person(app.store.as_ref(), &app.acme, "sam@x.com", Role::Admin).await;
    person(app.store.as_ref(), &app.globex, "sam@x.com", Role::Viewer).await;
    let b = app.login("sam@x.com").await;
    let (status, me) = send(&app, &b, Method::GET, "/v1/session", None).await;
    assert_eq!(status, 200);
    let orgs: Vec<(String, String)> = me["organizations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["slug"].as_str().unwrap().to_owned(),
                o["role"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        orgs,
        [("acme".into(), "admin".into()), ("globex".into(), "viewer".into())]
    );
    assert_eq!(
        send(&app, &b, Method::GET, "/v1/orgs/acme/audit/events", None).await.0,
        200
    );
    assert_eq!(
        send(&app, &b, Method::GET, "/v1/orgs/globex/audit/events", None)
            .await
            .0,
        403
    );
}

#[tokio::test]
async fn api_keys_are_created_once_listed_without_secrets_and_revoked() {
    let (app, [_, admin, member, _]) = staffed().await;
    let (status, created) = send(
        &app,
        &admin,
        Method::POST,
        "/v1/orgs/acme/api-keys",
        Some(json!({"name": "siem", "scopes": ["audit:read"]})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let secret = created["key"].as_str().unwrap().to_owned();
    let prefix = created["prefix"].as_str().unwrap().to_owned();
    assert!(secret.starts_with(&format!("{prefix}_")));
    // The new key works.
    assert_eq!(app.get(&secret, "/v1/orgs/acme/audit/events", &[]).await.status(), 200);
    let (_, list) = send(&app, &admin, Method::GET, "/v1/orgs/acme/api-keys", None).await;
    assert!(!list.to_string().contains(&secret[13..]), "no secret in listings");
    let entry = &recorded(&app, "api_key.created").await[0];
    assert_eq!(
        entry["details"],
        json!({"prefix": prefix, "name": "siem", "scopes": ["audit:read"]})
    );
    let log = app.list_all(&[("limit", "1000")]).await;
    assert!(
        !serde_json::to_string(&log).unwrap().contains(&secret[13..]),
        "the secret is never recorded"
    );

    // Members may create write keys only.
    let (status, _) = send(
        &app,
        &member,
        Method::POST,
        "/v1/orgs/acme/api-keys",
        Some(json!({"name": "x", "scopes": ["audit:read"]})),
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = send(
        &app,
        &member,
        Method::POST,
        "/v1/orgs/acme/api-keys",
        Some(json!({"name": "ci", "scopes": ["audit:write"]})),
    )
    .await;
    assert_eq!(status, 201);
    let (status, _) = send(
        &app,
        &admin,
        Method::POST,
        "/v1/orgs/acme/api-keys",
        Some(json!({"name": "x", "scopes": ["audit:all"]})),
    )
    .await;
    assert_eq!(status, 400);

    let (status, _) = send(
        &app,
        &admin,
        Method::DELETE,
        &format!("/v1/orgs/acme/api-keys/{prefix}"),
        None,
    )
    .await;
    assert_eq!(status, 204);
    assert_eq!(
        app.get(&secret, "/v1/orgs/acme/audit/events", &[]).await.status(),
        401,
        "revoked"
    );
    let revoked = &recorded(&app, "api_key.revoked").await[0];
    assert_eq!(revoked["details"]["prefix"], prefix.as_str());
    let (status, _) = send(
        &app,
        &admin,
        Method::DELETE,
        &format!("/v1/orgs/acme/api-keys/{prefix}"),
        None,
    )
    .await;
    assert_eq!(status, 404, "revoked once");
}

#[tokio::test]
async fn key_use_is_recorded_at_most_once_an_hour() {
    let app = spawn_app().await;
    let uses = || async { app.list_all(&[("event", "api_key.last_used_updated")]).await };
    assert!(uses().await.is_empty());
    app.clock.advance_millis(61 * 60 * 1000);
    // The read key is used by `uses()` itself; the write key twice here.
    for _ in 0..3 {
        app.ingest(crate::helpers::event(
            "a@acme.com",
            "guardrail.created",
            ("guardrail", "g"),
        ))
        .await;
    }
    let got = uses().await;
    let mut prefixes: Vec<&str> = got.iter().map(|e| e["details"]["prefix"].as_str().unwrap()).collect();
    prefixes.sort_unstable();
    let mut want = vec![&app.keys.write[..12], &app.keys.read[..12]];
    want.sort_unstable();
    assert_eq!(prefixes, want, "once per key within the hour");
    let (_, keys) = app
        .list(&[("event", "api_key.last_used_updated"), ("limit", "1")])
        .await;
    assert_eq!(
        keys["entries"][0]["details"]["last_used_at"],
        "2026-06-01T13:01:00.000Z"
    );
}

#[tokio::test]
async fn projects_are_created_renamed_and_deleted_by_members_not_viewers() {
    let (app, [_, _, member, viewer]) = staffed().await;
    let (status, p) = send(
        &app,
        &member,
        Method::POST,
        "/v1/orgs/acme/projects",
        Some(json!({"name": "Prod"})),
    )
    .await;
    assert_eq!(status, 201);
    let id = p["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("p_"));
    let path = format!("/v1/orgs/acme/projects/{id}");
    let (status, _) = send(&app, &viewer, Method::PATCH, &path, Some(json!({"name": "X"}))).await;
    assert_eq!(status, 403);
    let (status, p) = send(&app, &member, Method::PATCH, &path, Some(json!({"name": "Production"}))).await;
    assert_eq!((status, p["name"].as_str()), (200, Some("Production")));
    let (_, list) = send(&app, &viewer, Method::GET, "/v1/orgs/acme/projects", None).await;
    assert_eq!(list["projects"][0]["name"], "Production");
    assert_eq!(send(&app, &member, Method::DELETE, &path, None).await.0, 204);
    assert_eq!(send(&app, &member, Method::DELETE, &path, None).await.0, 404);
    let events: Vec<String> = recorded(&app, "project.*")
        .await
        .iter()
        .map(|e| e["event"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(events, ["project.deleted", "project.renamed", "project.created"]);
    let renamed = &recorded(&app, "project.renamed").await[0];
    assert_eq!(
        renamed["details"],
        json!({"old_name": "Prod", "new_name": "Production"})
    );
    assert_eq!(renamed["resource"]["id"], id.as_str());
}

#[tokio::test]
async fn forwarded_addresses_are_believed_only_from_trusted_proxies() {
    for (trusted, want) in [(false, "127.0.0.1"), (true, "198.51.100.7")] {
        let app = spawn_app_with(|c| {
            if trusted {
                c.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
            }
        })
        .await;
        let resp = app
            .client
            .post(app.url("/v1/orgs/acme/audit/events"))
            .bearer_auth(&app.keys.write)
            .header("x-forwarded-for", "198.51.100.7")
            .json(&crate::helpers::event(
                "a@acme.com",
                "guardrail.created",
                ("guardrail", "g"),
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 201);
        let (_, body) = app.list(&[]).await;
        assert_eq!(body["entries"][0]["ip_address"], want, "trusted: {trusted}");
    }
}

/// The operator's rules on issuers (https, public addresses) hold when
/// nothing relaxes them, and without a public URL single sign-on says so.
#[tokio::test]
async fn issuers_follow_the_default_rules_and_sso_needs_the_public_url() {
    let (app, [owner, ..]) = staffed().await;
    for (issuer, says) in [
        ("http://login.acme.com", "https"),
        ("https://127.0.0.1", "not a public address"),
        ("https://10.0.0.7/realms/acme", "not a public address"),
    ] {
        let sso = json!({"issuer": issuer, "client_id": "c", "client_secret": "s"});
        let (status, resp) = send(&app, &owner, Method::PATCH, "/v1/orgs/acme", Some(json!({"sso": sso}))).await;
        assert_eq!(status, 422, "{issuer}: {resp}");
        assert!(resp.to_string().contains(says), "{issuer}: {resp}");
    }
    let sso = json!({"issuer": "https://login.acme.com", "client_id": "c", "client_secret": "s"});
    let (status, resp) = send(&app, &owner, Method::PATCH, "/v1/orgs/acme", Some(json!({"sso": sso}))).await;
    assert_eq!(status, 200, "{resp}");
    let resp = app
        .client
        .post(app.url("/sso/start"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("org=acme&email=ada%40acme.com&next=%2F")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 503);
    assert!(resp.text().await.unwrap().contains("--public-url"));
    let failed = recorded(&app, "session.sign_in_failed").await;
    assert_eq!(failed[0]["details"]["reason"], "no_public_url");
}

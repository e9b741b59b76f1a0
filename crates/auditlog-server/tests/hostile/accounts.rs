//! Finding 1 (critical): an admin of one organization took over accounts of
//! another by adding them with a password of the admin's choosing. Adding a
//! member now only invites; credentials belong to their person.

use auditlog_domain::change::Change;
use auditlog_domain::store::AppendRequest;
use auditlog_domain::{Org, Role, Store, Timestamp};
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{Browser, PASSWORD, TestApp, error_code, person, send, spawn_app};

const ATTACKER_PW: &str = "attacker chosen pw2";

/// Accepts without a session; returns (status, body, session cookie).
async fn accept(app: &TestApp, token: &str, password: Option<&str>) -> (u16, Value, Option<String>) {
    let mut body = json!({"token": token});
    if let Some(p) = password {
        body["password"] = json!(p);
    }
    let resp = app
        .client
        .post(app.url("/v1/invitations/accept"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let cookie = resp
        .headers()
        .get("set-cookie")
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned());
    (status, resp.json().await.unwrap_or(Value::Null), cookie)
}

async fn sign_in_status(app: &TestApp, email: &str, password: &str) -> u16 {
    app.client
        .post(app.url("/v1/session"))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// A member with an account and no password, as an SSO organization has.
async fn passwordless(store: &dyn Store, org: &Org, email: &str, role: Role) {
    let add = AppendRequest {
        org_id: org.id,
        changes: vec![Change::AddMember {
            email: email.into(),
            role,
        }],
        entries: vec![],
    };
    store
        .append(vec![add], Timestamp(0))
        .await
        .unwrap()
        .pop()
        .unwrap()
        .unwrap();
}

/// Invites `email` to acme as `by`; returns the token.
async fn invite(app: &TestApp, by: &Browser, email: &str, role: &str) -> String {
    let (status, body) = send(
        app,
        by,
        Method::POST,
        "/v1/orgs/acme/members",
        Some(json!({"email": email, "role": role})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    body["invitation"]["token"].as_str().unwrap().to_owned()
}

async fn acme_admin(app: &TestApp) -> Browser {
    person(app.store.as_ref(), &app.acme, "mallory@acme.com", Role::Admin).await;
    app.login("mallory@acme.com").await
}

#[tokio::test]
async fn another_organizations_admin_cannot_set_or_take_a_password() {
    let app = spawn_app().await;
    person(app.store.as_ref(), &app.globex, "gina@globex.com", Role::Owner).await;
    passwordless(app.store.as_ref(), &app.globex, "sso-user@globex.com", Role::Owner).await;
    let mallory = acme_admin(&app).await;

    // The old attack: add with a password of the attacker's choosing.
    let (status, body) = send(
        &app,
        &mallory,
        Method::POST,
        "/v1/orgs/acme/members",
        Some(json!({"email": "sso-user@globex.com", "role": "viewer", "password": ATTACKER_PW})),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["details"][0]["code"], "password_not_accepted");

    // Inviting works, but the token cannot set the existing account's
    // password: it asks the attacker to sign in as the person.
    let token = invite(&app, &mallory, "sso-user@globex.com", "viewer").await;
    let (status, body, cookie) = accept(&app, &token, Some(ATTACKER_PW)).await;
    assert_eq!(status, 401, "{body}");
    assert!(cookie.is_none());
    assert_eq!(sign_in_status(&app, "sso-user@globex.com", ATTACKER_PW).await, 401);
    let user = app.store.user("sso-user@globex.com").await.unwrap().unwrap();
    assert!(user.password_hash.is_none(), "no credential was set");
    assert!(
        app.store
            .member(app.acme.id, "sso-user@globex.com")
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn an_account_squatted_before_another_organization_adds_it_gets_nothing_of_it() {
    let app = spawn_app().await;
    person(app.store.as_ref(), &app.globex, "gina@globex.com", Role::Owner).await;
    let gina = app.login("gina@globex.com").await;
    let mallory = acme_admin(&app).await;
    // The attacker creates cfo@globex.com with their own password...
    let token = invite(&app, &mallory, "cfo@globex.com", "viewer").await;
    let (status, body, _) = accept(&app, &token, Some(ATTACKER_PW)).await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = send(
        &app,
        &mallory,
        Method::DELETE,
        "/v1/orgs/acme/members/cfo@globex.com",
        None,
    )
    .await;
    assert_eq!(status, 204);
    // ...then globex invites the real person: the same answer as for anyone.
    let (status, body) = send(
        &app,
        &gina,
        Method::POST,
        "/v1/orgs/globex/members",
        Some(json!({"email": "cfo@globex.com", "role": "owner"})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    // The attacker's account is not a member of globex: only the holder of
    // globex's token, signed in, can make it one.
    let attacker = app.login_with("cfo@globex.com", ATTACKER_PW).await;
    let (status, body) = send(
        &app,
        &attacker,
        Method::PATCH,
        "/v1/orgs/globex",
        Some(json!({"name": "pwned"})),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(error_code(&body), "not_a_member");
    let (_, me) = send(&app, &attacker, Method::GET, "/v1/session", None).await;
    assert_eq!(me["organizations"], json!([]));
}

#[tokio::test]
async fn inviting_answers_the_same_for_new_and_existing_accounts() {
    let app = spawn_app().await;
    person(app.store.as_ref(), &app.globex, "known@globex.com", Role::Viewer).await;
    let mallory = acme_admin(&app).await;
    let shape = |v: &Value| {
        let mut v = v.clone();
        v["email"] = json!("");
        v["invitation"]["token"] = json!("");
        v["invitation"]["accept_url"] = json!("");
        v
    };
    let mut answers = Vec::new();
    for email in ["known@globex.com", "nobody@globex.com"] {
        let (status, body) = send(
            &app,
            &mallory,
            Method::POST,
            "/v1/orgs/acme/members",
            Some(json!({"email": email, "role": "viewer"})),
        )
        .await;
        answers.push((status, shape(&body)));
    }
    assert_eq!(answers[0], answers[1]);
    assert_eq!(answers[0].0, 201);
}

#[tokio::test]
async fn a_membership_takes_effect_only_when_its_person_accepts_signed_in() {
    let app = spawn_app().await;
    person(app.store.as_ref(), &app.globex, "sam@globex.com", Role::Viewer).await;
    let mallory = acme_admin(&app).await;
    let token = invite(&app, &mallory, "sam@globex.com", "admin").await;
    assert!(app.store.member(app.acme.id, "sam@globex.com").await.unwrap().is_none());
    let sam = app.login("sam@globex.com").await;
    // Someone else, signed in, cannot use it.
    let (status, body) = send(
        &app,
        &mallory,
        Method::POST,
        "/v1/invitations/accept",
        Some(json!({"token": token})),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(error_code(&body), "wrong_account");
    // Without the CSRF token a cross-site page cannot accept for them.
    let resp = app
        .client
        .post(app.url("/v1/invitations/accept"))
        .header("cookie", &sam.cookie)
        .json(&json!({"token": token}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    let (status, body) = send(
        &app,
        &sam,
        Method::POST,
        "/v1/invitations/accept",
        Some(json!({"token": token})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["organization"], "acme");
    let m = app.store.member(app.acme.id, "sam@globex.com").await.unwrap().unwrap();
    assert_eq!(m.role, Role::Admin);
    // Single use.
    let (status, body) = send(
        &app,
        &sam,
        Method::POST,
        "/v1/invitations/accept",
        Some(json!({"token": token})),
    )
    .await;
    assert_eq!(status, 410, "{body}");
    // Recorded: the invitation by its inviter, the joining by the person.
    let invited = app.list_all(&[("event", "organization.member_invited")]).await;
    assert_eq!(invited[0]["actor"]["id"], "mallory@acme.com");
    let added = app.list_all(&[("event", "organization.member_added")]).await;
    assert_eq!(added[0]["actor"]["id"], "sam@globex.com");
    assert_eq!(added[0]["details"]["invited_by"], "mallory@acme.com");
}

#[tokio::test]
async fn an_invitation_expires() {
    let app = spawn_app().await;
    let mallory = acme_admin(&app).await;
    let token = invite(&app, &mallory, "late@acme.com", "viewer").await;
    app.clock.advance_millis(auditlog_domain::invitation::DEFAULT_TTL_MS);
    let (status, body, _) = accept(&app, &token, Some("a passphrase of my own")).await;
    assert_eq!(status, 410, "{body}");
    assert_eq!(error_code(&body), "invitation_invalid");
    assert!(app.store.user("late@acme.com").await.unwrap().is_none());
}

#[tokio::test]
async fn people_change_their_own_password_and_their_other_sessions_end() {
    let app = spawn_app().await;
    person(app.store.as_ref(), &app.acme, "ana@acme.com", Role::Viewer).await;
    person(app.store.as_ref(), &app.globex, "ana@acme.com", Role::Admin).await;
    let here = app.login("ana@acme.com").await;
    let elsewhere = app.login("ana@acme.com").await;
    let change = |current: &str| json!({"current_password": current, "new_password": "a brand new passphrase"});
    let (status, body) = send(
        &app,
        &here,
        Method::POST,
        "/v1/session/password",
        Some(change("not it at all")),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = send(
        &app,
        &here,
        Method::POST,
        "/v1/session/password",
        Some(change(PASSWORD)),
    )
    .await;
    assert_eq!(status, 204, "{body}");
    let (status, _) = send(&app, &elsewhere, Method::GET, "/v1/session", None).await;
    assert_eq!(status, 401, "the other session ended");
    let (status, _) = send(&app, &here, Method::GET, "/v1/session", None).await;
    assert_eq!(status, 200, "this one goes on");
    assert_eq!(sign_in_status(&app, "ana@acme.com", PASSWORD).await, 401);
    assert_eq!(
        sign_in_status(&app, "ana@acme.com", "a brand new passphrase").await,
        200
    );
    // Recorded in both of her organizations.
    let changed = app.list_all(&[("event", "organization.member_password_changed")]).await;
    assert_eq!(changed.len(), 1);
    assert_eq!(changed[0]["details"]["method"], "change");
}

#[tokio::test]
async fn an_owner_resets_only_accounts_whose_every_membership_they_own() {
    let app = spawn_app().await;
    person(app.store.as_ref(), &app.acme, "olivia@acme.com", Role::Owner).await;
    person(app.store.as_ref(), &app.acme, "adam@acme.com", Role::Admin).await;
    person(app.store.as_ref(), &app.acme, "ned@acme.com", Role::Viewer).await;
    person(app.store.as_ref(), &app.acme, "sam@x.com", Role::Viewer).await;
    person(app.store.as_ref(), &app.globex, "sam@x.com", Role::Viewer).await;
    let owner = app.login("olivia@acme.com").await;
    let admin = app.login("adam@acme.com").await;
    let ned = app.login("ned@acme.com").await;
    let path = |who: &str| format!("/v1/orgs/acme/members/{who}/password-reset");

    let (status, _) = send(&app, &admin, Method::POST, &path("ned@acme.com"), None).await;
    assert_eq!(status, 403, "admins cannot");
    let (status, body) = send(&app, &owner, Method::POST, &path("sam@x.com"), None).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(error_code(&body), "not_your_account");
    assert_eq!(sign_in_status(&app, "sam@x.com", PASSWORD).await, 200, "untouched");
    let admin_key = crate::helpers::key(
        app.store.as_ref(),
        &app.acme,
        vec![auditlog_domain::api_key::Scope::Admin],
    )
    .await;
    let resp = app
        .client
        .post(app.url(&path("ned@acme.com")))
        .bearer_auth(&admin_key)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403, "keys cannot");

    let (status, body) = send(&app, &owner, Method::POST, &path("ned@acme.com"), None).await;
    assert_eq!(status, 201, "{body}");
    let token = body["reset"]["token"].as_str().unwrap().to_owned();
    let (status, _) = send(&app, &ned, Method::GET, "/v1/session", None).await;
    assert_eq!(status, 401, "his sessions ended");
    assert_eq!(
        sign_in_status(&app, "ned@acme.com", PASSWORD).await,
        401,
        "old password gone"
    );
    let (status, body, cookie) = accept(&app, &token, Some("ned's own new passphrase")).await;
    assert_eq!(status, 200, "{body}");
    assert!(cookie.is_some(), "signed in");
    assert_eq!(
        sign_in_status(&app, "ned@acme.com", "ned's own new passphrase").await,
        200
    );
    let (status, _, _) = accept(&app, &token, Some("and again, another one")).await;
    assert_eq!(status, 410, "single use");
    let reset = app.list_all(&[("event", "organization.member_password_reset")]).await;
    assert_eq!(reset[0]["actor"]["id"], "olivia@acme.com");
}

#[tokio::test]
async fn the_invitation_page_accepts_with_a_new_password_and_refuses_a_spent_link() {
    let app = spawn_app().await;
    let mallory = acme_admin(&app).await;
    let token = invite(&app, &mallory, "pia@acme.com", "admin").await;
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = no_redirects
        .get(app.url("/invitation"))
        .query(&[("token", &token)])
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("You are invited to join"), "{html}");
    assert!(html.contains("pia@acme.com"));
    let form = |password: &str| {
        form_urlencoded::Serializer::new(String::new())
            .append_pair("token", &token)
            .append_pair("password", password)
            .finish()
    };
    let short = no_redirects
        .post(app.url("/invitation"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form("short"))
        .send()
        .await
        .unwrap();
    assert_eq!(short.status(), 422, "a weak password is explained on the form");
    assert!(short.text().await.unwrap().contains("at least 12 characters"));
    let done = no_redirects
        .post(app.url("/invitation"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form("pia's own passphrase"))
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 303);
    assert_eq!(done.headers()["location"], "/orgs/acme/audit");
    assert!(done.headers().contains_key("set-cookie"));
    let again = no_redirects
        .get(app.url("/invitation"))
        .query(&[("token", &token)])
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 410);
}

#[tokio::test]
async fn guessing_the_current_password_through_a_stolen_session_is_throttled() {
    let app = crate::helpers::spawn_app_with(|c| c.login.per_account = 2).await;
    person(app.store.as_ref(), &app.acme, "ana@acme.com", Role::Viewer).await;
    let stolen = app.login("ana@acme.com").await;
    let change = |current: &str| json!({"current_password": current, "new_password": "the thief's passphrase"});
    let mut refused_after = None;
    for n in 1..=3 {
        let (status, _) = send(
            &app,
            &stolen,
            Method::POST,
            "/v1/session/password",
            Some(change("a guess at it")),
        )
        .await;
        if status == 429 {
            refused_after = Some(n);
            break;
        }
        assert_eq!(status, 403);
    }
    assert!(refused_after.is_some(), "guessing goes on unthrottled");
    let (status, body) = send(
        &app,
        &stolen,
        Method::POST,
        "/v1/session/password",
        Some(change(PASSWORD)),
    )
    .await;
    assert_eq!(status, 429, "{body}");
    let hash = app
        .store
        .user("ana@acme.com")
        .await
        .unwrap()
        .unwrap()
        .password_hash
        .unwrap();
    assert!(auditlog_domain::password::verify(PASSWORD, &hash), "unchanged");
}

#[tokio::test]
async fn setting_a_password_with_a_token_counts_against_the_sign_in_limit() {
    let app = crate::helpers::spawn_app_with(|c| {
        c.rate_limits.login_per_ip = auditlog_domain::rate_limit::Rate {
            per_second: 0.001,
            burst: 2.0,
        }
    })
    .await;
    let mallory = acme_admin(&app).await; // one sign-in: one of the two
    let token = invite(&app, &mallory, "newbie@acme.com", "viewer").await;
    let (status, _, _) = accept(&app, &token, Some("too short")).await;
    assert_eq!(status, 422, "the second attempt: refused, and counted");
    let (status, body, _) = accept(&app, &token, Some("a long enough passphrase")).await;
    assert_eq!(status, 429, "{body}");
    assert!(app.store.user("newbie@acme.com").await.unwrap().is_none());
}

//! The management pages over plain HTTP: members, API keys and projects
//! changed through their forms are recorded exactly as the API records
//! them (actor, event, `submitted_by` naming the session); a form without
//! the session's CSRF token or from another site changes nothing; each
//! role sees only the controls it may use, and the server refuses the rest
//! when a form is posted by hand. The browser test covers the same pages in
//! Chromium.

use auditlog_domain::Role;
use reqwest::redirect::Policy;

use crate::helpers::*;

#[tokio::test]
async fn members_are_invited_given_a_role_and_removed_through_forms() {
    let app = spawn_app().await;
    person(app.store.as_ref(), &app.acme, "ada@acme.com", Role::Owner).await;
    let ada = Forms::new(&app, "ada@acme.com").await;

    let (status, html) = ada.get("/orgs/acme/members").await;
    assert_eq!(status, 200);
    assert!(html.contains(r#"<form class="inline-form" id="add-member""#), "{html}");
    assert!(
        html.contains(r#"aria-current="page">Members</a>"#),
        "the sidebar marks the page"
    );

    let (status, html) = ada
        .post("/orgs/acme/members", &[("email", "Li.Wei@acme.com"), ("role", "admin")])
        .await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("is invited as"), "{html}");
    let link = html.split(r#"id="invitation-link" href=""#).nth(1).unwrap();
    assert!(link.starts_with("/invitation?token="), "{link}");
    let invited = newest(&app, "organization.member_invited").await;
    assert_by_session(&invited, "ada@acme.com");
    assert_eq!(invited["details"]["member"], "li.wei@acme.com");
    assert_eq!(invited["details"]["role"], "admin");

    person(app.store.as_ref(), &app.acme, "bo@acme.com", Role::Member).await;
    let (status, html) = ada
        .post("/orgs/acme/members/bo%40acme.com/role", &[("role", "viewer")])
        .await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("is now <strong>viewer</strong>"), "{html}");
    let changed = newest(&app, "organization.member_role_changed").await;
    assert_by_session(&changed, "ada@acme.com");
    assert_eq!(changed["details"]["old_role"], "member");
    assert_eq!(changed["details"]["new_role"], "viewer");

    let (status, html) = ada.get("/orgs/acme/members/bo%40acme.com/remove").await;
    assert_eq!(status, 200);
    assert!(html.contains("Remove bo@acme.com?"), "{html}");
    let (status, html) = ada.post("/orgs/acme/members/bo%40acme.com/remove", &[]).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("Removed <strong>bo@acme.com</strong>"), "{html}");
    let removed = newest(&app, "organization.member_removed").await;
    assert_by_session(&removed, "ada@acme.com");
    assert!(app.store.member(app.acme.id, "bo@acme.com").await.unwrap().is_none());

    let (status, html) = ada.get("/orgs/acme/members/nobody%40acme.com/remove").await;
    assert_eq!(status, 404, "a confirmation only for a member: {html}");
}

#[tokio::test]
async fn the_last_owner_rule_is_said_in_place_and_still_enforced() {
    let app = spawn_app().await;
    person(app.store.as_ref(), &app.acme, "ada@acme.com", Role::Owner).await;
    let ada = Forms::new(&app, "ada@acme.com").await;
    let (_, html) = ada.get("/orgs/acme/members").await;
    assert!(html.contains("the only owner keeps the owner role"), "{html}");
    assert!(
        !html.contains(r#"action="/orgs/acme/members/ada%40acme.com/role""#),
        "no role form: {html}"
    );
    assert!(
        !html.contains("/orgs/acme/members/ada%40acme.com/remove"),
        "no remove link"
    );

    let before = app.log_size().await;
    let (status, html) = ada
        .post("/orgs/acme/members/ada%40acme.com/role", &[("role", "admin")])
        .await;
    assert_eq!(status, 409, "{html}");
    assert!(html.contains("last owner"), "{html}");
    let (status, _) = ada.post("/orgs/acme/members/ada%40acme.com/remove", &[]).await;
    assert_eq!(status, 409);
    assert_eq!(app.log_size().await, before, "nothing recorded");
}

#[tokio::test]
async fn a_key_is_shown_once_listed_with_its_creator_and_revoked_after_confirming() {
    let app = spawn_app().await;
    person(app.store.as_ref(), &app.acme, "ada@acme.com", Role::Owner).await;
    let ada = Forms::new(&app, "ada@acme.com").await;
    let (status, html) = ada
        .post(
            "/orgs/acme/api-keys",
            &[("name", "billing"), ("scope", "audit:write"), ("scope", "audit:read")],
        )
        .await;
    assert_eq!(status, 200, "{html}");
    let secret = html
        .split(r#"id="new-key" type="text" readonly value=""#)
        .nth(1)
        .unwrap();
    let secret = secret.split('"').next().unwrap().to_owned();
    assert!(secret.starts_with("lqt_"), "{secret}");
    assert!(html.contains("cannot be shown again"));
    let created = newest(&app, "api_key.created").await;
    assert_by_session(&created, "ada@acme.com");
    let prefix = created["details"]["prefix"].as_str().unwrap().to_owned();

    // The secret works, and is never on the page again.
    let resp = app.get(&secret, "/v1/orgs/acme/audit/events", &[("limit", "1")]).await;
    assert_eq!(resp.status(), 200);
    let (_, html) = ada.get("/orgs/acme/api-keys").await;
    assert!(!html.contains(&secret));
    assert!(html.contains(&prefix) && html.contains("by ada@acme.com"), "{html}");

    let (status, html) = ada.get(&format!("/orgs/acme/api-keys/{prefix}/revoke")).await;
    assert_eq!(status, 200);
    assert!(html.contains(&format!("Revoke {prefix} (billing)?")), "{html}");
    let (status, html) = ada.post(&format!("/orgs/acme/api-keys/{prefix}/revoke"), &[]).await;
    assert_eq!(status, 200, "{html}");
    assert_by_session(&newest(&app, "api_key.revoked").await, "ada@acme.com");
    let resp = app.get(&secret, "/v1/orgs/acme/audit/events", &[("limit", "1")]).await;
    assert_eq!(resp.status(), 401, "a revoked key is refused");
    let (status, _) = ada.get(&format!("/orgs/acme/api-keys/{prefix}/revoke")).await;
    assert_eq!(status, 404, "no confirmation for a revoked key");
}

#[tokio::test]
async fn projects_are_created_renamed_and_deleted_through_forms() {
    let app = spawn_app().await;
    person(app.store.as_ref(), &app.acme, "ada@acme.com", Role::Admin).await;
    let ada = Forms::new(&app, "ada@acme.com").await;
    let (status, html) = ada.post("/orgs/acme/projects", &[("name", "<b>Prod</b>")]).await;
    assert_eq!(status, 200, "{html}");
    assert!(
        !html.contains("<b>Prod</b>") && html.contains("&lt;b&gt;Prod&lt;/b&gt;"),
        "escaped"
    );
    let created = newest(&app, "project.created").await;
    assert_by_session(&created, "ada@acme.com");
    let id = created["resource"]["id"].as_str().unwrap().to_owned();

    let (status, html) = ada
        .post(&format!("/orgs/acme/projects/{id}/rename"), &[("name", "Production")])
        .await;
    assert_eq!(status, 200, "{html}");
    let renamed = newest(&app, "project.renamed").await;
    assert_eq!(renamed["details"]["new_name"], "Production");
    let (status, html) = ada
        .post(&format!("/orgs/acme/projects/{id}/rename"), &[("name", "  ")])
        .await;
    assert_eq!(status, 422, "an empty name is refused on the page: {html}");
    assert!(html.contains(r#"role="alert""#));

    let (status, _) = ada.get(&format!("/orgs/acme/projects/{id}/delete")).await;
    assert_eq!(status, 200);
    let (status, _) = ada.post(&format!("/orgs/acme/projects/{id}/delete"), &[]).await;
    assert_eq!(status, 200);
    assert_by_session(&newest(&app, "project.deleted").await, "ada@acme.com");
    assert!(app.store.projects(app.acme.id).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_form_without_the_session_token_or_from_another_site_changes_nothing() {
    let app = spawn_app().await;
    person(app.store.as_ref(), &app.acme, "ada@acme.com", Role::Owner).await;
    let ada = Forms::new(&app, "ada@acme.com").await;
    let before = app.log_size().await;
    for csrf in [None, Some("not-the-token")] {
        let (status, html) = ada.post_with("/orgs/acme/projects", &[("name", "Forged")], csrf).await;
        assert_eq!(status, 403, "{csrf:?}: {html}");
        assert!(html.contains("did not carry your session"), "{html}");
    }
    let resp = ada
        .client
        .post(app.url("/orgs/acme/members"))
        .header("cookie", &ada.b.cookie)
        .header("origin", "https://evil.example")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("email=eve%40evil.example&role=owner&csrf_token={}", ada.b.csrf))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403, "another site's post is refused even with the token");
    assert_eq!(app.log_size().await, before, "nothing recorded");
    assert!(app.store.projects(app.acme.id).await.unwrap().is_empty());
}

#[tokio::test]
async fn each_role_sees_its_own_controls_and_the_server_refuses_the_rest() {
    let app = spawn_app().await;
    person(app.store.as_ref(), &app.acme, "ada@acme.com", Role::Owner).await;
    person(app.store.as_ref(), &app.acme, "mo@acme.com", Role::Member).await;
    person(app.store.as_ref(), &app.acme, "vi@acme.com", Role::Viewer).await;
    let mo = Forms::new(&app, "mo@acme.com").await;
    let (status, html) = mo.get("/orgs/acme/members").await;
    assert_eq!(status, 200);
    assert!(
        !html.contains(r#"id="add-member" method="post""#),
        "a member invites nobody"
    );
    assert!(html.contains("Inviting people:"), "and is told why: {html}");
    assert!(!html.contains(">Audit</a>"), "nor reads the log");
    let (status, html) = mo.get("/orgs/acme/api-keys").await;
    assert_eq!(status, 200);
    assert!(html.contains(r#"value="audit:write" checked>"#), "{html}");
    assert!(html.contains(r#"value="admin" disabled>"#), "{html}");

    let before = app.log_size().await;
    let refused: [(&str, &[(&str, &str)]); 4] = [
        ("/orgs/acme/members", &[("email", "x@acme.com"), ("role", "viewer")]),
        ("/orgs/acme/members/vi%40acme.com/remove", &[]),
        ("/orgs/acme/api-keys", &[("name", "k"), ("scope", "admin")]),
        ("/orgs/acme/members/ada%40acme.com/role", &[("role", "viewer")]),
    ];
    for (path, fields) in refused {
        let (status, html) = mo.post(path, fields).await;
        assert_eq!(status, 403, "{path}: {html}");
    }
    let (status, _) = mo
        .post("/orgs/acme/api-keys", &[("name", "k"), ("scope", "audit:write")])
        .await;
    assert_eq!(status, 200, "what a member may do, a member can do");
    assert_eq!(app.log_size().await, before + 1, "only the allowed key was recorded");

    let vi = Forms::new(&app, "vi@acme.com").await;
    let (status, html) = vi.get("/orgs/acme/api-keys").await;
    assert_eq!(status, 403, "{html}");
    let (_, html) = vi.get("/orgs/acme/projects").await;
    assert!(
        html.contains("Changing projects:") && !html.contains("/rename"),
        "{html}"
    );
    assert!(
        !html.contains(">API keys</a>"),
        "the sidebar leaves out what a viewer cannot open"
    );
}

#[tokio::test]
async fn signed_out_visitors_are_sent_to_sign_in_and_nothing_changes() {
    let app = spawn_app().await;
    let client = reqwest::Client::builder().redirect(Policy::none()).build().unwrap();
    let resp = client.get(app.url("/orgs/acme/api-keys")).send().await.unwrap();
    assert_eq!(resp.status(), 303);
    let resp = client
        .post(app.url("/orgs/acme/projects"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("name=x&csrf_token=x")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    assert_eq!(resp.headers()["location"], "/login?next=%2Forgs%2Facme%2Fprojects");
    assert!(app.store.projects(app.acme.id).await.unwrap().is_empty());
}

#[tokio::test]
async fn the_audit_page_links_out_to_filters_and_to_objects_that_still_exist() {
    let app = spawn_app().await;
    person(app.store.as_ref(), &app.acme, "ada@acme.com", Role::Owner).await;
    let ada = Forms::new(&app, "ada@acme.com").await;
    ada.post("/orgs/acme/projects", &[("name", "Prod")]).await;
    let created = newest(&app, "project.created").await;
    let (id, entry) = (
        created["resource"]["id"].as_str().unwrap(),
        created["id"].as_str().unwrap(),
    );

    let (_, html) = ada.get("/orgs/acme/audit").await;
    assert!(
        html.contains(&format!("/orgs/acme/audit?resource_type=project&amp;resource_id={id}")),
        "{html}"
    );
    assert!(html.contains("/orgs/acme/audit?actor=ada%40acme.com"), "{html}");

    let entry_page = format!("/orgs/acme/audit/entries/{entry}");
    let (_, html) = ada.get(&entry_page).await;
    assert!(
        html.contains(r#"<a href="/orgs/acme/projects">Open its page</a>"#),
        "{html}"
    );
    assert!(
        html.contains("/orgs/acme/audit?q=submitted_by%3Asession%3Aada%40acme.com"),
        "{html}"
    );
    let (status, html) = ada
        .get("/orgs/acme/audit?q=submitted_by%3Asession%3Aada%40acme.com")
        .await;
    assert_eq!(status, 200);
    assert!(html.contains(entry), "the submitter's filter finds the entry");

    ada.post(&format!("/orgs/acme/projects/{id}/delete"), &[]).await;
    let (_, html) = ada.get(&entry_page).await;
    assert!(!html.contains("Open its page"), "no link to a project that is gone");
}

#[tokio::test]
async fn the_chart_counts_the_filtered_view_and_a_bar_narrows_the_range_to_it() {
    let app = spawn_app().await;
    person(app.store.as_ref(), &app.acme, "ada@acme.com", Role::Owner).await;
    let mut yesterday = event("bo@acme.com", "guardrail.created", ("guardrail", "g0"));
    yesterday["timestamp"] = "2026-05-31T09:30:00Z".into();
    app.ingest(yesterday).await;
    for g in ["g1", "g2"] {
        app.ingest(event("bo@acme.com", "alert.created", ("alert", g))).await;
    }
    app.ingest(event("cy@acme.com", "alert.created", ("alert", "g3"))).await;
    let ada = Forms::new(&app, "ada@acme.com").await;
    let (status, html) = ada.get("/orgs/acme/audit?actor=bo%40acme.com").await;
    assert_eq!(status, 200);
    assert!(
        html.contains(r#"<a id="chart-link" href="/orgs/acme/audit/chart?actor=bo%40acme.com">"#),
        "the chart comes after the first paint: {html}"
    );
    let (status, html) = ada.get("/orgs/acme/audit/chart?actor=bo%40acme.com").await;
    assert_eq!(status, 200);
    assert!(
        html.contains("3 entries in this view, by day (UTC)"),
        "only the filter's entries: {html}"
    );
    assert!(
        html.contains(r#"aria-label="2026-06-01: 2 entries (2 alert)""#),
        "{html}"
    );
    assert!(
        html.contains(r#"aria-label="2026-05-31: 1 entries (1 guardrail)""#),
        "{html}"
    );
    let bar = "/orgs/acme/audit?actor=bo%40acme.com&amp;range=custom&amp;from=2026-06-01&amp;to=2026-06-01";
    assert!(html.contains(bar), "a bar narrows the range to its day: {html}");

    let narrowed = bar.replace("&amp;", "&");
    let (status, html) = ada.get(&narrowed).await;
    assert_eq!(status, 200);
    assert_eq!(
        html.matches(r#"<tr class="entry">"#).count(),
        2,
        "the table shows that day only"
    );
    let chart = format!("{}&fragment=1", narrowed.replace("/audit?", "/audit/chart?"));
    let (_, fragment) = ada.get(&chart).await;
    assert!(
        fragment.starts_with(r#"<figure class="chart" id="chart">"#),
        "a bare figure: {fragment}"
    );
    assert!(fragment.contains("2 entries in this view, by hour (UTC)"), "{fragment}");
}

/// Every form of the console, posted without the session's token, with
/// another token, and from another site with the right one: each refused,
/// nothing recorded.
#[tokio::test]
async fn every_console_form_refuses_a_missing_token_and_other_sites() {
    let app = spawn_app().await;
    person(app.store.as_ref(), &app.acme, "ada@acme.com", Role::Owner).await;
    person(app.store.as_ref(), &app.acme, "bo@acme.com", Role::Member).await;
    let ada = Forms::new(&app, "ada@acme.com").await;
    let forms = [
        "/orgs/acme/members",
        "/orgs/acme/members/bo%40acme.com/role",
        "/orgs/acme/members/bo%40acme.com/remove",
        "/orgs/acme/api-keys",
        "/orgs/acme/api-keys/lqt_0123abcd/revoke",
        "/orgs/acme/projects",
        "/orgs/acme/projects/p_1/rename",
        "/orgs/acme/projects/p_1/delete",
        "/orgs/acme/webhooks",
        "/orgs/acme/webhooks/wh_1",
        "/orgs/acme/webhooks/wh_1/test",
        "/orgs/acme/webhooks/wh_1/enable",
        "/orgs/acme/webhooks/wh_1/disable",
        "/orgs/acme/webhooks/wh_1/rotate",
        "/orgs/acme/webhooks/wh_1/delete",
        "/orgs/acme/webhooks/wh_1/replay",
        "/orgs/acme/webhooks/wh_1/deliveries/dlv_1/redeliver",
        "/orgs/acme/streams",
        "/orgs/acme/streams/st_1/enable",
        "/orgs/acme/streams/st_1/disable",
        "/orgs/acme/streams/st_1/delete",
        "/orgs/acme/settings/name",
        "/orgs/acme/settings/plan",
        "/orgs/acme/settings/sso",
    ];
    let fields = [
        ("name", "x"),
        ("role", "viewer"),
        ("plan", "scale"),
        ("from_seq", "1"),
        ("email", "x@acme.com"),
    ];
    let before = app.log_size().await;
    for path in forms {
        for csrf in [None, Some("forged")] {
            let (status, html) = ada.post_with(path, &fields, csrf).await;
            assert_eq!(status, 403, "{path} with {csrf:?}: {html}");
        }
        let resp = ada
            .client
            .post(app.url(path))
            .header("cookie", &ada.b.cookie)
            .header("origin", "https://evil.example")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("name=x&plan=scale&csrf_token={}", ada.b.csrf))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 403, "{path} from another site");
    }
    assert_eq!(app.log_size().await, before, "nothing recorded");
    assert_eq!(
        app.store
            .member(app.acme.id, "bo@acme.com")
            .await
            .unwrap()
            .unwrap()
            .role,
        Role::Member
    );
}

//! The Settings page over plain HTTP: renaming, a plan change (one that
//! keeps entries for less time confirmed first, with the date before which
//! entries go), and single sign-on, each recorded as `PATCH /v1/orgs/{org}`
//! records it; roles that may not change a setting see it disabled with
//! the reason, and are refused when they post anyway.

use auditlog_domain::Role;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn renaming_is_recorded_and_a_viewer_is_told_why_not() {
    let app = spawn_app().await;
    let ada = signed_in(&app, "ada@acme.com", Role::Admin).await;
    let (status, html) = ada.post("/orgs/acme/settings/name", &[("name", "Acme <Inc>")]).await;
    assert_eq!(status, 200, "{html}");
    assert!(
        html.contains("Renamed.") && html.contains(r#"value="Acme &lt;Inc&gt;""#),
        "{html}"
    );
    let renamed = newest(&app, "organization.renamed").await;
    assert_eq!(renamed["details"]["new_name"], "Acme <Inc>");
    assert_eq!(
        renamed["submitted_by"],
        json!({"kind": "session", "id": "ada@acme.com"})
    );

    let vi = signed_in(&app, "vi@acme.com", Role::Viewer).await;
    let (status, html) = vi.get("/orgs/acme/settings").await;
    assert_eq!(status, 200);
    assert!(
        html.contains(r#"name="name" required maxlength="200" value="Acme &lt;Inc&gt;" disabled"#),
        "{html}"
    );
    assert!(
        html.contains("changing the organization"),
        "the reason is shown: {html}"
    );
    let before = app.log_size().await;
    let (status, _) = vi.post("/orgs/acme/settings/name", &[("name", "Mine")]).await;
    assert_eq!(status, 403);
    assert_eq!(app.log_size().await, before);
}

#[tokio::test]
async fn a_plan_that_keeps_entries_for_less_time_is_confirmed_first() {
    let app = spawn_app().await;
    let olu = signed_in(&app, "olu@acme.com", Role::Owner).await;
    let (status, html) = olu.post("/orgs/acme/settings/plan", &[("plan", "scale")]).await;
    assert_eq!(status, 200, "an upgrade needs no confirmation: {html}");
    assert_eq!(
        newest(&app, "billing.plan_upgraded").await["details"]["new_plan"],
        "scale"
    );

    let before = app.log_size().await;
    let (status, html) = olu.post("/orgs/acme/settings/plan", &[("plan", "team")]).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("Keep entries for 90 days instead of 365?"), "{html}");
    assert!(
        html.contains("every entry recorded before"),
        "the effect is stated: {html}"
    );
    assert!(html.contains(r#"name="confirmed" value="true""#));
    assert_eq!(app.log_size().await, before, "nothing changes before the confirmation");
    let (status, html) = olu
        .post(
            "/orgs/acme/settings/plan",
            &[("plan", "team"), ("retention_days", ""), ("confirmed", "true")],
        )
        .await;
    assert_eq!(status, 200, "{html}");
    let down = newest(&app, "billing.plan_downgraded").await;
    assert_eq!(down["details"]["new_retention_days"], 90);

    let ada = signed_in(&app, "ada@acme.com", Role::Admin).await;
    let (status, _) = ada
        .post(
            "/orgs/acme/settings/plan",
            &[("plan", "enterprise"), ("confirmed", "true")],
        )
        .await;
    assert_eq!(status, 403, "only owners change the plan");
}

#[tokio::test]
async fn single_sign_on_is_saved_without_ever_showing_the_secret_and_removed() {
    let app = spawn_app_with(|c| c.public_url = Some("https://audit.acme.test".parse().unwrap())).await;
    let ada = signed_in(&app, "ada@acme.com", Role::Admin).await;
    let (_, html) = ada.get("/orgs/acme/settings").await;
    assert!(
        html.contains("https://audit.acme.test/sso/callback"),
        "the redirect URI to register: {html}"
    );
    let fields = [
        ("issuer", "https://login.acme.test"),
        ("client_id", "auditlog"),
        ("client_secret", "s3cret-value"),
        ("allowed_domains", "acme.com, acme.io"),
        ("provision_role", "member"),
    ];
    let (status, html) = ada.post("/orgs/acme/settings/sso", &fields).await;
    assert_eq!(status, 200, "{html}");
    assert!(
        html.contains("Single sign-on is saved.") && !html.contains("s3cret-value"),
        "{html}"
    );
    let configured = newest(&app, "organization.sso_configured").await;
    assert_eq!(
        configured["submitted_by"],
        json!({"kind": "session", "id": "ada@acme.com"})
    );
    let org = app.store.org_by_slug("acme").await.unwrap().unwrap();
    let sso = org.sso.unwrap();
    assert_eq!(sso.allowed_domains, ["acme.com", "acme.io"]);
    assert_eq!(sso.provision_role, Some(Role::Member));
    assert!(!sso.enforced);

    let (status, html) = ada
        .post(
            "/orgs/acme/settings/sso",
            &[
                ("enforced", "true"),
                ("issuer", "https://login.acme.test"),
                ("client_id", "auditlog"),
            ],
        )
        .await;
    assert_eq!(status, 403, "enforcing is refused from a password session: {html}");
    assert!(html.contains("sign in through this organization"), "{html}");

    let (status, html) = ada
        .post(
            "/orgs/acme/settings/sso",
            &[
                ("issuer", "https://login.acme.test"),
                ("client_id", "auditlog"),
                ("provision_role", "superuser"),
            ],
        )
        .await;
    assert_eq!(status, 422, "an unknown role is refused, not read as none: {html}");
    let kept = app.store.org_by_slug("acme").await.unwrap().unwrap().sso.unwrap();
    assert_eq!(kept.provision_role, Some(Role::Member));

    let (status, html) = ada.post("/orgs/acme/settings/sso", &[("remove", "true")]).await;
    assert_eq!(status, 200, "{html}");
    assert!(app.store.org_by_slug("acme").await.unwrap().unwrap().sso.is_none());
}

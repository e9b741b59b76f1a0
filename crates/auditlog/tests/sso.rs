//! Single sign-on end to end: the auditlog binary against a real OpenID
//! Connect provider (oidc-provider under Node.js, tests/fixtures), driven
//! over HTTP as a browser would: the sign-in page's button, the provider's
//! login form, the callback. Each way a sign-in can go wrong ends on a page
//! saying so, with no session and a `session.sign_in_failed` entry. One
//! test does it all in Chromium, through the provider's own login page.

mod common;

use common::browser::{assert_accessible, click, continue_with_email, start_browser, tools, url, wait_until};
use common::{Killed, PASSWORD, acme_with_admin, admin, auditlog, free_port, oidc, read_write_key, wait_ready};
use futures_util::FutureExt;
use reqwest::header::{COOKIE, SET_COOKIE};
use serde_json::{Value, json};
use thirtyfour::{By, WebDriver};

/// A server with `acme` (adam, admin, by password; ada, admin; owner, the
/// owner) whose single sign-on is the fixture's provider, and that provider.
struct Setup {
    base: String,
    db: String,
    key: String,
    http: reqwest::Client,
    provider: oidc::Provider,
    _server: Killed,
    _dir: tempfile::TempDir,
}

/// What one sign-in through the provider came to.
struct Outcome {
    status: u16,
    page: String,
    /// The session cookie (`auditlog_session=…`), when one was set.
    session: Option<String>,
    /// The callback URL the provider sent the browser to.
    callback: String,
    binding: String,
}

fn cookie(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .find(|c| c.starts_with(&format!("{name}=")) && c.len() > name.len() + 1)
        .map(str::to_owned)
}

async fn setup(alg: &str) -> Option<Setup> {
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let provider = oidc::start(&[&format!("{base}/sso/callback")], alg).await?;
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("sso.db").display());
    acme_with_admin(&db);
    for (email, role) in [("ada@acme.com", "admin"), ("owner@acme.com", "owner")] {
        admin(
            &db,
            &["member", "add", "--org", "acme", "--email", email, "--role", role],
        );
    }
    let key = read_write_key(&db);
    let server = Killed(
        auditlog()
            .args(["serve", "--database", &db, "--listen", &format!("127.0.0.1:{port}")])
            .args([
                "--public-url",
                &base,
                "--sso-allow-http",
                "--sso-allow-subnet",
                "127.0.0.0/8",
            ])
            .spawn()
            .unwrap(),
    );
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    wait_ready(&http, &base).await;
    let setup = Setup {
        base,
        db,
        key,
        http,
        provider,
        _server: server,
        _dir: dir,
    };
    let issuer = setup.provider.issuer.clone();
    let (status, body) = setup
        .patch_sso("adam@acme.com", json!({"issuer": issuer, "client_id": "auditlog-test", "client_secret": "test-secret", "allowed_domains": ["acme.com"]}))
        .await;
    assert_eq!(status, 200, "{body}");
    Some(setup)
}

impl Setup {
    /// Signs `email` in with the password; the cookie and CSRF token.
    async fn password_session(&self, email: &str, extra: Value) -> (u16, Value, Option<(String, String)>) {
        let mut body = json!({"email": email, "password": PASSWORD});
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        let resp = self
            .http
            .post(format!("{}/v1/session", self.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let session = cookie(&resp, "auditlog_session");
        let answer: Value = resp.json().await.unwrap();
        let csrf = answer["csrf_token"].as_str().map(str::to_owned);
        (status, answer, session.zip(csrf))
    }

    async fn patch_sso(&self, email: &str, sso: Value) -> (u16, Value) {
        let (_, _, session) = self.password_session(email, json!({})).await;
        self.patch_with(&session.expect("signed in"), sso).await
    }

    async fn patch_with(&self, (cookie, csrf): &(String, String), sso: Value) -> (u16, Value) {
        let resp = self
            .http
            .patch(format!("{}/v1/orgs/acme", self.base))
            .header(COOKIE, cookie)
            .header("x-csrf-token", csrf)
            .json(&json!({ "sso": sso }))
            .send()
            .await
            .unwrap();
        (resp.status().as_u16(), resp.json().await.unwrap())
    }

    /// The sign-in page's button for `acme` as `email`.
    async fn start(&self, email: &str) -> reqwest::Response {
        let form = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("org", "acme")
            .append_pair("email", email)
            .append_pair("next", "/")
            .finish();
        self.http
            .post(format!("{}/sso/start", self.base))
            .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(form)
            .send()
            .await
            .unwrap()
    }

    /// The sign-in page's button for `acme`, the provider's login form as
    /// `login`, and the callback.
    async fn sso_sign_in(&self, login: &str) -> Outcome {
        let resp = self.start(login).await;
        let binding = cookie(&resp, "auditlog_sso").expect("the browser binding");
        let authorize = onward(resp).await;
        let callback = self.provider.sign_in(&authorize, login).await;
        self.callback(&callback, &binding).await
    }

    async fn callback(&self, callback: &str, binding: &str) -> Outcome {
        assert!(
            callback.starts_with(&format!("{}/sso/callback?", self.base)),
            "{callback}"
        );
        let resp = self.http.get(callback).header(COOKIE, binding).send().await.unwrap();
        Outcome {
            status: resp.status().as_u16(),
            session: cookie(&resp, "auditlog_session"),
            page: resp.text().await.unwrap(),
            callback: callback.to_owned(),
            binding: binding.to_owned(),
        }
    }

    /// Entries of `event`, newest first.
    async fn entries(&self, event: &str) -> Vec<Value> {
        let resp = self
            .http
            .get(format!("{}/v1/orgs/acme/audit/events?event={event}", self.base))
            .bearer_auth(&self.key)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let body: Value = resp.json().await.unwrap();
        body["entries"].as_array().unwrap().clone()
    }

    async fn whoami(&self, session: &str) -> Value {
        let resp = self
            .http
            .get(format!("{}/v1/session", self.base))
            .header(COOKIE, session)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        resp.json().await.unwrap()
    }

    /// The sign-in failed with `reason`: a page saying `says`, no session,
    /// and the newest failed sign-in records the reason.
    async fn assert_failed(&self, outcome: &Outcome, reason: &str, says: &str) {
        assert_ne!(outcome.status, 200, "{reason}: {}", outcome.page);
        assert!(outcome.session.is_none(), "{reason}: no session");
        assert!(
            outcome.page.contains(says),
            "{reason}: the page says {says:?}: {}",
            outcome.page
        );
        assert!(
            outcome.page.contains("Request "),
            "{reason}: the page names the request"
        );
        let failed = self.entries("session.sign_in_failed").await;
        assert_eq!(failed[0]["details"]["reason"], reason, "{failed:?}");
        assert_eq!(failed[0]["details"]["method"], "sso");
    }
}

/// Where a page that goes on by itself (`<meta http-equiv="refresh">`)
/// sends the browser.
async fn onward(resp: reqwest::Response) -> String {
    assert_eq!(resp.status(), 200);
    let page = resp.text().await.unwrap();
    let start = page.find("content=\"0;url=").expect("a page that goes on") + "content=\"0;url=".len();
    let end = start + page[start..].find('"').unwrap();
    page[start..end].replace("&amp;", "&")
}

fn count(requests: &Value, path: &str) -> u64 {
    requests[path].as_u64().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_sign_in_through_the_provider_with_one_round_trip_once_cached() {
    let Some(s) = setup("RS256").await else { return };
    let outcome = s.sso_sign_in("ada@acme.com").await;
    assert_eq!(outcome.status, 200, "{}", outcome.page);
    assert!(outcome.page.contains("url=/orgs/acme/audit"), "{}", outcome.page);
    let session = outcome.session.expect("a session");
    assert_eq!(s.whoami(&session).await["email"], "ada@acme.com");
    let signed_in = s.entries("session.signed_in").await;
    assert_eq!(
        signed_in[0]["details"],
        json!({"member": "ada@acme.com", "method": "sso"})
    );
    assert_eq!(signed_in[0]["actor"]["id"], "ada@acme.com");

    // Discovery and keys are cached: the next sign-in costs the token
    // request alone (the authorization and login are the browser's).
    let before = s.provider.requests().await;
    assert_eq!(count(&before, "/.well-known/openid-configuration"), 1, "{before}");
    assert_eq!(count(&before, "/jwks"), 1, "{before}");
    let again = s.sso_sign_in("ada@acme.com").await;
    assert_eq!(again.status, 200, "{}", again.page);
    let after = s.provider.requests().await;
    for path in ["/.well-known/openid-configuration", "/jwks"] {
        assert_eq!(count(&after, path), count(&before, path), "{path}: {after}");
    }
    assert_eq!(count(&after, "/token"), count(&before, "/token") + 1, "{after}");

    // A rotated key is fetched once, when a token names it.
    s.provider.rotate().await;
    let rotated = s.sso_sign_in("ada@acme.com").await;
    assert_eq!(rotated.status, 200, "{}", rotated.page);
    assert_eq!(count(&s.provider.requests().await, "/jwks"), 2);

    // The callback is single use.
    let replayed = s.callback(&outcome.callback, &outcome.binding).await;
    assert_eq!(replayed.status, 400);
    assert!(replayed.session.is_none());
    assert!(
        replayed.page.contains("already used or has expired"),
        "{}",
        replayed.page
    );
    let failed = s.entries("session.sign_in_failed").await;
    assert_eq!(failed[0]["details"]["reason"], "replayed_state", "{failed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn es256_tokens_are_accepted() {
    let Some(s) = setup("ES256").await else { return };
    let outcome = s.sso_sign_in("ada@acme.com").await;
    assert_eq!(outcome.status, 200, "{}", outcome.page);
    assert!(outcome.session.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_token_is_refused_with_a_page_and_a_record() {
    let Some(s) = setup("RS256").await else { return };
    for (mode, reason, says) in [
        ("wrong_key", "bad_signature", "signature does not verify"),
        ("expired", "token_expired", "has expired"),
        ("wrong_audience", "wrong_audience", "another application"),
        ("wrong_issuer", "wrong_issuer", "another provider"),
        ("wrong_nonce", "wrong_nonce", "nonce does not match"),
        ("unverified_email", "unverified_email", "has not verified"),
        ("no_email", "no_email", "sent no email"),
    ] {
        s.provider.set_mode(mode).await;
        let outcome = s.sso_sign_in("ada@acme.com").await;
        s.assert_failed(&outcome, reason, says).await;
    }
    s.provider.set_mode("normal").await;

    // The person, though vouched for, is not someone acme admits.
    let outcome = s.sso_sign_in("eve@evil.example").await;
    s.assert_failed(&outcome, "domain_not_allowed", "not in a domain").await;
    let outcome = s.sso_sign_in("new@acme.com").await;
    s.assert_failed(&outcome, "not_a_member", "not a member").await;

    // The provider says no.
    s.provider.fail_next("access_denied").await;
    let resp = s.start("ada@acme.com").await;
    let binding = cookie(&resp, "auditlog_sso").unwrap();
    let authorize = onward(resp).await;
    let denied = s.provider.sign_in(&authorize, "ada@acme.com").await;
    let outcome = s.callback(&denied, &binding).await;
    s.assert_failed(&outcome, "provider_error", "access_denied").await;

    // A callback opened in another browser (no binding cookie, or another's).
    let resp = s.start("ada@acme.com").await;
    let authorize = onward(resp).await;
    let callback = s.provider.sign_in(&authorize, "ada@acme.com").await;
    let outcome = s.callback(&callback, "auditlog_sso=someone-elses").await;
    s.assert_failed(&outcome, "other_browser", "another browser").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_secret_an_unreachable_issuer_and_a_non_provider_are_explained() {
    let Some(s) = setup("RS256").await else { return };
    let issuer = s.provider.issuer.clone();
    let (status, body) = s
        .patch_sso(
            "adam@acme.com",
            json!({"issuer": issuer, "client_id": "auditlog-test", "client_secret": "not-the-secret"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let outcome = s.sso_sign_in("ada@acme.com").await;
    s.assert_failed(&outcome, "code_refused", "check the client id and secret")
        .await;

    for (issuer, reason, says) in [
        (
            format!("http://127.0.0.1:{}", free_port()),
            "provider_unreachable",
            "cannot be reached",
        ),
        (
            oidc::start_not_oidc().await.unwrap().issuer.clone(),
            "not_a_provider",
            "not an OpenID Connect provider",
        ),
    ] {
        let (status, body) = s
            .patch_sso(
                "adam@acme.com",
                json!({"issuer": issuer, "client_id": "auditlog-test", "client_secret": "x"}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let resp = s.start("ada@acme.com").await;
        let outcome = Outcome {
            status: resp.status().as_u16(),
            session: cookie(&resp, "auditlog_session"),
            page: resp.text().await.unwrap(),
            callback: String::new(),
            binding: String::new(),
        };
        s.assert_failed(&outcome, reason, says).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issuers_follow_the_operators_rules() {
    let Some(s) = setup("RS256").await else { return };
    // Allowed here by --sso-allow-http and --sso-allow-subnet; a private
    // address outside the allowed subnet is refused when it is saved.
    let (status, body) = s
        .patch_sso(
            "adam@acme.com",
            json!({"issuer": "http://10.1.2.3", "client_id": "c", "client_secret": "x"}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(body.to_string().contains("not a public address"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_people_are_provisioned_only_when_asked() {
    let Some(s) = setup("RS256").await else { return };
    let issuer = s.provider.issuer.clone();
    let (status, body) = s
        .patch_sso("adam@acme.com", json!({"issuer": issuer, "client_id": "auditlog-test", "allowed_domains": ["acme.com"], "provision_role": "viewer"}))
        .await;
    assert_eq!(status, 200, "{body}");
    let outcome = s.sso_sign_in("new@acme.com").await;
    assert_eq!(outcome.status, 200, "{}", outcome.page);
    let provisioned = s.entries("organization.member_provisioned").await;
    assert_eq!(
        provisioned[0]["details"],
        json!({"member": "new@acme.com", "role": "viewer"})
    );
    let me = s.whoami(&outcome.session.unwrap()).await;
    assert_eq!(me["organizations"][0]["role"], "viewer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enforcement_needs_an_sso_session_and_then_refuses_passwords() {
    let Some(s) = setup("RS256").await else { return };
    let issuer = s.provider.issuer.clone();
    let enforce =
        json!({"issuer": issuer, "client_id": "auditlog-test", "allowed_domains": ["acme.com"], "enforced": true});

    // Not from a password session, so nobody locks everyone out.
    let (status, body) = s.patch_sso("ada@acme.com", enforce.clone()).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "sso_session_required", "{body}");

    let outcome = s.sso_sign_in("ada@acme.com").await;
    let session = outcome.session.unwrap();
    let csrf = s.whoami(&session).await["csrf_token"].as_str().unwrap().to_owned();
    let (status, body) = s.patch_with(&(session.clone(), csrf), enforce).await;
    assert_eq!(status, 200, "{body}");

    // Passwords no longer get anyone into acme; API keys are unaffected.
    let (status, body, _) = s.password_session("adam@acme.com", json!({})).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "sso_required");
    assert!(body["error"]["message"].as_str().unwrap().contains("single sign-on"));
    let failed = s.entries("session.sign_in_failed").await;
    assert_eq!(failed[0]["details"]["reason"], "sso_required");
    assert_eq!(failed[0]["details"]["method"], "password");
    assert_eq!(s.whoami(&session).await["email"], "ada@acme.com");

    // An owner's break-glass password works and says so; an admin's does not.
    let (status, body, _) = s.password_session("adam@acme.com", json!({"break_glass": true})).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "break_glass_not_allowed");
    let (status, body, glass) = s.password_session("owner@acme.com", json!({"break_glass": true})).await;
    assert_eq!(status, 200, "{body}");
    let signed_in = s.entries("session.signed_in").await;
    assert_eq!(
        signed_in[0]["details"],
        json!({"member": "owner@acme.com", "method": "break_glass"})
    );
    let (cookie, _) = glass.unwrap();
    let resp = s
        .http
        .get(format!("{}/v1/orgs/acme", s.base))
        .header(COOKIE, cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_signs_in_at_the_providers_page_and_lands_on_audit() {
    let Some(tools) = tools() else { return };
    let Some(s) = setup("RS256").await else { return };
    let downloads = tempfile::tempdir().unwrap();
    let (_driver, c) = start_browser(&tools, downloads.path()).await;
    let outcome = std::panic::AssertUnwindSafe(browser_steps(&c, &s)).catch_unwind().await;
    let _ = c.quit().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// Through the provider, as `login` at its login page when it shows one (a
/// provider that remembers the person skips it); back at auditlog after.
/// Whether the login page was shown.
async fn provider_login(c: &WebDriver, s: &Setup, login: &str) -> bool {
    let issuer = s.provider.issuer.clone();
    let back = format!("location.origin === '{}' && document.readyState === 'complete'", s.base);
    click(c, "form.sso button").await;
    wait_until(c, &format!("(location.origin === '{issuer}' && document.querySelector('input[name=login]')) || ({back} && location.pathname !== '/login')")).await;
    let shown = url(c).await.as_str().starts_with(&issuer);
    if shown {
        c.find(By::Css("input[name=login]"))
            .await
            .unwrap()
            .send_keys(login)
            .await
            .unwrap();
        c.find(By::Css("input[name=password]"))
            .await
            .unwrap()
            .send_keys("any")
            .await
            .unwrap();
        click(c, "button[type=submit]").await;
    }
    wait_until(c, &back).await;
    shown
}

async fn browser_steps(c: &WebDriver, s: &Setup) {
    // Anonymous, sent to sign in; the email first, then the provider.
    c.goto(&format!("{}/orgs/acme/audit", s.base)).await.unwrap();
    assert_eq!(url(c).await.path(), "/login");
    continue_with_email(c, "ada@acme.com").await;
    let button = c.find(By::Css("form.sso button")).await.unwrap().text().await.unwrap();
    assert_eq!(button, "Continue to Acme with single sign-on");
    assert_accessible(c, "the sign-in page offering single sign-on").await;
    assert!(
        provider_login(c, s, "ada@acme.com").await,
        "the provider shows its login page"
    );
    wait_until(
        c,
        "location.pathname === '/orgs/acme/audit' && document.querySelector('#rows')",
    )
    .await;
    let who = c.find(By::Css(".who")).await.unwrap().text().await.unwrap();
    assert_eq!(who, "ada@acme.com");

    // A refusal is a page that says why.
    click(c, "form.signout button").await;
    wait_until(c, "location.pathname === '/login'").await;
    s.provider.set_mode("wrong_key").await;
    continue_with_email(c, "ada@acme.com").await;
    provider_login(c, s, "ada@acme.com").await;
    let h1 = c.find(By::Css("h1")).await.unwrap().text().await.unwrap();
    assert_eq!(h1, "Single sign-on did not work");
    let alert = c.find(By::Css("[role=alert]")).await.unwrap().text().await.unwrap();
    assert!(alert.contains("signature does not verify"), "{alert}");
    assert_accessible(c, "the page of a failed single sign-on").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_line_configures_sso_as_the_api_does() {
    let Some(s) = setup("RS256").await else { return };
    let sso = |args: &[&str], secret: Option<&str>| {
        let mut command = auditlog();
        command.args(["org", "sso", "acme", "--database", &s.db]).args(args);
        if let Some(secret) = secret {
            command.env("AUDITLOG_SSO_CLIENT_SECRET", secret);
        }
        command.output().unwrap()
    };
    // A wrong secret first, then the right one: the sign-in follows.
    let issuer = s.provider.issuer.clone();
    let args = [
        "--issuer",
        &issuer,
        "--client-id",
        "auditlog-test",
        "--allowed-domain",
        "acme.com",
    ];
    assert!(sso(&args, Some("not-the-secret")).status.success());
    let outcome = s.sso_sign_in("ada@acme.com").await;
    assert_eq!(outcome.status, 401, "{}", outcome.page);
    let out = sso(&args, Some("test-secret"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let outcome = s.sso_sign_in("ada@acme.com").await;
    assert_eq!(outcome.status, 200, "{}", outcome.page);

    // Recorded as the operator's, the secret never in it.
    let configured = s.entries("organization.sso_configured").await;
    assert_eq!(configured[0]["submitted_by"]["kind"], "cli");
    assert_eq!(configured[0]["details"]["client_secret_changed"], true);
    assert!(!configured[0].to_string().contains("test-secret"));

    // The API's rules: a bad value is refused naming it, and nothing changes.
    let out = sso(&["--issuer", "https:///x", "--client-id", "c"], None);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("issuer"), "{out:?}");
    let out = sso(&["--remove"], None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let resp = s.start("ada@acme.com").await;
    assert_eq!(resp.status(), 400);
    assert!(resp.text().await.unwrap().contains("no single sign-on configured"));
}

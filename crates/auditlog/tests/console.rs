//! The management pages in real Chromium against `auditlog demo`: a
//! member sees only what a member may do; the owner invites a person,
//! changes a role and removes a member, creates a key (shown once, with a
//! copy button) and revokes it, and creates, renames and deletes a project
//! with the keyboard alone. Each change is checked in the log through the
//! API; axe-core finds no violation on any page, at full width or 375 px.
//!
//! A second run, on `auditlog serve` allowed to deliver to loopback, adds
//! an endpoint with the event picker against a real local receiver, sends a
//! test event, redelivers and replays, and opens Settings and the chart;
//! then adds a SIEM stream (a refused one said in place, the client key's
//! box left empty), sees its failure in words, disables it by keyboard and
//! deletes it, axe-core clean at full width and at 375 px.
//!
//! Needs Debian's `chromium` and `chromium-driver`, like `browser.rs`.

mod common;

use common::browser::*;
use common::demo::Demo;
use common::{Killed, acme_with_admin, auditlog, free_port, read_write_key, wait_ready, webhook_receiver};

use futures_util::FutureExt;
use serde_json::{Value, json};
use thirtyfour::{By, Key, WebDriver};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_in_chromium() {
    let Some(tools) = tools() else { return };
    auditlog_server::init_tls();
    let demo = Demo::start();
    let downloads = tempfile::tempdir().unwrap();
    let (_driver, c) = start_browser(&tools, downloads.path()).await;
    let outcome = std::panic::AssertUnwindSafe(steps(&c, &demo)).catch_unwind().await;
    let _ = c.quit().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

async fn steps(c: &WebDriver, demo: &Demo) {
    a_member_sees_what_a_member_may_do(c, demo).await;
    c.goto(&format!("{}/orgs/acme/members", demo.base)).await.unwrap();
    click(c, "form.signout button").await;
    wait_until(c, "location.pathname === '/login'").await;
    sign_in(c, &demo.base, &demo.owner).await;
    members(c, demo).await;
    api_keys(c, demo).await;
    projects_by_keyboard(c, demo).await;
    narrow(c, demo).await;
}

/// The newest entry of `event`, through the API.
async fn newest(demo: &Demo, event: &str) -> Value {
    let page = demo
        .api(&format!("/v1/orgs/acme/audit/events?event={event}&limit=1"))
        .await;
    page["entries"][0].clone()
}

fn assert_by(entry: &Value, email: &str) {
    assert_eq!(entry["actor"]["id"], email, "{entry}");
    assert_eq!(
        entry["submitted_by"],
        json!({"kind": "session", "id": email}),
        "{entry}"
    );
}

/// Waits for the page a form post answered with.
async fn submitted(c: &WebDriver, css: &str) {
    js(c, "window.__before = true; return 1;").await;
    click(c, css).await;
    wait_until(c, "!window.__before && document.readyState === 'complete'").await;
}

async fn text(c: &WebDriver, css: &str) -> String {
    c.find(By::Css(css)).await.unwrap().text().await.unwrap()
}

async fn a_member_sees_what_a_member_may_do(c: &WebDriver, demo: &Demo) {
    sign_in(c, &demo.base, &demo.member).await;
    assert_eq!(url(c).await.path(), "/orgs/acme/members", "a member starts on Members");
    let nav = text(c, "nav[aria-label=Platform]").await;
    assert!(!nav.contains("Audit") && nav.contains("API keys"), "{nav}");
    assert!(text(c, "#add-member").await.contains("Inviting people:"));
    assert_accessible(c, "Members as a member").await;
    c.goto(&format!("{}/orgs/acme/api-keys", demo.base)).await.unwrap();
    let disabled = js(
        c,
        "return Array.from(document.querySelectorAll('input[name=scope]')).map(i => [i.value, i.disabled]);",
    )
    .await;
    assert_eq!(
        disabled,
        json!([["audit:write", false], ["audit:read", true], ["admin", true]])
    );
    assert!(
        js(c, "return document.querySelectorAll('a[href$=\"/revoke\"]').length;").await == json!(0),
        "a member revokes nothing"
    );
    assert_accessible(c, "API keys as a member").await;
}

async fn members(c: &WebDriver, demo: &Demo) {
    let owner = &demo.owner.0;
    c.goto(&format!("{}/orgs/acme/members", demo.base)).await.unwrap();
    save_screenshot("console-members.png", &c.screenshot_as_png().await.unwrap());
    assert_accessible(c, "Members").await;

    set_field(c, "new-email", "li.wei@acme.com").await;
    js(c, "document.getElementById('new-role').value = 'admin'; return 1;").await;
    submitted(c, "#add-member button[type=submit]").await;
    let link = js(
        c,
        "return document.getElementById('invitation-link').getAttribute('href');",
    )
    .await;
    assert!(link.as_str().unwrap().starts_with("/invitation?token="), "{link}");
    assert_accessible(c, "an invitation shown once").await;
    let invited = newest(demo, "organization.member_invited").await;
    assert_by(&invited, owner);
    assert_eq!(invited["details"]["member"], "li.wei@acme.com");

    let member = &demo.member.0;
    let form = format!("form[action='/orgs/acme/members/{}/role']", member.replace('@', "%40"));
    js(
        c,
        &format!("document.querySelector(\"{form} select\").value = 'viewer'; return 1;"),
    )
    .await;
    submitted(c, &format!("{form} button")).await;
    assert!(text(c, "[role=status]").await.contains("is now viewer"));
    let changed = newest(demo, "organization.member_role_changed").await;
    assert_by(&changed, owner);
    assert_eq!(changed["details"]["new_role"], "viewer");

    click(
        c,
        &format!("a[href='/orgs/acme/members/{}/remove']", member.replace('@', "%40")),
    )
    .await;
    wait_until(c, "document.querySelector('h1').textContent.startsWith('Remove')").await;
    assert_accessible(c, "the confirmation of a removal").await;
    submitted(c, "form button.danger").await;
    assert!(text(c, "[role=status]").await.contains("Removed"));
    assert_by(&newest(demo, "organization.member_removed").await, owner);
}

async fn api_keys(c: &WebDriver, demo: &Demo) {
    c.goto(&format!("{}/orgs/acme/api-keys", demo.base)).await.unwrap();
    assert_accessible(c, "API keys").await;
    set_field(c, "key-name", "reporting").await;
    click(c, "#scope-audit-read").await;
    submitted(c, "#create-key button[type=submit]").await;
    let secret = js(c, "return document.getElementById('new-key').value;").await;
    let secret = secret.as_str().unwrap().to_owned();
    assert!(secret.starts_with("lqt_"), "{secret}");
    assert_eq!(
        js(c, "return document.querySelector('button.copy').hidden;").await,
        json!(false),
        "the copy button shows where the clipboard can be written"
    );
    save_screenshot("console-api-key-created.png", &c.screenshot_as_png().await.unwrap());
    assert_accessible(c, "a key shown once").await;
    let created = newest(demo, "api_key.created").await;
    assert_by(&created, &demo.owner.0);
    assert_eq!(created["details"]["scopes"], json!(["audit:write", "audit:read"]));
    let prefix = created["details"]["prefix"].as_str().unwrap().to_owned();
    assert_eq!(key_status(demo, &secret).await, 200);

    c.goto(&format!("{}/orgs/acme/api-keys", demo.base)).await.unwrap();
    assert!(
        !js(c, "return document.body.innerHTML;")
            .await
            .as_str()
            .unwrap()
            .contains(&secret)
    );
    click(c, &format!("a[href='/orgs/acme/api-keys/{prefix}/revoke']")).await;
    wait_until(c, "document.querySelector('h1').textContent.startsWith('Revoke')").await;
    assert_accessible(c, "the confirmation of a revocation").await;
    submitted(c, "form button.danger").await;
    assert_by(&newest(demo, "api_key.revoked").await, &demo.owner.0);
    assert_eq!(key_status(demo, &secret).await, 401, "the revoked key is refused");
}

async fn key_status(demo: &Demo, key: &str) -> u16 {
    reqwest::Client::new()
        .get(format!("{}/v1/orgs/acme/audit/events?limit=1", demo.base))
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Tab until the element with `id` has the focus.
async fn tab_to(c: &WebDriver, id: &str) {
    for _ in 0..60 {
        if js(c, "return document.activeElement && document.activeElement.id;").await == json!(id) {
            return;
        }
        c.active_element().await.unwrap().send_keys(Key::Tab).await.unwrap();
    }
    panic!("#{id} is not reachable with Tab");
}

async fn projects_by_keyboard(c: &WebDriver, demo: &Demo) {
    c.goto(&format!("{}/orgs/acme/projects", demo.base)).await.unwrap();
    tab_to(c, "project-name").await;
    let field = c.active_element().await.unwrap();
    field.send_keys("Made by keyboard").await.unwrap();
    js(c, "window.__before = true; return 1;").await;
    field.send_keys(Key::Enter).await.unwrap();
    wait_until(c, "!window.__before && document.readyState === 'complete'").await;
    assert!(text(c, "[role=status]").await.contains("Made by keyboard"));
    let created = newest(demo, "project.created").await;
    assert_by(&created, &demo.owner.0);
    let id = created["resource"]["id"].as_str().unwrap().to_owned();
    save_screenshot("console-projects.png", &c.screenshot_as_png().await.unwrap());
    assert_accessible(c, "Projects").await;

    tab_to(c, &format!("name-{id}")).await;
    let field = c.active_element().await.unwrap();
    field.clear().await.unwrap();
    field.send_keys("Renamed by keyboard").await.unwrap();
    js(c, "window.__before = true; return 1;").await;
    field.send_keys(Key::Enter).await.unwrap();
    wait_until(c, "!window.__before && document.readyState === 'complete'").await;
    assert_eq!(
        newest(demo, "project.renamed").await["details"]["new_name"],
        "Renamed by keyboard"
    );

    // Delete: Tab to its link, Enter, then Tab to the confirmation's button.
    let delete = format!("a[href='/orgs/acme/projects/{id}/delete']");
    js(
        c,
        &format!("document.querySelector(\"{delete}\").id = 'delete-link'; return 1;"),
    )
    .await;
    tab_to(c, "delete-link").await;
    c.active_element().await.unwrap().send_keys(Key::Enter).await.unwrap();
    wait_until(c, "document.querySelector('h1').textContent.startsWith('Delete')").await;
    js(
        c,
        "document.querySelector('form button.danger').id = 'confirm'; window.__before = true; return 1;",
    )
    .await;
    tab_to(c, "confirm").await;
    c.active_element().await.unwrap().send_keys(Key::Enter).await.unwrap();
    wait_until(c, "!window.__before && document.readyState === 'complete'").await;
    assert_by(&newest(demo, "project.deleted").await, &demo.owner.0);
}

async fn narrow(c: &WebDriver, demo: &Demo) {
    c.set_window_rect(0, 0, 375, 800).await.unwrap();
    for page in ["members", "api-keys", "projects"] {
        c.goto(&format!("{}/orgs/acme/{page}", demo.base)).await.unwrap();
        assert_eq!(
            js(
                c,
                "return document.documentElement.scrollWidth <= window.innerWidth + 1;"
            )
            .await,
            json!(true),
            "{page} fits 375 px"
        );
        assert_accessible(c, &format!("{page} at 375 px")).await;
    }
    save_screenshot("console-members-375.png", &c.screenshot_as_png().await.unwrap());
    c.set_window_rect(0, 0, 1280, 1000).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhooks_and_settings_pages_in_chromium() {
    let Some(tools) = tools() else { return };
    auditlog_server::init_tls();
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("console.db").display());
    acme_with_admin(&db);
    let key = read_write_key(&db);
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let _server = Killed(
        auditlog()
            .args(["serve", "--database", &db, "--listen", &format!("127.0.0.1:{port}")])
            .args(["--webhook-allow-http", "--webhook-allow-subnet", "127.0.0.0/8"])
            .args(["--stream-allow-plaintext", "--stream-allow-subnet", "127.0.0.0/8"])
            .spawn()
            .unwrap(),
    );
    wait_ready(&reqwest::Client::new(), &base).await;
    let receiver_port = free_port();
    let deliveries = webhook_receiver(receiver_port).await;
    let downloads = tempfile::tempdir().unwrap();
    let (_driver, c) = start_browser(&tools, downloads.path()).await;
    let run = Served {
        base,
        key,
        receiver: format!("http://127.0.0.1:{receiver_port}/hook"),
    };
    let outcome = std::panic::AssertUnwindSafe(async {
        webhook_steps(&c, &run, deliveries).await;
        stream_steps(&c, &run).await;
    })
    .catch_unwind()
    .await;
    let _ = c.quit().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

struct Served {
    base: String,
    key: String,
    receiver: String,
}

impl Served {
    async fn newest(&self, event: &str) -> Value {
        let page: Value = reqwest::Client::new()
            .get(format!("{}/v1/orgs/acme/audit/events?event={event}&limit=1", self.base))
            .bearer_auth(&self.key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        page["entries"][0].clone()
    }

    async fn ingest(&self, n: usize) {
        for i in 0..n {
            let resp = reqwest::Client::new()
                .post(format!("{}/v1/orgs/acme/audit/events", self.base))
                .bearer_auth(&self.key)
                .json(&json!({"event": "guardrail.created", "actor": "svc", "resource": {"type": "guardrail", "id": format!("g{i}")}, "details": {"name": "PII", "type": "pii"}}))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 201);
        }
    }
}

async fn received(deliveries: &mut common::Deliveries) -> Value {
    let (_, body) = tokio::time::timeout(std::time::Duration::from_secs(30), deliveries.recv())
        .await
        .expect("a delivery within 30 s")
        .unwrap();
    serde_json::from_slice(&body).unwrap()
}

async fn webhook_steps(c: &WebDriver, run: &Served, mut deliveries: common::Deliveries) {
    let admin = ("adam@acme.com".to_owned(), common::PASSWORD.to_owned());
    sign_in(c, &run.base, &admin).await;
    c.goto(&format!("{}/orgs/acme/webhooks", run.base)).await.unwrap();
    assert_accessible(c, "Webhooks").await;

    // A refused URL is said in place, and what was typed stays.
    set_field(c, "webhook-url", "http://10.9.8.7/hook").await;
    set_field(c, "webhook-description", "SIEM").await;
    click(c, "#event-guardrail--").await;
    submitted(c, "#create-webhook button[type=submit]").await;
    assert!(text(c, "[role=alert]").await.contains("10.9.8.7"));
    assert_eq!(
        js(c, "return document.getElementById('event-guardrail--').checked;").await,
        json!(true)
    );
    assert_accessible(c, "a refused endpoint").await;

    set_field(c, "webhook-url", &run.receiver).await;
    submitted(c, "#create-webhook button[type=submit]").await;
    let secret = js(c, "return document.getElementById('new-secret').value;").await;
    assert!(secret.as_str().unwrap().starts_with("whsec_"), "{secret}");
    save_screenshot("console-webhook-created.png", &c.screenshot_as_png().await.unwrap());
    assert_accessible(c, "a new endpoint's secret").await;
    let created = run.newest("webhook.created").await;
    assert_by(&created, "adam@acme.com");
    let id = created["resource"]["id"].as_str().unwrap().to_owned();

    // A test event reaches the real receiver, and its answer is shown.
    click(c, &format!("a[href='/orgs/acme/webhooks/{id}']")).await;
    wait_until(c, "document.querySelector('h1').textContent.startsWith('Endpoint')").await;
    submitted(c, "form[action$='/test'] button").await;
    assert!(
        text(c, "#test-result")
            .await
            .contains("accepted the test event: HTTP 200")
    );
    assert_eq!(received(&mut deliveries).await["type"], "webhook.test");

    // Entries go out; one is redelivered; two are replayed.
    run.ingest(3).await;
    let mut seqs = Vec::new();
    for _ in 0..3 {
        seqs.push(received(&mut deliveries).await["data"]["seq"].as_i64().unwrap());
    }
    // Opened afresh: reloading the test's answer would post it again.
    c.goto(&format!("{}/orgs/acme/webhooks/{id}", run.base)).await.unwrap();
    wait_until(c, "document.querySelectorAll('#deliveries tbody tr').length === 3 && !document.body.innerText.includes('pending')").await;
    save_screenshot("console-webhook.png", &c.screenshot_as_png().await.unwrap());
    assert_accessible(c, "an endpoint with its deliveries").await;
    submitted(c, "#deliveries tbody tr:last-child button").await;
    assert!(text(c, "[role=status]").await.contains("is due again"));
    assert_by(&run.newest("webhook.redelivered").await, "adam@acme.com");
    assert_eq!(received(&mut deliveries).await["data"]["seq"].as_i64(), Some(seqs[0]));
    set_field(c, "from-seq", &seqs[1].to_string()).await;
    submitted(c, "#replay button").await;
    assert!(text(c, "#replay-result").await.starts_with("2 entries from seq"));
    let mut again = vec![
        received(&mut deliveries).await["data"]["seq"].as_i64().unwrap(),
        received(&mut deliveries).await["data"]["seq"].as_i64().unwrap(),
    ];
    again.sort_unstable();
    assert_eq!(again, seqs[1..]);
    assert_by(&run.newest("webhook.replayed").await, "adam@acme.com");

    endpoint_changes(c, run, &id).await;

    // Settings, and the chart's bar narrowing the Audit page to its day.
    c.goto(&format!("{}/orgs/acme/settings", run.base)).await.unwrap();
    save_screenshot("console-settings.png", &c.screenshot_as_png().await.unwrap());
    assert_accessible(c, "Settings").await;
    set_field(c, "name", "Acme Corp").await;
    submitted(c, "#org-name button").await;
    assert_eq!(
        run.newest("organization.renamed").await["details"]["new_name"],
        "Acme Corp"
    );
    c.goto(&format!("{}/orgs/acme/audit", run.base)).await.unwrap();
    assert_accessible(c, "the Audit page with its chart").await;
    click(c, "figure.chart svg a").await;
    wait_until(
        c,
        "location.search.includes('range=custom') && document.readyState === 'complete'",
    )
    .await;
    let day = js(c, "return new URLSearchParams(location.search).get('from');").await;
    let rows = js(
        c,
        "return Array.from(document.querySelectorAll('#rows time')).map(t => t.getAttribute('datetime').slice(0, 10));",
    )
    .await;
    assert!(rows.as_array().unwrap().iter().all(|d| *d == day), "{day} {rows}");
}

/// Editing, disabling and enabling, rotating and deleting an endpoint.
async fn endpoint_changes(c: &WebDriver, run: &Served, id: &str) {
    let page = format!("{}/orgs/acme/webhooks/{id}", run.base);
    c.goto(&page).await.unwrap();
    click(c, "#edit-webhook details.events summary").await;
    click(c, "#edit-webhook #event-alert--").await;
    submitted(c, "#edit-webhook > button[type=submit]").await;
    let updated = run.newest("webhook.updated").await;
    assert_by(&updated, "adam@acme.com");
    assert_eq!(
        updated["details"]["changes"]["events"]["new"],
        json!(["alert.*", "guardrail.*"])
    );
    submitted(c, "form[action$='/disable'] button").await;
    assert_by(&run.newest("webhook.disabled").await, "adam@acme.com");
    submitted(c, "form[action$='/enable'] button").await;
    click(c, "a[href$='/rotate']").await;
    wait_until(c, "document.querySelector('h1').textContent.startsWith('Rotate')").await;
    assert_accessible(c, "the confirmation of a rotation").await;
    submitted(c, "form button.danger").await;
    let secret = js(c, "return document.getElementById('new-secret').value;").await;
    assert!(secret.as_str().unwrap().starts_with("whsec_"));
    assert_by(&run.newest("webhook.secret_rotated").await, "adam@acme.com");
    click(c, "a[href$='/delete']").await;
    wait_until(c, "document.querySelector('h1').textContent.startsWith('Delete')").await;
    submitted(c, "form button.danger").await;
    assert_by(&run.newest("webhook.deleted").await, "adam@acme.com");
}

/// The Streams page: a refused stream said in place with what was typed
/// kept but the client key; a stream to a port nobody listens on, its
/// failure shown in words; the page at 375 px; disabling by keyboard;
/// deleting after a confirmation.
async fn stream_steps(c: &WebDriver, run: &Served) {
    let page = format!("{}/orgs/acme/streams", run.base);
    c.goto(&page).await.unwrap();
    assert_accessible(c, "Streams").await;
    a_refused_stream(c).await;
    let id = a_failing_stream(c, run, &page).await;
    stream_narrow(c, &page).await;

    js(
        c,
        &format!("document.querySelector(\"form[action$='/streams/{id}/disable'] button\").id = 'disable'; window.__before = true; return 1;"),
    )
    .await;
    tab_to(c, "disable").await;
    c.active_element().await.unwrap().send_keys(Key::Enter).await.unwrap();
    wait_until(c, "!window.__before && document.readyState === 'complete'").await;
    assert!(text(c, "#streams tbody tr").await.contains("Disabled"));
    let disabled = run.newest("stream.updated").await;
    assert_by(&disabled, "adam@acme.com");
    assert_eq!(disabled["details"]["changes"]["enabled"]["new"], false);

    click(c, &format!("a[href='/orgs/acme/streams/{id}/delete']")).await;
    wait_until(c, "document.querySelector('h1').textContent.startsWith('Delete')").await;
    assert_accessible(c, "the confirmation of a stream's deletion").await;
    submitted(c, "form button.danger").await;
    assert!(text(c, "[role=status]").await.contains("Deleted stream"));
    assert_by(&run.newest("stream.deleted").await, "adam@acme.com");
}

async fn a_refused_stream(c: &WebDriver) {
    set_field(c, "stream-url", "syslog+tls://10.9.8.7:6514").await;
    set_field(c, "stream-events", "guardrail.*").await;
    click(c, "#create-stream details.tls summary").await;
    set_field(c, "stream-key", "-----BEGIN PRIVATE KEY-----").await;
    submitted(c, "#create-stream button[type=submit]").await;
    assert!(text(c, "[role=alert]").await.contains("10.9.8.7"));
    assert_eq!(
        js(
            c,
            "return ['stream-events', 'stream-key'].map(id => document.getElementById(id).value);"
        )
        .await,
        json!(["guardrail.*", ""]),
        "what was typed stays, but the key"
    );
    save_screenshot("console-stream-refused.png", &c.screenshot_as_png().await.unwrap());
    assert_accessible(c, "a refused stream").await;
}

/// Adds a stream to a loopback port nobody listens on, by keyboard as far
/// as the URL, and waits for its failure to be shown; returns its id.
async fn a_failing_stream(c: &WebDriver, run: &Served, page: &str) -> String {
    let nobody = free_port();
    tab_to(c, "stream-url").await;
    set_field(c, "stream-url", &format!("syslog+tcp://127.0.0.1:{nobody}")).await;
    js(c, "document.getElementById('stream-format').value = 'ocsf'; return 1;").await;
    submitted(c, "#create-stream button[type=submit]").await;
    assert!(text(c, "[role=status]").await.contains("is added"));
    let created = run.newest("stream.created").await;
    assert_by(&created, "adam@acme.com");
    assert_eq!(created["details"]["format"], "ocsf");
    for _ in 0..100 {
        c.goto(page).await.unwrap();
        if text(c, "#streams").await.contains("Failing") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
    let row = text(c, "#streams tbody tr").await;
    assert!(row.contains("Failing") && row.contains("connecting to"), "{row}");
    save_screenshot("console-streams.png", &c.screenshot_as_png().await.unwrap());
    assert_accessible(c, "Streams with a failing stream").await;
    created["resource"]["id"].as_str().unwrap().to_owned()
}

async fn stream_narrow(c: &WebDriver, page: &str) {
    c.set_window_rect(0, 0, 375, 800).await.unwrap();
    c.goto(page).await.unwrap();
    assert_eq!(
        js(
            c,
            "return document.documentElement.scrollWidth <= window.innerWidth + 1;"
        )
        .await,
        json!(true),
        "Streams fits 375 px"
    );
    save_screenshot("console-streams-375.png", &c.screenshot_as_png().await.unwrap());
    assert_accessible(c, "Streams at 375 px").await;
    c.set_window_rect(0, 0, 1280, 1000).await.unwrap();
    c.goto(page).await.unwrap();
}

//! `spawn_app()` and typed request helpers shared by every API test.

use std::sync::Arc;

use auditlog_domain::api_key::{self, Scope};
use auditlog_domain::change::Change;
use auditlog_domain::org::NewOrg;
use auditlog_domain::store::{AppendRequest, NewApiKey};
use auditlog_domain::{ManualClock, Org, Plan, Role, Store, Timestamp};
use auditlog_postgres::PostgresStore;
use auditlog_server::ServerConfig;
use auditlog_server::config::Runtime;
use auditlog_sqlite::SqliteStore;
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Which store a test binary runs the suite against; its root module says.
#[allow(dead_code)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// One test's database: a SQLite file, or a PostgreSQL database of its own.
#[derive(Debug, Clone)]
pub enum Database {
    Sqlite(std::path::PathBuf),
    Postgres(String),
}

impl Database {
    /// A new, empty database for one test, of the binary's backend.
    pub async fn fresh(dir: &std::path::Path) -> Self {
        match crate::BACKEND {
            Backend::Sqlite => Database::Sqlite(dir.join("audit.db")),
            Backend::Postgres => match auditlog_postgres::testing::fresh_database_url().await {
                Some(url) => Database::Postgres(url),
                None => {
                    // Every test here needs the server, so the whole binary
                    // is skipped, loudly (under CI=true the call above fails
                    // instead).
                    eprintln!(
                        "\n*** SKIPPING the API tests against PostgreSQL: initdb and postgres are not \
                         installed (install PostgreSQL, or set AUDITLOG_TEST_DATABASE_URL) ***\n"
                    );
                    std::process::exit(0);
                }
            },
        }
    }

    /// Opens the store on it, as a (re)starting server would.
    pub async fn open(&self) -> Arc<dyn Store> {
        match self {
            Database::Sqlite(path) => Arc::new(SqliteStore::open(path).expect("open store")),
            Database::Postgres(url) => Arc::new(PostgresStore::connect(url).await.expect("open store")),
        }
    }

    /// Runs SQL straight against the database, as someone with access to
    /// it could, bypassing the service.
    #[allow(dead_code)]
    pub async fn execute(&self, sql: &str) {
        match self {
            Database::Sqlite(path) => {
                let db = auditlog_sqlite::rusqlite::Connection::open(path).unwrap();
                // The service may be writing (its own read records); wait for it.
                db.busy_timeout(std::time::Duration::from_secs(30)).unwrap();
                db.execute_batch(sql).unwrap();
            }
            Database::Postgres(url) => {
                use auditlog_postgres::tokio_postgres;
                let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap();
                let driver = tokio::spawn(connection);
                client.batch_execute(sql).await.unwrap();
                drop(client);
                let _ = driver.await;
            }
        }
    }
}

/// The tests' "now": the clock only moves when a test moves it.
pub const NOW: &str = "2026-06-01T12:00:00Z";

pub struct Keys {
    pub write: String,
    pub read: String,
    pub other_org: String,
}

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub store: Arc<dyn Store>,
    pub clock: ManualClock,
    pub acme: Org,
    #[allow(dead_code)]
    pub globex: Org,
    pub keys: Keys,
    pub db: Database,
    shutdown: CancellationToken,
    server: Option<JoinHandle<std::io::Result<()>>>,
    /// What the server seals webhook secrets with.
    pub sealer: Arc<auditlog_domain::sealed::SecretSealer>,
    /// The server's checkpoint signing key; a restart on the same database
    /// needs it to open the webhook secrets.
    pub checkpoint_key: Arc<auditlog_domain::checkpoint::SigningKey>,
    _dir: tempfile::TempDir,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Creates a key whose last use is "now", so the hourly
/// `api_key.last_used_updated` entry does not appear in tests that count
/// entries; tests of that entry move the clock.
pub async fn key(store: &dyn Store, org: &Org, scopes: Vec<Scope>) -> String {
    let k = api_key::generate();
    store
        .create_api_key(
            NewApiKey {
                org_id: org.id,
                prefix: k.prefix.clone(),
                name: "test".into(),
                scopes,
                hash: k.hash.clone(),
                created_by: None,
            },
            Timestamp(0),
        )
        .await
        .expect("create key");
    let touch = AppendRequest {
        org_id: org.id,
        changes: vec![Change::TouchKey {
            prefix: k.prefix.clone(),
            previous: None,
            at: Timestamp::parse(NOW).unwrap(),
        }],
        entries: vec![],
    };
    let out = store.append(vec![touch], Timestamp(0)).await.expect("touch key");
    out.into_iter().next().unwrap().expect("touched");
    k.secret
}

/// Adds a person with a password to an organization, straight in the store.
pub async fn person(store: &dyn Store, org: &Org, email: &str, role: Role) {
    if store.user(email).await.unwrap().is_none() {
        let hash = auditlog_domain::password::hash(PASSWORD).unwrap();
        store.set_password(email, &hash, Timestamp(0)).await.unwrap();
    }
    let add = AppendRequest {
        org_id: org.id,
        changes: vec![Change::AddMember {
            email: email.into(),
            role,
        }],
        entries: vec![],
    };
    let out = store.append(vec![add], Timestamp(0)).await.expect("add member");
    out.into_iter().next().unwrap().expect("added");
}

pub const PASSWORD: &str = "correct horse battery staple";

/// A signed-in browser: its cookie and CSRF token.
#[derive(Clone)]
pub struct Browser {
    pub cookie: String,
    pub csrf: String,
}

/// Starts a server on an existing database (as after a restart), with the
/// system clock.
pub async fn spawn_on(db: &Database, adjust: impl FnOnce(&mut ServerConfig)) -> Running {
    auditlog_server::init_tls();
    let store = db.open().await;
    let mut config = ServerConfig::default();
    // On the system clock, entries made on the fixed test clock are months
    // old: its purger would take them past the plan's window mid-test.
    config.retention.background = false;
    adjust(&mut config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let shutdown = CancellationToken::new();
    tokio::spawn(auditlog_server::serve(config, store, listener, shutdown.clone()));
    Running { shutdown }
}

/// A server that stops when dropped.
pub struct Running {
    shutdown: CancellationToken,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Starts the server with a configuration the test may adjust.
pub async fn spawn_app_with(adjust: impl FnOnce(&mut ServerConfig)) -> TestApp {
    auditlog_server::init_tls();
    let dir = tempfile::tempdir().expect("temp dir");
    let db = Database::fresh(dir.path()).await;
    let store = db.open().await;
    let clock = ManualClock::new(Timestamp::parse(NOW).unwrap());
    let org = |slug: &'static str, plan| {
        let store = store.clone();
        async move {
            store
                .create_org(
                    NewOrg {
                        slug: slug.into(),
                        name: slug.into(),
                        plan,
                        enterprise_retention_days: None,
                    },
                    Timestamp(0),
                )
                .await
                .expect("create org")
        }
    };
    let acme = org("acme", Plan::Team).await;
    let globex = org("globex", Plan::Scale).await;
    let keys = Keys {
        write: key(store.as_ref(), &acme, vec![Scope::AuditWrite]).await,
        read: key(store.as_ref(), &acme, vec![Scope::AuditRead]).await,
        other_org: key(store.as_ref(), &globex, vec![Scope::AuditWrite, Scope::AuditRead]).await,
    };
    let mut config = ServerConfig {
        runtime: Runtime {
            clock: Arc::new(clock.clone()),
            ..Runtime::default()
        },
        // A read's record lands on its own time (after the recorder's
        // gathering), so in tests that compare the log's size it could land
        // in between; the tests of reads (`reads.rs`) turn recording on.
        record_reads: false,
        ..ServerConfig::default()
    };
    adjust(&mut config);
    let sealer = Arc::new(auditlog_server::secret_sealer(&config));
    let checkpoint_key = config.checkpoints.key.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().unwrap());
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(auditlog_server::serve(
        config,
        store.clone(),
        listener,
        shutdown.clone(),
    ));
    TestApp {
        base,
        client: reqwest::Client::new(),
        store,
        clock,
        acme,
        globex,
        keys,
        db,
        shutdown,
        server: Some(server),
        sealer,
        checkpoint_key,
        _dir: dir,
    }
}

/// A valid event of the catalog, for tests to vary. The producer events
/// (`recorded_by = "ingest"`) are what a client may send; the service's own
/// are here so tests can show that ingest refuses them.
pub fn event(actor: &str, event: &str, resource: (&str, &str)) -> Value {
    let details = match event {
        "guardrail.created" => json!({"name": "PII", "type": "pii"}),
        "guardrail.updated" => json!({"name": "PII", "changes": {"threshold": {"old": 0.5, "new": 0.8}}}),
        "guardrail.enabled" | "guardrail.disabled" | "guardrail.deleted" => json!({"name": "PII"}),
        "alert.created" => json!({"name": "Latency", "condition": "p95_ms > 500"}),
        "alert.updated" => json!({"name": "Latency", "changes": {"threshold": {"old": 500, "new": 800}}}),
        "alert.triggered" => json!({"name": "Latency", "value": 812, "threshold": 500}),
        "alert.deleted" => json!({"name": "Latency"}),
        "evaluation.template_created" | "evaluation.template_deleted" => json!({"name": "Toxicity"}),
        "prompt.version_published" => json!({"prompt": "support-bot", "version": 3}),
        "prompt.version_rolled_back" => json!({"prompt": "support-bot", "from_version": 3, "to_version": 2}),
        "billing.payment_method_changed" => json!({"method": "card"}),
        // The service's own, refused on ingest.
        "project.created" | "project.deleted" => json!({"name": "Prod"}),
        "api_key.created" | "api_key.revoked" => {
            json!({"prefix": "lqt_ab12cd34", "name": "ci", "scopes": ["audit:write"]})
        }
        "organization.member_role_changed" => {
            json!({"member": "bob@acme.com", "old_role": "viewer", "new_role": "admin"})
        }
        other => panic!("the test helper has no details for {other}"),
    };
    json!({
        "event": event,
        "actor": actor,
        "resource": {"type": resource.0, "id": resource.1},
        "details": details,
    })
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// The database opened again (as after a restart), with the keys the
    /// server seals personal values under.
    pub async fn reopen(&self) -> Arc<dyn Store> {
        let store = self.db.open().await;
        let catalog = Arc::new(auditlog_domain::Catalog::builtin());
        let personal = auditlog_domain::personal::PersonalData::new(&self.checkpoint_key.seed(), catalog);
        store.use_personal_data(Arc::new(personal));
        store
    }

    /// Signs in; panics unless it works.
    pub async fn login(&self, email: &str) -> Browser {
        self.login_with(email, PASSWORD).await
    }

    /// Signs in with a given password; panics unless it works.
    pub async fn login_with(&self, email: &str, password: &str) -> Browser {
        let resp = self
            .client
            .post(self.url("/v1/session"))
            .json(&json!({"email": email, "password": password}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "login {email}");
        let set_cookie = resp.headers()["set-cookie"].to_str().unwrap().to_owned();
        let cookie = set_cookie.split(';').next().unwrap().to_owned();
        let body: Value = resp.json().await.unwrap();
        Browser {
            cookie,
            csrf: body["csrf_token"].as_str().unwrap().to_owned(),
        }
    }

    /// A request as a signed-in browser, CSRF header included.
    pub fn as_browser(&self, b: &Browser, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, self.url(path))
            .header("cookie", &b.cookie)
            .header("x-csrf-token", &b.csrf)
    }

    pub async fn post_events(&self, key: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url("/v1/orgs/acme/audit/events"))
            .bearer_auth(key)
            .json(body)
            .send()
            .await
            .expect("request")
    }

    /// Ingests and insists on success; returns the answer's entries.
    pub async fn ingest(&self, body: Value) -> Vec<Value> {
        let resp = self.post_events(&self.keys.write, &body).await;
        let status = resp.status();
        let v: Value = resp.json().await.unwrap();
        assert_eq!(status, 201, "{v}");
        v["entries"].as_array().unwrap().clone()
    }

    pub async fn get(&self, key: &str, path: &str, query: &[(&str, &str)]) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .bearer_auth(key)
            .query(query)
            .send()
            .await
            .expect("request")
    }

    /// Lists acme's entries with the read key; returns (status, body).
    pub async fn list(&self, query: &[(&str, &str)]) -> (u16, Value) {
        let resp = self.get(&self.keys.read, "/v1/orgs/acme/audit/events", query).await;
        (resp.status().as_u16(), resp.json().await.unwrap())
    }

    /// Every entry the filter selects, following cursors.
    pub async fn list_all(&self, query: &[(&str, &str)]) -> Vec<Value> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut q: Vec<(&str, &str)> = query.to_vec();
            if let Some(c) = &cursor {
                q.retain(|(k, _)| *k != "cursor");
                q.push(("cursor", c));
            }
            let (status, body) = self.list(&q).await;
            assert_eq!(status, 200, "{body}");
            out.extend(body["entries"].as_array().unwrap().iter().cloned());
            match body["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => return out,
            }
        }
    }

    pub async fn log_size(&self) -> i64 {
        self.store.log_size(self.acme.id).await.unwrap()
    }

    /// Stops the server gracefully and waits until it has.
    pub async fn stop(&mut self) {
        self.shutdown.cancel();
        if let Some(h) = self.server.take() {
            h.await.expect("server task").expect("server result");
        }
    }
}

/// A request as the signed-in browser `b`, with a JSON body if given;
/// returns the status and the JSON answer (`null` when there is none).
pub async fn send(
    app: &TestApp,
    b: &Browser,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = app.as_browser(b, method, path);
    if let Some(body) = body {
        req = req.json(&body);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// The error body's code, asserting the documented shape.
pub fn error_code(body: &Value) -> String {
    let e = &body["error"];
    assert!(e["message"].is_string(), "error without message: {body}");
    assert!(e["details"].is_array(), "error without details: {body}");
    e["code"].as_str().expect("error code").to_owned()
}

/// A signed-in person's browser, posting forms as a page would (the
/// console's tests), and not following redirects.
pub struct Forms<'a> {
    pub app: &'a TestApp,
    pub b: Browser,
    pub client: reqwest::Client,
}

impl<'a> Forms<'a> {
    pub async fn new(app: &'a TestApp, email: &str) -> Self {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Forms {
            app,
            b: app.login(email).await,
            client,
        }
    }

    pub async fn get(&self, path: &str) -> (u16, String) {
        let resp = self
            .client
            .get(self.app.url(path))
            .header("cookie", &self.b.cookie)
            .send()
            .await
            .unwrap();
        (resp.status().as_u16(), resp.text().await.unwrap())
    }

    /// Posts `fields`, with the session's CSRF token unless told otherwise.
    pub async fn post_with(&self, path: &str, fields: &[(&str, &str)], csrf: Option<&str>) -> (u16, String) {
        let mut body = form_urlencoded::Serializer::new(String::new());
        for (k, v) in fields {
            body.append_pair(k, v);
        }
        if let Some(token) = csrf {
            body.append_pair("csrf_token", token);
        }
        let resp = self
            .client
            .post(self.app.url(path))
            .header("cookie", &self.b.cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.finish())
            .send()
            .await
            .unwrap();
        (resp.status().as_u16(), resp.text().await.unwrap())
    }

    pub async fn post(&self, path: &str, fields: &[(&str, &str)]) -> (u16, String) {
        let csrf = self.b.csrf.clone();
        self.post_with(path, fields, Some(&csrf)).await
    }
}

/// A person added to acme with `role`, signed in, posting forms.
pub async fn signed_in<'a>(app: &'a TestApp, email: &str, role: Role) -> Forms<'a> {
    person(app.store.as_ref(), &app.acme, email, role).await;
    Forms::new(app, email).await
}

/// acme's newest entry of `event`, as the API lists it (`Null` if none).
pub async fn newest(app: &TestApp, event: &str) -> Value {
    let (status, body) = app.list(&[("event", event), ("limit", "1")]).await;
    assert_eq!(status, 200, "{body}");
    body["entries"][0].clone()
}

/// The entry was done by `email` and submitted through their session.
pub fn assert_by_session(entry: &Value, email: &str) {
    assert_eq!(entry["actor"]["id"], email, "{entry}");
    assert_eq!(entry["submitted_by"]["kind"], "session", "{entry}");
    assert_eq!(entry["submitted_by"]["id"], email, "{entry}");
}

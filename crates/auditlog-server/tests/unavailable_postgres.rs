//! PostgreSQL going away under a running server: while the database refuses
//! connections, ingest answers 503 with `Retry-After` and a JSON error (and
//! so does `/readyz`); nothing acknowledged before is lost; and once the
//! database is back the server recovers by itself, with no restart.

use std::sync::Arc;
use std::time::Duration;

use auditlog_domain::api_key::{self, Scope};
use auditlog_domain::org::NewOrg;
use auditlog_domain::store::NewApiKey;
use auditlog_domain::{Plan, Store, Timestamp};
use auditlog_postgres::tokio_postgres::{self, NoTls};
use auditlog_postgres::{PostgresStore, testing};
use auditlog_server::ServerConfig;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

/// Runs SQL on the server's maintenance database, outside the one under test.
async fn as_admin(url: &str, sql: &str) {
    let mut config: tokio_postgres::Config = url.parse().unwrap();
    config.dbname("postgres");
    let (client, connection) = config.connect(NoTls).await.unwrap();
    let driver = tokio::spawn(connection);
    client.batch_execute(sql).await.unwrap();
    drop(client);
    let _ = driver.await;
}

fn event(i: usize) -> Value {
    json!({"event": "guardrail.created", "actor": "ada@acme.com",
           "resource": {"type": "guardrail", "id": format!("g{i}")}, "details": {"name": "PII", "type": "pii"}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_answers_503_while_the_database_is_away_and_recovers_by_itself() {
    let Some(url) = testing::fresh_database_url().await else {
        return;
    };
    let db: tokio_postgres::Config = url.parse().unwrap();
    let name = db.get_dbname().unwrap().to_owned();
    auditlog_server::init_tls();
    let store: Arc<dyn Store> = Arc::new(PostgresStore::connect(&url).await.unwrap());
    let org = store
        .create_org(
            NewOrg {
                slug: "acme".into(),
                name: "Acme".into(),
                plan: Plan::Team,
                enterprise_retention_days: None,
            },
            Timestamp(0),
        )
        .await
        .unwrap();
    let key = api_key::generate();
    store
        .create_api_key(
            NewApiKey {
                org_id: org.id,
                prefix: key.prefix.clone(),
                name: "test".into(),
                scopes: vec![Scope::AuditWrite, Scope::AuditRead],
                hash: key.hash.clone(),
                created_by: None,
            },
            Timestamp(0),
        )
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let shutdown = CancellationToken::new();
    tokio::spawn(auditlog_server::serve(
        ServerConfig::default(),
        store.clone(),
        listener,
        shutdown.clone(),
    ));
    let http = reqwest::Client::new();
    let post = |i: usize| {
        http.post(format!("{base}/v1/orgs/acme/audit/events"))
            .bearer_auth(&key.secret)
            .json(&event(i))
            .send()
    };
    let mut acked = Vec::new();
    for i in 0..5 {
        let resp = post(i).await.unwrap();
        assert_eq!(resp.status(), 201);
        let body: Value = resp.json().await.unwrap();
        acked.push(body["entries"][0]["id"].as_str().unwrap().to_owned());
    }

    // The database goes away: no new connections, and the server's are cut.
    as_admin(
        &url,
        &format!(
            "ALTER DATABASE {name} ALLOW_CONNECTIONS false; \
             SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}';"
        ),
    )
    .await;
    for i in 5..8 {
        let resp = post(i).await.unwrap();
        assert_eq!(resp.status(), 503, "while the database is away");
        assert!(resp.headers().contains_key("retry-after"));
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["code"], "unavailable", "{body}");
    }
    let ready = http.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503);

    // It comes back; the server, untouched, takes entries again.
    as_admin(&url, &format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true")).await;
    let mut recovered = false;
    for i in 8..108 {
        let resp = post(i).await.unwrap();
        if resp.status() == 201 {
            let body: Value = resp.json().await.unwrap();
            acked.push(body["entries"][0]["id"].as_str().unwrap().to_owned());
            recovered = true;
            break;
        }
        assert_eq!(resp.status(), 503);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(recovered, "ingest works again without a restart");
    let ready = http.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);

    // Everything acknowledged is there once, and nothing refused is.
    let listed: Value = http
        .get(format!("{base}/v1/orgs/acme/audit/events?limit=100"))
        .bearer_auth(&key.secret)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut ids: Vec<String> = listed["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"] == "guardrail.created")
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    acked.sort();
    assert_eq!(ids, acked);
    shutdown.cancel();
}

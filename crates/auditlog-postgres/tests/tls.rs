//! TLS to a real PostgreSQL serving a certificate from a CA made for the
//! test: the store's connections (the pool's and the LISTEN one) are
//! encrypted when the CA is trusted, refused with a clear error when it is
//! not, channel binding works, and `sslmode=disable` still connects.

use auditlog_domain::org::NewOrg;
use auditlog_domain::store::AccountStore;
use auditlog_domain::store::DeliveryStore;
use auditlog_domain::{Plan, StoreError, Timestamp};
use auditlog_postgres::tls::{MakeTls, Roots};
use auditlog_postgres::tokio_postgres::config::SslMode;
use auditlog_postgres::{PostgresStore, testing};
use tokio_postgres::NoTls;

/// A fresh database on the TLS server and that server, or `None` when
/// PostgreSQL or openssl is missing.
async fn fresh() -> Option<(String, testing::TlsServer)> {
    let server = testing::tls_server().await?;
    Some((testing::fresh_database_on(&server.admin_url).await, server))
}

fn with(url: &str, params: &str) -> String {
    format!("{url}?{params}")
}

/// How many of the store's connections to `url`'s database are open, and
/// how many of those use TLS, seen from a plain connection of the test's.
async fn store_connections(admin_url: &str, url: &str) -> (i64, i64) {
    let database = url.rsplit('/').next().unwrap();
    let (client, connection) = tokio_postgres::connect(admin_url, NoTls).await.unwrap();
    tokio::spawn(connection);
    let row = client
        .query_one(
            "SELECT count(*), count(*) FILTER (WHERE s.ssl) FROM pg_stat_activity a \
             JOIN pg_stat_ssl s ON s.pid = a.pid WHERE a.datname = $1 AND a.application_name = 'auditlog'",
            &[&database],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1))
}

async fn use_store(store: &PostgresStore) {
    let org = store
        .create_org(
            NewOrg {
                slug: "acme".into(),
                name: "Acme".into(),
                plan: Plan::Scale,
                enterprise_retention_days: None,
            },
            Timestamp(1_790_000_000_000),
        )
        .await
        .unwrap();
    assert_eq!(store.org_by_slug("acme").await.unwrap().map(|o| o.id), Some(org.id));
}

#[tokio::test]
async fn a_trusted_server_is_reached_over_tls() {
    let Some((url, server)) = fresh().await else {
        return;
    };
    let ca = server.ca_file.display().to_string();
    let store = PostgresStore::connect(&with(&url, &format!("sslmode=require&sslrootcert={ca}")))
        .await
        .expect("connect over TLS with the CA trusted");
    use_store(&store).await;
    // The first wait opens the LISTEN connection and returns once it listens.
    tokio::time::timeout(std::time::Duration::from_secs(10), store.wait_for_deliveries(0))
        .await
        .expect("the LISTEN connection came up");
    let (all, encrypted) = store_connections(&server.admin_url, &url).await;
    assert!(all >= 2, "the pool's connection and the LISTEN one: {all}");
    assert_eq!(encrypted, all, "every connection of the store uses TLS");

    // The connector on its own, as the server sees it, by IP and by name.
    let roots = Roots::File(server.ca_file.clone());
    for url in [url.clone(), url.replace("127.0.0.1", "localhost")] {
        let tls = MakeTls::new(SslMode::Require, &roots).unwrap();
        let (client, connection) = tokio_postgres::connect(&with(&url, "sslmode=require"), tls)
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        tokio::spawn(connection);
        let ssl: bool = client
            .query_one("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", &[])
            .await
            .unwrap()
            .get(0);
        assert!(ssl);
    }
}

/// The default sslmode (prefer) takes TLS when the server offers it.
#[tokio::test]
async fn prefer_uses_tls_when_offered() {
    let Some((url, server)) = fresh().await else {
        return;
    };
    let store = PostgresStore::connect(&with(&url, &format!("sslrootcert={}", server.ca_file.display())))
        .await
        .expect("connect");
    use_store(&store).await;
    let (all, encrypted) = store_connections(&server.admin_url, &url).await;
    assert!(all >= 1);
    assert_eq!(encrypted, all);
}

/// SCRAM bound to the TLS channel proves the stream reports the server's
/// certificate hash as PostgreSQL computes it.
#[tokio::test]
async fn channel_binding_can_be_required() {
    let Some((url, server)) = fresh().await else {
        return;
    };
    let params = format!(
        "sslmode=require&channel_binding=require&sslrootcert={}",
        server.ca_file.display()
    );
    let store = PostgresStore::connect(&with(&url, &params))
        .await
        .expect("connect with channel binding");
    use_store(&store).await;
}

#[tokio::test]
async fn an_untrusted_server_is_refused_clearly() {
    let Some((url, server)) = fresh().await else {
        return;
    };
    let stranger = server.stranger_ca_file.display().to_string();
    // Under a CA that did not sign it, and under the system's roots.
    for params in [
        format!("sslmode=require&sslrootcert={stranger}"),
        "sslmode=verify-full".to_owned(),
    ] {
        let err = PostgresStore::connect(&with(&url, &params))
            .await
            .expect_err("an untrusted certificate must be refused");
        let StoreError::Unavailable(message) = &err else {
            panic!("{params}: expected Unavailable, got {err:?}");
        };
        assert!(
            message.contains("TLS handshake") && message.contains("the certificate of 127.0.0.1 is refused"),
            "{params}: {message}"
        );
    }

    let err = PostgresStore::connect(&with(&url, "sslmode=require&sslrootcert=does-not-exist.pem"))
        .await
        .expect_err("a missing CA file");
    assert!(
        matches!(&err, StoreError::Internal(m) if m.contains("does-not-exist.pem")),
        "{err:?}"
    );
}

#[tokio::test]
async fn sslmode_disable_still_connects_in_the_clear() {
    let Some((url, server)) = fresh().await else {
        return;
    };
    let store = PostgresStore::connect(&with(&url, "sslmode=disable"))
        .await
        .expect("connect without TLS");
    use_store(&store).await;
    let (all, encrypted) = store_connections(&server.admin_url, &url).await;
    assert!(all >= 1);
    assert_eq!(encrypted, 0);
}

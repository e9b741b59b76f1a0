//! `auditlog demo`: a seeded organization on the `scale` plan with a year of
//! entries, served at once, with keys and commands printed to try it.

use std::sync::Arc;

use auditlog_bench::demo::seed_org;
use auditlog_bench::make_key;
use auditlog_domain::api_key::Scope;
use auditlog_domain::password;
use auditlog_domain::{Clock, Org, Role, Store, SystemClock};
use auditlog_server::ServerConfig;

use crate::admin::make_member;
use crate::backend::{AnyError, open_keyed};
use crate::cli::DemoArgs;
use crate::serve::shutdown_on_signal;

pub const DEMO_ORG: &str = "acme";

/// People who can sign in to the demo: one who reads the log, one who may
/// not. Their passwords are new each run and printed.
const DEMO_PEOPLE: [(&str, Role); 2] = [("owner@acme.example", Role::Owner), ("dev@acme.example", Role::Member)];

fn demo_password() -> String {
    use rand::RngExt;
    let mut rng = rand::rng();
    (0..16)
        .map(|_| {
            let alphabet = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
            alphabet[rng.random_range(0..alphabet.len())] as char
        })
        .collect()
}

pub async fn run(args: DemoArgs) -> Result<(), AnyError> {
    let tmp;
    let url = match &args.database {
        Some(url) => url.clone(),
        None => {
            tmp = tempfile::tempdir()?;
            format!("sqlite://{}", tmp.path().join("demo.db").display())
        }
    };
    let store: Arc<dyn Store> = open_keyed(&url, args.signing.signing_key.as_deref(), true).await?;
    let org = match store.org_by_slug(DEMO_ORG).await? {
        Some(org) => org,
        None => {
            eprintln!("seeding {} entries for organization {DEMO_ORG}…", args.entries);
            seed_org(store.as_ref(), DEMO_ORG, args.entries, SystemClock.now()).await?
        }
    };
    let logins = sign_ins(store.as_ref(), &org).await?;
    let write = make_key(store.as_ref(), &org, "demo ingest", vec![Scope::AuditWrite]).await?;
    let read = make_key(store.as_ref(), &org, "demo reader", vec![Scope::AuditRead]).await?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let key =
        crate::signing_key::load_or_create(&crate::signing_key::path(args.signing.signing_key.as_deref(), &url)?)?;
    let welcome = Welcome {
        url: &url,
        base: format!("http://{}", listener.local_addr()?),
        org: &org,
        entries: store.log_size(org.id).await?,
        logins: &logins,
        write: &write,
        read: &read,
        verifier: key.verifier_key().to_string(),
    };
    welcome.print();

    let config = ServerConfig {
        checkpoints: auditlog_server::workers::checkpointer::CheckpointConfig {
            key: Arc::new(key),
            ..Default::default()
        },
        ..ServerConfig::default()
    };
    auditlog_server::serve(config, store, listener, shutdown_on_signal()).await?;
    Ok(())
}

/// The demo's people, each with a new password: (email, role, password).
async fn sign_ins(store: &dyn Store, org: &Org) -> Result<Vec<(&'static str, Role, String)>, AnyError> {
    let mut logins = Vec::new();
    for (email, role) in DEMO_PEOPLE {
        let password = demo_password();
        let hash = password::hash(&password)?;
        make_member(store, org, email, role, &hash, auditlog_domain::SubmittedBy::service()).await?;
        logins.push((email, role, password));
    }
    Ok(logins)
}

/// What the demo prints before it serves: where it is, how to sign in, its
/// keys and commands to try them.
struct Welcome<'a> {
    url: &'a str,
    base: String,
    org: &'a Org,
    entries: i64,
    logins: &'a [(&'static str, Role, String)],
    write: &'a str,
    read: &'a str,
    verifier: String,
}

impl Welcome<'_> {
    fn print(&self) {
        let Self {
            url,
            base,
            org,
            entries,
            logins,
            write,
            read,
            verifier,
        } = self;
        println!(
            "\nauditlog demo: organization {DEMO_ORG} ({} plan, entries kept {} days) holds {entries} entries",
            org.plan.label(),
            org.retention_days()
        );
        println!("database:    {url}");
        println!("API:         {base}/v1/orgs/{DEMO_ORG}/audit/events");
        println!("web UI:      {base}/   (Platform → Audit)");
        for (email, role, password) in logins.iter() {
            println!("login:       {email} / {password}   ({role})");
        }
        println!("write key:   {write}");
        println!("read key:    {read}");
        println!("verifier:    {verifier}   (checks signed checkpoints: auditlog verify --key …)");
        println!("\ntry:");
        println!(
            "  curl -s -H 'Authorization: Bearer {read}' '{base}/v1/orgs/{DEMO_ORG}/audit/events?event=api_key.*&limit=5'"
        );
        println!(
            "  curl -s -X POST -H 'Authorization: Bearer {write}' -H 'Content-Type: application/json' \\\n    -d '{{\"event\":\"guardrail.created\",\"actor\":\"you@acme.com\",\"resource\":{{\"type\":\"guardrail\",\"id\":\"g_demo\"}},\"details\":{{\"name\":\"Demo\",\"type\":\"pii\"}}}}' \\\n    '{base}/v1/orgs/{DEMO_ORG}/audit/events'"
        );
        println!(
            "  curl -s -OJ -H 'Authorization: Bearer {read}' '{base}/v1/orgs/{DEMO_ORG}/audit/export?format=csv&from=2026-01-01T00:00:00Z'"
        );
        println!("\nCtrl-C stops the demo.");
    }
}

//! `auditlog demo`: a seeded organization on the `scale` plan with a year of
//! entries, served at once, with keys and commands printed to try it.

use std::sync::Arc;

use auditlog_bench::{make_key, seed};
use auditlog_domain::api_key::Scope;
use auditlog_domain::org::NewOrg;
use auditlog_domain::password;
use auditlog_domain::store::AppendRequest;
use auditlog_domain::{Clock, Org, Plan, Role, Store, SystemClock, Timestamp};
use auditlog_server::ServerConfig;

use crate::admin::make_member;
use crate::backend::{AnyError, open};
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

/// Creates `acme` on the scale plan and fills its last year with `n`
/// entries; returns the organization.
pub async fn seed_org(store: &dyn Store, slug: &str, n: usize, now: Timestamp) -> Result<Org, AnyError> {
    let org = store
        .create_org(
            NewOrg {
                slug: slug.into(),
                name: "Acme".into(),
                plan: Plan::Scale,
                enterprise_retention_days: None,
            },
            now.minus_days(400),
        )
        .await?;
    // A day short of the retention window, so every entry is inside it,
    // as ingest would require. Written straight into the store: the mix
    // holds the service's own events, which ingest refuses.
    let entries = seed::entries(n, now.minus_days(364), now.plus_millis(-60_000), 2026);
    for chunk in entries.chunks(1000) {
        let received = chunk.last().map(|e| e.timestamp.plus_millis(1500)).unwrap_or(now);
        store
            .append(vec![AppendRequest::entries(org.id, chunk.to_vec())], received)
            .await?
            .into_iter()
            .collect::<Result<Vec<_>, _>>()?;
    }
    Ok(org)
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
    let store: Arc<dyn Store> = open(&url).await?;
    let now = SystemClock.now();
    let org = match store.org_by_slug(DEMO_ORG).await? {
        Some(org) => org,
        None => {
            eprintln!("seeding {} entries for organization {DEMO_ORG}…", args.entries);
            seed_org(store.as_ref(), DEMO_ORG, args.entries, now).await?
        }
    };
    let mut logins = Vec::new();
    for (email, role) in DEMO_PEOPLE {
        let password = demo_password();
        let hash = password::hash(&password)?;
        make_member(
            store.as_ref(),
            &org,
            email,
            role,
            &hash,
            auditlog_domain::SubmittedBy::service(),
        )
        .await?;
        logins.push((email, role, password));
    }
    let write = make_key(store.as_ref(), &org, "demo ingest", vec![Scope::AuditWrite]).await?;
    let read = make_key(store.as_ref(), &org, "demo reader", vec![Scope::AuditRead]).await?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let base = format!("http://{}", listener.local_addr()?);
    let entries = store.log_size(org.id).await?;

    println!(
        "\nauditlog demo: organization {DEMO_ORG} ({} plan, entries kept {} days) holds {entries} entries",
        org.plan.label(),
        org.retention_days()
    );
    println!("database:    {url}");
    println!("API:         {base}/v1/orgs/{DEMO_ORG}/audit/events");
    println!("web UI:      {base}/   (Platform → Audit)");
    for (email, role, password) in &logins {
        println!("login:       {email} / {password}   ({role})");
    }
    println!("write key:   {write}");
    println!("read key:    {read}");
    let key =
        crate::signing_key::load_or_create(&crate::signing_key::path(args.signing.signing_key.as_deref(), &url)?)?;
    println!(
        "verifier:    {}   (checks signed checkpoints: auditlog verify --key …)",
        key.verifier_key()
    );
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

    let config = ServerConfig {
        checkpoints: auditlog_server::checkpointer::CheckpointConfig {
            key: Arc::new(key),
            ..Default::default()
        },
        ..ServerConfig::default()
    };
    auditlog_server::serve(config, store, listener, shutdown_on_signal()).await?;
    Ok(())
}

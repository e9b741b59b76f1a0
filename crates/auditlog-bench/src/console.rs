//! `auditlog bench console`: how long each management page takes to
//! answer on a large organization: 1,000 members, 1,000 API keys, 100
//! projects and 100 webhook endpoints with 100,000 deliveries between
//! them (each of 1,000 entries delivered to every endpoint).
//!
//! An in-process server on a fresh SQLite file; an owner signed in with a
//! session cookie asks for each page in turn, after a warm-up. The time is
//! from sending the request to the last byte of the answer on loopback,
//! so it bounds the server's time from above.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use auditlog_domain::change::Change;
use auditlog_domain::entry::Resource;
use auditlog_domain::member::Project;
use auditlog_domain::pattern::EventPattern;
use auditlog_domain::store::AppendRequest;
use auditlog_domain::webhook::{Endpoint, Secret};
use auditlog_domain::{Clock, NewEntry, Org, Role, Store, SystemClock};
use auditlog_server::ServerConfig;
use serde_json::json;

use crate::AnyError;
use crate::cli::ConsoleArgs;
use crate::harness::{InProcessServer, Latencies, Workdir, fresh_store, http_client, progress, seed_log};
use crate::make_key;
use crate::report::{Table, Verdicts, fmt_ms, run_facts};

const MEMBERS: usize = 1_000;
const KEYS: usize = 1_000;
const PROJECTS: usize = 100;
const ENDPOINTS: usize = 100;
/// Each is delivered to every endpoint: 100,000 deliveries.
const DELIVERED_ENTRIES: usize = 1_000;
const OWNER: &str = "owner@bench.example";
const PASSWORD: &str = "a long bench passphrase";
const WARMUP: usize = 5;
const TARGET_P99: Duration = Duration::from_millis(50);
const CHART: &str = "Audit chart, fetched after the page";

pub async fn run_cli(args: &ConsoleArgs) -> Result<(), AnyError> {
    let workdir = Workdir::new(args.dir.dir.as_deref())?;
    println!("{}", run(&workdir, args.entries, args.samples).await?);
    Ok(())
}

async fn run(workdir: &Workdir, entries: usize, samples: usize) -> Result<String, AnyError> {
    let (store, org) = fresh_store(&workdir.fresh("console.db")?).await?;
    if entries > 0 {
        progress(format!("seeding {entries} entries over the last year"));
        seed_log(store.as_ref(), org.id, entries).await?;
    }
    let webhook = seed(store.as_ref(), &org).await?;
    let mut config = ServerConfig::default();
    // The endpoints' receivers do not exist: nothing is sent meanwhile.
    config.dispatcher.background = false;
    let server = InProcessServer::start_with(config, store.clone()).await?;
    let cookie = sign_in(&server.base).await?;
    let slug = &org.slug;
    let pages = [
        ("Audit", format!("/orgs/{slug}/audit")),
        ("Members", format!("/orgs/{slug}/members")),
        ("API keys", format!("/orgs/{slug}/api-keys")),
        ("Projects", format!("/orgs/{slug}/projects")),
        ("Webhooks", format!("/orgs/{slug}/webhooks")),
        ("One endpoint", format!("/orgs/{slug}/webhooks/{webhook}")),
        ("Settings", format!("/orgs/{slug}/settings")),
        // Not a first paint: the Audit page fetches it once shown.
        (CHART, format!("/orgs/{slug}/audit/chart?fragment=1")),
    ];
    let mut timed = Vec::new();
    for (name, path) in &pages {
        progress(format!("timing {name}"));
        timed.push((*name, time_page(&server.base, path, &cookie, samples).await?));
    }
    server.stop().await?;
    Ok(render(entries, samples, &timed))
}

/// Members, keys, projects, endpoints, then the entries whose deliveries
/// fill the outbox; returns one endpoint's id.
async fn seed(store: &dyn Store, org: &Org) -> Result<String, AnyError> {
    progress("seeding members, keys, projects and endpoints");
    let hash = auditlog_domain::password::hash(PASSWORD).map_err(|e| e.to_string())?;
    store.set_password(OWNER, &hash, SystemClock.now()).await?;
    let mut changes = vec![Change::AddMember {
        email: OWNER.into(),
        role: Role::Owner,
    }];
    changes.extend((1..MEMBERS).map(|i| Change::AddMember {
        email: format!("person{i}@bench.example"),
        role: [Role::Admin, Role::Member, Role::Viewer][i % 3],
    }));
    changes.extend((0..PROJECTS).map(|i| {
        Change::CreateProject(Project {
            id: format!("p_bench{i:05}"),
            name: format!("Project {i}"),
            created_at: SystemClock.now(),
        })
    }));
    changes.extend((0..ENDPOINTS).map(|i| Change::CreateWebhook(endpoint(i))));
    apply(store, org, changes, Vec::new()).await?;
    for i in 0..KEYS {
        make_key(
            store,
            org,
            &format!("service {i}"),
            vec![auditlog_domain::api_key::Scope::AuditWrite],
        )
        .await?;
    }
    progress("seeding 1,000 entries, each delivered to 100 endpoints");
    let entries = (0..DELIVERED_ENTRIES)
        .map(|i| {
            let resource = Resource {
                kind: "guardrail".into(),
                id: format!("g{i}"),
                name: None,
            };
            NewEntry::by_system(SystemClock.now(), "guardrail.created", resource, json!({"name": "PII"}))
        })
        .collect();
    apply(store, org, Vec::new(), entries).await?;
    Ok(endpoint(0).id)
}

fn endpoint(i: usize) -> Endpoint {
    Endpoint {
        id: format!("wh_bench{i:05}"),
        url: format!("https://hooks{i}.bench.invalid/audit"),
        description: format!("receiver {i}"),
        events: vec![EventPattern::parse("guardrail.*").expect("a valid pattern")],
        enabled: true,
        secret: Secret::generate(),
        previous_secret: None,
        created_at: SystemClock.now(),
        failing_since: None,
        disabled_reason: None,
        payload_format: Default::default(),
    }
}

async fn apply(store: &dyn Store, org: &Org, changes: Vec<Change>, entries: Vec<NewEntry>) -> Result<(), AnyError> {
    let request = AppendRequest {
        org_id: org.id,
        changes,
        entries,
    };
    let mut out = store.append(vec![request], SystemClock.now()).await?;
    out.pop().ok_or("no result")??;
    Ok(())
}

async fn sign_in(base: &str) -> Result<String, AnyError> {
    let resp = http_client(None)?
        .post(format!("{base}/v1/session"))
        .json(&json!({"email": OWNER, "password": PASSWORD}))
        .send()
        .await?;
    if !resp.status().is_success() {
        return Err(format!("signing in answered {}", resp.status()).into());
    }
    let cookie = resp
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .ok_or("no session cookie")?;
    Ok(cookie.to_owned())
}

async fn time_page(base: &str, path: &str, cookie: &str, samples: usize) -> Result<(Latencies, usize), AnyError> {
    let client = http_client(Some(Duration::from_secs(30)))?;
    let mut times = Vec::with_capacity(samples);
    let mut bytes = 0;
    for i in 0..WARMUP + samples {
        let started = Instant::now();
        let resp = client
            .get(format!("{base}{path}"))
            .header("cookie", cookie)
            .send()
            .await?;
        let status = resp.status();
        let body = resp.bytes().await?;
        if !status.is_success() {
            return Err(format!("{path} answered {status}").into());
        }
        if i >= WARMUP {
            times.push(started.elapsed());
            bytes = body.len();
        }
    }
    Ok((Latencies::of(times), bytes))
}

fn render(entries: usize, samples: usize, timed: &[(&str, (Latencies, usize))]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# auditlog bench console\n");
    let _ = run_facts(&mut out, &crate::harness::command_line(), SystemClock.now());
    let _ = writeln!(
        out,
        "\nAn organization of {MEMBERS} members, {KEYS} API keys, {PROJECTS} projects and {ENDPOINTS} webhook \
         endpoints with {} deliveries, and {} entries in its log ({entries} over the last year, the Audit page \
         charting its last 30 days); each page asked for {samples} times by a signed-in owner after {WARMUP} \
         warm-up requests, timed from the request to the answer's last byte on loopback.\n",
        ENDPOINTS * DELIVERED_ENTRIES,
        entries + DELIVERED_ENTRIES,
    );
    let mut v = Verdicts::default();
    let mut t = Table::new(&["Page", "p50", "p99", "max", "Size", "Target", "Verdict"]);
    for (name, (lat, bytes)) in timed {
        let (target, verdict) = if *name == CHART {
            ("—".to_owned(), "—".to_owned())
        } else {
            let verdict = v.at_most(name, lat.p99.as_secs_f64(), TARGET_P99.as_secs_f64());
            (format!("p99 ≤ {} ms", TARGET_P99.as_millis()), verdict)
        };
        t.row(vec![
            (*name).into(),
            fmt_ms(lat.p50),
            fmt_ms(lat.p99),
            fmt_ms(lat.max),
            format!("{} KiB", bytes / 1024),
            target,
            verdict,
        ]);
    }
    let _ = t.render(&mut out);
    let _ = v.summary(&mut out);
    out
}

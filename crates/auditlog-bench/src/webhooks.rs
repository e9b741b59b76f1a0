//! Section 6, `auditlog bench webhooks`: commit-to-delivery latency of
//! webhooks at a sustained ingest rate, fanned out to several endpoints on
//! loopback.
//!
//! Latency is measured from an entry's `received_at` (stamped by the writer
//! just before the transaction commits) to the moment the receiver reads the
//! delivery; both clocks are this machine's. The baseline, measured in the
//! same run, is a bare HTTP round trip to the same receiver.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use auditlog_domain::api_key::Scope;
use auditlog_domain::change::Change;
use auditlog_domain::store::AppendRequest;
use auditlog_domain::webhook::{Endpoint, Secret};
use auditlog_domain::{Clock, Store, SystemClock};
use auditlog_server::ServerConfig;
use auditlog_server::workers::webhook_client::DestinationPolicy;
use auditlog_sqlite::SqliteStore;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::AnyError;
use crate::make_key;

#[derive(Debug, Clone, Copy)]
pub struct WebhookBench {
    /// Entries per second sent to the ingest API.
    pub rate: u32,
    pub seconds: u32,
    pub endpoints: u32,
}

#[derive(Default)]
struct Arrivals {
    latencies_ms: Vec<i64>,
}

fn now_ms() -> i64 {
    SystemClock.now().millis()
}

/// Reads `received_at` without parsing the whole body: the receiver shares
/// the machine with the service, so it should cost as little as it can.
fn received_at(body: &[u8]) -> Option<i64> {
    const KEY: &[u8] = b"\"received_at\":\"";
    let at = body.windows(KEY.len()).position(|w| w == KEY)? + KEY.len();
    let text = std::str::from_utf8(body.get(at..at + 24)?).ok()?;
    auditlog_domain::Timestamp::parse(text).ok().map(|t| t.millis())
}

async fn receive(State(arrivals): State<Arc<Mutex<Arrivals>>>, body: Bytes) -> &'static str {
    let at = now_ms();
    if let Some(t) = received_at(&body)
        && let Ok(mut a) = arrivals.lock()
    {
        a.latencies_ms.push(at - t);
    }
    "ok"
}

fn percentile(sorted: &[i64], p: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Runs the measurement: the baseline first, then the sustained load, then
/// waits (up to two minutes) for the deliveries still on their way.
pub async fn run(dir: &std::path::Path, b: WebhookBench) -> Result<String, AnyError> {
    let arrivals = Arc::new(Mutex::new(Arrivals::default()));
    let rx_addr = start_receiver(arrivals.clone()).await?;
    let client = reqwest::Client::new();
    let base = baseline(&client, rx_addr, &arrivals).await?;
    let service = Service::start(dir, rx_addr, b.endpoints).await?;
    let load = sustain(&client, &service, b).await?;
    let want = load.sent * b.endpoints as usize;
    wait_for_arrivals(&arrivals, want).await;
    service.stop().await;
    let mut lat = arrivals.lock().map(|a| a.latencies_ms.clone()).unwrap_or_default();
    lat.sort_unstable();
    Ok(render(b, &load, want, &lat, &base))
}

/// The receiver every endpoint points at, on a loopback port.
async fn start_receiver(arrivals: Arc<Mutex<Arrivals>>) -> Result<SocketAddr, AnyError> {
    let app = Router::new().route("/hook/{n}", post(receive)).with_state(arrivals);
    let rx_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let rx_addr = rx_listener.local_addr()?;
    tokio::spawn(async move { axum::serve(rx_listener, app).await });
    Ok(rx_addr)
}

/// Bare loopback round trips to the receiver, in microseconds, sorted;
/// what they left in `arrivals` is cleared.
async fn baseline(
    client: &reqwest::Client,
    rx_addr: SocketAddr,
    arrivals: &Mutex<Arrivals>,
) -> Result<Vec<i64>, AnyError> {
    let body = serde_json::to_vec(&json!({"data": {"received_at": SystemClock.now()}}))?;
    let mut base = Vec::new();
    for _ in 0..500 {
        let t = Instant::now();
        client
            .post(format!("http://{rx_addr}/hook/0"))
            .body(body.clone())
            .send()
            .await?;
        base.push(t.elapsed().as_micros() as i64);
    }
    base.sort_unstable();
    if let Ok(mut a) = arrivals.lock() {
        a.latencies_ms.clear();
    }
    Ok(base)
}

/// The service on a fresh database, in-process, with `endpoints` webhooks
/// on loopback.
struct Service {
    api: String,
    key: String,
    shutdown: CancellationToken,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Service {
    async fn start(dir: &std::path::Path, rx_addr: SocketAddr, endpoints: u32) -> Result<Self, AnyError> {
        let path = dir.join("webhooks.db");
        crate::harness::remove_database(&path)?;
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&path)?);
        let org = crate::harness::bench_org(store.as_ref()).await?;
        let key = make_key(store.as_ref(), &org, "bench", vec![Scope::AuditWrite]).await?;
        let changes = (0..endpoints).map(|n| endpoint(rx_addr, n)).collect();
        store
            .append(
                vec![AppendRequest {
                    org_id: org.id,
                    changes,
                    entries: vec![],
                }],
                SystemClock.now(),
            )
            .await?
            .pop()
            .ok_or("no result")??;
        let config = ServerConfig {
            webhook_policy: DestinationPolicy {
                allowed_subnets: vec!["127.0.0.0/8".parse()?],
                allow_http: true,
            },
            ..ServerConfig::default()
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let api = format!("http://{}/v1/orgs/bench/audit/events", listener.local_addr()?);
        let shutdown = CancellationToken::new();
        let server = tokio::spawn(auditlog_server::serve(config, store, listener, shutdown.clone()));
        Ok(Self {
            api,
            key,
            shutdown,
            server,
        })
    }

    async fn stop(self) {
        self.shutdown.cancel();
        let _ = self.server.await;
    }
}

/// The n-th endpoint, every event to the receiver.
fn endpoint(rx_addr: SocketAddr, n: u32) -> Change {
    Change::CreateWebhook(Endpoint {
        id: format!("wh_bench{n}"),
        url: format!("http://{rx_addr}/hook/{n}"),
        description: String::new(),
        events: Vec::new(),
        enabled: true,
        secret: Secret::generate(),
        previous_secret: None,
        created_at: SystemClock.now(),
        failing_since: None,
        disabled_reason: None,
        payload_format: Default::default(),
    })
}

/// What the sustained load sent.
struct Load {
    /// Entries in the requests sent.
    sent: usize,
    /// Requests not answered 201.
    failed_posts: usize,
    load_secs: f64,
}

/// Sustained load: a batch every 10 ms for the measurement's seconds.
async fn sustain(client: &reqwest::Client, service: &Service, b: WebhookBench) -> Result<Load, AnyError> {
    let per_tick = (b.rate / 100).max(1) as usize;
    let batch: Vec<Value> = (0..per_tick)
        .map(|i| {
            json!({"event": "guardrail.updated", "actor": "bench@acme.com",
                   "resource": {"type": "guardrail", "id": format!("g_{i}")},
                   "details": {"name": "PII", "changes": {"threshold": {"old": 0.5, "new": 0.6}}}})
        })
        .collect();
    let body = Bytes::from(serde_json::to_vec(&json!({ "events": batch }))?);
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let started = Instant::now();
    let mut sent = 0usize;
    let mut posts = tokio::task::JoinSet::new();
    eprintln!(
        "webhooks: {} entries/s to {} endpoints for {} s…",
        b.rate, b.endpoints, b.seconds
    );
    while started.elapsed() < Duration::from_secs(u64::from(b.seconds)) {
        tick.tick().await;
        let (client, api, key, body) = (client.clone(), service.api.clone(), service.key.clone(), body.clone());
        posts.spawn(async move {
            client
                .post(api)
                .bearer_auth(key)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .map(|r| r.status().as_u16())
        });
        sent += per_tick;
    }
    let mut failed_posts = 0;
    while let Some(r) = posts.join_next().await {
        if !matches!(r, Ok(Ok(201))) {
            failed_posts += 1;
        }
    }
    Ok(Load {
        sent,
        failed_posts,
        load_secs: started.elapsed().as_secs_f64(),
    })
}

/// Waits until `want` deliveries have arrived, or two minutes have passed.
async fn wait_for_arrivals(arrivals: &Mutex<Arrivals>, want: usize) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let got = arrivals.lock().map(|a| a.latencies_ms.len()).unwrap_or(0);
        if got >= want || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The section, from the sorted delivery latencies (ms) and the sorted
/// baseline (µs).
fn render(b: WebhookBench, load: &Load, want: usize, lat: &[i64], base: &[i64]) -> String {
    let p99 = percentile(lat, 0.99);
    let verdict = if p99 <= 250 && lat.len() >= want {
        "PASS"
    } else {
        "MISS"
    };
    format!(
        "### Webhook commit-to-delivery latency\n\n\
         Sustained {rate} entries/s for {secs} s ({actual:.0} entries/s achieved, {failed_posts} failed requests), \
         every entry to {eps} endpoints on loopback: {got} of {want} deliveries arrived.\n\n\
         | Measure | p50 | p99 | max | Target | |\n|---|---|---|---|---|---|\n\
         | commit → delivery | {p50} ms | {p99} ms | {max} ms | p99 ≤ 250 ms | {verdict} |\n\
         | baseline: bare loopback POST to the receiver | {b50:.2} ms | {b99:.2} ms | {bmax:.2} ms | | |\n",
        rate = b.rate,
        secs = b.seconds,
        actual = load.sent as f64 / load.load_secs,
        failed_posts = load.failed_posts,
        eps = b.endpoints,
        got = lat.len(),
        p50 = percentile(lat, 0.5),
        max = lat.last().copied().unwrap_or(0),
        b50 = percentile(base, 0.5) as f64 / 1000.0,
        b99 = percentile(base, 0.99) as f64 / 1000.0,
        bmax = base.last().copied().unwrap_or(0) as f64 / 1000.0,
    )
}

//! `auditlog bench abuse`: the red-team pass's body attacks (issue 17,
//! findings 2 and 4) replayed against a separate `auditlog serve` on a
//! fresh SQLite database, loopback only, for a bounded time.
//!
//! Two crowds attack at once: connections that each push a 19 MiB body
//! slowly to `POST /v1/session` (open to anyone), and connections that
//! trickle bodies a byte at a time to ingest with a valid key. Each
//! attacker reconnects when dropped, until the attack ends. Meanwhile a
//! client times `GET /healthz` on a new connection ten times a second and
//! ingests one event ten times a second. The report gives the server's
//! resident memory before, at peak and a while after the attack, the
//! `/healthz` latencies and how much ingest was accepted.
//!
//! `--abuse-server PATH` runs another build's `auditlog serve` (an older
//! one, to measure it before a fix) under the same attack. A server whose
//! memory passes `--abuse-rss-cap-mib` ends the attack early, so a server
//! without the fixes cannot exhaust the machine.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use auditlog_domain::api_key::Scope;
use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use crate::AnyError;
use crate::cli::AbuseArgs;
use crate::harness::{ChildServer, Latencies, ORG_SLUG, Workdir, fresh_store, http_client, proc_status_kib, progress};
use crate::make_key;
use crate::report::mib;

/// The finding's body: 19 MiB declared, just under the old 20 MiB limit.
const BIG_BODY: u64 = 19_922_945;
/// How fast each big-body attacker writes: 64 KiB every 100 ms.
const BIG_CHUNK: usize = 64 * 1024;
const BIG_PERIOD: Duration = Duration::from_millis(100);
/// What each trickling attacker declares, and how often it sends a byte.
const TRICKLE_BODY: u64 = 1_000_000;
const TRICKLE_PERIOD: Duration = Duration::from_secs(2);
/// Between an attacker being dropped and it trying again.
const RECONNECT_PAUSE: Duration = Duration::from_millis(200);
/// A `/healthz` answer later than this counts as this late.
const HEALTHZ_PATIENCE: Duration = Duration::from_secs(10);

const TARGET_PEAK_RSS_MIB: f64 = 300.0;
const TARGET_HEALTHZ_P99: Duration = Duration::from_millis(100);
const TARGET_RSS_RECOVERY: f64 = 1.5;

#[derive(Debug, Clone)]
pub struct AbuseBench {
    /// Attackers of each kind.
    pub connections: usize,
    pub attack: Duration,
    /// How long after the attack memory is measured again.
    pub settle: Duration,
    /// The `auditlog` binary to serve with; default: this one.
    pub server: Option<PathBuf>,
    /// Resident memory at which the attack is stopped early.
    pub rss_cap_kib: u64,
}

pub async fn run_cli(args: &AbuseArgs) -> Result<(), AnyError> {
    let bench = AbuseBench {
        connections: args.abuse_connections.max(1),
        attack: Duration::from_secs(args.abuse_seconds.max(1)),
        settle: Duration::from_secs(args.abuse_settle_seconds),
        server: args.abuse_server.clone(),
        rss_cap_kib: args.abuse_rss_cap_mib.max(1) * 1024,
    };
    let workdir = Workdir::new(args.dir.dir.as_deref())?;
    println!("{}", run(&workdir, &bench).await?);
    Ok(())
}

/// What the attack's observers collected.
#[derive(Default)]
struct Observed {
    healthz: Mutex<Vec<Duration>>,
    healthz_failed: AtomicU64,
    ingest_accepted: AtomicU64,
    ingest_refused: AtomicU64,
    /// Connections the attackers opened, of each kind.
    big_opened: AtomicU64,
    trickle_opened: AtomicU64,
}

struct Figures {
    /// `RssAnon` (heap and stacks) before and after: the rest of RSS is
    /// the binary's own pages, which the attack's code paths fault in.
    anon_kib: (Option<u64>, Option<u64>),
    before_kib: Option<u64>,
    peak_kib: Option<u64>,
    end_kib: Option<u64>,
    after_kib: Option<u64>,
    capped: bool,
    attack: Duration,
    healthz: Latencies,
    healthz_samples: usize,
    observed: Arc<Observed>,
}

async fn run(workdir: &Workdir, bench: &AbuseBench) -> Result<String, AnyError> {
    let path = workdir.fresh("bench-abuse.db")?;
    let key = {
        let (store, org) = fresh_store(&path).await?;
        make_key(store.as_ref(), &org, "abuse", vec![Scope::AuditWrite]).await?
    };
    let binary = match &bench.server {
        Some(p) => p.clone(),
        None => std::env::current_exe()?,
    };
    let database = format!("sqlite://{}", path.display());
    let log = workdir.path().join("bench-abuse.log");
    let mut server = ChildServer::spawn_binary(&binary, &database, &[], &log)?;
    let client = http_client(Some(Duration::from_secs(30)))?;
    server.wait_ready(&client).await?;
    let pid = server.child.id();
    let target = Target::new(&server.base, &key)?;
    // A few requests first, so "before" is a server that has served.
    for _ in 0..20 {
        target.ingest(&client).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before_kib = proc_status_kib(pid, "VmRSS");
    let anon_before = proc_status_kib(pid, "RssAnon");
    progress(format!(
        "abuse: {} connections pushing 19 MiB to /v1/session and {} trickling to ingest, for {} s; RSS before {}",
        bench.connections,
        bench.connections,
        bench.attack.as_secs(),
        mib(before_kib)
    ));
    let mut figures = attack(bench, &target, pid, before_kib).await?;
    figures.anon_kib.0 = anon_before;
    server.stop()?;
    Ok(render(bench, &binary, &figures))
}

/// The server under attack: where to send what.
#[derive(Clone)]
struct Target {
    addr: String,
    healthz: reqwest::Url,
    ingest: reqwest::Url,
    key: String,
}

impl Target {
    fn new(base: &str, key: &str) -> Result<Self, AnyError> {
        Ok(Self {
            addr: base.trim_start_matches("http://").to_owned(),
            healthz: reqwest::Url::parse(&format!("{base}/healthz"))?,
            ingest: reqwest::Url::parse(&format!("{base}/v1/orgs/{ORG_SLUG}/audit/events"))?,
            key: key.to_owned(),
        })
    }

    /// One event through ingest; whether it was recorded.
    async fn ingest(&self, client: &reqwest::Client) -> bool {
        let event = serde_json::json!({
            "event": "guardrail.enabled",
            "actor": "li.wei@acme.com",
            "resource": {"type": "guardrail", "id": "g_12"},
            "details": {"name": "PII"},
        });
        let answer = client
            .post(self.ingest.clone())
            .bearer_auth(&self.key)
            .json(&event)
            .send()
            .await;
        answer.is_ok_and(|r| r.status() == StatusCode::CREATED)
    }
}

/// Runs both crowds and the observers for the attack's length (or until
/// the server passes the memory cap); then measures memory again after
/// the settling time.
async fn attack(bench: &AbuseBench, target: &Target, pid: u32, before_kib: Option<u64>) -> Result<Figures, AnyError> {
    let observed = Arc::new(Observed::default());
    let stop = CancellationToken::new();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..bench.connections {
        tasks.spawn(big_body_attacker(target.clone(), observed.clone(), stop.clone()));
        tasks.spawn(trickle_attacker(target.clone(), observed.clone(), stop.clone()));
    }
    tasks.spawn(healthz_prober(target.clone(), observed.clone(), stop.clone()));
    tasks.spawn(ingest_client(target.clone(), observed.clone(), stop.clone()));
    let started = Instant::now();
    let mut capped = false;
    while started.elapsed() < bench.attack {
        tokio::time::sleep(Duration::from_millis(250)).await;
        if proc_status_kib(pid, "VmRSS").is_some_and(|kib| kib > bench.rss_cap_kib) {
            progress(format!(
                "abuse: server RSS passed the {} cap after {:.1} s; attack stopped",
                mib(Some(bench.rss_cap_kib)),
                started.elapsed().as_secs_f64()
            ));
            capped = true;
            break;
        }
    }
    let attack = started.elapsed();
    let peak_kib = proc_status_kib(pid, "VmHWM");
    stop.cancel();
    while tasks.join_next().await.is_some() {}
    let end_kib = proc_status_kib(pid, "VmRSS");
    progress(format!(
        "abuse: attack over; RSS {}; waiting {} s",
        mib(end_kib),
        bench.settle.as_secs()
    ));
    tokio::time::sleep(bench.settle).await;
    let after_kib = proc_status_kib(pid, "VmRSS");
    let anon_after = proc_status_kib(pid, "RssAnon");
    let samples = std::mem::take(&mut *observed.healthz.lock().map_err(|_| "samples poisoned")?);
    Ok(Figures {
        anon_kib: (None, anon_after),
        before_kib,
        peak_kib,
        end_kib,
        after_kib,
        capped,
        attack,
        healthz_samples: samples.len(),
        healthz: Latencies::of(samples),
        observed,
    })
}

/// Sends the finding's sign-in: 19 MiB declared, written 64 KiB at a time,
/// again and again until `stop`.
async fn big_body_attacker(target: Target, observed: Arc<Observed>, stop: CancellationToken) {
    let head = format!(
        "POST /v1/session HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {BIG_BODY}\r\n\r\n",
        target.addr
    );
    let chunk = vec![b' '; BIG_CHUNK];
    let attempt = || async {
        observed.big_opened.fetch_add(1, Ordering::Relaxed);
        let mut stream = TcpStream::connect(&target.addr).await.ok()?;
        stream.write_all(head.as_bytes()).await.ok()?;
        let mut written = 0u64;
        while written < BIG_BODY {
            let n = chunk.len().min((BIG_BODY - written) as usize);
            stream.write_all(&chunk[..n]).await.ok()?;
            written += n as u64;
            tokio::time::sleep(BIG_PERIOD).await;
        }
        // Whole: hold the connection until the server answers or drops it.
        let _ = stream.read(&mut [0u8; 512]).await;
        Some(())
    };
    again_until(&stop, attempt).await;
}

/// Sends ingest requests with a valid key whose bodies come a byte every
/// two seconds, again and again until `stop`.
async fn trickle_attacker(target: Target, observed: Arc<Observed>, stop: CancellationToken) {
    let head = format!(
        "POST /v1/orgs/{ORG_SLUG}/audit/events HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: {TRICKLE_BODY}\r\n\r\n",
        target.addr, target.key
    );
    let attempt = || async {
        observed.trickle_opened.fetch_add(1, Ordering::Relaxed);
        let mut stream = TcpStream::connect(&target.addr).await.ok()?;
        stream.write_all(head.as_bytes()).await.ok()?;
        for _ in 0..TRICKLE_BODY {
            stream.write_all(b" ").await.ok()?;
            tokio::time::sleep(TRICKLE_PERIOD).await;
        }
        Some(())
    };
    again_until(&stop, attempt).await;
}

/// Runs `attempt` (one attacking connection) over and over, reconnecting
/// [`RECONNECT_PAUSE`] after each ends, until `stop`, which also cuts an
/// attempt short.
async fn again_until<F, Fut>(stop: &CancellationToken, attempt: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Option<()>>,
{
    while !stop.is_cancelled() {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = attempt() => {}
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(RECONNECT_PAUSE) => {}
        }
    }
}

/// Waits for `tick`'s next beat: false once `stop` is cancelled.
async fn next_beat(tick: &mut tokio::time::Interval, stop: &CancellationToken) -> bool {
    tokio::select! {
        () = stop.cancelled() => false,
        _ = tick.tick() => true,
    }
}

/// Times `GET /healthz` ten times a second, each on a new connection, as a
/// load balancer's check would come.
async fn healthz_prober(target: Target, observed: Arc<Observed>, stop: CancellationToken) {
    let Ok(client) = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(0)
        .timeout(HEALTHZ_PATIENCE)
        .build()
    else {
        return;
    };
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    while next_beat(&mut tick, &stop).await {
        let sent = Instant::now();
        let ok = client
            .get(target.healthz.clone())
            .send()
            .await
            .is_ok_and(|r| r.status() == StatusCode::OK);
        // A failed probe counts as late as the patience allows.
        let took = if ok { sent.elapsed() } else { HEALTHZ_PATIENCE };
        if !ok {
            observed.healthz_failed.fetch_add(1, Ordering::Relaxed);
        }
        if let Ok(mut samples) = observed.healthz.lock() {
            samples.push(took);
        }
    }
}

/// Ingests one event ten times a second, as a well-behaved producer.
async fn ingest_client(target: Target, observed: Arc<Observed>, stop: CancellationToken) {
    let Ok(client) = http_client(Some(HEALTHZ_PATIENCE)) else {
        return;
    };
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    while next_beat(&mut tick, &stop).await {
        let counter = if target.ingest(&client).await {
            &observed.ingest_accepted
        } else {
            &observed.ingest_refused
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "**missed**" }
}

fn render(bench: &AbuseBench, binary: &Path, f: &Figures) -> String {
    let kib_mib = |k: u64| k as f64 / 1024.0;
    let mut out = String::new();
    let _ = writeln!(out, "### Abuse: 19 MiB sign-ins and trickled ingest bodies\n");
    let _ = writeln!(
        out,
        "`{}` serving; {} connections of each kind, attack {:.1} s{}, memory again {} s after.\n",
        binary.display(),
        bench.connections,
        f.attack.as_secs_f64(),
        if f.capped {
            " (stopped early at the memory cap)"
        } else {
            ""
        },
        bench.settle.as_secs()
    );
    let _ = writeln!(out, "| Measure | Result | Goal |");
    let _ = writeln!(out, "|---|---|---|");
    let _ = writeln!(out, "| Server RSS before | {} | |", mib(f.before_kib));
    let peak_ok = f.peak_kib.is_some_and(|k| kib_mib(k) < TARGET_PEAK_RSS_MIB) && !f.capped;
    let _ = writeln!(
        out,
        "| Server peak RSS | {}{} | < {TARGET_PEAK_RSS_MIB:.0} MiB: {} |",
        mib(f.peak_kib),
        if f.capped { " (capped)" } else { "" },
        verdict(peak_ok)
    );
    let _ = writeln!(out, "| Server RSS as the attack ends | {} | |", mib(f.end_kib));
    let recovered = match (f.before_kib, f.after_kib) {
        (Some(b), Some(a)) => Some(a as f64 / b as f64),
        _ => None,
    };
    let _ = writeln!(
        out,
        "| Server RSS {} s after | {} ({}) | within {TARGET_RSS_RECOVERY}x of before: {} |",
        bench.settle.as_secs(),
        mib(f.after_kib),
        recovered.map_or("—".into(), |r| format!("{r:.2}x")),
        verdict(recovered.is_some_and(|r| r <= TARGET_RSS_RECOVERY))
    );
    let _ = writeln!(
        out,
        "| Of which anonymous (heap, stacks), before / after | {} / {} | |",
        mib(f.anon_kib.0),
        mib(f.anon_kib.1)
    );
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let _ = writeln!(
        out,
        "| `/healthz` p50 / p99 / max ({} probes, {} failed) | {:.1} / {:.1} / {:.1} ms | p99 < {} ms: {} |",
        f.healthz_samples,
        f.observed.healthz_failed.load(Ordering::Relaxed),
        ms(f.healthz.p50),
        ms(f.healthz.p99),
        ms(f.healthz.max),
        TARGET_HEALTHZ_P99.as_millis(),
        verdict(f.healthz.p99 < TARGET_HEALTHZ_P99 && f.healthz_samples > 0)
    );
    let accepted = f.observed.ingest_accepted.load(Ordering::Relaxed);
    let refused = f.observed.ingest_refused.load(Ordering::Relaxed);
    let _ = writeln!(
        out,
        "| Ingest during the attack | {accepted} accepted, {refused} not | accepted: {} |",
        verdict(accepted > 0)
    );
    let _ = writeln!(
        out,
        "| Attack connections opened | {} big-body, {} trickling | |",
        f.observed.big_opened.load(Ordering::Relaxed),
        f.observed.trickle_opened.load(Ordering::Relaxed)
    );
    out
}

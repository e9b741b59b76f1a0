//! `auditlog bench`: measures, on this machine and in one run, the figures
//! the service is built to reach, and prints them as a Markdown report with
//! each figure beside its target.
//!
//! 1. **SQLite ceiling**: raw inserts of the ingest rows, same schema and
//!    durability settings; the rate no ingest path can beat.
//! 2. **Batched ingest over HTTP**: full 1000-event batches from a few
//!    clients, compared with the ceiling.
//! 3. **Single-event ingest** from many concurrent clients (group commit).
//! 4. **First-page query latency** for each filter kind on a large log.
//! 5. **CSV export** of that whole log from a separate server process: rate
//!    and peak memory, against a raw SQLite scan.
//!
//! Every measurement starts from a fresh database file. The HTTP load
//! generator runs in this process, on the same cores as the server, so the
//! figures include its cost: they are what one machine does end to end.
//! The report goes to stdout; progress goes to stderr.
//!
//! The load generators, query sampling, HTTP export and report tables take
//! stores and database URLs rather than SQLite paths, so `postgres`
//! measures PostgreSQL with the same code.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use auditlog_domain::api_key::Scope;
use auditlog_domain::org::NewOrg;
use auditlog_domain::store::AppendRequest;
use auditlog_domain::{Catalog, Clock, NewEntry, Org, OrgId, Plan, Store, SystemClock, Timestamp};
use auditlog_server::ServerConfig;
use auditlog_sqlite::rows::ENTRY_COLUMNS;
use auditlog_sqlite::rusqlite::types::ValueRef;
use auditlog_sqlite::rusqlite::{self, Connection, OpenFlags, params};
use auditlog_sqlite::{SqliteStore, schema};
use futures_util::StreamExt;
use reqwest::Method;
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::AnyError;
use crate::cli::BenchArgs;
use crate::make_key;
use crate::seed;

/// Events per batched request: the most one request may carry.
pub(crate) const BATCH_EVENTS: usize = auditlog_domain::ingest::MAX_BATCH;
/// Concurrent clients sending full batches.
pub(crate) const BATCH_CLIENTS: usize = 4;
/// Rows per transaction for the raw SQLite ceiling, the same as one batch.
pub(crate) const CEILING_TX_ROWS: usize = 1000;
/// Entries per `Store::append` while seeding the query database.
const SEED_BATCH: usize = 5000;
/// Requests per query kind sent before measuring, so each reader connection
/// has its statements prepared and its page cache filled.
pub(crate) const WARMUP_REQUESTS: usize = 10;
/// Of the seeded entries, every n-th lends its resource to the query mix.
const RESOURCE_SAMPLE_EVERY: usize = 500;
/// At most this many distinct resources are kept for the query mix.
const MAX_SAMPLED_RESOURCES: usize = 512;
pub(crate) const PAGE_LIMIT: &str = "50";
pub(crate) const ORG_SLUG: &str = "bench";
pub(crate) const RNG_SEED: u64 = 2026;
pub(crate) const MS_PER_DAY: i64 = 86_400_000;
pub(crate) const MIB: f64 = 1024.0 * 1024.0;

const TARGET_INGEST_RATIO: f64 = 0.5;
const TARGET_SINGLE_EVENTS_PER_SEC: f64 = 10_000.0;
const TARGET_QUERY_P99: Duration = Duration::from_millis(20);
const TARGET_EXPORT_ROWS_PER_SEC: f64 = 300_000.0;
const TARGET_EXPORT_PEAK_RSS_MIB: f64 = 100.0;

pub async fn run(args: BenchArgs) -> Result<(), AnyError> {
    check_args(&args)?;
    let workdir = Workdir::new(args.dir.as_deref())?;
    let machine_load = LoadMeter::start();
    let now = SystemClock.now();
    progress(format!("databases go in {}", workdir.path().display()));
    progress(format!(
        "generating {} entries for the ingest measurements",
        args.ingest_entries
    ));
    // A day inside the scale plan's 365-day window, and in the past, so
    // ingest accepts every entry however long the run takes; only events a
    // producer may send, so none is refused as the service's own.
    let ingest_rows = seed::ingestible_entries(
        args.ingest_entries,
        now.minus_days(364),
        now.plus_millis(-60_000),
        RNG_SEED,
    );

    settle_disk();
    let ceiling = sqlite_ceiling(workdir.fresh("bench-ceiling.db")?, &ingest_rows, CEILING_TX_ROWS).await?;
    // With one request in flight per client, one commit gathers at most
    // `clients` single-event requests: this is the single-event path's ceiling.
    let few = &ingest_rows[..args.single_events.min(ingest_rows.len())];
    let small_ceiling = sqlite_ceiling(workdir.fresh("bench-ceiling-small.db")?, few, args.clients).await?;
    settle_disk();
    progress("7/7 tamper evidence: appends with and without the Merkle tree");
    let integrity = crate::integrity::measure(workdir.path(), &ingest_rows).await?;
    settle_disk();
    let batched = batched_ingest(workdir.fresh("bench-batched.db")?, &ingest_rows).await?;
    drop(ingest_rows);
    settle_disk();
    let single = single_event_ingest(&workdir, args.single_events, args.clients).await?;
    settle_disk();
    let (queries, seeded) = query_latency(workdir.fresh("bench-query.db")?, args.entries, args.query_samples).await?;
    settle_disk();
    let reads = crate::reads::measure(workdir.path(), args.entries, args.query_samples).await?;
    settle_disk();
    let export = csv_export(&seeded, workdir.path()).await?;
    settle_disk();
    progress("6/7 webhook delivery at a sustained rate");
    let webhooks = crate::webhooks::run(
        workdir.path(),
        crate::webhooks::WebhookBench {
            rate: args.webhook_rate,
            seconds: args.webhook_seconds,
            endpoints: args.webhook_endpoints,
        },
    )
    .await?;

    let results = Results {
        command: command_line(),
        date: now,
        other_load: machine_load.others(),
        ceiling,
        small_ceiling,
        batched,
        single,
        queries,
        reads,
        export,
        webhooks,
        integrity,
    };
    println!("{}", results.render()?);
    Ok(())
}

/// Flushes what earlier sections left in the page cache, so their
/// writeback does not stall the next section's fsyncs: each section is
/// measured as if run alone. Best effort: without `sync` the run goes on.
pub(crate) fn settle_disk() {
    if let Err(e) = std::process::Command::new("sync").status() {
        progress(format!("could not run sync ({e}); sections may disturb each other"));
    }
}

pub(crate) fn check_args(args: &BenchArgs) -> Result<(), AnyError> {
    let counts = [
        ("--entries", args.entries),
        ("--ingest-entries", args.ingest_entries),
        ("--single-events", args.single_events),
        ("--clients", args.clients),
        ("--query-samples", args.query_samples),
    ];
    match counts.iter().find(|(_, n)| *n == 0) {
        Some((flag, _)) => Err(format!("{flag} must be at least 1").into()),
        None => Ok(()),
    }
}

// ---------------------------------------------------------------------------
// Progress, files and small helpers
// ---------------------------------------------------------------------------

/// A line on stderr, stamped with the time since the run began.
pub fn progress(message: impl std::fmt::Display) {
    static STARTED: OnceLock<Instant> = OnceLock::new();
    let elapsed = STARTED.get_or_init(Instant::now).elapsed();
    eprintln!("bench [{:>7.1}s] {message}", elapsed.as_secs_f64());
}

/// Where the databases live: a temporary directory removed at the end, or
/// the directory the caller named, which is kept.
pub(crate) struct Workdir {
    path: PathBuf,
    _temp: Option<tempfile::TempDir>,
}

impl Workdir {
    pub(crate) fn new(dir: Option<&Path>) -> Result<Self, AnyError> {
        match dir {
            Some(dir) => {
                std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
                Ok(Self {
                    path: dir.to_path_buf(),
                    _temp: None,
                })
            }
            None => {
                let temp = tempfile::Builder::new().prefix("auditlog-bench-").tempdir()?;
                Ok(Self {
                    path: temp.path().to_path_buf(),
                    _temp: Some(temp),
                })
            }
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// A path for a new database, with any earlier run's file (and its WAL)
    /// removed so every measurement starts empty.
    pub(crate) fn fresh(&self, name: &str) -> Result<PathBuf, AnyError> {
        let path = self.path.join(name);
        remove_database(&path)?;
        Ok(path)
    }
}

/// The command as run, with the executable by its name only: the report
/// is shared, and where the binary sat on this machine is nobody's business.
pub(crate) fn command_line() -> String {
    std::env::args()
        .enumerate()
        .map(|(i, a)| {
            let a = if i == 0 {
                std::path::Path::new(&a)
                    .file_name()
                    .map_or(a.clone(), |n| n.to_string_lossy().into_owned())
            } else {
                a
            };
            if a.contains(' ') { format!("'{a}'") } else { a }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

pub(crate) fn per_sec(count: usize, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64().max(f64::EPSILON)
}

/// User plus system CPU time of a process (`self` or a pid), from
/// `/proc/<pid>/stat`; `None` where there is no /proc.
pub(crate) fn cpu_time(pid: &str) -> Option<Duration> {
    process_ticks(pid, 2)
}

/// This process's CPU time plus that of the children it has waited for.
fn own_cpu_with_children() -> Option<Duration> {
    process_ticks("self", 4)
}

/// The sum of `count` fields of `/proc/<pid>/stat` from `utime` on (utime,
/// stime, cutime, cstime).
fn process_ticks(pid: &str, count: usize) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces; the fields after it do not, and
    // utime is the 12th of them.
    let (_, fields) = stat.rsplit_once(") ")?;
    let values: Vec<u64> = fields
        .split_whitespace()
        .skip(11)
        .take(count)
        .filter_map(|v| v.parse().ok())
        .collect();
    (values.len() == count).then(|| ticks(values.iter().sum()))
}

/// Clock ticks of USER_HZ, which Linux fixes at 100 per second.
fn ticks(n: u64) -> Duration {
    Duration::from_millis(n * 10)
}

/// How busy the rest of the machine was during the run: on a shared
/// machine, another process's work would silently lower every figure.
pub(crate) struct LoadMeter {
    started: Instant,
    system: Option<Duration>,
    own: Option<Duration>,
}

impl LoadMeter {
    pub(crate) fn start() -> Self {
        Self {
            started: Instant::now(),
            system: system_busy(),
            own: own_cpu_with_children(),
        }
    }

    /// Cores busy on average with work other than this process and its
    /// waited-for children (kernel I/O done on its behalf counts as other).
    pub(crate) fn others(&self) -> Option<f64> {
        let system = system_busy()?.checked_sub(self.system?)?;
        let own = own_cpu_with_children()?.checked_sub(self.own?)?;
        Some(system.saturating_sub(own).as_secs_f64() / self.started.elapsed().as_secs_f64().max(f64::EPSILON))
    }
}

/// Busy CPU time of the whole machine since boot, from `/proc/stat`.
pub(crate) fn system_busy() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let values: Vec<u64> = line.split_whitespace().skip(1).filter_map(|v| v.parse().ok()).collect();
    // Idle and I/O wait are the only states that are not work.
    let &[user, nice, system, _idle, _iowait, irq, softirq, ..] = values.as_slice() else {
        return None;
    };
    Some(ticks(user + nice + system + irq + softirq))
}

/// The database file and its WAL, in bytes.
fn database_bytes(path: &Path) -> u64 {
    let wal = PathBuf::from(format!("{}-wal", path.display()));
    [path, wal.as_path()]
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum()
}

/// p50, p99 and max of a set of request latencies (nearest-rank).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Latencies {
    pub(crate) p50: Duration,
    pub(crate) p99: Duration,
    pub(crate) max: Duration,
}

impl Latencies {
    pub(crate) fn of(mut samples: Vec<Duration>) -> Self {
        samples.sort_unstable();
        let rank = |p: f64| {
            let i = (p * samples.len() as f64).ceil() as usize;
            samples.get(i.saturating_sub(1)).copied().unwrap_or_default()
        };
        Self {
            p50: rank(0.50),
            p99: rank(0.99),
            max: samples.last().copied().unwrap_or_default(),
        }
    }
}

/// An HTTP client for the local server; proxies are bypassed since the
/// server is always on the loopback interface.
pub(crate) fn http_client(timeout: Option<Duration>) -> Result<reqwest::Client, AnyError> {
    let mut builder = reqwest::Client::builder().no_proxy().tcp_nodelay(true);
    if let Some(t) = timeout {
        builder = builder.timeout(t);
    }
    Ok(builder.build()?)
}

/// The error for an answer the benchmark did not expect, with the start of
/// the body, which says what the server objected to.
pub(crate) fn unexpected(what: &str, status: StatusCode, body: &[u8]) -> AnyError {
    let text = String::from_utf8_lossy(&body[..body.len().min(600)]);
    format!("{what} answered {status}: {text}").into()
}

// ---------------------------------------------------------------------------
// Organizations, keys and in-process servers
// ---------------------------------------------------------------------------

/// Opens a fresh store (migrations create the schema) with one organization
/// on the scale plan, whose 365-day window accepts a year of entries.
pub(crate) async fn fresh_store(path: &Path) -> Result<(Arc<dyn Store>, Org), AnyError> {
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?);
    let org = bench_org(store.as_ref()).await?;
    Ok((store, org))
}

/// The organization every section's entries go to, on the scale plan so a
/// year of entries is within retention.
pub async fn bench_org(store: &dyn Store) -> Result<Org, AnyError> {
    bench_org_named(store, ORG_SLUG).await
}

/// An organization like [`bench_org`]'s under another slug, for load
/// spread over several organizations.
pub(crate) async fn bench_org_named(store: &dyn Store, slug: &str) -> Result<Org, AnyError> {
    let org = store
        .create_org(
            NewOrg {
                slug: slug.into(),
                name: "Bench".into(),
                plan: Plan::Scale,
                enterprise_retention_days: None,
            },
            SystemClock.now().minus_days(400),
        )
        .await?;
    Ok(org)
}

/// Removes a database file and its WAL, so a measurement starts empty.
pub fn remove_database(path: &Path) -> Result<(), AnyError> {
    for suffix in ["", "-wal", "-shm"] {
        let file = PathBuf::from(format!("{}{suffix}", path.display()));
        match std::fs::remove_file(&file) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("cannot remove {}: {e}", file.display()).into()),
        }
    }
    Ok(())
}

/// The real server on a loopback port, stopped through its token.
pub(crate) struct InProcessServer {
    pub(crate) base: String,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl InProcessServer {
    pub(crate) async fn start(store: Arc<dyn Store>) -> Result<Self, AnyError> {
        Self::start_with(ServerConfig::default(), store).await
    }

    pub(crate) async fn start_with(config: ServerConfig, store: Arc<dyn Store>) -> Result<Self, AnyError> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(auditlog_server::serve(config, store, listener, shutdown.clone()));
        Ok(Self { base, shutdown, task })
    }

    /// Stops accepting, lets the writer drain, and waits for both.
    pub(crate) async fn stop(self) -> Result<(), AnyError> {
        self.shutdown.cancel();
        self.task.await??;
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// 1. SQLite ceiling
// ---------------------------------------------------------------------------

struct CeilingFigures {
    rows: usize,
    tx_rows: usize,
    elapsed: Duration,
}

/// One entry as the values `INSERT_ENTRY` binds, prepared before the clock
/// starts so the ceiling measures SQLite alone.
struct RawRow {
    seq: i64,
    id: [u8; 16],
    ts: i64,
    received_at: i64,
    actor_type: &'static str,
    actor: String,
    event: String,
    resource_type: String,
    resource_id: String,
    resource_name: Option<String>,
    details: String,
    ip_address: Option<String>,
    user_agent: Option<String>,
    request_id: Option<String>,
}

impl RawRow {
    fn new(seq: i64, e: &NewEntry) -> Self {
        Self {
            seq,
            id: *uuid::Uuid::now_v7().as_bytes(),
            ts: e.timestamp.millis(),
            received_at: e.timestamp.millis() + 1500,
            actor_type: e.actor.kind.as_str(),
            actor: e.actor.id.clone(),
            event: e.event.clone(),
            resource_type: e.resource.kind.clone(),
            resource_id: e.resource.id.clone(),
            resource_name: e.resource.name.clone(),
            details: Value::Object(e.details.clone()).to_string(),
            ip_address: e.ip_address.map(|ip| ip.to_string()),
            user_agent: e.user_agent.clone(),
            request_id: e.request_id.clone(),
        }
    }
}

async fn sqlite_ceiling(path: PathBuf, entries: &[NewEntry], tx_rows: usize) -> Result<CeilingFigures, AnyError> {
    progress(format!(
        "1/7 SQLite ceiling: raw inserts of {} rows, {tx_rows} per transaction",
        entries.len()
    ));
    let (store, org) = fresh_store(&path).await?;
    // The store only creates the schema; the raw connection below does the
    // inserting, so nothing else holds the write lock.
    drop(store);
    let raw: Vec<RawRow> = entries.iter().zip(1..).map(|(e, seq)| RawRow::new(seq, e)).collect();
    let figures = tokio::task::spawn_blocking(move || insert_raw(&path, org.id, &raw, tx_rows)).await??;
    progress(format!(
        "    {:.0} rows/s in {:.2} s",
        per_sec(figures.rows, figures.elapsed),
        figures.elapsed.as_secs_f64()
    ));
    Ok(figures)
}

/// Inserts the rows in transactions of `tx_rows`, with the store's own
/// writer settings (WAL, `synchronous=FULL`), and times it.
fn insert_raw(path: &Path, org: OrgId, rows: &[RawRow], tx_rows: usize) -> Result<CeilingFigures, AnyError> {
    let mut conn = Connection::open(path)?;
    schema::configure_writer(&conn)?;
    let started = Instant::now();
    for chunk in rows.chunks(tx_rows.max(1)) {
        let tx = conn.transaction()?;
        {
            let mut insert = tx.prepare_cached(schema::INSERT_ENTRY)?;
            for r in chunk {
                insert.execute(params![
                    org.0,
                    r.seq,
                    &r.id[..],
                    r.ts,
                    r.received_at,
                    r.actor_type,
                    r.actor,
                    r.event,
                    r.resource_type,
                    r.resource_id,
                    r.resource_name,
                    r.details,
                    r.ip_address,
                    r.user_agent,
                    r.request_id,
                    Option::<String>::None,
                    // What the store writes for every entry now: the
                    // submitter and canonical version 2.
                    "api_key",
                    "lqt_bench0000",
                    auditlog_domain::canonical::CURRENT_VERSION,
                ])?;
            }
        }
        tx.commit()?;
    }
    Ok(CeilingFigures {
        rows: rows.len(),
        tx_rows,
        elapsed: started.elapsed(),
    })
}

// ---------------------------------------------------------------------------
// 2 and 3. Ingest over HTTP
// ---------------------------------------------------------------------------

/// Many requests sent by concurrent clients.
pub(crate) struct HttpLoad {
    pub(crate) requests: usize,
    pub(crate) clients: usize,
    pub(crate) elapsed: Duration,
    /// CPU time of this whole process (server and clients) while sending.
    pub(crate) cpu: Option<Duration>,
    /// Busy CPU time of the whole machine meanwhile: with a database server
    /// on the same machine, what it used is the difference.
    pub(crate) machine: Option<Duration>,
    pub(crate) latency: Latencies,
}

pub(crate) struct IngestFigures {
    pub(crate) entries: usize,
    pub(crate) load: HttpLoad,
}

struct SingleEventFigures {
    ingest: IngestFigures,
    /// `GET /healthz` from the same clients: HTTP alone, no work behind it.
    healthz: HttpLoad,
}

/// An entry as a client sends it. `actor_type` and `request_id` are given
/// so the stored rows equal the ceiling's.
pub(crate) fn event_json(e: &NewEntry) -> Value {
    json!({
        "event": e.event,
        "timestamp": e.timestamp.to_rfc3339(),
        "actor": e.actor.id,
        "actor_type": e.actor.kind.as_str(),
        "resource": e.resource,
        "details": e.details,
        "ip_address": e.ip_address.map(|ip| ip.to_string()),
        "user_agent": e.user_agent,
        "request_id": e.request_id,
    })
}

async fn batched_ingest(path: PathBuf, entries: &[NewEntry]) -> Result<IngestFigures, AnyError> {
    progress(format!(
        "2/7 batched ingest: {} entries in batches of {BATCH_EVENTS} from {BATCH_CLIENTS} clients",
        entries.len()
    ));
    let figures = ingest_over_http(&path, batch_bodies(entries)?, entries.len(), BATCH_CLIENTS).await?;
    progress(format!(
        "    {:.0} entries/s",
        per_sec(figures.entries, figures.load.elapsed)
    ));
    Ok(figures)
}

async fn single_event_ingest(dir: &Workdir, count: usize, clients: usize) -> Result<SingleEventFigures, AnyError> {
    progress(format!(
        "3/7 single-event ingest: {count} requests from {clients} clients"
    ));
    let ingest = ingest_over_http(&dir.fresh("bench-single.db")?, single_bodies(count)?, count, clients).await?;
    progress(format!(
        "    {:.0} entries/s, p99 {:.1} ms",
        per_sec(ingest.entries, ingest.load.elapsed),
        ms(ingest.load.latency.p99)
    ));
    let healthz = healthz_under_load(&dir.fresh("bench-healthz.db")?, count, clients).await?;
    progress(format!(
        "    baseline GET /healthz: {:.0} requests/s",
        per_sec(healthz.requests, healthz.elapsed)
    ));
    Ok(SingleEventFigures { ingest, healthz })
}

/// The bodies of batched ingest: full batches of the given entries.
pub(crate) fn batch_bodies(entries: &[NewEntry]) -> Result<Vec<Vec<u8>>, AnyError> {
    let bodies = entries
        .chunks(BATCH_EVENTS)
        .map(|chunk| {
            let events: Vec<Value> = chunk.iter().map(event_json).collect();
            serde_json::to_vec(&json!({ "events": events }))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(bodies)
}

/// The bodies of single-event ingest: `count` one-event requests from the
/// last month.
pub(crate) fn single_bodies(count: usize) -> Result<Vec<Vec<u8>>, AnyError> {
    let now = SystemClock.now();
    let entries = seed::ingestible_entries(count, now.minus_days(30), now.plus_millis(-60_000), RNG_SEED + 1);
    let bodies = entries
        .iter()
        .map(|e| serde_json::to_vec(&event_json(e)))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(bodies)
}

/// Serves a fresh database in-process and measures ingest through it.
async fn ingest_over_http(
    path: &Path,
    bodies: Vec<Vec<u8>>,
    entries: usize,
    clients: usize,
) -> Result<IngestFigures, AnyError> {
    let (store, org) = fresh_store(path).await?;
    ingest_through(&[store], &[org], bodies, entries, clients).await
}

/// Serves each store from its own in-process server (replicas of one
/// service when the stores share a database) and posts every body
/// (already serialised, so the clock measures the service rather than the
/// client's JSON encoding): the i-th to organization i mod orgs, through
/// replica (i div orgs) mod replicas, so every organization's requests
/// reach every replica. Checks the logs hold every entry sent.
pub(crate) async fn ingest_through(
    stores: &[Arc<dyn Store>],
    orgs: &[Org],
    bodies: Vec<Vec<u8>>,
    entries: usize,
    clients: usize,
) -> Result<IngestFigures, AnyError> {
    let first = stores.first().ok_or("ingest needs at least one store")?;
    if orgs.is_empty() {
        return Err("ingest needs at least one organization".into());
    }
    let auth = ingest_keys(first.as_ref(), orgs).await?;
    let mut servers = Vec::with_capacity(stores.len());
    for store in stores {
        servers.push(InProcessServer::start(store.clone()).await?);
    }
    let bases: Vec<&str> = servers.iter().map(|s| s.base.as_str()).collect();
    let requests = spread_over_replicas(&bases, orgs, &auth, bodies, Route::Spread)?;
    let load = send_all(requests, clients, StatusCode::CREATED).await?;

    for server in servers {
        server.stop().await?;
    }
    check_stored(first.as_ref(), orgs, entries).await?;
    Ok(IngestFigures { entries, load })
}

/// A new write key for each organization, as an `Authorization` value.
pub(crate) async fn ingest_keys(store: &dyn Store, orgs: &[Org]) -> Result<Vec<HeaderValue>, AnyError> {
    let mut auth = Vec::with_capacity(orgs.len());
    for org in orgs {
        let key = make_key(store, org, "bench ingest", vec![Scope::AuditWrite]).await?;
        auth.push(HeaderValue::from_str(&format!("Bearer {key}"))?);
    }
    Ok(auth)
}

/// Which replica a load balancer sends a request to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    /// In turn, so every organization's requests reach every replica.
    Spread,
    /// By organization: all of one organization's requests to one replica.
    ByOrganization,
}

/// An ingest request for each body: the i-th to organization i mod orgs
/// (with that organization's key from `auth`), through replica (i div orgs)
/// mod replicas when spread, or (i mod orgs) mod replicas when routed by
/// organization.
pub(crate) fn spread_over_replicas(
    bases: &[&str],
    orgs: &[Org],
    auth: &[HeaderValue],
    bodies: Vec<Vec<u8>>,
    route: Route,
) -> Result<Vec<reqwest::Request>, AnyError> {
    if bases.is_empty() || orgs.is_empty() || auth.len() != orgs.len() {
        return Err("ingest needs a replica, an organization and a key for each".into());
    }
    // urls[replica][org]
    let urls = bases
        .iter()
        .map(|base| {
            orgs.iter()
                .map(|o| reqwest::Url::parse(&format!("{base}/v1/orgs/{}/audit/events", o.slug)))
                .collect::<Result<Vec<_>, _>>()
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(bodies
        .into_iter()
        .enumerate()
        .map(|(i, body)| {
            let org = i % orgs.len();
            let replica = match route {
                Route::Spread => (i / orgs.len()) % urls.len(),
                Route::ByOrganization => org % urls.len(),
            };
            let mut request = reqwest::Request::new(Method::POST, urls[replica][org].clone());
            let headers = request.headers_mut();
            headers.insert(AUTHORIZATION, auth[org].clone());
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            *request.body_mut() = Some(body.into());
            request
        })
        .collect())
}

/// Fails unless the organizations' logs hold at least `entries`. The
/// server may add entries of its own (a key's first use in an hour is
/// recorded), so they may hold more.
pub(crate) async fn check_stored(store: &dyn Store, orgs: &[Org], entries: usize) -> Result<(), AnyError> {
    let mut stored = 0;
    for org in orgs {
        stored += store.log_size(org.id).await?;
    }
    if usize::try_from(stored).unwrap_or(0) < entries {
        return Err(format!("sent {entries} entries but the logs hold {stored}").into());
    }
    Ok(())
}

/// `count` requests for `/healthz` from `clients` clients: what HTTP and
/// the in-process clients alone cost on this machine.
async fn healthz_under_load(path: &Path, count: usize, clients: usize) -> Result<HttpLoad, AnyError> {
    let (store, _) = fresh_store(path).await?;
    let server = InProcessServer::start(store).await?;
    let url = reqwest::Url::parse(&format!("{}/healthz", server.base))?;
    let requests = (0..count)
        .map(|_| reqwest::Request::new(Method::GET, url.clone()))
        .collect();
    let load = send_all(requests, clients, StatusCode::OK).await?;
    server.stop().await?;
    Ok(load)
}

/// Sends every request from `clients` concurrent clients, each taking the
/// next request from a shared queue as soon as its last one is answered.
/// Requests are built beforehand so the clock measures the server.
pub(crate) async fn send_all(
    requests: Vec<reqwest::Request>,
    clients: usize,
    expect: StatusCode,
) -> Result<HttpLoad, AnyError> {
    let count = requests.len();
    let queue = Arc::new(Mutex::new(requests.into_iter()));
    let clients_built = (0..clients)
        .map(|_| http_client(Some(Duration::from_secs(120))))
        .collect::<Result<Vec<_>, _>>()?;
    let mut workers = tokio::task::JoinSet::new();
    let (started, cpu_before, machine_before) = (Instant::now(), cpu_time("self"), system_busy());
    for client in clients_built {
        let queue = queue.clone();
        workers.spawn(async move { send_worker(&client, &queue, expect).await });
    }
    let mut latencies = Vec::with_capacity(count);
    // Dropping the set on an error aborts the other clients.
    while let Some(done) = workers.join_next().await {
        latencies.extend(done??);
    }
    let elapsed = started.elapsed();
    let cpu = cpu_time("self")
        .zip(cpu_before)
        .map(|(after, before)| after.saturating_sub(before));
    let machine = system_busy()
        .zip(machine_before)
        .map(|(after, before)| after.saturating_sub(before));
    Ok(HttpLoad {
        requests: count,
        clients,
        elapsed,
        cpu,
        machine,
        latency: Latencies::of(latencies),
    })
}

type RequestQueue = Mutex<std::vec::IntoIter<reqwest::Request>>;

async fn send_worker(
    client: &reqwest::Client,
    queue: &RequestQueue,
    expect: StatusCode,
) -> Result<Vec<Duration>, AnyError> {
    let mut latencies = Vec::new();
    loop {
        // The guard is dropped at the end of this statement, never held
        // across an await.
        let next = queue.lock().map_err(|_| "the request queue was poisoned")?.next();
        let Some(request) = next else {
            return Ok(latencies);
        };
        let started = Instant::now();
        let response = client.execute(request).await?;
        let status = response.status();
        let answer = response.bytes().await?;
        if status != expect {
            return Err(unexpected("the server", status, &answer));
        }
        latencies.push(started.elapsed());
    }
}

// ---------------------------------------------------------------------------
// 4. First-page query latency
// ---------------------------------------------------------------------------

pub(crate) struct SeedFigures {
    entries: usize,
    /// Time inside `Store::append` only.
    append: Duration,
    /// Generation included.
    total: Duration,
}

struct QueryFigures {
    seed: SeedFigures,
    database_bytes: u64,
    samples: usize,
    kinds: Vec<KindFigures>,
    healthz: Latencies,
}

pub(crate) struct KindFigures {
    pub(crate) label: &'static str,
    pub(crate) latency: Latencies,
    /// Mean entries per returned page; shows the queries found data.
    pub(crate) mean_rows: f64,
}

/// What the export measurement needs of the seeded database.
struct SeededDb {
    path: PathBuf,
    org: OrgId,
    entries: usize,
    read_key: String,
}

/// Values that occur in the seeded entries, so every query asks about
/// something that exists, and the span of time they cover.
pub(crate) struct Vocabulary {
    start: Timestamp,
    end: Timestamp,
    actors: BTreeSet<String>,
    events: BTreeSet<String>,
    categories: BTreeSet<String>,
    resource_types: BTreeSet<String>,
    resources: BTreeSet<(String, String)>,
    /// Which categories of events each actor has caused.
    actor_categories: BTreeMap<String, BTreeSet<String>>,
}

impl Vocabulary {
    pub(crate) fn new(start: Timestamp, end: Timestamp) -> Self {
        Self {
            start,
            end,
            actors: BTreeSet::new(),
            events: BTreeSet::new(),
            categories: BTreeSet::new(),
            resource_types: BTreeSet::new(),
            resources: BTreeSet::new(),
            actor_categories: BTreeMap::new(),
        }
    }

    pub(crate) fn observe(&mut self, catalog: &Catalog, entries: &[NewEntry]) {
        for (i, e) in entries.iter().enumerate() {
            let category = catalog.get(&e.event).map_or("unknown", |s| s.category.as_str());
            remember(&mut self.actors, &e.actor.id);
            remember(&mut self.events, &e.event);
            remember(&mut self.categories, category);
            remember(&mut self.resource_types, &e.resource.kind);
            match self.actor_categories.get_mut(&e.actor.id) {
                Some(seen) => remember(seen, category),
                None => {
                    let seen = BTreeSet::from([category.to_owned()]);
                    self.actor_categories.insert(e.actor.id.clone(), seen);
                }
            }
            if i % RESOURCE_SAMPLE_EVERY == 0 && self.resources.len() < MAX_SAMPLED_RESOURCES {
                self.resources.insert((e.resource.kind.clone(), e.resource.id.clone()));
            }
        }
    }

    /// The lists queries cycle through, in a fixed order.
    pub(crate) fn lists(&self) -> QueryValues {
        QueryValues {
            start: self.start,
            end: self.end,
            actors: self.actors.iter().cloned().collect(),
            events: self.events.iter().cloned().collect(),
            categories: self.categories.iter().cloned().collect(),
            resource_types: self.resource_types.iter().cloned().collect(),
            resources: self.resources.iter().cloned().collect(),
            actor_categories: self
                .actor_categories
                .iter()
                .flat_map(|(a, cs)| cs.iter().map(move |c| (a.clone(), c.clone())))
                .collect(),
        }
    }
}

pub(crate) struct QueryValues {
    start: Timestamp,
    end: Timestamp,
    actors: Vec<String>,
    events: Vec<String>,
    categories: Vec<String>,
    resource_types: Vec<String>,
    resources: Vec<(String, String)>,
    actor_categories: Vec<(String, String)>,
}

/// Adds `value` to the set, allocating only when it is new: the sets stay
/// tiny while a million entries pass through.
fn remember(set: &mut BTreeSet<String>, value: &str) {
    if !set.contains(value) {
        set.insert(value.to_owned());
    }
}

/// The i-th value of a list, round and round.
fn cycle<T>(list: &[T], i: usize) -> Result<&T, AnyError> {
    list.get(i % list.len().max(1))
        .ok_or_else(|| "the seeded data holds no value for a query".into())
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum QueryKind {
    Unfiltered,
    Actor,
    EventExact,
    EventCategory,
    ResourceType,
    Resource,
    DateRange,
    Combination,
}

impl QueryKind {
    pub(crate) const ALL: [QueryKind; 8] = [
        QueryKind::Unfiltered,
        QueryKind::Actor,
        QueryKind::EventExact,
        QueryKind::EventCategory,
        QueryKind::ResourceType,
        QueryKind::Resource,
        QueryKind::DateRange,
        QueryKind::Combination,
    ];

    pub(crate) fn label(self) -> &'static str {
        match self {
            QueryKind::Unfiltered => "no filter",
            QueryKind::Actor => "`actor=`",
            QueryKind::EventExact => "`event=` exact",
            QueryKind::EventCategory => "`event=category.*`",
            QueryKind::ResourceType => "`resource_type=`",
            QueryKind::Resource => "`resource_type=&resource_id=`",
            QueryKind::DateRange => "`from=&to=` (30 days)",
            QueryKind::Combination => "`actor=&event=category.*&from=`",
        }
    }

    /// The query parameters of the i-th request of this kind.
    pub(crate) fn params(self, i: usize, v: &QueryValues) -> Result<Vec<(&'static str, String)>, AnyError> {
        let middle = Timestamp((v.start.millis() + v.end.millis()) / 2);
        let mut p = match self {
            QueryKind::Unfiltered => vec![],
            QueryKind::Actor => vec![("actor", cycle(&v.actors, i)?.clone())],
            QueryKind::EventExact => vec![("event", cycle(&v.events, i)?.clone())],
            QueryKind::EventCategory => vec![("event", format!("{}.*", cycle(&v.categories, i)?))],
            QueryKind::ResourceType => vec![("resource_type", cycle(&v.resource_types, i)?.clone())],
            QueryKind::Resource => {
                let (kind, id) = cycle(&v.resources, i)?;
                vec![("resource_type", kind.clone()), ("resource_id", id.clone())]
            }
            QueryKind::DateRange => {
                // A 30-day window whose centre slides a day per request,
                // within 15 days either side of the middle of the year.
                let offset = (i % 31) as i64 - 15;
                let from = middle.plus_millis((offset - 15) * MS_PER_DAY);
                let to = from.plus_millis(30 * MS_PER_DAY);
                vec![("from", from.to_rfc3339()), ("to", to.to_rfc3339())]
            }
            QueryKind::Combination => {
                let (actor, category) = cycle(&v.actor_categories, i)?;
                vec![
                    ("actor", actor.clone()),
                    ("event", format!("{category}.*")),
                    ("from", middle.to_rfc3339()),
                ]
            }
        };
        p.push(("limit", PAGE_LIMIT.to_owned()));
        Ok(p)
    }
}

async fn query_latency(path: PathBuf, entries: usize, samples: usize) -> Result<(QueryFigures, SeededDb), AnyError> {
    progress(format!(
        "4/7 query latency: seeding {entries} entries through Store::append"
    ));
    let (store, org) = fresh_store(&path).await?;
    let (seed, vocabulary) = seed_log(store.as_ref(), org.id, entries).await?;
    let size = database_bytes(&path);
    progress(format!(
        "    seeded at {:.0} rows/s ({:.1} s in Store::append, {:.1} s with generation), {:.0} MiB on disk",
        per_sec(seed.entries, seed.append),
        seed.append.as_secs_f64(),
        seed.total.as_secs_f64(),
        size as f64 / MIB
    ));
    let sampled = sample_queries(store, &org, &vocabulary, samples).await?;

    let figures = QueryFigures {
        seed,
        database_bytes: size,
        samples,
        kinds: sampled.kinds,
        healthz: sampled.healthz,
    };
    let seeded = SeededDb {
        path,
        org: org.id,
        entries,
        read_key: sampled.read_key,
    };
    Ok((figures, seeded))
}

/// First-page latencies of every query kind, and of `/healthz`.
pub(crate) struct SampledQueries {
    pub(crate) kinds: Vec<KindFigures>,
    pub(crate) healthz: Latencies,
    /// The `audit:read` key the queries used, for the export after them.
    pub(crate) read_key: String,
}

/// Serves the store in-process and sends `samples` first-page queries of
/// each kind, with values from the vocabulary of the seeded entries.
pub(crate) async fn sample_queries(
    store: Arc<dyn Store>,
    org: &Org,
    vocabulary: &Vocabulary,
    samples: usize,
) -> Result<SampledQueries, AnyError> {
    let read_key = make_key(store.as_ref(), org, "bench reader", vec![Scope::AuditRead]).await?;
    let server = InProcessServer::start(store).await?;
    let client = http_client(Some(Duration::from_secs(60)))?;
    let values = vocabulary.lists();

    let mut kinds = Vec::new();
    for kind in QueryKind::ALL {
        let figures = measure_kind(&client, &server.base, &read_key, kind, &values, samples).await?;
        progress(format!(
            "    {:<34} p50 {:>6.2} ms  p99 {:>6.2} ms  max {:>6.2} ms",
            kind.label(),
            ms(figures.latency.p50),
            ms(figures.latency.p99),
            ms(figures.latency.max)
        ));
        kinds.push(figures);
    }
    let healthz = measure_healthz(&client, &server.base, samples).await?;
    drop(client);
    server.stop().await?;
    Ok(SampledQueries {
        kinds,
        healthz,
        read_key,
    })
}

/// How the seeded log spreads over the last year: `n` entries in `batches`
/// consecutive slices of time, each generated on its own so memory stays
/// flat however large `n` is.
pub(crate) struct SeedPlan {
    pub(crate) n: usize,
    per_batch: usize,
    pub(crate) batches: usize,
    start: Timestamp,
    end: Timestamp,
}

impl SeedPlan {
    pub(crate) fn new(n: usize, per_batch: usize) -> Self {
        let now = SystemClock.now();
        let per_batch = per_batch.max(1);
        Self {
            n,
            per_batch,
            batches: n.div_ceil(per_batch),
            start: now.minus_days(364),
            end: now.plus_millis(-60_000),
        }
    }

    pub(crate) fn vocabulary(&self) -> Vocabulary {
        Vocabulary::new(self.start, self.end)
    }

    /// The b-th slice's entries, and the time they are received at.
    pub(crate) fn batch(&self, b: usize) -> (Vec<NewEntry>, Timestamp) {
        let span = self.end.millis() - self.start.millis();
        let count = self.per_batch.min(self.n - b * self.per_batch);
        let slice_start = Timestamp(self.start.millis() + span * b as i64 / self.batches as i64);
        let slice_end = Timestamp(self.start.millis() + span * (b as i64 + 1) / self.batches as i64);
        let entries = seed::entries(count, slice_start, slice_end, RNG_SEED + 100 + b as u64);
        let received = entries.last().map_or(slice_end, |e| e.timestamp.plus_millis(1500));
        (entries, received)
    }

    /// The tenth of the work just finished by completing batch `b`, if
    /// this batch crossed into a new one: for progress lines.
    pub(crate) fn tenth_done(&self, b: usize) -> Option<usize> {
        let tenth = |done: usize| (done * self.per_batch).min(self.n) * 10 / self.n.max(1);
        (tenth(b + 1) > tenth(b)).then(|| tenth(b + 1))
    }
}

/// Fills the last year with `n` entries, `SEED_BATCH` per transaction.
/// Entries are generated a batch at a time, each batch covering its own
/// slice of the year, so memory stays flat however large `n` is.
pub(crate) async fn seed_log(store: &dyn Store, org: OrgId, n: usize) -> Result<(SeedFigures, Vocabulary), AnyError> {
    let catalog = Catalog::builtin();
    let plan = SeedPlan::new(n, SEED_BATCH);
    let mut vocabulary = plan.vocabulary();
    let mut append = Duration::ZERO;
    let started = Instant::now();
    for b in 0..plan.batches {
        let (entries, received) = plan.batch(b);
        vocabulary.observe(&catalog, &entries);
        let t = Instant::now();
        let results = store
            .append(vec![AppendRequest::entries(org, entries)], received)
            .await?;
        append += t.elapsed();
        for result in results {
            result?;
        }
        if plan.tenth_done(b).is_some() {
            progress(format!("    seeded {}/{n}", ((b + 1) * SEED_BATCH).min(n)));
        }
    }
    let figures = SeedFigures {
        entries: n,
        append,
        total: started.elapsed(),
    };
    Ok((figures, vocabulary))
}

pub(crate) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Sends one GET and reads the whole body; returns its latency and body.
pub(crate) async fn timed_get(request: reqwest::RequestBuilder, what: &str) -> Result<(Duration, Vec<u8>), AnyError> {
    let started = Instant::now();
    let response = request.send().await?;
    let status = response.status();
    let body = response.bytes().await?;
    let elapsed = started.elapsed();
    if status != StatusCode::OK {
        return Err(unexpected(what, status, &body));
    }
    Ok((elapsed, body.to_vec()))
}

async fn measure_kind(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    kind: QueryKind,
    values: &QueryValues,
    samples: usize,
) -> Result<KindFigures, AnyError> {
    let url = format!("{base}/v1/orgs/{ORG_SLUG}/audit/events");
    let mut latencies = Vec::with_capacity(samples);
    let mut rows = 0usize;
    for i in 0..WARMUP_REQUESTS.min(samples) {
        let params = kind.params(i, values)?;
        timed_get(client.get(&url).bearer_auth(key).query(&params), kind.label()).await?;
    }
    for i in 0..samples {
        let params = kind.params(i, values)?;
        let (elapsed, body) = timed_get(client.get(&url).bearer_auth(key).query(&params), kind.label()).await?;
        latencies.push(elapsed);
        rows += page_rows(&body)?;
    }
    Ok(KindFigures {
        label: kind.label(),
        latency: Latencies::of(latencies),
        mean_rows: rows as f64 / samples as f64,
    })
}

/// How many entries a listing page holds.
pub(crate) fn page_rows(body: &[u8]) -> Result<usize, AnyError> {
    let page: Value = serde_json::from_slice(body)?;
    page.get("entries")
        .and_then(Value::as_array)
        .map(Vec::len)
        .ok_or_else(|| "a listing answered without an entries array".into())
}

/// The same measurement for `GET /healthz`, which touches no database: the
/// cost of HTTP alone on this machine.
async fn measure_healthz(client: &reqwest::Client, base: &str, samples: usize) -> Result<Latencies, AnyError> {
    let url = format!("{base}/healthz");
    for _ in 0..WARMUP_REQUESTS.min(samples) {
        timed_get(client.get(&url), "/healthz").await?;
    }
    let mut latencies = Vec::with_capacity(samples);
    for _ in 0..samples {
        latencies.push(timed_get(client.get(&url), "/healthz").await?.0);
    }
    Ok(Latencies::of(latencies))
}

// ---------------------------------------------------------------------------
// 5. CSV export
// ---------------------------------------------------------------------------

struct ExportFigures {
    http: HttpExport,
    scan: ScanFigures,
}

/// A whole CSV export through `GET /v1/orgs/{org}/audit/export`.
pub(crate) struct HttpExport {
    /// CPU time of the server process during the export.
    pub(crate) cpu: Option<Duration>,
    pub(crate) rows: usize,
    pub(crate) bytes: u64,
    pub(crate) elapsed: Duration,
    pub(crate) first_byte: Duration,
    pub(crate) startup_peak_kib: Option<u64>,
    pub(crate) peak_kib: Option<u64>,
}

struct ScanFigures {
    rows: usize,
    elapsed: Duration,
}

async fn csv_export(db: &SeededDb, dir: &Path) -> Result<ExportFigures, AnyError> {
    progress(format!(
        "5/7 CSV export: raw SQLite scan of {} entries for the baseline",
        db.entries
    ));
    let (path, org) = (db.path.clone(), db.org);
    let scan = tokio::task::spawn_blocking(move || raw_scan(&path, org)).await??;
    progress(format!("    scanned {:.0} rows/s", per_sec(scan.rows, scan.elapsed)));

    let database = format!("sqlite://{}", db.path.display());
    let http = http_export(&database, &[], dir, &db.read_key, db.entries).await?;
    Ok(ExportFigures { http, scan })
}

/// Exports the whole log as CSV from `auditlog serve --database URL
/// [extra_args]` started as a child process, so its memory and CPU are its
/// own to measure; checks every seeded entry came out.
pub(crate) async fn http_export(
    database: &str,
    extra_args: &[String],
    dir: &Path,
    read_key: &str,
    entries: usize,
) -> Result<HttpExport, AnyError> {
    let mut server = ChildServer::spawn(database, extra_args, &dir.join("bench-export-server.log"))?;
    let client = http_client(None)?;
    server.wait_ready(&client).await?;
    let startup_peak_kib = server.peak_rss_kib();
    progress(format!(
        "    exporting from `auditlog serve` (pid {})",
        server.child.id()
    ));
    let url = format!("{}/v1/orgs/{ORG_SLUG}/audit/export", server.base);
    let pid = server.child.id().to_string();
    let cpu_before = cpu_time(&pid);
    let streamed = stream_export(client.get(&url).bearer_auth(read_key).query(&[("format", "csv")])).await?;
    let peak_kib = server.peak_rss_kib();
    let cpu = cpu_time(&pid)
        .zip(cpu_before)
        .map(|(after, before)| after.saturating_sub(before));
    server.stop()?;

    // One line per entry plus the header; no cell holds a line break. The
    // log may hold a few entries the server recorded itself besides the
    // seeded ones, so at least those must be there.
    let rows = streamed.lines.saturating_sub(1);
    if rows < entries {
        return Err(format!("the export held {rows} rows; {entries} entries were seeded").into());
    }
    let figures = HttpExport {
        cpu,
        rows,
        bytes: streamed.bytes,
        elapsed: streamed.elapsed,
        first_byte: streamed.first_byte,
        startup_peak_kib,
        peak_kib,
    };
    progress(format!(
        "    exported {:.0} rows/s",
        per_sec(figures.rows, figures.elapsed)
    ));
    Ok(figures)
}

/// Reads every column of every entry in export order: what SQLite alone
/// costs for the rows an export sends.
fn raw_scan(path: &Path, org: OrgId) -> Result<ScanFigures, AnyError> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let sql = format!("SELECT {ENTRY_COLUMNS} FROM entries WHERE org_id = ?1 ORDER BY ts DESC, seq DESC");
    let started = Instant::now();
    let mut stmt = conn.prepare(&sql)?;
    let columns = stmt.column_count();
    let mut result = stmt.query([org.0])?;
    let (mut count, mut bytes) = (0usize, 0usize);
    while let Some(row) = result.next()? {
        for i in 0..columns {
            bytes += value_len(row.get_ref(i)?);
        }
        count += 1;
    }
    let elapsed = started.elapsed();
    // Using the byte count keeps the reads from being optimised away.
    progress(format!("    raw scan read {count} rows, {bytes} bytes of values"));
    Ok(ScanFigures { rows: count, elapsed })
}

fn value_len(v: ValueRef<'_>) -> usize {
    match v {
        ValueRef::Null => 0,
        ValueRef::Integer(_) | ValueRef::Real(_) => 8,
        ValueRef::Text(b) | ValueRef::Blob(b) => b.len(),
    }
}

pub(crate) struct Streamed {
    pub(crate) bytes: u64,
    pub(crate) lines: usize,
    pub(crate) first_byte: Duration,
    pub(crate) elapsed: Duration,
}

/// Downloads a body chunk by chunk, counting bytes and lines without
/// keeping it.
pub(crate) async fn stream_export(request: reqwest::RequestBuilder) -> Result<Streamed, AnyError> {
    let started = Instant::now();
    let response = request.send().await?;
    let status = response.status();
    if status != StatusCode::OK {
        let body = response.bytes().await?;
        return Err(unexpected("export", status, &body));
    }
    let mut body = response.bytes_stream();
    let (mut bytes, mut lines, mut first_byte) = (0u64, 0usize, None);
    while let Some(chunk) = body.next().await {
        let chunk = chunk?;
        first_byte.get_or_insert_with(|| started.elapsed());
        bytes += chunk.len() as u64;
        lines += chunk.iter().filter(|&&b| b == b'\n').count();
    }
    Ok(Streamed {
        bytes,
        lines,
        first_byte: first_byte.unwrap_or_default(),
        elapsed: started.elapsed(),
    })
}

/// `auditlog serve` as a child process, so its memory is its own to
/// measure. Killed when dropped, so an error never leaves it running.
pub(crate) struct ChildServer {
    pub(crate) child: std::process::Child,
    pub(crate) base: String,
    log: PathBuf,
}

impl ChildServer {
    pub(crate) fn spawn(database: &str, extra_args: &[String], log: &Path) -> Result<Self, AnyError> {
        Self::spawn_binary(&std::env::current_exe()?, database, extra_args, log)
    }

    /// As [`ChildServer::spawn`], with another build of `auditlog`.
    pub(crate) fn spawn_binary(
        binary: &Path,
        database: &str,
        extra_args: &[String],
        log: &Path,
    ) -> Result<Self, AnyError> {
        let port = free_port()?;
        let stderr = std::fs::File::create(log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;
        let child = std::process::Command::new(binary)
            .arg("serve")
            .arg("--database")
            .arg(database)
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .args(extra_args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(stderr)
            .spawn()
            .map_err(|e| format!("cannot start `auditlog serve`: {e}"))?;
        Ok(Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log: log.to_path_buf(),
        })
    }

    /// Polls `/healthz` until the server answers, for up to 30 seconds.
    pub(crate) async fn wait_ready(&mut self, client: &reqwest::Client) -> Result<(), AnyError> {
        let url = format!("{}/healthz", self.base);
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                return Err(format!("`auditlog serve` exited with {status}; see {}", self.log.display()).into());
            }
            let answer = client.get(&url).timeout(Duration::from_secs(1)).send().await;
            if answer.is_ok_and(|r| r.status() == StatusCode::OK) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(format!(
            "`auditlog serve` did not answer within 30 s; see {}",
            self.log.display()
        )
        .into())
    }

    /// The child's peak resident memory (`VmHWM`), where /proc exists.
    pub(crate) fn peak_rss_kib(&self) -> Option<u64> {
        proc_status_kib(self.child.id(), "VmHWM")
    }

    pub(crate) fn stop(&mut self) -> Result<(), AnyError> {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        // Already stopped on the normal path; this covers early returns.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A memory figure of a process's `/proc/PID/status` (`VmRSS`, `VmHWM`, …)
/// in KiB, where /proc exists.
pub(crate) fn proc_status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
}

/// A port nothing listens on right now: the kernel picks one for a listener
/// that is closed at once. Another process could take it before the child
/// binds it; then the child exits and `wait_ready` says so.
pub(crate) fn free_port() -> Result<u16, AnyError> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

// ---------------------------------------------------------------------------
// The report
// ---------------------------------------------------------------------------

struct Results {
    command: String,
    date: Timestamp,
    /// Cores other processes kept busy on average during the run.
    other_load: Option<f64>,
    ceiling: CeilingFigures,
    small_ceiling: CeilingFigures,
    batched: IngestFigures,
    single: SingleEventFigures,
    queries: QueryFigures,
    /// Each query kind with reads recorded and without.
    reads: Vec<crate::reads::ReadsFigures>,
    export: ExportFigures,
    /// The webhook section, rendered by `webhooks`.
    webhooks: String,
    integrity: crate::integrity::IntegrityFigures,
}

/// A Markdown table.
pub(crate) struct Table {
    columns: &'static [&'static str],
    rows: Vec<Vec<String>>,
}

impl Table {
    pub(crate) fn new(columns: &'static [&'static str]) -> Self {
        Self { columns, rows: vec![] }
    }

    pub(crate) fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// A figure with no target: dashes fill the remaining columns.
    pub(crate) fn info(&mut self, figure: &str, result: String) {
        let mut cells = vec![figure.to_owned(), result];
        cells.resize(self.columns.len(), dash());
        self.rows.push(cells);
    }

    pub(crate) fn render(&self, out: &mut String) -> std::fmt::Result {
        writeln!(out, "| {} |", self.columns.join(" | "))?;
        writeln!(out, "|{}", " --- |".repeat(self.columns.len()))?;
        for r in &self.rows {
            writeln!(out, "| {} |", r.join(" | "))?;
        }
        writeln!(out)
    }
}

/// Verdicts against targets, remembering each miss and by how much.
#[derive(Default)]
pub(crate) struct Verdicts {
    pub(crate) misses: Vec<String>,
}

impl Verdicts {
    /// The report's closing section: every miss, or that there was none.
    pub(crate) fn summary(&self, out: &mut String) -> std::fmt::Result {
        writeln!(out, "## Summary\n")?;
        if self.misses.is_empty() {
            return writeln!(out, "Every target was met.");
        }
        writeln!(out, "Missed targets:\n")?;
        for m in &self.misses {
            writeln!(out, "- {m}")?;
        }
        Ok(())
    }

    pub(crate) fn at_least(&mut self, what: &str, value: f64, target: f64) -> String {
        if value >= target {
            "PASS".into()
        } else {
            let short = (1.0 - value / target) * 100.0;
            self.misses.push(format!("{what}: {short:.1}% below target"));
            format!("MISS ({short:.1}% below)")
        }
    }

    pub(crate) fn at_most(&mut self, what: &str, value: f64, limit: f64) -> String {
        self.upper_bound(what, value, limit, value <= limit)
    }

    pub(crate) fn below(&mut self, what: &str, value: f64, limit: f64) -> String {
        self.upper_bound(what, value, limit, value < limit)
    }

    pub(crate) fn upper_bound(&mut self, what: &str, value: f64, limit: f64, met: bool) -> String {
        if met {
            return "PASS".into();
        }
        let over = (value / limit - 1.0) * 100.0;
        self.misses.push(format!("{what}: {over:.1}% over target"));
        format!("MISS ({over:.1}% over)")
    }
}

/// Each query kind's latencies against the p99 limit, and the `/healthz`
/// baseline.
pub(crate) fn query_table(kinds: &[KindFigures], healthz: Latencies, p99_limit: Duration, v: &mut Verdicts) -> Table {
    let limit = ms(p99_limit);
    let mut t = Table::new(&["Query", "p50", "p99", "max", "Rows/page", "Target", "Verdict"]);
    for k in kinds {
        t.row(vec![
            k.label.into(),
            fmt_ms(k.latency.p50),
            fmt_ms(k.latency.p99),
            fmt_ms(k.latency.max),
            format!("{:.1}", k.mean_rows),
            format!("p99 ≤ {limit:.0} ms"),
            v.at_most(&format!("query {} p99", k.label), ms(k.latency.p99), limit),
        ]);
    }
    t.row(vec![
        "`GET /healthz` (baseline)".into(),
        fmt_ms(healthz.p50),
        fmt_ms(healthz.p99),
        fmt_ms(healthz.max),
        dash(),
        dash(),
        dash(),
    ]);
    t
}

/// 1234567 → "1,234,567".
pub(crate) fn thousands(n: f64) -> String {
    let digits = format!("{:.0}", n.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub(crate) fn mib(kib: Option<u64>) -> String {
    kib.map_or_else(
        || "not measured (no /proc)".into(),
        |k| format!("{:.1} MiB", k as f64 / 1024.0),
    )
}

/// CPU time as cores kept busy over `elapsed`, against the cores there are.
pub(crate) fn cores_busy(cpu: Option<Duration>, elapsed: Duration) -> String {
    let cores = cores();
    cpu.map_or_else(
        || "not measured (no /proc)".into(),
        |c| {
            format!(
                "{:.2} of {cores} cores",
                c.as_secs_f64() / elapsed.as_secs_f64().max(f64::EPSILON)
            )
        },
    )
}

pub(crate) fn latency_triple(l: Latencies) -> String {
    format!("{} / {} / {}", fmt_ms(l.p50), fmt_ms(l.p99), fmt_ms(l.max))
}

pub(crate) fn fmt_ms(d: Duration) -> String {
    format!("{:.2} ms", ms(d))
}

pub(crate) fn dash() -> String {
    "—".into()
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, model)| model.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

/// The first lines of a report: how to reproduce it, when, and where.
pub(crate) fn run_facts(out: &mut String, command: &str, date: Timestamp) -> std::fmt::Result {
    writeln!(out, "- Command: `{command}`")?;
    writeln!(out, "- Date: {date}")?;
    writeln!(out, "- Machine: {} cores, {}", cores(), cpu_model())
}

pub(crate) fn cores() -> usize {
    std::thread::available_parallelism().map_or(0, |n| n.get())
}

impl Results {
    fn render(&self) -> Result<String, AnyError> {
        let mut out = String::new();
        let mut verdicts = Verdicts::default();
        self.header(&mut out)?;
        self.ceiling_section(&mut out)?;
        self.batched_section(&mut out, &mut verdicts)?;
        self.single_section(&mut out, &mut verdicts)?;
        self.query_section(&mut out, &mut verdicts)?;
        self.reads_section(&mut out, &mut verdicts)?;
        self.export_section(&mut out, &mut verdicts)?;
        writeln!(
            out,
            "## 6. Webhooks\n\n{}",
            self.webhooks.replace("### Webhook", "Webhook")
        )?;
        if self.webhooks.contains("| MISS |") {
            verdicts.misses.push("webhook commit-to-delivery p99".into());
        }
        writeln!(out, "{}", crate::integrity::render(&self.integrity))?;
        if self.integrity.missed() {
            verdicts.misses.push("tamper evidence's cost to ingest".into());
        }
        verdicts.summary(&mut out)?;
        Ok(out)
    }

    fn header(&self, out: &mut String) -> std::fmt::Result {
        writeln!(out, "# auditlog bench\n")?;
        run_facts(out, &self.command, self.date)?;
        writeln!(out, "- SQLite {} (WAL, `synchronous=FULL`)", rusqlite::version())?;
        match self.other_load {
            Some(cores) => writeln!(
                out,
                "- Other load during the run: {cores:.2} cores on average (from /proc/stat: everything but \
                 this process and its children, kernel I/O on its behalf included)"
            )?,
            None => writeln!(out, "- Other load during the run: not measured (no /proc)")?,
        }
        writeln!(
            out,
            "- Load: sections 1–4 run the client in this process, sharing the cores with the \
             server; section 5 exports from a separate `auditlog serve` process. Each section \
             starts after `sync`, so the writeback of the one before does not stall its commits.\n"
        )
    }

    fn ceiling_section(&self, out: &mut String) -> std::fmt::Result {
        let small = self.small_ceiling.tx_rows;
        writeln!(out, "## 1. SQLite ceiling\n")?;
        writeln!(
            out,
            "Raw rusqlite inserts of the ingest rows into a fresh database (`INSERT_ENTRY`, the \
             migrations' schema and indexes, WAL, `synchronous=FULL`), values prepared before timing. \
             {CEILING_TX_ROWS} rows per transaction is the reference for batched ingest; {small} rows \
             per transaction, the most one commit can gather from {small} clients with one request \
             each in flight, is the reference for single-event ingest.\n"
        )?;
        let mut t = Table::new(&["Rows per transaction", "Rows", "Elapsed", "Insert rate", "Target"]);
        for c in [&self.ceiling, &self.small_ceiling] {
            t.row(vec![
                thousands(c.tx_rows as f64),
                thousands(c.rows as f64),
                format!("{:.2} s", c.elapsed.as_secs_f64()),
                format!("{} rows/s", thousands(per_sec(c.rows, c.elapsed))),
                "reference".into(),
            ]);
        }
        t.render(out)
    }

    fn batched_section(&self, out: &mut String, v: &mut Verdicts) -> std::fmt::Result {
        let b = &self.batched;
        let rate = per_sec(b.entries, b.load.elapsed);
        let ratio = rate / per_sec(self.ceiling.rows, self.ceiling.elapsed).max(f64::EPSILON);
        writeln!(out, "## 2. Durable batched ingest over HTTP\n")?;
        writeln!(
            out,
            "`POST /v1/orgs/{{org}}/audit/events` with {BATCH_EVENTS}-event batches (bodies serialised \
             before timing) from {} concurrent clients; every answer is 201 after commit.\n",
            b.load.clients
        )?;
        let mut t = Table::new(&["Figure", "Result", "Target", "Verdict"]);
        t.info(
            "Entries / requests",
            format!(
                "{} / {}",
                thousands(b.entries as f64),
                thousands(b.load.requests as f64)
            ),
        );
        t.info("Ingest rate", format!("{} entries/s", thousands(rate)));
        t.row(vec![
            "Ratio to SQLite ceiling (1,000 rows/transaction)".into(),
            format!("{:.1}%", ratio * 100.0),
            format!("≥ {:.0}%", TARGET_INGEST_RATIO * 100.0),
            v.at_least("batched ingest / SQLite ceiling", ratio, TARGET_INGEST_RATIO),
        ]);
        t.info(
            "Request latency p50 / p99",
            format!("{} / {}", fmt_ms(b.load.latency.p50), fmt_ms(b.load.latency.p99)),
        );
        t.info("CPU busy (server + clients)", cores_busy(b.load.cpu, b.load.elapsed));
        t.render(out)
    }

    fn single_section(&self, out: &mut String, v: &mut Verdicts) -> std::fmt::Result {
        let (s, h) = (&self.single.ingest.load, &self.single.healthz);
        let rate = per_sec(self.single.ingest.entries, s.elapsed);
        let small = &self.small_ceiling;
        writeln!(out, "## 3. Single-event ingest from {} concurrent clients\n", s.clients)?;
        writeln!(
            out,
            "One event per `POST`, each client sending its next request as soon as its last is \
             acknowledged; the group-commit writer batches concurrent requests into one transaction. \
             Baseline: `GET /healthz`, which does no work, from the same clients.\n"
        )?;
        let mut t = Table::new(&["Figure", "Result", "Target", "Verdict"]);
        t.info("Requests", thousands(s.requests as f64));
        t.row(vec![
            "Ingest rate".into(),
            format!("{} entries/s", thousands(rate)),
            format!("≥ {} entries/s", thousands(TARGET_SINGLE_EVENTS_PER_SEC)),
            v.at_least("single-event ingest rate", rate, TARGET_SINGLE_EVENTS_PER_SEC),
        ]);
        t.info("Request latency p50 / p99 / max", latency_triple(s.latency));
        t.info("CPU busy (server + clients)", cores_busy(s.cpu, s.elapsed));
        t.info(
            &format!("Ratio to SQLite at {} rows/transaction", small.tx_rows),
            format!(
                "{:.1}%",
                rate / per_sec(small.rows, small.elapsed).max(f64::EPSILON) * 100.0
            ),
        );
        t.info(
            "Baseline `GET /healthz` rate",
            format!("{} requests/s", thousands(per_sec(h.requests, h.elapsed))),
        );
        t.info("Baseline latency p50 / p99 / max", latency_triple(h.latency));
        t.info("Baseline CPU busy (server + clients)", cores_busy(h.cpu, h.elapsed));
        t.render(out)
    }

    fn query_section(&self, out: &mut String, v: &mut Verdicts) -> std::fmt::Result {
        let q = &self.queries;
        let s = &q.seed;
        writeln!(
            out,
            "## 4. First-page query latency at {} entries\n",
            thousands(s.entries as f64)
        )?;
        writeln!(
            out,
            "Seeded through `Store::append`, {SEED_BATCH} entries per transaction, spread over a year:\n"
        )?;
        let mut t = Table::new(&["Figure", "Result"]);
        t.row(vec![
            "Seeding rate (in `Store::append`)".into(),
            format!("{} rows/s", thousands(per_sec(s.entries, s.append))),
        ]);
        t.row(vec![
            "Time in `Store::append`".into(),
            format!("{:.1} s", s.append.as_secs_f64()),
        ]);
        t.row(vec![
            "Time including generation".into(),
            format!("{:.1} s", s.total.as_secs_f64()),
        ]);
        t.row(vec![
            "Database size".into(),
            format!("{:.0} MiB", q.database_bytes as f64 / MIB),
        ]);
        t.render(out)?;
        writeln!(
            out,
            "`GET /v1/orgs/{{org}}/audit/events?…&limit={PAGE_LIMIT}`, {} sequential requests per kind \
             after {WARMUP_REQUESTS} warm-up requests, values cycling through actors, events, \
             categories and resources that occur in the data; `/healthz` is the HTTP baseline.\n",
            q.samples
        )?;
        query_table(&q.kinds, q.healthz, TARGET_QUERY_P99, v).render(out)
    }

    fn reads_section(&self, out: &mut String, v: &mut Verdicts) -> std::fmt::Result {
        writeln!(out, "## 4b. What recording reads costs a reader\n")?;
        writeln!(
            out,
            "The same first-page queries against two in-process servers, each on its own log seeded \
             alike: one records reads (`audit_log.viewed`, the default), one does not. The arms take \
             turns in blocks of ten requests, so both share the machine's disturbances; the ratio \
             of their p99 is the cost.\n"
        )?;
        crate::reads::table(&self.reads, v).render(out)
    }

    fn export_section(&self, out: &mut String, v: &mut Verdicts) -> std::fmt::Result {
        let (e, scan) = (&self.export.http, &self.export.scan);
        let rate = per_sec(e.rows, e.elapsed);
        let scan_rate = per_sec(scan.rows, scan.elapsed);
        writeln!(out, "## 5. CSV export\n")?;
        writeln!(
            out,
            "`GET /v1/orgs/{{org}}/audit/export?format=csv` of all {} entries from a separate \
             `auditlog serve` process, streamed and counted by the client without keeping the body. \
             Baseline: one raw rusqlite `SELECT` of every entry column in export order.\n",
            thousands(e.rows as f64)
        )?;
        let mut t = Table::new(&["Figure", "Result", "Target", "Verdict"]);
        t.info(
            "Rows / bytes",
            format!("{} / {:.1} MiB", thousands(e.rows as f64), e.bytes as f64 / MIB),
        );
        t.info("Time to first byte", fmt_ms(e.first_byte));
        t.info("Elapsed", format!("{:.2} s", e.elapsed.as_secs_f64()));
        t.row(vec![
            "Export rate".into(),
            format!("{} rows/s", thousands(rate)),
            format!("≥ {} rows/s", thousands(TARGET_EXPORT_ROWS_PER_SEC)),
            v.at_least("CSV export rate", rate, TARGET_EXPORT_ROWS_PER_SEC),
        ]);
        t.info("CPU busy (server)", cores_busy(e.cpu, e.elapsed));
        t.info(
            "Raw SQLite scan",
            format!("{} rows/s ({:.2} s)", thousands(scan_rate), scan.elapsed.as_secs_f64()),
        );
        t.info(
            "Export / raw scan",
            format!("{:.1}%", rate / scan_rate.max(f64::EPSILON) * 100.0),
        );
        t.info("Server peak RSS after startup", mib(e.startup_peak_kib));
        let verdict = match e.peak_kib {
            Some(k) => v.below("export server peak RSS", k as f64 / 1024.0, TARGET_EXPORT_PEAK_RSS_MIB),
            None => "not measured".into(),
        };
        t.row(vec![
            "Server peak RSS after export".into(),
            mib(e.peak_kib),
            format!("< {TARGET_EXPORT_PEAK_RSS_MIB:.0} MiB"),
            verdict,
        ]);
        t.render(out)
    }
}

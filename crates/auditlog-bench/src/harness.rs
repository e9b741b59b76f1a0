//! What every section of `auditlog bench` shares: the work directory and
//! progress lines, CPU and memory from /proc, organizations and keys,
//! in-process and child servers, the HTTP load generators, seeding a year
//! of entries and sampling first-page queries on it, and the HTTP export.
//!
//! These take stores and database URLs rather than SQLite paths, so the
//! PostgreSQL sections measure with the same code as the SQLite ones.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use auditlog_domain::api_key::Scope;
use auditlog_domain::org::NewOrg;
use auditlog_domain::store::AppendRequest;
use auditlog_domain::{Catalog, Clock, NewEntry, Org, OrgId, Plan, Store, SystemClock, Timestamp};
use auditlog_server::ServerConfig;
use auditlog_sqlite::SqliteStore;
use futures_util::StreamExt;
use reqwest::Method;
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::AnyError;
use crate::make_key;
use crate::seed;

/// Events per batched request: the most one request may carry.
pub(crate) const BATCH_EVENTS: usize = auditlog_domain::ingest::MAX_BATCH;
/// Concurrent clients sending full batches.
pub(crate) const BATCH_CLIENTS: usize = 4;
/// Rows per transaction for the raw SQLite ceiling, the same as one batch.
pub(crate) const CEILING_TX_ROWS: usize = 1000;
/// Entries per `Store::append` while seeding the query database.
pub(crate) const SEED_BATCH: usize = 5000;
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

/// Flushes what earlier sections left in the page cache, so their
/// writeback does not stall the next section's fsyncs: each section is
/// measured as if run alone. Best effort: without `sync` the run goes on.
pub(crate) fn settle_disk() {
    if let Err(e) = std::process::Command::new("sync").status() {
        progress(format!("could not run sync ({e}); sections may disturb each other"));
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
// Ingest over HTTP
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
// Seeding a year of entries, and first-page queries on it
// ---------------------------------------------------------------------------

pub(crate) struct SeedFigures {
    pub(crate) entries: usize,
    /// Time inside `Store::append` only.
    pub(crate) append: Duration,
    /// Generation included.
    pub(crate) total: Duration,
}

pub(crate) struct KindFigures {
    pub(crate) label: &'static str,
    pub(crate) latency: Latencies,
    /// Mean entries per returned page; shows the queries found data.
    pub(crate) mean_rows: f64,
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
// Export, and servers as child processes
// ---------------------------------------------------------------------------

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

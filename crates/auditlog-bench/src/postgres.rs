//! `auditlog bench postgres URL`: the PostgreSQL measurements, each beside
//! a ceiling measured in the same run on the same server, printed as a
//! Markdown report like the SQLite bench's.
//!
//! 1. **COPY ceiling**: the ingest rows written with binary `COPY … FROM
//!    STDIN` into the store's own `entries` table of a fresh database, one
//!    commit per 1000 rows; measured before and after the ingest runs.
//! 2. **Batched ingest over HTTP** through one replica (one
//!    `auditlog_server::serve` on one `PostgresStore`) and through two
//!    (separate stores, separate listeners, the same clients spreading
//!    their requests over both).
//! 3. **Single-event ingest** from many clients, one and two replicas,
//!    beside COPY with as many rows per commit as there are clients.
//! 4. **First-page query latency** on a large log, filled with COPY
//!    straight into the store's tables (entries, entry ids, Merkle tiles and
//!    nodes through the store's own tree code, the log head), so the data is
//!    what appends would have left.
//! 5. **CSV export** over HTTP from a separate `auditlog serve`, against a
//!    raw `COPY (SELECT …) TO STDOUT` of the same rows.
//!
//! The URL names an existing database on the server to administer from;
//! the bench creates databases of its own there and drops them at the end.
//! PostgreSQL is assumed to run on this machine when CPU use is split
//! between it and this process (everything busy that is not this process
//! is counted as the database's).

use std::net::IpAddr;
use std::pin::pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use auditlog_domain::canonical::entry_leaf_hash;
use auditlog_domain::merkle::Hash;
use auditlog_domain::{Catalog, Clock, Entry, NewEntry, Org, OrgId, Store, StoreError, SystemClock, Timestamp};
use auditlog_postgres::PostgresStore;
use auditlog_postgres::partitions::Partitions;
use auditlog_postgres::tokio_postgres::binary_copy::BinaryCopyInWriter;
use auditlog_postgres::tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};
use auditlog_postgres::tokio_postgres::{self, CopyInSink, NoTls};
use bytes::{Bytes, BytesMut};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use futures_util::StreamExt;
use std::fmt::Write as _;
use tokio_util::sync::CancellationToken;

use crate::AnyError;
use crate::cli::{IngestRowsArgs, PostgresArgs, SingleEventArgs};
use crate::harness::{
    self, BATCH_CLIENTS, CEILING_TX_ROWS, HttpLoad, IngestFigures, LoadMeter, MIB, PAGE_LIMIT, RNG_SEED,
    SampledQueries, SeedPlan, WARMUP_REQUESTS, Workdir, ms, per_sec, progress,
};
use crate::report::{
    Table, Verdicts, cores, cores_busy, dash, fmt_ms, latency_triple, mib, query_table, run_facts, thousands,
};
use crate::seed;

/// Rows per transaction while filling the query database: large enough
/// that COPY streams, small enough that progress shows and memory stays
/// flat.
const FILL_CHUNK: usize = 50_000;
/// Batches generated ahead of the COPY that writes them.
const FILL_QUEUE: usize = 2;

/// Organizations the load is spread over in the runs that are not about
/// one organization: appends to one organization are serialized by its
/// log head (whatever the number of replicas), appends to several are not.
pub(crate) const SPREAD_ORGS: usize = 8;
/// (organizations, replicas) of each ingest run, in the order they run.
const SHAPES: [(usize, usize); 4] = [(1, 1), (1, 2), (SPREAD_ORGS, 1), (SPREAD_ORGS, 2)];
/// How often the busy backends' wait events are sampled during a run.
const WAIT_SAMPLE_EVERY: Duration = Duration::from_millis(20);

const TARGET_INGEST_RATIO: f64 = 0.40;
pub(crate) const TARGET_REPLICA_SPEEDUP: f64 = 1.5;
const TARGET_QUERY_P99: Duration = Duration::from_millis(25);
/// Above this share of its cores busy, the machine itself is the limit.
const SATURATED: f64 = 0.9;
/// Cores of other processes' work above which a saturated machine is
/// blamed on them rather than on the bench.
const OTHER_WORK: f64 = 0.3;
/// Backends waiting on average above which a wait is the run's limit.
const LOCKED: f64 = 0.3;

/// The server settings the report shows: what decides durability and how
/// much of the data fits in memory.
const SETTINGS: &[&str] = &[
    "synchronous_commit",
    "fsync",
    "full_page_writes",
    "wal_compression",
    "shared_buffers",
    "effective_cache_size",
    "work_mem",
    "maintenance_work_mem",
    "max_wal_size",
    "checkpoint_timeout",
    "random_page_cost",
    "max_connections",
];

/// The columns COPY writes, in `ENTRY_TYPES` order: those of the store's
/// append.
const COPY_ENTRIES: &str = "COPY entries (org_id, seq, ts, received_at, id, actor_type, actor, event, \
     resource_type, resource_id, resource_name, details, ip_address, user_agent, request_id, idempotency_key) \
     FROM STDIN (FORMAT binary)";
const ENTRY_TYPES: &[Type] = &[
    Type::INT8,
    Type::INT8,
    Type::INT8,
    Type::INT8,
    Type::UUID,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::JSON,
    Type::INET,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
];
const COPY_ENTRY_IDS: &str = "COPY entry_ids (org_id, id, seq, ts) FROM STDIN (FORMAT binary)";
const ENTRY_ID_TYPES: &[Type] = &[Type::INT8, Type::UUID, Type::INT8, Type::INT8];

pub async fn run_cli(args: &PostgresArgs) -> Result<(), AnyError> {
    let mut server = Server::connect(&args.server.url).await?;
    let workdir = Workdir::new(args.suite.ingest.dir.dir.as_deref())?;
    let outcome = run(args, &mut server, &workdir).await;
    server.drop_databases().await;
    println!("{}", outcome?.render()?);
    Ok(())
}

async fn run(args: &PostgresArgs, server: &mut Server, workdir: &Workdir) -> Result<Results, AnyError> {
    let machine_load = LoadMeter::start();
    let now = SystemClock.now();
    let ingest = ingest(server, &args.suite.ingest.ingest, &args.suite.ingest.single).await?;

    progress(format!(
        "4/5 query latency: filling {} entries with COPY",
        args.suite.log.entries
    ));
    let filled = fill(server, args.suite.log.entries).await?;
    settle(server).await;
    let sampled = harness::sample_queries(
        filled.store.clone(),
        &filled.org,
        &filled.vocabulary,
        args.suite.samples.query_samples,
    )
    .await?;

    progress("5/5 CSV export over HTTP, against COPY TO");
    settle(server).await;
    let export = export(&filled, &sampled.read_key, workdir).await?;

    Ok(Results {
        command: without_password(&harness::command_line(), &server.url),
        date: now,
        other_load: machine_load.others(),
        version: server.version.clone(),
        settings: server.settings.clone(),
        ceiling: ingest.ceiling,
        small_ceiling: ingest.small_ceiling,
        batched: ingest.batched,
        single: ingest.single,
        fill: filled.figures,
        queries: sampled,
        samples: args.suite.samples.query_samples,
        export,
    })
}

/// Sections 1 to 3.
struct Ingest {
    /// Before and after the batched runs.
    ceiling: [CeilingFigures; 2],
    small_ceiling: CeilingFigures,
    batched: Vec<RunFigures>,
    single: Vec<RunFigures>,
}

/// Sections 1 to 3: the COPY ceiling before and after batched ingest in
/// every shape, then single-event ingest in every shape beside its own
/// ceiling.
async fn ingest(server: &mut Server, rows: &IngestRowsArgs, single: &SingleEventArgs) -> Result<Ingest, AnyError> {
    progress(format!(
        "generating {} entries for the ingest measurements",
        rows.ingest_entries
    ));
    let now = SystemClock.now();
    // The same rows as the SQLite bench's ingest sections.
    let rows = seed::ingestible_entries(
        rows.ingest_entries,
        now.minus_days(364),
        now.plus_millis(-60_000),
        RNG_SEED,
    );

    progress("1/5 COPY ceiling, before the ingest runs");
    let ceiling_before = copy_ceiling(server, &rows, CEILING_TX_ROWS).await?;
    progress("2/5 batched ingest over HTTP");
    let mut batched = Vec::new();
    for (orgs, replicas) in SHAPES {
        let load = Load {
            orgs,
            replicas,
            bodies: harness::batch_bodies(&rows)?,
            entries: rows.len(),
            clients: BATCH_CLIENTS,
        };
        batched.push(load.measure(server).await?);
    }
    progress("1/5 COPY ceiling, after the batched runs");
    let ceiling_after = copy_ceiling(server, &rows, CEILING_TX_ROWS).await?;

    progress("3/5 single-event ingest over HTTP");
    let few = &rows[..single.single_events.min(rows.len())];
    let small_ceiling = copy_ceiling(server, few, single.clients).await?;
    let mut singles = Vec::new();
    for (orgs, replicas) in SHAPES {
        let load = Load {
            orgs,
            replicas,
            bodies: harness::single_bodies(single.single_events)?,
            entries: single.single_events,
            clients: single.clients,
        };
        singles.push(load.measure(server).await?);
    }
    Ok(Ingest {
        ceiling: [ceiling_before, ceiling_after],
        small_ceiling,
        batched,
        single: singles,
    })
}

// ---------------------------------------------------------------------------
// The server, its databases, and COPY
// ---------------------------------------------------------------------------

/// The PostgreSQL server the bench runs against: a connection to the
/// database the URL names, and the databases the bench created.
pub(crate) struct Server {
    admin: tokio_postgres::Client,
    url: reqwest::Url,
    /// The server's processes, when it runs on this machine.
    processes: Option<PgProcesses>,
    created: Vec<String>,
    version: String,
    settings: Vec<(String, String)>,
}

impl Server {
    pub(crate) async fn connect(url: &str) -> Result<Self, AnyError> {
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err("the server must be given as postgres://USER[:PASSWORD]@HOST:PORT/DATABASE".into());
        }
        let parsed = reqwest::Url::parse(url).map_err(|e| format!("the server's URL does not parse: {e}"))?;
        let admin = connect(url).await?;
        let version: String = admin.query_one("SHOW server_version", &[]).await?.get(0);
        let names: Vec<&str> = SETTINGS.to_vec();
        let settings = admin
            .query(
                "SELECT name, current_setting(name) FROM unnest($1::text[]) WITH ORDINALITY AS s (name, i) ORDER BY i",
                &[&names],
            )
            .await?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        let processes = PgProcesses::find(&admin).await;
        if processes.is_none() {
            progress("PostgreSQL's processes are not on this machine (or not readable): its CPU use goes unmeasured");
        }
        Ok(Self {
            admin,
            url: parsed,
            processes,
            created: Vec::new(),
            version,
            settings,
        })
    }

    /// A new, empty database; its URL.
    async fn fresh_database(&mut self, purpose: &str) -> Result<String, AnyError> {
        // Made of a fixed word and hex digits only: DDL takes no parameters.
        let name = format!("auditlog_bench_{purpose}_{}", uuid::Uuid::now_v7().simple());
        self.admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .map_err(|e| format!("cannot create a database for the bench: {e}"))?;
        self.created.push(name.clone());
        let mut url = self.url.clone();
        url.set_path(&format!("/{name}"));
        Ok(url.to_string())
    }

    /// Drops every database the bench made; failures are reported, not
    /// fatal, since the report is worth more than the cleanup.
    pub(crate) async fn drop_databases(&mut self) {
        for name in self.created.drain(..) {
            if let Err(e) = self
                .admin
                .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .await
            {
                progress(format!("could not drop the bench database {name}: {e}"));
            }
        }
    }
}

/// The PostgreSQL server's processes on this machine: the postmaster and
/// its children. Their CPU time is read from /proc, so the work of other
/// processes on a shared machine is not counted as the database's.
struct PgProcesses {
    postmaster: u32,
}

/// CPU time of each of the server's processes at one moment.
type CpuSnapshot = std::collections::HashMap<u32, Duration>;

impl PgProcesses {
    /// The postmaster is the parent of the backend serving `admin`; both
    /// must be `postgres` processes here, else the server is elsewhere.
    async fn find(admin: &tokio_postgres::Client) -> Option<Self> {
        let backend: i32 = admin.query_one("SELECT pg_backend_pid()", &[]).await.ok()?.get(0);
        let backend = u32::try_from(backend).ok()?;
        let postmaster = parent_of(backend)?;
        let is_postgres =
            |pid: u32| std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "postgres");
        (is_postgres(backend) && is_postgres(postmaster)).then_some(Self { postmaster })
    }

    fn snapshot(&self) -> CpuSnapshot {
        let mut out = CpuSnapshot::new();
        let pids = std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok());
        for pid in pids {
            if (pid == self.postmaster || parent_of(pid) == Some(self.postmaster))
                && let Some(t) = harness::cpu_time(&pid.to_string())
            {
                out.insert(pid, t);
            }
        }
        out
    }

    /// CPU used between two snapshots; a process born in between started
    /// from zero. One that ended in between is lost: the pools' connections
    /// live through every measurement, so that is only the odd short one.
    fn used(before: &CpuSnapshot, after: &CpuSnapshot) -> Duration {
        after
            .iter()
            .map(|(pid, t)| t.saturating_sub(before.get(pid).copied().unwrap_or_default()))
            .sum()
    }
}

/// A process's parent, from `/proc/<pid>/stat`.
fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces; state and ppid follow its ')'.
    let (_, fields) = stat.rsplit_once(") ")?;
    fields.split_whitespace().nth(1)?.parse().ok()
}

/// Cores the database kept busy on average while `work` ran.
pub(crate) async fn with_database_cpu<T, F: std::future::Future<Output = Result<T, AnyError>>>(
    server: &Server,
    work: F,
) -> Result<(T, Option<f64>), AnyError> {
    let before = server.processes.as_ref().map(PgProcesses::snapshot);
    let started = Instant::now();
    let value = work.await?;
    let elapsed = started.elapsed().as_secs_f64().max(f64::EPSILON);
    let cores = server
        .processes
        .as_ref()
        .zip(before)
        .map(|(p, before)| PgProcesses::used(&before, &p.snapshot()).as_secs_f64() / elapsed);
    Ok((value, cores))
}

/// The command line with the URL's password masked: the report is shared.
fn without_password(command: &str, url: &reqwest::Url) -> String {
    match url.password() {
        // As written in the URL (percent-encoded), which is how the command holds it.
        Some(password) => command.replace(&format!(":{password}@"), ":***@"),
        None => command.to_owned(),
    }
}

/// A plain connection, driven on its own task.
async fn connect(url: &str) -> Result<tokio_postgres::Client, AnyError> {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .map_err(|e| format!("cannot connect to PostgreSQL: {e}"))?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            progress(format!("a PostgreSQL connection failed: {e}"));
        }
    });
    Ok(client)
}

/// A small pool for the store's own helpers (partitions, the tree), which
/// take pooled connections.
fn pool(url: &str) -> Result<Pool, AnyError> {
    let config: tokio_postgres::Config = url.parse()?;
    let manager = Manager::from_config(
        config,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Ok(Pool::builder(manager).max_size(2).build()?)
}

/// Writes out what earlier sections left dirty (PostgreSQL's buffers, then
/// the page cache), so each section is measured as if run alone.
pub(crate) async fn settle(server: &Server) {
    if let Err(e) = server.admin.batch_execute("CHECKPOINT").await {
        progress(format!("could not CHECKPOINT ({e}); sections may disturb each other"));
    }
    harness::settle_disk();
}

/// A fresh database with the store's schema, the bench organization and
/// the monthly partitions for the last year, so neither COPY nor ingest
/// pays for DDL while measured.
pub(crate) async fn prepared_database(
    server: &mut Server,
    purpose: &str,
) -> Result<(String, PostgresStore, Org), AnyError> {
    let url = server.fresh_database(purpose).await?;
    let store = PostgresStore::connect(&url)
        .await
        .map_err(|e| format!("cannot open the bench database: {e}"))?;
    let org = harness::bench_org(&store).await?;
    let now = SystemClock.now();
    let days: Vec<Timestamp> = (0..=366).map(|d| now.minus_days(d)).collect();
    Partitions::default().ensure(&pool(&url)?, days).await?;
    Ok((url, store, org))
}

/// Raw JSON text for a `json` column in binary COPY, where its wire form
/// is the text itself: no parsing or re-serialising on the way.
#[derive(Debug)]
struct RawJson<'a>(&'a str);

impl ToSql for RawJson<'_> {
    fn to_sql(&self, _: &Type, out: &mut BytesMut) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        out.extend_from_slice(self.0.as_bytes());
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::JSON
    }

    to_sql_checked!();
}

/// An entry with its details already serialised, ready for COPY.
struct Row {
    entry: Entry,
    details: String,
}

/// Entries as the store would have recorded them, numbered from
/// `first_seq`; received 1.5 s after they occurred unless a time is given.
fn rows_of(org: OrgId, first_seq: i64, new: Vec<NewEntry>, received: Option<Timestamp>) -> Vec<Row> {
    new.into_iter()
        .zip(first_seq..)
        .map(|(e, seq)| {
            let entry = Entry {
                id: uuid::Uuid::now_v7(),
                org_id: org,
                seq,
                timestamp: e.timestamp,
                received_at: received.unwrap_or(e.timestamp.plus_millis(1500)),
                actor: e.actor,
                event: e.event,
                resource: e.resource,
                details: e.details,
                ip_address: e.ip_address,
                user_agent: e.user_agent,
                request_id: e.request_id,
                idempotency_key: e.idempotency_key,
                // The bench's COPY writes the version-1 columns only, so
                // its rows are (and hash as) version 1.
                submitted_by: None,
                canonical_version: 1,
                personal: Default::default(),
            };
            Row {
                details: entry.details_json(),
                entry,
            }
        })
        .collect()
}

/// Streams rows into an open `COPY entries … FROM STDIN (FORMAT binary)`.
async fn write_entries(sink: CopyInSink<Bytes>, rows: &[Row]) -> Result<u64, AnyError> {
    let mut writer = pin!(BinaryCopyInWriter::new(sink, ENTRY_TYPES));
    for r in rows {
        let e = &r.entry;
        let ip: Option<IpAddr> = e.ip_address;
        writer
            .as_mut()
            .write(&[
                &e.org_id.0,
                &e.seq,
                &e.timestamp.millis(),
                &e.received_at.millis(),
                &e.id,
                &e.actor.kind.as_str(),
                &e.actor.id,
                &e.event,
                &e.resource.kind,
                &e.resource.id,
                &e.resource.name,
                &RawJson(&r.details),
                &ip,
                &e.user_agent,
                &e.request_id,
                &e.idempotency_key,
            ])
            .await?;
    }
    Ok(writer.finish().await?)
}

// ---------------------------------------------------------------------------
// 1. COPY ceiling
// ---------------------------------------------------------------------------

struct CeilingFigures {
    rows: usize,
    tx_rows: usize,
    elapsed: Duration,
}

/// The rows written with COPY into a fresh database's `entries`, one
/// statement (and commit) per `tx_rows`, values prepared before timing.
async fn copy_ceiling(server: &mut Server, entries: &[NewEntry], tx_rows: usize) -> Result<CeilingFigures, AnyError> {
    settle(server).await;
    let (url, store, org) = prepared_database(server, "ceiling").await?;
    drop(store);
    let rows = rows_of(org.id, 1, entries.to_vec(), None);
    let client = connect(&url).await?;
    let started = Instant::now();
    for chunk in rows.chunks(tx_rows.max(1)) {
        let sink = client.copy_in(COPY_ENTRIES).await?;
        write_entries(sink, chunk).await?;
    }
    let figures = CeilingFigures {
        rows: rows.len(),
        tx_rows,
        elapsed: started.elapsed(),
    };
    progress(format!(
        "    COPY, {tx_rows} rows per commit: {:.0} rows/s",
        per_sec(figures.rows, figures.elapsed)
    ));
    Ok(figures)
}

// ---------------------------------------------------------------------------
// 2 and 3. Ingest over HTTP, one and two replicas
// ---------------------------------------------------------------------------

/// One ingest measurement: these bodies, spread over this many
/// organizations, through this many replicas (each its own store, pool and
/// listener) on one fresh database.
struct Load {
    orgs: usize,
    replicas: usize,
    bodies: Vec<Vec<u8>>,
    entries: usize,
    clients: usize,
}

struct RunFigures {
    orgs: usize,
    replicas: usize,
    ingest: IngestFigures,
    /// Cores PostgreSQL's processes kept busy on average.
    database: Option<f64>,
    waits: Waits,
}

impl Load {
    async fn measure(self, server: &mut Server) -> Result<RunFigures, AnyError> {
        settle(server).await;
        let (url, first, org) = prepared_database(server, "ingest").await?;
        let mut orgs = vec![org];
        for n in 2..=self.orgs {
            orgs.push(harness::bench_org_named(&first, &format!("bench-{n}")).await?);
        }
        let mut stores: Vec<Arc<dyn Store>> = vec![Arc::new(first)];
        for _ in 1..self.replicas {
            let store = PostgresStore::connect(&url)
                .await
                .map_err(|e| format!("cannot open another store on the bench database: {e}"))?;
            stores.push(Arc::new(store));
        }
        progress(format!(
            "    {} requests from {} clients to {} organization(s) through {} replica(s)",
            self.bodies.len(),
            self.clients,
            self.orgs,
            self.replicas
        ));
        let stop = CancellationToken::new();
        let sampler = tokio::spawn(sample_waits(url.clone(), stop.clone()));
        let measured = with_database_cpu(
            server,
            harness::ingest_through(&stores, &orgs, self.bodies, self.entries, self.clients),
        )
        .await;
        stop.cancel();
        let waits = sampler.await??;
        let (ingest, database) = measured?;
        let figures = RunFigures {
            orgs: self.orgs,
            replicas: self.replicas,
            ingest,
            database,
            waits,
        };
        let cpu = figures.cpu();
        progress(format!(
            "    {:.0} entries/s, p99 {:.1} ms; cores busy: machine {}, this process {}, PostgreSQL {}; backends: {}",
            figures.rate(),
            ms(figures.ingest.load.latency.p99),
            cores_of(cpu.machine),
            cores_of(cpu.own),
            cores_of(cpu.database),
            figures.waits.describe()
        ));
        Ok(figures)
    }
}

/// What PostgreSQL's backends on the bench database were doing, sampled
/// every [`WAIT_SAMPLE_EVERY`]: the wait event of each active one ("CPU"
/// when it waits for nothing), and those idle inside a transaction, which
/// hold their locks while the replica works.
#[derive(Default)]
pub(crate) struct Waits {
    samples: usize,
    counts: std::collections::BTreeMap<String, usize>,
}

impl Waits {
    /// The backends on average in the states `pick` accepts.
    pub(crate) fn average(&self, pick: impl Fn(&str) -> bool) -> f64 {
        let seen: usize = self.counts.iter().filter(|(k, _)| pick(k)).map(|(_, n)| n).sum();
        seen as f64 / self.samples.max(1) as f64
    }

    /// Waits of `samples` samples, with how often each state was seen.
    #[cfg(test)]
    pub(crate) fn of(samples: usize, counts: &[(&str, usize)]) -> Self {
        Self {
            samples,
            counts: counts.iter().map(|(k, n)| ((*k).to_owned(), *n)).collect(),
        }
    }

    /// Each state with the backends in it on average, most first.
    fn ranked(&self) -> Vec<(&str, f64)> {
        let mut out: Vec<(&str, f64)> = self
            .counts
            .iter()
            .map(|(k, n)| (k.as_str(), *n as f64 / self.samples.max(1) as f64))
            .collect();
        out.sort_by(|a, b| b.1.total_cmp(&a.1));
        out
    }

    pub(crate) fn describe(&self) -> String {
        let top: Vec<String> = self
            .ranked()
            .into_iter()
            .take(3)
            .map(|(k, n)| format!("{k} {n:.1}"))
            .collect();
        if top.is_empty() {
            "none seen busy".into()
        } else {
            top.join(", ")
        }
    }
}

pub(crate) async fn sample_waits(url: String, stop: CancellationToken) -> Result<Waits, AnyError> {
    let client = connect(&url).await?;
    let sample = client
        .prepare(
            "SELECT CASE WHEN state = 'active' THEN coalesce(wait_event_type || ':' || wait_event, 'CPU') \
                         ELSE 'idle in transaction' END \
             FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid() \
               AND state IN ('active', 'idle in transaction')",
        )
        .await?;
    let mut waits = Waits::default();
    loop {
        tokio::select! {
            () = stop.cancelled() => return Ok(waits),
            () = tokio::time::sleep(WAIT_SAMPLE_EVERY) => {}
        }
        waits.samples += 1;
        for row in client.query(&sample, &[]).await? {
            *waits.counts.entry(row.get(0)).or_default() += 1;
        }
    }
}

/// Where the cores went during a run, each on average.
struct CpuSplit {
    machine: Option<f64>,
    own: Option<f64>,
    database: Option<f64>,
}

impl RunFigures {
    fn rate(&self) -> f64 {
        per_sec(self.ingest.entries, self.ingest.load.elapsed)
    }

    fn label(&self, kind: &str) -> String {
        format!("{kind}, {} org(s), {} replica(s)", self.orgs, self.replicas)
    }

    /// What held the run back, in words, and whether that was the machine
    /// or the database rather than the service: then a second replica has
    /// nothing to add here, and the replica target cannot be shown.
    fn limit(&self) -> (String, bool) {
        let cpu = self.cpu();
        let n = cores();
        if let (Some(m), Some(own), Some(d)) = (cpu.machine, cpu.own, cpu.database)
            && m >= SATURATED * n as f64
        {
            let other = (m - own - d).max(0.0);
            return if other >= OTHER_WORK {
                (
                    format!("the machine: {m:.2} of {n} cores busy, {other:.2} of them other processes' work"),
                    true,
                )
            } else {
                (
                    format!(
                        "CPU: {m:.2} of {n} cores busy (replicas and clients {own:.2}, PostgreSQL {d:.2}), \
                         the database sharing them with the replicas"
                    ),
                    true,
                )
            };
        }
        let busy = cpu
            .machine
            .map_or_else(String::new, |m| format!("{m:.2} of {n} cores busy; "));
        let ranked = self.waits.ranked();
        let locked = self.waits.average(|k| k.starts_with("Lock:"));
        let holding = self.waits.average(|k| k == "idle in transaction");
        let flushing = self.waits.average(|k| k.contains("WAL"));
        if locked >= LOCKED {
            return (
                format!(
                    "{busy}the log-head row lock: {locked:.1} backends waiting for it on average while \
                     {holding:.1} sit idle in transaction (their replica working mid-append); appends to \
                     one organization are serialized across replicas"
                ),
                false,
            );
        }
        if flushing >= LOCKED {
            return (
                format!("{busy}commit flushes: {flushing:.1} backends waiting on the WAL on average"),
                true,
            );
        }
        match ranked.first() {
            Some((k, v)) => (format!("{busy}busiest backend state `{k}` ({v:.1} on average)"), false),
            None => (format!("{busy}no busy backend seen"), false),
        }
    }

    fn cpu(&self) -> CpuSplit {
        let load: &HttpLoad = &self.ingest.load;
        let secs = load.elapsed.as_secs_f64().max(f64::EPSILON);
        CpuSplit {
            machine: load.machine.map(|m| m.as_secs_f64() / secs),
            own: load.cpu.map(|c| c.as_secs_f64() / secs),
            database: self.database,
        }
    }
}

// ---------------------------------------------------------------------------
// 4. Filling a large log, and query latency on it
// ---------------------------------------------------------------------------

struct FillFigures {
    entries: usize,
    elapsed: Duration,
    vacuum: Duration,
    database_bytes: i64,
}

struct Filled {
    url: String,
    store: Arc<dyn Store>,
    org: Org,
    vocabulary: harness::Vocabulary,
    figures: FillFigures,
}

/// A batch for the filler: rows and their Merkle leaf hashes.
struct FillBatch {
    rows: Vec<Row>,
    leaves: Vec<Hash>,
}

/// Fills a fresh database with `n` entries spread over the last year, the
/// SQLite bench's data. Generation and hashing run on a blocking thread
/// while the previous batch is being copied; each batch is one transaction
/// that writes its entries, their ids, grows the tree with the store's own
/// code, and moves the log head.
async fn fill(server: &mut Server, n: usize) -> Result<Filled, AnyError> {
    settle(server).await;
    let (url, store, org) = prepared_database(server, "query").await?;
    let pool = pool(&url)?;
    let size: i64 = {
        let client = pool.get().await?;
        client
            .query_one("SELECT size FROM log_heads WHERE org_id = $1", &[&org.id.0])
            .await?
            .get(0)
    };
    let (sender, mut receiver) = tokio::sync::mpsc::channel::<FillBatch>(FILL_QUEUE);
    let producer = produce(SeedPlan::new(n, FILL_CHUNK), org.id, size + 1, sender);

    let started = Instant::now();
    let mut written = 0usize;
    let mut reported = 0;
    while let Some(batch) = receiver.recv().await {
        write_batch(&pool, org.id, size as u64 + written as u64, &batch).await?;
        written += batch.rows.len();
        let tenth = written * 10 / n.max(1);
        if tenth > reported {
            reported = tenth;
            let rate = per_sec(written, started.elapsed());
            let left = (n - written) as f64 / rate.max(1.0);
            progress(format!(
                "    filled {written}/{n} at {rate:.0} rows/s, about {left:.0} s to go"
            ));
        }
    }
    let vocabulary = producer.await?;
    let elapsed = started.elapsed();
    if written != n {
        return Err(format!("filled {written} of {n} entries").into());
    }
    let (vacuum, database_bytes) = vacuum(&pool).await?;
    progress(format!(
        "    filled at {:.0} rows/s in {:.1} s; VACUUM (ANALYZE) {:.1} s; {:.0} MiB",
        per_sec(n, elapsed),
        elapsed.as_secs_f64(),
        vacuum.as_secs_f64(),
        database_bytes as f64 / MIB
    ));
    Ok(Filled {
        url,
        store: Arc::new(store),
        org,
        vocabulary,
        figures: FillFigures {
            entries: n,
            elapsed,
            vacuum,
            database_bytes,
        },
    })
}

/// Generates the plan's batches on a blocking thread, numbered from
/// `first_seq`, with their leaf hashes; returns the vocabulary of what it
/// generated.
fn produce(
    plan: SeedPlan,
    org_id: OrgId,
    first_seq: i64,
    sender: tokio::sync::mpsc::Sender<FillBatch>,
) -> tokio::task::JoinHandle<harness::Vocabulary> {
    tokio::task::spawn_blocking(move || {
        let catalog = Catalog::builtin();
        let mut vocabulary = plan.vocabulary();
        let mut next_seq = first_seq;
        for b in 0..plan.batches {
            let (entries, received) = plan.batch(b);
            vocabulary.observe(&catalog, &entries);
            let rows = rows_of(org_id, next_seq, entries, Some(received));
            next_seq += rows.len() as i64;
            let leaves = rows.iter().map(|r| entry_leaf_hash(&r.entry)).collect();
            if sender.blocking_send(FillBatch { rows, leaves }).is_err() {
                // The writer stopped; its error is the one to report.
                break;
            }
        }
        vocabulary
    })
}

/// One batch in one transaction: its entries and their ids by COPY, the
/// tree grown by the store's own code from a log of `before` entries, the
/// log head moved past them.
async fn write_batch(pool: &Pool, org: OrgId, before: u64, batch: &FillBatch) -> Result<(), AnyError> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    write_entries(tx.copy_in(COPY_ENTRIES).await?, &batch.rows).await?;
    {
        let mut ids = pin!(BinaryCopyInWriter::new(
            tx.copy_in(COPY_ENTRY_IDS).await?,
            ENTRY_ID_TYPES
        ));
        for r in &batch.rows {
            let e = &r.entry;
            ids.as_mut()
                .write(&[&e.org_id.0, &e.id, &e.seq, &e.timestamp.millis()])
                .await?;
        }
        ids.finish().await?;
    }
    auditlog_postgres::tree::grow(&tx, org, before, &batch.leaves)
        .await
        .map_err(StoreError::from)?;
    let after = (before + batch.rows.len() as u64) as i64;
    // The fill grows the tree without keeping the head's frontier.
    tx.execute(
        "UPDATE log_heads SET size = $2, frontier = NULL WHERE org_id = $1",
        &[&org.0, &after],
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// What autovacuum would get to eventually: statistics for the planner
/// and a visibility map, so queries meet a settled table. Returns how long
/// it took and the database's size after it.
async fn vacuum(pool: &Pool) -> Result<(Duration, i64), AnyError> {
    progress("    VACUUM (ANALYZE)");
    let vacuum_started = Instant::now();
    pool.get().await?.batch_execute("VACUUM (ANALYZE)").await?;
    let vacuum = vacuum_started.elapsed();
    let database_bytes: i64 = pool
        .get()
        .await?
        .query_one("SELECT pg_database_size(current_database())", &[])
        .await?
        .get(0);
    Ok((vacuum, database_bytes))
}

// ---------------------------------------------------------------------------
// 5. CSV export
// ---------------------------------------------------------------------------

struct ExportFigures {
    http: harness::HttpExport,
    copy_rows: usize,
    copy_bytes: u64,
    copy_elapsed: Duration,
}

async fn export(filled: &Filled, read_key: &str, workdir: &Workdir) -> Result<ExportFigures, AnyError> {
    let client = connect(&filled.url).await?;
    // The org id is a number the store assigned: safe in a statement that
    // takes no parameters.
    let sql = format!(
        "COPY (SELECT {} FROM entries WHERE org_id = {} ORDER BY ts DESC, seq DESC) TO STDOUT (FORMAT csv)",
        auditlog_postgres::rows::ENTRY_COLUMNS,
        filled.org.id.0
    );
    let started = Instant::now();
    let mut stream = pin!(client.copy_out(sql.as_str()).await?);
    let (mut copy_bytes, mut copy_rows) = (0u64, 0usize);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        copy_bytes += chunk.len() as u64;
        copy_rows += chunk.iter().filter(|&&b| b == b'\n').count();
    }
    let copy_elapsed = started.elapsed();
    progress(format!("    COPY TO: {:.0} rows/s", per_sec(copy_rows, copy_elapsed)));
    drop(client);

    let key = workdir.path().join("bench-signing-key");
    let http = harness::http_export(
        &filled.url,
        &["--signing-key".into(), key.display().to_string()],
        workdir.path(),
        read_key,
        filled.figures.entries,
    )
    .await?;
    Ok(ExportFigures {
        http,
        copy_rows,
        copy_bytes,
        copy_elapsed,
    })
}

// ---------------------------------------------------------------------------
// The report
// ---------------------------------------------------------------------------

struct Results {
    command: String,
    date: Timestamp,
    other_load: Option<f64>,
    version: String,
    settings: Vec<(String, String)>,
    /// Before and after the batched runs.
    ceiling: [CeilingFigures; 2],
    small_ceiling: CeilingFigures,
    batched: Vec<RunFigures>,
    single: Vec<RunFigures>,
    fill: FillFigures,
    queries: SampledQueries,
    samples: usize,
    export: ExportFigures,
}

impl Results {
    fn render(&self) -> Result<String, AnyError> {
        let mut out = String::new();
        let mut verdicts = Verdicts::default();
        self.header(&mut out)?;
        self.ceiling_section(&mut out)?;
        self.ingest_section(&mut out, &mut verdicts)?;
        self.replica_section(&mut out, &mut verdicts)?;
        self.query_section(&mut out, &mut verdicts)?;
        self.export_section(&mut out)?;
        verdicts.summary(&mut out)?;
        Ok(out)
    }

    fn header(&self, out: &mut String) -> std::fmt::Result {
        writeln!(out, "# auditlog bench postgres\n")?;
        run_facts(out, &self.command, self.date)?;
        writeln!(out, "- PostgreSQL {}", self.version)?;
        match self.other_load {
            Some(c) => writeln!(
                out,
                "- Load besides this process during the run: {c:.2} cores on average (from /proc/stat; \
                 PostgreSQL's own work is part of it when it runs on this machine)"
            )?,
            None => writeln!(out, "- Load besides this process: not measured (no /proc)")?,
        }
        writeln!(
            out,
            "- Durability is part of what is measured: every acknowledged request and every COPY \
             ceiling statement is committed with the settings below (`synchronous_commit`, `fsync`). \
             Each section starts after `CHECKPOINT` and `sync`, in a fresh database.\n"
        )?;
        let mut t = Table::new(&["Setting", "Value"]);
        for (name, value) in &self.settings {
            t.row(vec![format!("`{name}`"), value.clone()]);
        }
        t.render(out)
    }

    /// The COPY rate batched ingest is compared with: the mean of the runs
    /// before and after it.
    fn ceiling_rate(&self) -> f64 {
        self.ceiling.iter().map(|c| per_sec(c.rows, c.elapsed)).sum::<f64>() / self.ceiling.len() as f64
    }

    fn ceiling_section(&self, out: &mut String) -> std::fmt::Result {
        writeln!(out, "## 1. PostgreSQL COPY ceiling\n")?;
        writeln!(
            out,
            "The ingest rows written with binary `COPY entries (…) FROM STDIN` into a fresh database \
             with the store's schema (partitions, primary key and the five listing indexes), one \
             statement and commit per {CEILING_TX_ROWS} rows, values prepared before timing; run \
             before and after the batched ingest runs, whose reference is the mean. COPY writes \
             `entries` only; ingest also writes `entry_ids`, the Merkle tiles and nodes and the log \
             head, so the ceiling is one no ingest path can reach. {} rows per commit, the most one \
             commit can gather from {} single-event clients, is the reference for single-event ingest.\n",
            self.small_ceiling.tx_rows, self.small_ceiling.tx_rows
        )?;
        let mut t = Table::new(&["Run", "Rows per commit", "Rows", "Elapsed", "Rate"]);
        for (label, c) in [
            ("before batched ingest", &self.ceiling[0]),
            ("after batched ingest", &self.ceiling[1]),
            ("before single-event ingest", &self.small_ceiling),
        ] {
            t.row(vec![
                label.into(),
                thousands(c.tx_rows as f64),
                thousands(c.rows as f64),
                format!("{:.2} s", c.elapsed.as_secs_f64()),
                format!("{} rows/s", thousands(per_sec(c.rows, c.elapsed))),
            ]);
        }
        t.render(out)
    }

    fn ingest_section(&self, out: &mut String, v: &mut Verdicts) -> std::fmt::Result {
        let ceiling = self.ceiling_rate();
        let small = per_sec(self.small_ceiling.rows, self.small_ceiling.elapsed);
        writeln!(out, "## 2. Durable ingest over HTTP\n")?;
        writeln!(
            out,
            "`POST /v1/orgs/{{org}}/audit/events`, every answer 201 after commit. Batched: full \
             1000-event batches from {BATCH_CLIENTS} clients. Single-event: one event per request from \
             {} clients. A replica is one `auditlog_server::serve` on its own `PostgresStore` and \
             listener; request i goes to organization i mod orgs through replica (i div orgs) mod \
             replicas. One organization is the SQLite bench's load; {SPREAD_ORGS} show what the \
             per-organization log-head lock costs. The clients run in this process, on the same cores \
             as the servers and PostgreSQL. PostgreSQL's CPU is that of its processes (postmaster and \
             children, from /proc); its backends' states are sampled from `pg_stat_activity` every \
             {} ms (average number of backends in each).\n",
            self.single.first().map_or(0, |s| s.ingest.load.clients),
            WAIT_SAMPLE_EVERY.as_millis()
        )?;
        let mut t = Table::new(&[
            "Run",
            "Entries/s",
            "Ratio to COPY",
            "Latency p50 / p99 / max",
            "Cores busy: machine / this process / PostgreSQL",
            "PostgreSQL backends (average)",
            "Target",
            "Verdict",
        ]);
        for (kind, runs, reference) in [
            ("batched", &self.batched, ceiling),
            ("single-event", &self.single, small),
        ] {
            for r in runs.iter() {
                let ratio = r.rate() / reference.max(f64::EPSILON);
                let cpu = r.cpu();
                // The target is the SQLite bench's configuration: one
                // organization, one server.
                let (target, verdict) = if kind == "batched" && r.orgs == 1 && r.replicas == 1 {
                    (
                        format!("≥ {:.0}% of COPY", TARGET_INGEST_RATIO * 100.0),
                        v.at_least("batched ingest / COPY ceiling", ratio, TARGET_INGEST_RATIO),
                    )
                } else {
                    (dash(), dash())
                };
                t.row(vec![
                    r.label(kind),
                    thousands(r.rate()),
                    format!("{:.1}% of {}", ratio * 100.0, thousands(reference)),
                    latency_triple(r.ingest.load.latency),
                    format!(
                        "{} / {} / {}",
                        cores_of(cpu.machine),
                        cores_of(cpu.own),
                        cores_of(cpu.database)
                    ),
                    r.waits.describe(),
                    target,
                    verdict,
                ]);
            }
        }
        t.render(out)
    }

    fn replica_section(&self, out: &mut String, v: &mut Verdicts) -> std::fmt::Result {
        writeln!(out, "## 3. Two replicas against one\n")?;
        writeln!(
            out,
            "The target (two replicas ingest at least {TARGET_REPLICA_SPEEDUP}× one) holds when the \
             database is not the bottleneck. Here PostgreSQL, both replicas and the clients share {} \
             cores; when they are saturated, or the backends wait on WAL flushes, the database is the \
             limit and the target cannot be shown on this machine. \"Limit\" is read from the \
             two-replica run.\n",
            cores()
        )?;
        let mut t = Table::new(&[
            "Ingest",
            "1 replica",
            "2 replicas",
            "2 / 1",
            "Limit",
            "Target",
            "Verdict",
        ]);
        for (kind, runs) in [("batched", &self.batched), ("single-event", &self.single)] {
            for orgs in [1, SPREAD_ORGS] {
                let find = |replicas| runs.iter().find(|r| r.orgs == orgs && r.replicas == replicas);
                let (Some(one), Some(two)) = (find(1), find(2)) else {
                    continue;
                };
                let speedup = two.rate() / one.rate().max(f64::EPSILON);
                let (limit, not_testable) = two.limit();
                let what = format!("{kind} ingest to {orgs} organization(s), 2 replicas / 1");
                let verdict = if speedup >= TARGET_REPLICA_SPEEDUP {
                    "PASS".into()
                } else if not_testable {
                    v.misses.push(format!(
                        "{what} = {speedup:.2}×: not testable on this machine (limit: {limit})"
                    ));
                    "MISS (not testable here: the machine or database is the limit)".into()
                } else {
                    v.at_least(&what, speedup, TARGET_REPLICA_SPEEDUP)
                };
                t.row(vec![
                    format!("{kind}, {orgs} org(s)"),
                    format!("{} entries/s", thousands(one.rate())),
                    format!("{} entries/s", thousands(two.rate())),
                    format!("{speedup:.2}×"),
                    limit,
                    format!("≥ {TARGET_REPLICA_SPEEDUP}×"),
                    verdict,
                ]);
            }
        }
        t.render(out)
    }

    fn query_section(&self, out: &mut String, v: &mut Verdicts) -> std::fmt::Result {
        let f = &self.fill;
        writeln!(
            out,
            "## 4. First-page query latency at {} entries\n",
            thousands(f.entries as f64)
        )?;
        writeln!(
            out,
            "Filled with binary COPY, {FILL_CHUNK} entries per transaction (entries, entry ids, the \
             Merkle tiles and nodes grown by the store's own code, the log head), spread over a year, \
             then `VACUUM (ANALYZE)` as autovacuum would eventually:\n"
        )?;
        let mut t = Table::new(&["Figure", "Result"]);
        t.row(vec![
            "Fill rate (generation and hashing overlapped)".into(),
            format!("{} rows/s", thousands(per_sec(f.entries, f.elapsed))),
        ]);
        t.row(vec!["Fill time".into(), format!("{:.1} s", f.elapsed.as_secs_f64())]);
        t.row(vec![
            "`VACUUM (ANALYZE)`".into(),
            format!("{:.1} s", f.vacuum.as_secs_f64()),
        ]);
        t.row(vec![
            "Database size".into(),
            format!("{:.0} MiB", f.database_bytes as f64 / MIB),
        ]);
        t.render(out)?;
        writeln!(
            out,
            "`GET /v1/orgs/{{org}}/audit/events?…&limit={PAGE_LIMIT}` through one in-process replica, {} \
             sequential requests per kind after {WARMUP_REQUESTS} warm-up requests, the SQLite bench's \
             query mix; `/healthz` is the HTTP baseline.\n",
            self.samples
        )?;
        query_table(&self.queries.kinds, self.queries.healthz, TARGET_QUERY_P99, v).render(out)
    }

    fn export_section(&self, out: &mut String) -> std::fmt::Result {
        let e = &self.export;
        let rate = per_sec(e.http.rows, e.http.elapsed);
        let copy_rate = per_sec(e.copy_rows, e.copy_elapsed);
        writeln!(out, "## 5. CSV export\n")?;
        writeln!(
            out,
            "`GET /v1/orgs/{{org}}/audit/export?format=csv` of the whole log from a separate \
             `auditlog serve --database postgres://…` process, streamed and counted by the client. \
             Ceiling: `COPY (SELECT <entry columns> … ORDER BY ts DESC, seq DESC) TO STDOUT (FORMAT \
             csv)` of the same rows, read by this process.\n"
        )?;
        let mut t = Table::new(&["Figure", "Result"]);
        t.row(vec![
            "Rows / bytes".into(),
            format!(
                "{} / {:.1} MiB",
                thousands(e.http.rows as f64),
                e.http.bytes as f64 / MIB
            ),
        ]);
        t.row(vec!["Time to first byte".into(), fmt_ms(e.http.first_byte)]);
        t.row(vec![
            "Export rate".into(),
            format!("{} rows/s ({:.1} s)", thousands(rate), e.http.elapsed.as_secs_f64()),
        ]);
        t.row(vec!["CPU busy (server)".into(), cores_busy(e.http.cpu, e.http.elapsed)]);
        t.row(vec![
            "COPY TO ceiling".into(),
            format!(
                "{} rows/s ({:.1} s, {:.1} MiB)",
                thousands(copy_rate),
                e.copy_elapsed.as_secs_f64(),
                e.copy_bytes as f64 / MIB
            ),
        ]);
        t.row(vec![
            "Export / COPY TO".into(),
            format!("{:.1}%", rate / copy_rate.max(f64::EPSILON) * 100.0),
        ]);
        t.row(vec!["Server peak RSS after export".into(), mib(e.http.peak_kib)]);
        t.render(out)
    }
}

pub(crate) fn cores_of(c: Option<f64>) -> String {
    c.map_or_else(|| "not measured".into(), |c| format!("{c:.2} cores"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_json_is_written_as_is_and_only_for_json() {
        let mut out = BytesMut::new();
        let written = RawJson(r#"{"a":1}"#).to_sql(&Type::JSON, &mut out);
        assert!(matches!(written, Ok(IsNull::No)));
        assert_eq!(&out[..], br#"{"a":1}"#);
        assert!(<RawJson<'_> as ToSql>::accepts(&Type::JSON));
        assert!(!<RawJson<'_> as ToSql>::accepts(&Type::JSONB));
    }

    #[test]
    fn passwords_stay_out_of_the_report() {
        let url = reqwest::Url::parse("postgres://bench:s3cret@db:5432/postgres").unwrap();
        let command = "auditlog bench postgres postgres://bench:s3cret@db:5432/postgres";
        assert_eq!(
            without_password(command, &url),
            "auditlog bench postgres postgres://bench:***@db:5432/postgres"
        );
        let bare = reqwest::Url::parse("postgres://bench@db/postgres").unwrap();
        assert_eq!(without_password(command, &bare), command);
    }

    #[test]
    fn rows_number_from_the_first_seq_and_default_their_receipt() {
        let now = SystemClock.now();
        let new = seed::entries(3, now.minus_days(1), now, 7);
        let ts: Vec<Timestamp> = new.iter().map(|e| e.timestamp).collect();
        let rows = rows_of(OrgId(4), 10, new, None);
        assert_eq!(rows.iter().map(|r| r.entry.seq).collect::<Vec<_>>(), [10, 11, 12]);
        assert_eq!(rows[1].entry.received_at, ts[1].plus_millis(1500));
        assert_eq!(rows[2].details, rows[2].entry.details_json());
    }
}

//! The SQLite sections of `auditlog bench`: measured on this machine, each
//! beside a baseline from the same run, and printed as a Markdown report
//! with each figure beside its target.
//!
//! 1. **SQLite ceiling**: raw inserts of the ingest rows, same schema and
//!    durability settings; the rate no ingest path can beat.
//! 2. **Batched ingest over HTTP**: full 1000-event batches from a few
//!    clients, compared with the ceiling.
//! 3. **Single-event ingest** from many concurrent clients (group commit).
//! 4. **First-page query latency** for each filter kind on a large log
//!    (and 4b, what recording reads costs a reader, from `reads`).
//! 5. **CSV export** of that whole log from a separate server process: rate
//!    and peak memory, against a raw SQLite scan.
//!
//! Sections 6 and 7 (webhooks, tamper evidence) come from `webhooks` and
//! `integrity`. Every measurement starts from a fresh database file. The
//! HTTP load generator runs in this process, on the same cores as the
//! server, so the figures include its cost: they are what one machine does
//! end to end. The report goes to stdout; progress goes to stderr.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use auditlog_domain::api_key::Scope;
use auditlog_domain::{Clock, NewEntry, OrgId, SystemClock, Timestamp};
use auditlog_sqlite::rows::ENTRY_COLUMNS;
use auditlog_sqlite::rusqlite::types::ValueRef;
use auditlog_sqlite::rusqlite::{self, Connection, OpenFlags, params};
use auditlog_sqlite::schema;
use reqwest::Method;
use reqwest::StatusCode;
use serde_json::Value;

use crate::AnyError;
use crate::cli::{
    AllArgs, DirArgs, ExportArgs, IngestArgs, IngestRowsArgs, IntegrityArgs, LogArgs, QueryArgs, QuerySamplesArgs,
    SingleEventArgs, WebhookRateArgs, WebhooksArgs,
};
use crate::harness::{
    BATCH_CLIENTS, BATCH_EVENTS, CEILING_TX_ROWS, HttpExport, HttpLoad, InProcessServer, IngestFigures, KindFigures,
    Latencies, LoadMeter, MIB, PAGE_LIMIT, RNG_SEED, SEED_BATCH, SeedFigures, WARMUP_REQUESTS, Workdir, batch_bodies,
    command_line, fresh_store, http_export, ingest_through, ms, per_sec, progress, sample_queries, seed_log, send_all,
    settle_disk, single_bodies,
};
use crate::integrity::IntegrityFigures;
use crate::make_key;
use crate::reads::ReadsFigures;
use crate::report::{Table, Verdicts, cores_busy, fmt_ms, latency_triple, mib, query_table, run_facts, thousands};
use crate::seed;

const TARGET_INGEST_RATIO: f64 = 0.5;
const TARGET_SINGLE_EVENTS_PER_SEC: f64 = 10_000.0;
const TARGET_QUERY_P99: Duration = Duration::from_millis(20);
const TARGET_EXPORT_ROWS_PER_SEC: f64 = 300_000.0;
const TARGET_EXPORT_PEAK_RSS_MIB: f64 = 100.0;

/// `auditlog bench all`: every section, in the order that keeps each from
/// disturbing the next (the ingest rows serve the ceilings, tamper
/// evidence and batched ingest before they are dropped; the query log
/// serves the export).
pub async fn all(args: &AllArgs) -> Result<(), AnyError> {
    let suite = &args.suite;
    let mut run = Run::start(&suite.ingest.dir)?;
    let rows = ingest_rows(&suite.ingest.ingest);
    let ceilings = ceilings(&run.workdir, &rows, &suite.ingest.single).await?;
    settle_disk();
    progress("7/7 tamper evidence: appends with and without the Merkle tree");
    run.sections.integrity = Some(crate::integrity::measure(run.workdir.path(), &rows).await?);
    settle_disk();
    run.sections.ingest = Some(http_ingest(&run.workdir, rows, ceilings, &suite.ingest.single).await?);
    settle_disk();
    let (queries, seeded) = query_latency(&run.workdir, &suite.log, &suite.samples).await?;
    run.sections.queries = Some(queries);
    settle_disk();
    run.sections.reads = Some(reads(&run.workdir, &suite.log, &suite.samples).await?);
    settle_disk();
    run.sections.export = Some(csv_export(&seeded, run.workdir.path()).await?);
    settle_disk();
    run.sections.webhooks = Some(webhook_delivery(&run.workdir, &args.webhooks).await?);
    run.finish()
}

/// `auditlog bench ingest`: sections 1 to 3.
pub async fn ingest(args: &IngestArgs) -> Result<(), AnyError> {
    let mut run = Run::start(&args.dir)?;
    let rows = ingest_rows(&args.ingest);
    let ceilings = ceilings(&run.workdir, &rows, &args.single).await?;
    settle_disk();
    run.sections.ingest = Some(http_ingest(&run.workdir, rows, ceilings, &args.single).await?);
    run.finish()
}

/// `auditlog bench query`: section 4, and 4b beside it.
pub async fn query(args: &QueryArgs) -> Result<(), AnyError> {
    let mut run = Run::start(&args.dir)?;
    let (queries, _) = query_latency(&run.workdir, &args.log, &args.samples).await?;
    run.sections.queries = Some(queries);
    settle_disk();
    run.sections.reads = Some(reads(&run.workdir, &args.log, &args.samples).await?);
    run.finish()
}

/// `auditlog bench export`: section 5, on a log seeded as section 4's.
pub async fn export(args: &ExportArgs) -> Result<(), AnyError> {
    let mut run = Run::start(&args.dir)?;
    let seeded = seeded_log(&run.workdir, &args.log).await?;
    settle_disk();
    run.sections.export = Some(csv_export(&seeded, run.workdir.path()).await?);
    run.finish()
}

/// `auditlog bench webhooks`: section 6.
pub async fn webhooks(args: &WebhooksArgs) -> Result<(), AnyError> {
    let mut run = Run::start(&args.dir)?;
    run.sections.webhooks = Some(webhook_delivery(&run.workdir, &args.webhooks).await?);
    run.finish()
}

/// `auditlog bench integrity`: section 7.
pub async fn integrity(args: &IntegrityArgs) -> Result<(), AnyError> {
    let mut run = Run::start(&args.dir)?;
    let rows = ingest_rows(&args.ingest);
    settle_disk();
    progress("7/7 tamper evidence: appends with and without the Merkle tree");
    run.sections.integrity = Some(crate::integrity::measure(run.workdir.path(), &rows).await?);
    run.finish()
}

/// One run of some of the sections: where its databases go, how busy the
/// rest of the machine was, and what each section measured.
struct Run {
    workdir: Workdir,
    machine_load: LoadMeter,
    date: Timestamp,
    sections: Sections,
}

impl Run {
    fn start(dir: &DirArgs) -> Result<Self, AnyError> {
        let workdir = Workdir::new(dir.dir.as_deref())?;
        progress(format!("databases go in {}", workdir.path().display()));
        Ok(Self {
            workdir,
            machine_load: LoadMeter::start(),
            date: SystemClock.now(),
            sections: Sections::default(),
        })
    }

    /// Prints the report of the sections that ran.
    fn finish(self) -> Result<(), AnyError> {
        let results = Results {
            command: command_line(),
            date: self.date,
            other_load: self.machine_load.others(),
            sections: self.sections,
        };
        println!("{}", results.render()?);
        Ok(())
    }
}

/// The rows every ingest measurement sends.
fn ingest_rows(args: &IngestRowsArgs) -> Vec<NewEntry> {
    progress(format!(
        "generating {} entries for the ingest measurements",
        args.ingest_entries
    ));
    let now = SystemClock.now();
    // A day inside the scale plan's 365-day window, and in the past, so
    // ingest accepts every entry however long the run takes; only events a
    // producer may send, so none is refused as the service's own.
    seed::ingestible_entries(
        args.ingest_entries,
        now.minus_days(364),
        now.plus_millis(-60_000),
        RNG_SEED,
    )
}

/// Section 1: the ceiling at a batch's rows per transaction, and at as
/// many as single-event ingest's clients can have in flight.
async fn ceilings(workdir: &Workdir, rows: &[NewEntry], single: &SingleEventArgs) -> Result<Ceilings, AnyError> {
    settle_disk();
    let batch = sqlite_ceiling(workdir.fresh("bench-ceiling.db")?, rows, CEILING_TX_ROWS).await?;
    // With one request in flight per client, one commit gathers at most
    // `clients` single-event requests: this is the single-event path's ceiling.
    let few = &rows[..single.single_events.min(rows.len())];
    let small = sqlite_ceiling(workdir.fresh("bench-ceiling-small.db")?, few, single.clients).await?;
    Ok(Ceilings { batch, small })
}

/// Sections 2 and 3, beside the ceilings measured before them.
async fn http_ingest(
    workdir: &Workdir,
    rows: Vec<NewEntry>,
    ceilings: Ceilings,
    single: &SingleEventArgs,
) -> Result<IngestSections, AnyError> {
    let batched = batched_ingest(workdir.fresh("bench-batched.db")?, &rows).await?;
    drop(rows);
    settle_disk();
    let single = single_event_ingest(workdir, single.single_events, single.clients).await?;
    Ok(IngestSections {
        ceilings,
        batched,
        single,
    })
}

/// Section 4b, on logs of its own.
async fn reads(workdir: &Workdir, log: &LogArgs, samples: &QuerySamplesArgs) -> Result<Vec<ReadsFigures>, AnyError> {
    crate::reads::measure(workdir.path(), log.entries, samples.query_samples).await
}

/// Section 6, with its receiver and server of its own.
async fn webhook_delivery(workdir: &Workdir, args: &WebhookRateArgs) -> Result<String, AnyError> {
    progress("6/7 webhook delivery at a sustained rate");
    crate::webhooks::run(
        workdir.path(),
        crate::webhooks::WebhookBench {
            rate: args.webhook_rate,
            seconds: args.webhook_seconds,
            endpoints: args.webhook_endpoints,
        },
    )
    .await
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

// ---------------------------------------------------------------------------
// 1. SQLite ceiling
// ---------------------------------------------------------------------------

/// Section 1's two ceilings.
struct Ceilings {
    /// At a batch's rows per transaction: the reference for batched ingest.
    batch: CeilingFigures,
    /// At single-event ingest's clients per transaction.
    small: CeilingFigures,
}

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

/// Sections 1 to 3.
struct IngestSections {
    ceilings: Ceilings,
    batched: IngestFigures,
    single: SingleEventFigures,
}

struct SingleEventFigures {
    ingest: IngestFigures,
    /// `GET /healthz` from the same clients: HTTP alone, no work behind it.
    healthz: HttpLoad,
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

// ---------------------------------------------------------------------------
// 4. First-page query latency
// ---------------------------------------------------------------------------

struct QueryFigures {
    seed: SeedFigures,
    database_bytes: u64,
    samples: usize,
    kinds: Vec<KindFigures>,
    healthz: Latencies,
}

/// What the export measurement needs of the seeded database.
struct SeededDb {
    path: PathBuf,
    org: OrgId,
    entries: usize,
    read_key: String,
}

/// Section 4: seeds the log, then samples first-page queries on it;
/// returns the log too, for the export.
async fn query_latency(
    workdir: &Workdir,
    log: &LogArgs,
    samples: &QuerySamplesArgs,
) -> Result<(QueryFigures, SeededDb), AnyError> {
    let (entries, samples) = (log.entries, samples.query_samples);
    progress(format!(
        "4/7 query latency: seeding {entries} entries through Store::append"
    ));
    let path = workdir.fresh("bench-query.db")?;
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

/// The log section 4 queries, seeded the same way, for the export alone.
async fn seeded_log(workdir: &Workdir, log: &LogArgs) -> Result<SeededDb, AnyError> {
    let entries = log.entries;
    progress(format!(
        "5/7 CSV export: seeding {entries} entries through Store::append"
    ));
    let path = workdir.fresh("bench-query.db")?;
    let (store, org) = fresh_store(&path).await?;
    seed_log(store.as_ref(), org.id, entries).await?;
    let read_key = make_key(store.as_ref(), &org, "bench reader", vec![Scope::AuditRead]).await?;
    Ok(SeededDb {
        path,
        org: org.id,
        entries,
        read_key,
    })
}

// ---------------------------------------------------------------------------
// 5. CSV export
// ---------------------------------------------------------------------------

struct ExportFigures {
    http: HttpExport,
    scan: ScanFigures,
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

// ---------------------------------------------------------------------------
// The report
// ---------------------------------------------------------------------------

/// What the sections that ran measured; the others are `None`.
#[derive(Default)]
struct Sections {
    ingest: Option<IngestSections>,
    queries: Option<QueryFigures>,
    /// Each query kind with reads recorded and without.
    reads: Option<Vec<ReadsFigures>>,
    export: Option<ExportFigures>,
    /// The webhook section, rendered by `webhooks`.
    webhooks: Option<String>,
    integrity: Option<IntegrityFigures>,
}

struct Results {
    command: String,
    date: Timestamp,
    /// Cores other processes kept busy on average during the run.
    other_load: Option<f64>,
    sections: Sections,
}

impl Results {
    fn render(&self) -> Result<String, AnyError> {
        let mut out = String::new();
        let mut verdicts = Verdicts::default();
        self.header(&mut out)?;
        let s = &self.sections;
        if let Some(ingest) = &s.ingest {
            ingest.render(&mut out, &mut verdicts)?;
        }
        if let Some(queries) = &s.queries {
            queries.render(&mut out, &mut verdicts)?;
        }
        if let Some(reads) = &s.reads {
            reads_section(reads, &mut out, &mut verdicts)?;
        }
        if let Some(export) = &s.export {
            export.render(&mut out, &mut verdicts)?;
        }
        if let Some(webhooks) = &s.webhooks {
            writeln!(out, "## 6. Webhooks\n\n{}", webhooks.replace("### Webhook", "Webhook"))?;
            if webhooks.contains("| MISS |") {
                verdicts.misses.push("webhook commit-to-delivery p99".into());
            }
        }
        if let Some(integrity) = &s.integrity {
            writeln!(out, "{}", crate::integrity::render(integrity))?;
            if integrity.missed() {
                verdicts.misses.push("tamper evidence's cost to ingest".into());
            }
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
}

impl IngestSections {
    fn render(&self, out: &mut String, v: &mut Verdicts) -> std::fmt::Result {
        self.ceiling_section(out)?;
        self.batched_section(out, v)?;
        self.single_section(out, v)
    }

    fn ceiling_section(&self, out: &mut String) -> std::fmt::Result {
        let small = self.ceilings.small.tx_rows;
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
        for c in [&self.ceilings.batch, &self.ceilings.small] {
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
        let ratio = rate / per_sec(self.ceilings.batch.rows, self.ceilings.batch.elapsed).max(f64::EPSILON);
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
        let small = &self.ceilings.small;
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
}

impl QueryFigures {
    fn render(&self, out: &mut String, v: &mut Verdicts) -> std::fmt::Result {
        let q = self;
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
}

impl ExportFigures {
    fn render(&self, out: &mut String, v: &mut Verdicts) -> std::fmt::Result {
        let (e, scan) = (&self.http, &self.scan);
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

fn reads_section(reads: &[ReadsFigures], out: &mut String, v: &mut Verdicts) -> std::fmt::Result {
    writeln!(out, "## 4b. What recording reads costs a reader\n")?;
    writeln!(
        out,
        "The same first-page queries against four in-process servers, each on its own log \
         seeded alike: two record reads (`audit_log.viewed`, the default), two do not. The arms \
         take turns in blocks of fifty requests, each block followed by a pause in which the \
         recorder commits what it gathered, so all arms share the machine's disturbances and \
         each bears its own commits. The cost is the recording arms' pooled p99 over the others'; \
         the identical arms of each pair differ only by noise, so the cost passes when it is \
         within the larger pair's difference or within 1.15, whichever is wider.\n"
    )?;
    crate::reads::table(reads, v).render(out)
}

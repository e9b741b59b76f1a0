//! `auditlog bench erasure`: what sealing personal values costs, and what
//! erasing a person costs.
//!
//! The same rows go through `Store::append` in 1000-entry transactions to
//! two fresh SQLite databases, one sealing personal values (canonical
//! version 3, as the service writes) and one not (version 2), in
//! alternating rounds so both see the same machine. Then, on both: every
//! entry read back in export pages of 1000 and written as CSV rows, and
//! the first page of a person's entries (the blind-index filter) sampled.
//! Last, on the sealed log, a person with a tenth of the entries is erased
//! while a second task appends one entry at a time, whose longest append
//! is how long ingest stood still.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use auditlog_domain::csv_row::CsvEncoder;
use auditlog_domain::entry::{Actor, ActorType};
use auditlog_domain::filter::{Filter, Page};
use auditlog_domain::personal::{PersonalData, Subject};
use auditlog_domain::store::AppendRequest;
use auditlog_domain::{Catalog, Clock, NewEntry, Org, Store, SystemClock};
use auditlog_server::erasure::{ERASED_EVENT, append_one};
use auditlog_sqlite::SqliteStore;

use crate::AnyError;
use crate::cli::ErasureArgs;
use crate::harness::{BATCH_CLIENTS, BATCH_EVENTS, Latencies, Workdir, batch_bodies, ingest_through, progress};

const TX_ROWS: usize = 1000;
const ROUND_ROWS: usize = 10_000;
/// Every tenth entry is the erased person's.
const SUBJECT_EVERY: usize = 10;
const SUBJECT: &str = "erased.person@bench.example";
/// The bars of the issue: sealing within 15% of ingest and export, the
/// person filter's first page within 20%, an erasure under 10 s that never
/// stalls ingest longer than 100 ms.
const INGEST_BAR: f64 = 0.15;
const EXPORT_BAR: f64 = 0.15;
const QUERY_BAR: f64 = 0.20;
const ERASE_BAR: Duration = Duration::from_secs(10);
const STALL_BAR: Duration = Duration::from_millis(100);

/// One side's figures: sealed or not.
#[derive(Debug, Default, Clone)]
struct Side {
    ingest: Duration,
    /// Batched ingest over HTTP, of `Figures::http_rows`.
    http: Duration,
    export: Duration,
    query: Latencies,
}

#[derive(Debug)]
struct Figures {
    rows: usize,
    http_rows: usize,
    sealed: Side,
    plain: Side,
    erased_entries: u64,
    erase: Duration,
    longest_stall: Duration,
    stall_before: Duration,
}

pub async fn run_cli(args: &ErasureArgs) -> Result<(), AnyError> {
    let workdir = Workdir::new(args.dir.dir.as_deref())?;
    println!(
        "{}",
        render(&measure(&workdir, args.entries, args.samples.query_samples).await?)
    );
    Ok(())
}

fn personal() -> Arc<PersonalData> {
    Arc::new(PersonalData::new(&[7; 32], Arc::new(Catalog::builtin())))
}

/// A fresh log that seals (given the keys here, or a server's) or never
/// does.
async fn fresh(workdir: &Workdir, name: &str, sealed: bool) -> Result<(Arc<dyn Store>, Org), AnyError> {
    let path = workdir.fresh(name)?;
    let store = if sealed {
        SqliteStore::open(path)?
    } else {
        SqliteStore::open_unsealed(path)?
    };
    auditlog_domain::store::EntryStore::use_personal_data(&store, personal());
    let store: Arc<dyn Store> = Arc::new(store);
    let org = crate::harness::bench_org(store.as_ref()).await?;
    Ok((store, org))
}

/// A year of the usual mix, a tenth of it done by one person.
fn rows(n: usize) -> Vec<NewEntry> {
    let end = SystemClock.now();
    by_the_person(crate::seed::entries(n, end.minus_days(365), end, 7))
}

/// What producers send over HTTP, inside the plan's window; a tenth of it
/// by the person.
fn ingestible_rows(n: usize) -> Vec<NewEntry> {
    let now = SystemClock.now();
    by_the_person(crate::seed::ingestible_entries(
        n,
        now.minus_days(364),
        now.plus_millis(-60_000),
        8,
    ))
}

fn by_the_person(mut rows: Vec<NewEntry>) -> Vec<NewEntry> {
    for e in rows.iter_mut().step_by(SUBJECT_EVERY) {
        e.actor = Actor {
            kind: ActorType::User,
            id: SUBJECT.into(),
        };
    }
    rows
}

async fn append_round(store: &dyn Store, org: &Org, rows: &[NewEntry]) -> Result<Duration, AnyError> {
    let started = Instant::now();
    for chunk in rows.chunks(TX_ROWS) {
        for r in store
            .append(vec![AppendRequest::entries(org.id, chunk.to_vec())], SystemClock.now())
            .await?
        {
            r?;
        }
    }
    Ok(started.elapsed())
}

/// Every entry, read as the export reads them and written as CSV.
async fn export(store: &dyn Store, org: &Org) -> Result<Duration, AnyError> {
    let started = Instant::now();
    let filter = Filter {
        max_seq: Some(store.log_size(org.id).await?),
        ..Filter::default()
    };
    let mut page = Page {
        limit: 1000,
        after: None,
    };
    let mut csv = CsvEncoder::new();
    loop {
        let got = store.list(org.id, &filter, page).await?;
        for e in &got {
            csv.row(e);
        }
        std::hint::black_box(csv.take());
        match got.last() {
            Some(last) if got.len() == 1000 => {
                page.after = Some(auditlog_domain::cursor::Cursor {
                    timestamp: last.timestamp,
                    seq: last.seq,
                })
            }
            _ => return Ok(started.elapsed()),
        }
    }
}

async fn first_pages(store: &dyn Store, org: &Org, samples: usize) -> Result<Latencies, AnyError> {
    let filter = Filter {
        actor: Some(SUBJECT.into()),
        ..Filter::default()
    };
    let mut taken = Vec::with_capacity(samples);
    for _ in 0..samples {
        let t = Instant::now();
        let got = store.list(org.id, &filter, Page { limit: 50, after: None }).await?;
        taken.push(t.elapsed());
        if got.len() != 50 {
            return Err(format!("the person's first page held {} entries", got.len()).into());
        }
    }
    Ok(Latencies::of(taken))
}

async fn measure(workdir: &Workdir, n: usize, samples: usize) -> Result<Figures, AnyError> {
    let all = rows(n);
    let (sealed, sealed_org) = fresh(workdir, "erasure-sealed.db", true).await?;
    let (plain, plain_org) = fresh(workdir, "erasure-plain.db", false).await?;
    let (mut s, mut p) = (Side::default(), Side::default());
    progress(format!("appending {n} entries to each log, in alternating rounds"));
    for (i, round) in all.chunks(ROUND_ROWS).enumerate() {
        if i % 2 == 0 {
            s.ingest += append_round(sealed.as_ref(), &sealed_org, round).await?;
            p.ingest += append_round(plain.as_ref(), &plain_org, round).await?;
        } else {
            p.ingest += append_round(plain.as_ref(), &plain_org, round).await?;
            s.ingest += append_round(sealed.as_ref(), &sealed_org, round).await?;
        }
    }
    let http_rows = (n / 5).max(2 * BATCH_EVENTS);
    progress(format!(
        "ingesting {http_rows} entries over HTTP to a sealing and a plain server"
    ));
    http_ingest(workdir, &ingestible_rows(http_rows), &mut s, &mut p).await?;
    progress("reading every entry back as CSV, twice each");
    for _ in 0..2 {
        s.export += export(sealed.as_ref(), &sealed_org).await?;
        p.export += export(plain.as_ref(), &plain_org).await?;
    }
    progress("sampling the person's first page");
    s.query = first_pages(sealed.as_ref(), &sealed_org, samples).await?;
    p.query = first_pages(plain.as_ref(), &plain_org, samples).await?;
    progress("erasing the person while ingest goes on");
    let (erased_entries, erase, longest_stall, stall_before) = erase_under_ingest(sealed, &sealed_org).await?;
    Ok(Figures {
        rows: n,
        http_rows,
        sealed: s,
        plain: p,
        erased_entries,
        erase,
        longest_stall,
        stall_before,
    })
}

/// Batched ingest over HTTP (in-process servers, {BATCH_CLIENTS} clients)
/// into fresh logs, half the rows each round, alternating which side goes
/// first.
async fn http_ingest(workdir: &Workdir, rows: &[NewEntry], s: &mut Side, p: &mut Side) -> Result<(), AnyError> {
    for (i, half) in rows.chunks(rows.len().div_ceil(2)).enumerate() {
        for sealed in [i % 2 == 0, i % 2 == 1] {
            let (store, org) = fresh(workdir, &format!("erasure-http-{sealed}-{i}.db"), sealed).await?;
            let bodies = batch_bodies(half)?;
            let got = ingest_through(&[store], &[org], bodies, half.len(), BATCH_CLIENTS).await?;
            let side = if sealed { &mut *s } else { &mut *p };
            side.http += got.load.elapsed;
        }
    }
    Ok(())
}

/// Appends one entry at a time until `stop`; the longest append.
async fn trickle(store: Arc<dyn Store>, org: Org, stop: Arc<AtomicBool>) -> Result<Duration, AnyError> {
    // Someone else's: the erased person's count must hold.
    let mut one = rows(2).remove(1);
    one.actor = Actor {
        kind: ActorType::User,
        id: "someone.else@bench.example".into(),
    };
    let mut longest = Duration::ZERO;
    while !stop.load(Ordering::Relaxed) {
        let t = Instant::now();
        for r in store
            .append(
                vec![AppendRequest::entries(org.id, vec![one.clone()])],
                SystemClock.now(),
            )
            .await?
        {
            r?;
        }
        longest = longest.max(t.elapsed());
    }
    Ok(longest)
}

/// Erases the person as the service does (`auditlog_server::erasure`),
/// with one-entry appends going on beside it;
/// also the longest of those appends in the second before, for scale.
async fn erase_under_ingest(store: Arc<dyn Store>, org: &Org) -> Result<(u64, Duration, Duration, Duration), AnyError> {
    let spawn = |stop: &Arc<AtomicBool>| tokio::spawn(trickle(store.clone(), org.clone(), stop.clone()));
    let before = Arc::new(AtomicBool::new(false));
    let task = spawn(&before);
    tokio::time::sleep(Duration::from_secs(1)).await;
    before.store(true, Ordering::Relaxed);
    let stall_before = task.await??;

    let stop = Arc::new(AtomicBool::new(false));
    let task = spawn(&stop);
    let started = Instant::now();
    let erased = auditlog_server::erasure::erase(
        store.as_ref(),
        &personal(),
        org.id,
        &Subject::new(SUBJECT).ok_or("no subject")?,
        |resource, details| NewEntry::by_system(SystemClock.now(), ERASED_EVENT, resource, details),
        |request| append_one(store.as_ref(), request, SystemClock.now()),
    )
    .await?;
    let entries = erased.entries;
    let erase = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let longest = task.await??;
    Ok((entries, erase, longest, stall_before))
}

fn rate(rows: usize, d: Duration) -> f64 {
    rows as f64 / d.as_secs_f64().max(1e-9)
}

fn verdict(missed: bool) -> &'static str {
    if missed { "MISS" } else { "PASS" }
}

fn render(f: &Figures) -> String {
    let ingest_cost = 1.0 - f.plain.ingest.as_secs_f64() / f.sealed.ingest.as_secs_f64().max(1e-9);
    let http_cost = 1.0 - f.plain.http.as_secs_f64() / f.sealed.http.as_secs_f64().max(1e-9);
    let export_cost = 1.0 - f.plain.export.as_secs_f64() / f.sealed.export.as_secs_f64().max(1e-9);
    let query_ratio = f.sealed.query.p99.as_secs_f64() / f.plain.query.p99.as_secs_f64().max(1e-9);
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    format!(
        "## Personal data: sealing and erasure\n\n\
         {rows} entries (a year of the usual mix, every tenth by one person) appended through \
         `Store::append` in {TX_ROWS}-entry transactions to two fresh SQLite logs, one sealing personal \
         values (canonical version 3) and one not, in alternating rounds of {ROUND_ROWS}; then each log \
         read back twice in export pages of 1000 written as CSV; a fifth as many entries sent over HTTP \
         to in-process servers on fresh logs, one sealing and one not, half each round in alternating \
         order; then the person's first page (50 \
         entries, `actor=` their email) sampled; then the person erased from the sealed log while one-entry \
         appends go on beside it.\n\n\
         | Figure | Not sealed (baseline) | Sealed | Cost | Bar | Verdict |\n| --- | --- | --- | --- | --- | --- |\n\
         | Ingest, `Store::append` | {pi:.0} rows/s | {si:.0} rows/s | {ic:.1}% | < {ib:.0}% | {iv} |\n\
         | Ingest over HTTP, batches of {BATCH_EVENTS} from {BATCH_CLIENTS} clients ({hr} entries) | {ph:.0} entries/s | {sh:.0} entries/s | {hc:.1}% | < {ib:.0}% | {hv} |\n\
         | Export read + CSV | {pe:.0} rows/s | {se:.0} rows/s | {ec:.1}% | < {eb:.0}% | {ev} |\n\
         | Person's first page p50 / p99 | {pq50:.2} / {pq99:.2} ms | {sq50:.2} / {sq99:.2} ms | ×{qr:.2} p99 | ≤ ×{qb:.2} | {qv} |\n\n\
         | Erasure | Result | Bar | Verdict |\n| --- | --- | --- | --- |\n\
         | Entries of the person | {ee} | — | — |\n\
         | Erasure, counted and committed | {ems:.0} ms | < {ebar} s | {erv} |\n\
         | Longest one-entry append during it | {stall:.0} ms (in the second before: {before:.0} ms) | ≤ {sbar} ms | {sv} |\n",
        rows = f.rows,
        pi = rate(f.rows, f.plain.ingest),
        si = rate(f.rows, f.sealed.ingest),
        ic = ingest_cost * 100.0,
        ib = INGEST_BAR * 100.0,
        iv = verdict(ingest_cost >= INGEST_BAR),
        hr = f.http_rows,
        ph = rate(f.http_rows, f.plain.http),
        sh = rate(f.http_rows, f.sealed.http),
        hc = http_cost * 100.0,
        hv = verdict(http_cost >= INGEST_BAR),
        pe = rate(2 * f.rows, f.plain.export),
        se = rate(2 * f.rows, f.sealed.export),
        ec = export_cost * 100.0,
        eb = EXPORT_BAR * 100.0,
        ev = verdict(export_cost >= EXPORT_BAR),
        pq50 = ms(f.plain.query.p50),
        pq99 = ms(f.plain.query.p99),
        sq50 = ms(f.sealed.query.p50),
        sq99 = ms(f.sealed.query.p99),
        qr = query_ratio,
        qb = 1.0 + QUERY_BAR,
        qv = verdict(query_ratio > 1.0 + QUERY_BAR),
        ee = f.erased_entries,
        ems = ms(f.erase),
        ebar = ERASE_BAR.as_secs(),
        erv = verdict(f.erase >= ERASE_BAR),
        stall = ms(f.longest_stall),
        before = ms(f.stall_before),
        sbar = STALL_BAR.as_millis(),
        sv = verdict(f.longest_stall > STALL_BAR),
    )
}

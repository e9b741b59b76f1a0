//! `auditlog bench load`: a sustained-load test. A separate `auditlog
//! serve` process on a fresh SQLite database takes ingest at a fixed rate
//! (open loop: requests leave on schedule whether or not earlier ones were
//! answered) for a fixed time, by default the single-event target of
//! 10,000 entries/s for 10 minutes. It reports errors, latency per minute
//! and the server's resident memory over time, so a leak or a slow drift
//! shows as a trend rather than a single figure.
//!
//! Latency is measured from the moment a request was due, not when it was
//! sent, so a stalled server cannot hide its stall by slowing the client
//! (coordinated omission). The baseline, in the same run, is `GET /healthz`
//! sent ten times a second by the same process: HTTP alone, under the same
//! machine load.

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use auditlog_domain::api_key::Scope;
use auditlog_domain::{Clock, SystemClock};
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use serde_json::json;
use tokio::sync::Semaphore;

use crate::AnyError;
use crate::cli::LoadArgs;
use crate::harness::{
    ChildServer, Latencies, LoadMeter, RNG_SEED, Workdir, command_line, fresh_store, http_client, progress,
};
use crate::make_key;
use crate::seed;

/// Requests in flight at most; past it the schedule slips, and the slip
/// shows in the latencies.
const MAX_IN_FLIGHT: usize = 1024;
/// Distinct request bodies, sent round-robin.
const BODIES: usize = 2_000;

#[derive(Debug, Clone, Copy)]
pub struct LoadTest {
    /// Entries per second.
    pub rate: u32,
    /// Events per request.
    pub batch: u32,
    pub seconds: u32,
    /// Send each entry's own time, spread over the past month, instead of
    /// leaving it to the server: a backfill of history rather than live
    /// ingest.
    pub backfill: bool,
}

impl LoadTest {
    /// What each request carries, in words.
    fn events(&self) -> String {
        match self.batch {
            1 => "1 event".to_owned(),
            n => format!("{n} events"),
        }
    }
}

/// One request's outcome: when it was due (seconds into the run), how long
/// it took from then, and whether it was accepted.
struct Sample {
    due_s: f64,
    latency: Duration,
    ok: bool,
}

pub async fn run_cli(args: &LoadArgs) -> Result<(), AnyError> {
    // The options' parsers hold each to at least 1, the batch to a request's most.
    let test = LoadTest {
        rate: args.load_rate,
        batch: args.load_batch,
        seconds: args.load_seconds,
        backfill: args.load_backfill,
    };
    let workdir = Workdir::new(args.dir.dir.as_deref())?;
    println!("{}", run(&workdir, test).await?);
    Ok(())
}

async fn run(workdir: &Workdir, test: LoadTest) -> Result<String, AnyError> {
    let meter = LoadMeter::start();
    let started_at = SystemClock.now();
    let path = workdir.fresh("bench-load.db")?;
    let key = {
        let (store, org) = fresh_store(&path).await?;
        make_key(store.as_ref(), &org, "load test", vec![Scope::AuditWrite]).await?
    };
    let bodies = bodies(test.batch as usize, test.backfill)?;
    let mut target = Target::start(workdir, &path, &key).await?;

    let samples: Arc<Mutex<Vec<Sample>>> = Arc::default();
    let rss: Arc<Mutex<Vec<(f64, u64)>>> = Arc::default();
    let baseline: Arc<Mutex<Vec<Duration>>> = Arc::default();
    let start = Instant::now();
    let done = tokio_util::sync::CancellationToken::new();
    let watcher = tokio::spawn(watch(
        target.server.child.id(),
        target.client.clone(),
        target.health.clone(),
        start,
        rss.clone(),
        baseline.clone(),
        done.clone(),
    ));
    send(&target, &bodies, test, start, &samples).await?;
    let elapsed = start.elapsed();
    done.cancel();
    watcher.await?;
    let peak = target.server.peak_rss_kib();
    target.server.stop()?;
    let stored = stored_entries(&path).await?;

    let samples = std::mem::take(&mut *samples.lock().map_err(|_| "samples poisoned")?);
    let rss = std::mem::take(&mut *rss.lock().map_err(|_| "rss poisoned")?);
    let baseline = std::mem::take(&mut *baseline.lock().map_err(|_| "baseline poisoned")?);
    Ok(render(Report {
        test,
        date: started_at,
        other_load: meter.others(),
        elapsed,
        samples,
        rss,
        peak_kib: peak,
        baseline,
        stored,
    }))
}

/// The server under test, ready, and what requests to it need.
struct Target {
    server: ChildServer,
    client: reqwest::Client,
    url: reqwest::Url,
    health: reqwest::Url,
    auth: HeaderValue,
}

impl Target {
    /// `auditlog serve` on the database at `path`, with `key` to write.
    async fn start(workdir: &Workdir, path: &std::path::Path, key: &str) -> Result<Self, AnyError> {
        let database = format!("sqlite://{}", path.display());
        // Well above the test's rate, so the server's own limits stay out of it.
        let limits = ["--ingest-rate-per-key", "1000000", "--ingest-rate-per-ip", "1000000"].map(String::from);
        let mut server = ChildServer::spawn(&database, &limits, &workdir.path().join("bench-load.log"))?;
        let client = http_client(Some(Duration::from_secs(30)))?;
        server.wait_ready(&client).await?;
        let url = reqwest::Url::parse(&format!(
            "{}/v1/orgs/{}/audit/events",
            server.base,
            crate::harness::ORG_SLUG
        ))?;
        let health = reqwest::Url::parse(&format!("{}/healthz", server.base))?;
        let auth = HeaderValue::from_str(&format!("Bearer {key}"))?;
        Ok(Self {
            server,
            client,
            url,
            health,
            auth,
        })
    }
}

/// The open loop: each request sent when it is due, whether or not the
/// ones before it were answered (at most [`MAX_IN_FLIGHT`] at once), its
/// latency counted from when it was due.
async fn send(
    target: &Target,
    bodies: &[bytes::Bytes],
    test: LoadTest,
    start: Instant,
    samples: &Arc<Mutex<Vec<Sample>>>,
) -> Result<(), AnyError> {
    let requests = u64::from(test.seconds) * u64::from(test.rate) / u64::from(test.batch);
    let period = Duration::from_secs_f64(f64::from(test.batch) / f64::from(test.rate));
    progress(format!(
        "load: {} entries/s as {:.0} requests/s of {} for {} s ({requests} requests)",
        test.rate,
        1.0 / period.as_secs_f64(),
        test.events(),
        test.seconds
    ));
    if let Ok(mut s) = samples.lock() {
        s.reserve(requests as usize);
    }
    let permits = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let mut tasks = tokio::task::JoinSet::new();
    let mut last_report = 0;
    for i in 0..requests {
        let due = start + period.mul_f64(i as f64);
        tokio::time::sleep_until(due.into()).await;
        let permit = permits.clone().acquire_owned().await?;
        let mut request = reqwest::Request::new(reqwest::Method::POST, target.url.clone());
        request.headers_mut().insert(AUTHORIZATION, target.auth.clone());
        request
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        *request.body_mut() = Some(bodies[i as usize % bodies.len()].clone().into());
        let (client, samples) = (target.client.clone(), samples.clone());
        tasks.spawn(async move {
            let answer = client.execute(request).await;
            let ok = match answer {
                Ok(resp) => resp.status() == StatusCode::CREATED && resp.bytes().await.is_ok(),
                Err(_) => false,
            };
            let latency = due.elapsed();
            drop(permit);
            if let Ok(mut s) = samples.lock() {
                s.push(Sample {
                    due_s: due.duration_since(start).as_secs_f64(),
                    latency,
                    ok,
                });
            }
        });
        // Reap finished tasks as we go, so the set stays small.
        while tasks.try_join_next().is_some() {}
        let minute = start.elapsed().as_secs() / 60;
        if minute > last_report {
            last_report = minute;
            progress(format!("    {minute} min: {} requests sent", i + 1));
        }
    }
    while tasks.join_next().await.is_some() {}
    Ok(())
}

/// The entries the log holds after the test.
async fn stored_entries(path: &std::path::Path) -> Result<i64, AnyError> {
    let store = auditlog_sqlite::SqliteStore::open(path)?;
    let org = auditlog_domain::store::AccountStore::org_by_slug(&store, crate::harness::ORG_SLUG)
        .await?
        .ok_or("the load test's organization is gone")?;
    Ok(auditlog_domain::store::EntryStore::log_size(&store, org.id).await?)
}

/// Distinct batches of entries. Live ingest sends no `timestamp`, so the
/// server stamps each entry as it arrives, as a live service's actions are
/// recorded. A backfill sends the generator's times, spread over the past
/// month and cycled, so every insert lands at a random place in each
/// time-ordered index.
fn bodies(batch: usize, backfill: bool) -> Result<Vec<bytes::Bytes>, AnyError> {
    let now = SystemClock.now();
    let entries = seed::ingestible_entries(
        BODIES * batch,
        now.minus_days(30),
        now.plus_millis(-60_000),
        RNG_SEED + 7,
    );
    let event_json = if backfill {
        crate::harness::event_json
    } else {
        live_event_json
    };
    entries
        .chunks(batch)
        .map(|chunk| {
            let events: Vec<serde_json::Value> = chunk.iter().map(event_json).collect();
            Ok(serde_json::to_vec(&json!({ "events": events }))?.into())
        })
        .collect()
}

fn live_event_json(e: &auditlog_domain::NewEntry) -> serde_json::Value {
    let mut event = crate::harness::event_json(e);
    if let Some(fields) = event.as_object_mut() {
        fields.remove("timestamp");
    }
    event
}

/// Samples the server's resident memory every five seconds and times a
/// `GET /healthz` ten times a second, until `done`.
async fn watch(
    pid: u32,
    client: reqwest::Client,
    health: reqwest::Url,
    start: Instant,
    rss: Arc<Mutex<Vec<(f64, u64)>>>,
    baseline: Arc<Mutex<Vec<Duration>>>,
    done: tokio_util::sync::CancellationToken,
) {
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut n = 0u64;
    loop {
        tokio::select! {
            () = done.cancelled() => return,
            _ = tick.tick() => {}
        }
        if n.is_multiple_of(50)
            && let Some(kib) = crate::harness::proc_status_kib(pid, "VmRSS")
            && let Ok(mut r) = rss.lock()
        {
            r.push((start.elapsed().as_secs_f64(), kib));
        }
        n += 1;
        let sent = Instant::now();
        if client
            .get(health.clone())
            .send()
            .await
            .is_ok_and(|r| r.status() == StatusCode::OK)
            && let Ok(mut b) = baseline.lock()
        {
            b.push(sent.elapsed());
        }
    }
}

struct Report {
    test: LoadTest,
    date: auditlog_domain::Timestamp,
    other_load: Option<f64>,
    elapsed: Duration,
    samples: Vec<Sample>,
    rss: Vec<(f64, u64)>,
    peak_kib: Option<u64>,
    baseline: Vec<Duration>,
    stored: i64,
}

impl Report {
    /// Minutes the test lasted, the last one perhaps partial.
    fn minutes(&self) -> usize {
        (self.test.seconds as usize).div_ceil(60)
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Resident memory averaged over one minute of the run.
fn minute_rss(rss: &[(f64, u64)], minute: usize) -> Option<f64> {
    let inside: Vec<u64> = rss
        .iter()
        .filter(|(t, _)| (*t / 60.0) as usize == minute)
        .map(|(_, kib)| *kib)
        .collect();
    (!inside.is_empty()).then(|| inside.iter().sum::<u64>() as f64 / inside.len() as f64 / 1024.0)
}

fn render(r: Report) -> String {
    let mut out = String::new();
    header(&mut out, &r);
    figures(&mut out, &r);
    per_minute(&mut out, &r);
    out
}

/// The report's title and the facts of the run.
fn header(out: &mut String, r: &Report) {
    let _ = writeln!(out, "### auditlog bench load\n");
    let _ = writeln!(out, "- Command: `{}`", command_line());
    let _ = writeln!(out, "- Date: {}", r.date.to_rfc3339());
    let _ = writeln!(
        out,
        "- Load: {} entries/s as {:.0} requests/s of {}, open loop, for {} s, against a separate \
         `auditlog serve` on SQLite (WAL, `synchronous=FULL`); {}; the client shares the machine",
        r.test.rate,
        f64::from(r.test.rate) / f64::from(r.test.batch),
        r.test.events(),
        r.test.seconds,
        if r.test.backfill {
            "a backfill: entries carry their own times, spread over the past month"
        } else {
            "entries are stamped by the server as they arrive"
        }
    );
    if let Some(other) = r.other_load {
        let _ = writeln!(out, "- Other load during the run: {other:.2} cores on average");
    }
    let _ = writeln!(out);
}

/// The whole run's figures: requests and errors, entries, latency against
/// the `/healthz` baseline, memory from minute 2 to the last.
fn figures(out: &mut String, r: &Report) {
    let requests = r.samples.len();
    let errors = r.samples.iter().filter(|s| !s.ok).count();
    let all = Latencies::of(r.samples.iter().map(|s| s.latency).collect());
    let base = Latencies::of(r.baseline.clone());
    let entries = (requests - errors) as f64 * f64::from(r.test.batch);
    let _ = writeln!(out, "| Figure | Result |");
    let _ = writeln!(out, "| --- | --- |");
    let _ = writeln!(
        out,
        "| Requests | {requests} sent, {} accepted, **{errors} errors** |",
        requests - errors
    );
    let _ = writeln!(
        out,
        "| Entries | {entries:.0} accepted in {:.0} s = {:.0} entries/s; {} in the log afterwards |",
        r.elapsed.as_secs_f64(),
        entries / r.elapsed.as_secs_f64(),
        r.stored
    );
    let _ = writeln!(
        out,
        "| Ingest latency from due time | p50 {:.2} ms, p99 {:.2} ms, max {:.1} ms |",
        ms(all.p50),
        ms(all.p99),
        ms(all.max)
    );
    let _ = writeln!(
        out,
        "| Baseline `GET /healthz` (10/s) | p50 {:.2} ms, p99 {:.2} ms; ingest p99 is {:.1}× it |",
        ms(base.p50),
        ms(base.p99),
        ms(all.p99) / ms(base.p99).max(0.001)
    );
    let minutes = r.minutes();
    let first = minute_rss(&r.rss, 1.min(minutes.saturating_sub(1)));
    let last = minute_rss(&r.rss, minutes.saturating_sub(1));
    if let (Some(first), Some(last)) = (first, last) {
        let _ = writeln!(
            out,
            "| Server RSS | {first:.1} MiB in minute 2, {last:.1} MiB in the last minute ({:+.1}%); peak {:.1} MiB |",
            (last / first - 1.0) * 100.0,
            r.peak_kib.unwrap_or(0) as f64 / 1024.0
        );
    }
    let _ = writeln!(out);
}

/// Requests, errors, latency and memory minute by minute.
fn per_minute(out: &mut String, r: &Report) {
    let _ = writeln!(out, "| Minute | Requests | Errors | p50 | p99 | max | RSS (average) |");
    let _ = writeln!(out, "| --- | --- | --- | --- | --- | --- | --- |");
    for m in 0..r.minutes() {
        let inside: Vec<&Sample> = r.samples.iter().filter(|s| (s.due_s / 60.0) as usize == m).collect();
        let lat = Latencies::of(inside.iter().map(|s| s.latency).collect());
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.2} ms | {:.2} ms | {:.1} ms | {} |",
            m + 1,
            inside.len(),
            inside.iter().filter(|s| !s.ok).count(),
            ms(lat.p50),
            ms(lat.p99),
            ms(lat.max),
            minute_rss(&r.rss, m).map_or("—".into(), |mib| format!("{mib:.1} MiB"))
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_leave_the_timestamp_to_the_server() {
        let bodies = bodies(3, false).unwrap();
        assert_eq!(bodies.len(), BODIES);
        for body in bodies.iter().take(50) {
            let value: serde_json::Value = serde_json::from_slice(body).unwrap();
            let events = value["events"].as_array().unwrap();
            assert_eq!(events.len(), 3);
            for event in events {
                assert!(event.get("timestamp").is_none(), "{event}");
                assert!(event.get("event").is_some() && event.get("actor").is_some());
            }
        }
    }

    #[test]
    fn a_backfill_sends_times_spread_over_the_past_month() {
        let bodies = bodies(10, true).unwrap();
        let times: Vec<auditlog_domain::Timestamp> = bodies
            .iter()
            .flat_map(|body| {
                let value: serde_json::Value = serde_json::from_slice(body).unwrap();
                value["events"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|e| auditlog_domain::Timestamp::parse(e["timestamp"].as_str().unwrap()).unwrap())
                    .collect::<Vec<_>>()
            })
            .collect();
        let (first, last) = (times.iter().min().unwrap(), times.iter().max().unwrap());
        assert!(last.millis() - first.millis() > 25 * 86_400_000, "{first:?}..{last:?}");
    }
}

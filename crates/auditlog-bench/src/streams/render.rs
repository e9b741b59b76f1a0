//! The streams section's report: commit-to-receipt latency of each paced
//! run beside the raw-TLS baseline, where the CPU went, and closed-loop
//! ingest with 0, 1 and 10 streams as ratios to the 0-stream runs, each
//! figure against the bar.

use std::fmt::Write as _;

use auditlog_domain::Timestamp;

use super::cpu::Split;
use super::tail::Received;
use super::{Delivery, IngestRun};
use crate::cli::StreamsArgs;
use crate::harness::command_line;
use crate::report::{Table, Verdicts, dash, run_facts, thousands};

/// The bar: p99 commit-to-receipt under this many milliseconds.
const P99_LIMIT_MS: f64 = 250.0;
/// The bar: a stream costs ingest less than this share, in percent.
const COST_LIMIT_PCT: f64 = 5.0;
/// A paced run sustains its rate if it ingests and delivers this share of it.
const SUSTAINED: f64 = 0.99;

pub(crate) struct Report {
    pub(crate) args: StreamsArgs,
    pub(crate) date: Timestamp,
    pub(crate) other_load: Option<f64>,
    pub(crate) rsyslog_version: String,
    /// The one-stream run's rate without a stream.
    pub(crate) control: Delivery,
    pub(crate) one: Delivery,
    pub(crate) baseline: Received,
    pub(crate) fanout: Delivery,
    pub(crate) ingest: Vec<IngestRun>,
}

pub(crate) fn render(r: &Report) -> Result<String, std::fmt::Error> {
    let mut out = String::new();
    let mut v = Verdicts::default();
    header(&mut out, r)?;
    writeln!(out, "#### Commit to receipt\n")?;
    latency_table(r, &mut v).render(&mut out)?;
    for d in [&r.one, &r.fanout] {
        writeln!(
            out,
            "- {} stream(s) at {} entries/s, p99/max in ms of the entries committed in each {WINDOW_SECONDS} s \
             of the load: {}",
            d.streams,
            thousands(f64::from(d.rate)),
            windows(d)
        )?;
    }
    writeln!(out)?;
    writeln!(out, "#### CPU during each run (cores busy on average)\n")?;
    cpu_table(r).render(&mut out)?;
    writeln!(out, "#### What streams cost ingest\n")?;
    ingest_runs_table(r).render(&mut out)?;
    ingest_table(r, &mut v).render(&mut out)?;
    summary(&mut out, &v)?;
    Ok(out)
}

/// Every miss, or that there was none.
fn summary(out: &mut String, v: &Verdicts) -> std::fmt::Result {
    writeln!(out, "#### Summary\n")?;
    if v.misses.is_empty() {
        return writeln!(out, "Every target was met.");
    }
    writeln!(out, "Missed targets:\n")?;
    for m in &v.misses {
        writeln!(out, "- {m}")?;
    }
    Ok(())
}

fn header(out: &mut String, r: &Report) -> std::fmt::Result {
    let a = &r.args;
    writeln!(out, "### auditlog bench streams\n")?;
    run_facts(out, &command_line(), r.date)?;
    writeln!(
        out,
        "- Receiver: {} with its GnuTLS driver on loopback, one daemon with {} TLS listeners (no client \
         certificate), each writing every message's raw text as a line of its own file (omfile, written at the \
         end of each batch)",
        r.rsyslog_version,
        a.fanout_streams + 1
    )?;
    writeln!(
        out,
        "- Service: in this process, defaults but for loopback allowed to streams; a fresh SQLite database per \
         run; streams created through the API, format rfc5424; paced ingest as requests of {PACED} events, \
         open loop",
        PACED = super::PACED_EVENTS
    )?;
    writeln!(
        out,
        "- Commit to receipt: when a tail read the line from rsyslog's file (every {} ms) minus the entry's \
         `received_at`, which the writer stamps as it begins the transaction that commits the entry, to the \
         millisecond; so it includes the commit, rsyslog's parsing and file write and up to one poll interval \
         (the baseline the last three)",
        a.tail_poll_ms
    )?;
    if let Some(other) = r.other_load {
        writeln!(
            out,
            "- Load besides this process and its children during the section: {other:.2} cores on average \
             (rsyslog included)"
        )?;
    }
    writeln!(out)
}

/// p50, p95, p99 and max in ms of latencies in µs (nearest rank).
fn percentiles(received: &[&Received]) -> [f64; 4] {
    let all: Vec<i64> = received
        .iter()
        .flat_map(|r| r.latencies_us.iter().map(|&(_, l)| l))
        .collect();
    percentiles_of(all)
}

fn percentiles_of(mut all: Vec<i64>) -> [f64; 4] {
    all.sort_unstable();
    let rank = |p: f64| {
        let i = (p * all.len() as f64).ceil() as usize;
        all.get(i.saturating_sub(1)).copied().unwrap_or_default() as f64 / 1000.0
    };
    [
        rank(0.50),
        rank(0.95),
        rank(0.99),
        all.last().copied().unwrap_or_default() as f64 / 1000.0,
    ]
}

/// Entries a second each stream delivered, on average: the distinct
/// `seq`s it received over the time from the load's start to the last.
fn delivered_per_stream(received: &[Received], started_us: i64) -> f64 {
    let rates: Vec<f64> = received
        .iter()
        .map(|r| r.distinct as f64 / ((r.last_new_us - started_us) as f64 / 1e6).max(f64::EPSILON))
        .collect();
    rates.iter().sum::<f64>() / rates.len().max(1) as f64
}

fn latency_table(r: &Report, v: &mut Verdicts) -> Table {
    let mut t = Table::new(&[
        "Run",
        "Ingested",
        "Delivered per stream",
        "p50",
        "p95",
        "p99",
        "max",
        "Lost",
        "Duplicated",
        "Target",
        "Verdict",
    ]);
    for d in [&r.one, &r.fanout] {
        t.row(delivery_row(r, d, v));
    }
    let b = &r.baseline;
    let [p50, p95, p99, max] = percentiles(&[b]);
    t.row(vec![
        format!(
            "Baseline: {} messages of {} bytes written straight to rsyslog over TLS, {}/s",
            thousands(r.args.baseline_messages as f64),
            b.bytes / b.lines.max(1),
            thousands(f64::from(r.args.stream_rate))
        ),
        dash(),
        dash(),
        fmt(p50),
        fmt(p95),
        fmt(p99),
        fmt(max),
        r.args.baseline_messages.saturating_sub(b.distinct).to_string(),
        b.lost_and_duplicated(0, r.args.baseline_messages as i64).1.to_string(),
        dash(),
        dash(),
    ]);
    t
}

/// Seconds of each window of commit time in [`windows`].
const WINDOW_SECONDS: i64 = 5;

/// p99 and max of the entries committed in each [`WINDOW_SECONDS`] of the
/// load, in ms: whether delivery kept pace throughout or fell behind.
fn windows(d: &Delivery) -> String {
    let start_ms = d.started_us / 1000;
    let mut by_window: Vec<Vec<i64>> = Vec::new();
    for &(at_ms, latency) in d.received.iter().flat_map(|r| r.latencies_us.iter()) {
        let w = usize::try_from((at_ms - start_ms).max(0) / (WINDOW_SECONDS * 1000)).unwrap_or(0);
        if by_window.len() <= w {
            by_window.resize(w + 1, Vec::new());
        }
        by_window[w].push(latency);
    }
    by_window
        .into_iter()
        .filter(|w| !w.is_empty())
        .map(|w| {
            let [_, _, p99, max] = percentiles_of(w);
            format!("{p99:.0}/{max:.0}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn fmt(ms: f64) -> String {
    format!("{ms:.1} ms")
}

fn delivery_row(r: &Report, d: &Delivery, v: &mut Verdicts) -> Vec<String> {
    let received: Vec<&Received> = d.received.iter().collect();
    let [p50, p95, p99, max] = percentiles(&received);
    let (lost, dup) = d
        .received
        .iter()
        .map(|x| x.lost_and_duplicated(d.base, d.through))
        .fold((0, 0), |(l, u), (a, b)| (l + a, u + b));
    let delivered = delivered_per_stream(&d.received, d.started_us);
    let what = format!(
        "{} stream{} at {} entries/s",
        d.streams,
        if d.streams == 1 { "" } else { "s" },
        thousands(f64::from(d.rate))
    );
    let verdict = judge(v, &what, d, delivered, p99, lost);
    vec![
        format!("{what} for {} s", r.args.stream_seconds),
        format!(
            "{} entries/s ({} failed requests; seq {}–{})",
            thousands(d.sent.per_sec()),
            d.sent.failed_requests,
            d.base + 1,
            d.through
        ),
        format!("{} entries/s", thousands(delivered)),
        fmt(p50),
        fmt(p95),
        fmt(p99),
        fmt(max),
        lost.to_string(),
        dup.to_string(),
        format!(
            "{} entries/s, p99 < {P99_LIMIT_MS:.0} ms, none lost",
            thousands(f64::from(d.rate))
        ),
        verdict,
    ]
}

/// PASS if the run ingested and delivered its rate, p99 was under the
/// limit and nothing was lost; otherwise each miss.
fn judge(v: &mut Verdicts, what: &str, d: &Delivery, delivered: f64, p99: f64, lost: usize) -> String {
    let want = f64::from(d.rate) * SUSTAINED;
    let mut misses: Vec<String> = [
        v.at_least(&format!("{what}: entries ingested per second"), d.sent.per_sec(), want),
        v.at_least(&format!("{what}: entries delivered per second"), delivered, want),
        v.below(&format!("{what}: p99 commit to receipt"), p99, P99_LIMIT_MS),
    ]
    .into_iter()
    .filter(|s| s != "PASS")
    .collect();
    if lost > 0 {
        v.misses.push(format!("{what}: {lost} entries lost"));
        misses.push(format!("MISS ({lost} lost)"));
    }
    if misses.is_empty() {
        "PASS".into()
    } else {
        format!("**{}**", misses.join(", "))
    }
}

/// A row of the CPU table: cores busy by whom, and CPU time per entry
/// ingested (the server's) and per message received (rsyslog's).
fn cpu_row(run: String, c: &Split, entries: usize, messages: usize) -> Vec<String> {
    let f = |x: Option<f64>| x.map_or("not measured".to_owned(), |x| format!("{x:.2}"));
    let secs = c.elapsed.as_secs_f64();
    let per = |cores: Option<f64>, n: usize| match cores {
        Some(cores) if n > 0 => format!("{:.1} µs", cores * secs * 1e6 / n as f64),
        _ => dash(),
    };
    vec![
        run,
        format!("{secs:.1}"),
        f(c.server),
        f(c.bench),
        f(c.rsyslog),
        f(c.other),
        per(c.server, entries),
        per(c.rsyslog, messages),
    ]
}

fn cpu_table(r: &Report) -> Table {
    let mut t = Table::new(&[
        "Run",
        "Seconds",
        "Server",
        "Load generator and tail",
        "rsyslog",
        "Other",
        "Server CPU per entry ingested",
        "rsyslog CPU per message",
    ]);
    for d in [&r.control, &r.one, &r.fanout] {
        let messages = d.received.iter().map(|x| x.lines).sum();
        let run = format!(
            "{} stream(s) at {} entries/s, until all arrived",
            d.streams,
            thousands(f64::from(d.rate))
        );
        t.row(cpu_row(run, &d.cpu, d.sent.entries, messages));
    }
    for run in &r.ingest {
        let label = format!("Closed-loop ingest, {} stream(s), round {}", run.streams, run.round);
        t.row(cpu_row(label, &run.cpu, run.sent.entries, run.delivered.iter().sum()));
    }
    t
}

/// The 0-stream run of `round`'s rate.
fn zero_of(r: &Report, round: usize) -> Option<f64> {
    r.ingest
        .iter()
        .find(|x| x.streams == 0 && x.round == round)
        .map(|x| x.sent.per_sec())
}

fn ingest_runs_table(r: &Report) -> Table {
    let mut t = Table::new(&[
        "Round",
        "Streams",
        "Ingest",
        "Failed requests",
        "Ratio to the round's 0-stream run",
        "Messages per stream per second at rsyslog during the load",
    ]);
    for run in &r.ingest {
        let rate = run.sent.per_sec();
        let secs = run.sent.elapsed.as_secs_f64().max(f64::EPSILON);
        let lines = run.delivered.iter().sum::<usize>() as f64 / run.delivered.len().max(1) as f64;
        t.row(vec![
            run.round.to_string(),
            run.streams.to_string(),
            format!("{} entries/s", thousands(rate)),
            run.sent.failed_requests.to_string(),
            zero_of(r, run.round).map_or(dash(), |z| format!("{:.3}", rate / z)),
            if run.streams == 0 {
                dash()
            } else {
                thousands(lines / secs)
            },
        ]);
    }
    t
}

fn mean_rate(r: &Report, streams: usize) -> f64 {
    let rates: Vec<f64> = r
        .ingest
        .iter()
        .filter(|x| x.streams == streams)
        .map(|x| x.sent.per_sec())
        .collect();
    rates.iter().sum::<f64>() / rates.len().max(1) as f64
}

fn ingest_table(r: &Report, v: &mut Verdicts) -> Table {
    let mut t = Table::new(&[
        "Streams",
        "Mean ingest",
        "Ratio to 0 streams",
        "Cost",
        "Target",
        "Verdict",
    ]);
    let zero = mean_rate(r, 0);
    t.row(vec![
        "0".into(),
        format!("{} entries/s", thousands(zero)),
        "1.000".into(),
        dash(),
        dash(),
        dash(),
    ]);
    for streams in [1, r.args.fanout_streams] {
        let rate = mean_rate(r, streams);
        let cost = (1.0 - rate / zero.max(f64::EPSILON)) * 100.0;
        let (target, verdict) = if streams == 1 {
            (
                format!("cost < {COST_LIMIT_PCT:.0}%"),
                v.below("ingest cost of one stream", cost, COST_LIMIT_PCT),
            )
        } else {
            (dash(), dash())
        };
        t.row(vec![
            streams.to_string(),
            format!("{} entries/s", thousands(rate)),
            format!("{:.3}", rate / zero.max(f64::EPSILON)),
            format!("{cost:.1}% ({:.1}% per stream)", cost / streams as f64),
            target,
            verdict,
        ]);
    }
    t
}

//! Operations (`auditlog bench ops`): how fast `auditlog check` proves a
//! log at rest and `auditlog backup` snapshots one, each the real command
//! run as an operator would, and what a backup costs ingest going on
//! beside it: the same paced ingest against a separate server, with and
//! without backups running back to back, in alternating windows.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use auditlog_domain::api_key::Scope;
use auditlog_domain::{Clock, NewEntry, SystemClock};
use reqwest::StatusCode;
use tokio::task::JoinSet;

use crate::AnyError;
use crate::cli::OpsArgs;
use crate::harness::{ChildServer, Latencies, Workdir, batch_bodies, fresh_store, http_client, progress, seed_log};
use crate::report::{Verdicts, fmt_ms};

/// Entries per ingest request while a backup runs: batches of ten, so
/// 5,000 entries a second is 500 requests, well within one server.
const PER_REQUEST: usize = 10;
const TARGET_CHECK_PER_SEC: f64 = 200_000.0;
const TARGET_BACKUP_MB_PER_SEC: f64 = 100.0;
/// The most a backup may slow ingest beside it: mean request latency.
const TARGET_SLOWDOWN: f64 = 1.20;

pub async fn run_cli(args: &OpsArgs) -> Result<(), AnyError> {
    let workdir = Workdir::new(args.dir.dir.as_deref())?;
    let path = workdir.fresh("bench-ops.db")?;
    progress(format!("ops: seeding a log of {} entries", args.entries));
    let (store, org) = fresh_store(&path).await?;
    seed_log(store.as_ref(), org.id, args.entries).await?;
    let key = crate::make_key(store.as_ref(), &org, "bench writer", vec![Scope::AuditWrite]).await?;
    drop(store);
    let url = format!("sqlite://{}", path.display());

    progress("ops: auditlog check");
    let check = timed(&["check", "--database", &url])?;
    let backup_to = workdir.fresh("bench-ops-backup.db")?;
    progress("ops: auditlog backup");
    let backup = timed(&["backup", "--database", &url, "--to", &backup_to.to_string_lossy()])?;
    let bytes = std::fs::metadata(&backup_to)?.len();
    std::fs::remove_file(&backup_to)?;

    progress(format!(
        "ops: {} entries/s of ingest, with and without backups",
        args.ingest_rate
    ));
    let beside = ingest_beside_backups(args, &url, &key, workdir.path()).await?;

    let mut v = Verdicts::default();
    let report = render(args, check, backup, bytes, &beside, &mut v);
    println!("{report}");
    Ok(())
}

/// Runs this binary with `args`; its wall time. Fails if it fails.
fn timed(args: &[&str]) -> Result<Duration, AnyError> {
    let started = Instant::now();
    let out = Command::new(std::env::current_exe()?).args(args).output()?;
    let took = started.elapsed();
    if !out.status.success() {
        return Err(format!(
            "`auditlog {}` failed: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(took)
}

/// Ingest latencies and rates in windows without and with backups.
struct Beside {
    without: Window,
    with: Window,
    backups: usize,
}

#[derive(Default)]
struct Window {
    latencies: Vec<Duration>,
    entries: usize,
    elapsed: Duration,
}

impl Window {
    fn mean(&self) -> Duration {
        let total: Duration = self.latencies.iter().sum();
        total / self.latencies.len().max(1) as u32
    }
}

/// Alternating windows of paced ingest, every other one with backups of
/// the database running back to back, so both see the same machine.
async fn ingest_beside_backups(args: &OpsArgs, url: &str, key: &str, dir: &Path) -> Result<Beside, AnyError> {
    let mut server = ChildServer::spawn(
        url,
        &["--ingest-rate-per-key".into(), "0".into()],
        &dir.join("ops-serve.log"),
    )?;
    let client = http_client(Some(Duration::from_secs(60)))?;
    server.wait_ready(&client).await?;
    let endpoint = format!("{}/v1/orgs/{}/audit/events", server.base, crate::harness::ORG_SLUG);
    let mut beside = Beside {
        without: Window::default(),
        with: Window::default(),
        backups: 0,
    };
    for round in 0..args.windows * 2 {
        let backing_up = round % 2 == 1;
        let window = Duration::from_secs(args.window_seconds);
        let backups = backing_up.then(|| backups_until(url.to_owned(), dir.to_path_buf(), window));
        let w = paced_ingest(&client, &endpoint, key, args.ingest_rate, window).await?;
        let into = if backing_up {
            &mut beside.with
        } else {
            &mut beside.without
        };
        into.latencies.extend(w.latencies);
        into.entries += w.entries;
        into.elapsed += w.elapsed;
        if let Some(b) = backups {
            let written = b.await??;
            beside.backups += written.len();
            remove_synced(&written, dir)?;
        }
    }
    server.stop()?;
    Ok(beside)
}

/// Backups of the database one after another for `window`; the files
/// written. They are removed only once the window is over: freeing a large
/// file is the file system's work (on a disk mounted with `discard`, a trim
/// the next journal commit waits for), not the backup's.
fn backups_until(
    url: String,
    dir: std::path::PathBuf,
    window: Duration,
) -> tokio::task::JoinHandle<Result<Vec<std::path::PathBuf>, AnyError>> {
    tokio::task::spawn_blocking(move || {
        let until = Instant::now() + window;
        let mut written = Vec::new();
        while Instant::now() < until {
            let to = dir.join(format!("ops-backup-{}.db", written.len()));
            timed(&["backup", "--database", &url, "--to", &to.to_string_lossy()])?;
            written.push(to);
        }
        Ok(written)
    })
}

/// Removes `files` and waits until the removal is on disk, so its cost
/// falls before the next window rather than into it.
fn remove_synced(files: &[std::path::PathBuf], dir: &Path) -> Result<(), AnyError> {
    for f in files {
        std::fs::remove_file(f)?;
    }
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}

/// Sends a request of [`PER_REQUEST`] entries every `PER_REQUEST / rate`
/// seconds for `window`, each on its own task, and waits for all.
async fn paced_ingest(
    client: &reqwest::Client,
    endpoint: &str,
    key: &str,
    rate: usize,
    window: Duration,
) -> Result<Window, AnyError> {
    let requests = (rate * window.as_secs() as usize / PER_REQUEST).max(1);
    let bodies = ingest_bodies(requests)?;
    let interval = Duration::from_secs_f64(PER_REQUEST as f64 / rate as f64);
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let started = Instant::now();
    let mut sent = JoinSet::new();
    for body in bodies {
        tick.tick().await;
        let request = client
            .post(endpoint)
            .bearer_auth(key)
            .header("content-type", "application/json")
            .body(body);
        sent.spawn(async move {
            let t = Instant::now();
            let resp = request.send().await?;
            let status = resp.status();
            resp.bytes().await?;
            if status != StatusCode::CREATED {
                return Err::<Duration, AnyError>(format!("ingest answered {status}").into());
            }
            Ok(t.elapsed())
        });
    }
    let mut latencies = Vec::with_capacity(requests);
    while let Some(done) = sent.join_next().await {
        latencies.push(done??);
    }
    Ok(Window {
        latencies,
        entries: requests * PER_REQUEST,
        elapsed: started.elapsed(),
    })
}

/// Bodies of `requests` batches, timestamped within the last minute.
fn ingest_bodies(requests: usize) -> Result<Vec<Vec<u8>>, AnyError> {
    let now = SystemClock.now();
    let entries: Vec<NewEntry> = crate::seed::ingestible_entries(
        requests * PER_REQUEST,
        now.plus_millis(-60_000),
        now,
        crate::harness::RNG_SEED + 7,
    );
    let mut bodies = Vec::with_capacity(requests);
    for chunk in entries.chunks(PER_REQUEST) {
        bodies.extend(batch_bodies(chunk)?);
    }
    Ok(bodies)
}

fn render(args: &OpsArgs, check: Duration, backup: Duration, bytes: u64, b: &Beside, v: &mut Verdicts) -> String {
    let check_rate = args.entries as f64 / check.as_secs_f64();
    let mb = bytes as f64 / 1e6;
    let backup_rate = mb / backup.as_secs_f64();
    let rate = |w: &Window| w.entries as f64 / w.elapsed.as_secs_f64();
    let slowdown = b.with.mean().as_secs_f64() / b.without.mean().as_secs_f64().max(f64::EPSILON);
    let (lw, lb) = (
        Latencies::of(b.without.latencies.clone()),
        Latencies::of(b.with.latencies.clone()),
    );
    let mut out = String::new();
    out += "## Operations: check, backup, and ingest beside a backup\n\n";
    out += &format!(
        "A log of {} entries ({mb:.0} MB). `auditlog check` and `auditlog backup` run as separate processes, \
         timed from start to exit.\n\n",
        args.entries
    );
    out += "| Figure | Result | Target | Verdict |\n|---|---|---|---|\n";
    out += &format!(
        "| `auditlog check` | {:.0} entries/s ({:.1} s) | ≥ {TARGET_CHECK_PER_SEC:.0} | {} |\n",
        check_rate,
        check.as_secs_f64(),
        v.at_least("check throughput", check_rate, TARGET_CHECK_PER_SEC)
    );
    out += &format!(
        "| `auditlog backup` | {backup_rate:.0} MB/s ({:.1} s) | ≥ {TARGET_BACKUP_MB_PER_SEC:.0} | {} |\n",
        backup.as_secs_f64(),
        v.at_least("backup throughput", backup_rate, TARGET_BACKUP_MB_PER_SEC)
    );
    out += &format!(
        "| Ingest at {} entries/s in batches of {PER_REQUEST}, mean latency with backups / without | {} / {} ({slowdown:.2}×) | ≤ {TARGET_SLOWDOWN:.2}× | {} |\n",
        args.ingest_rate,
        fmt_ms(b.with.mean()),
        fmt_ms(b.without.mean()),
        v.at_most("ingest slowdown beside backups", slowdown, TARGET_SLOWDOWN)
    );
    out += &format!(
        "\nIngest without backups: {:.0} entries/s sustained, p50 {} p99 {}; with {} backups back to back: \
         {:.0} entries/s, p50 {} p99 {} ({} windows of {} s each).\n",
        rate(&b.without),
        fmt_ms(lw.p50),
        fmt_ms(lw.p99),
        b.backups,
        rate(&b.with),
        fmt_ms(lb.p50),
        fmt_ms(lb.p99),
        args.windows,
        args.window_seconds
    );
    let mut summary = String::new();
    let _ = v.summary(&mut summary);
    out + "\n" + &summary
}

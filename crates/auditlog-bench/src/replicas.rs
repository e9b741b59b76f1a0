//! `auditlog bench replicas URL --replica-cores N`: does a second
//! replica add throughput when the replicas, not the database, are the
//! limit?
//!
//! In production each replica has a machine of its own; on one shared host
//! two replicas would only split the same cores between them. So each
//! replica here is a separate `auditlog serve` process confined to N cores
//! by a cgroup CPU quota ([`CpuQuota`]), a small machine of its own, while
//! PostgreSQL and the clients run unconfined on the rest. With one replica
//! the run is bound by that replica's share; a second replica of the same
//! size should then add nearly as much again, unless something the
//! replicas share (the organization's log head, the database) holds them
//! back. Every shape of the main PostgreSQL bench runs this way: batched
//! and single-event ingest, to one organization and to several, through
//! one replica and through two.

use std::fmt::Write as _;
use std::time::Duration;

use auditlog_domain::{Clock, Org, SystemClock};
use reqwest::StatusCode;
use tokio_util::sync::CancellationToken;

use crate::AnyError;
use crate::cli::ReplicasArgs;
use crate::cpu_quota::{CpuQuota, Throttling};
use crate::harness::{
    self, BATCH_CLIENTS, ChildServer, HttpLoad, LoadMeter, RNG_SEED, Route, Workdir, ms, per_sec, progress,
};
use crate::postgres::{
    SPREAD_ORGS, Server, TARGET_REPLICA_SPEEDUP, Waits, cores_of, prepared_database, sample_waits, settle,
    with_database_cpu,
};
use crate::report::{self, Table};
use crate::seed;

/// (organizations, replicas, route) of each run, in the order they run. The
/// target is judged on the spread load; routing by organization shows what
/// a load balancer that keeps each organization on one replica gives.
const SHAPES: [(usize, usize, Route); 5] = [
    (1, 1, Route::Spread),
    (1, 2, Route::Spread),
    (SPREAD_ORGS, 1, Route::Spread),
    (SPREAD_ORGS, 2, Route::Spread),
    (SPREAD_ORGS, 2, Route::ByOrganization),
];
/// Each pair of runs (one replica, then two) is made this many times, the
/// rounds interleaved, and judged on its median ratio: on a shared machine
/// one pair can be off by a fifth either way.
const ROUNDS: usize = 3;
/// The load offered here is this many times the main bench's concurrency.
/// A closed loop's throughput is its clients over its latency: at the main
/// bench's 4 batched and 64 single-event clients two replicas sat partly
/// idle (a third of their quota unused, rarely throttled), so the ratio
/// measured latency, not what a second replica can take.
const LOAD_FACTOR: usize = 4;
/// Share of its quota above which a replica counts as bound by it.
const BOUND: f64 = 0.85;
/// Share of quota periods in which a replica was stopped, having spent its
/// quota, above which it also counts as bound by it: one that waits on the
/// database between bursts can run out of quota in most periods and still
/// average well below it.
const THROTTLED_BOUND: f64 = 0.5;
/// Share of the machine's cores busy above which the machine, not the
/// replicas, is the limit.
const SATURATED: f64 = 0.9;
/// With one organization every append takes its log head in turn, so one
/// backend at a time writes its entries. When PostgreSQL was executing them
/// (backends on CPU) at least this share of the time, while a replica
/// waited for the head at least [`QUEUED`] of it, the organization's
/// serialized work in the database, not the replicas, was the limit: a
/// faster replica would only wait longer.
const HOLDER_BUSY: f64 = 0.8;
/// See [`HOLDER_BUSY`]: backends waiting for a lock, on average.
const QUEUED: f64 = 0.7;

struct Run {
    shape: Shape,
    entries: usize,
    load: HttpLoad,
    /// Cores each replica used on average.
    replica_cores: Vec<Option<f64>>,
    /// How much each replica was throttled by its quota during the load.
    throttling: Vec<Option<Throttling>>,
    database: Option<f64>,
    waits: Waits,
}

impl Run {
    fn rate(&self) -> f64 {
        per_sec(self.entries, self.load.elapsed)
    }

    /// Cores of the whole machine busy on average.
    fn machine(&self) -> Option<f64> {
        let secs = self.load.elapsed.as_secs_f64().max(f64::EPSILON);
        self.load.machine.map(|m| m.as_secs_f64() / secs)
    }
}

/// `auditlog bench replicas`: connects, runs every shape, drops the
/// databases made on the way and prints the report.
pub async fn run_cli(args: &ReplicasArgs) -> Result<(), AnyError> {
    let mut server = Server::connect(&args.server.url).await?;
    let workdir = Workdir::new(args.run.dir.dir.as_deref())?;
    let outcome = run(args, &mut server, &workdir).await;
    server.drop_databases().await;
    println!("{}", outcome?);
    Ok(())
}

async fn run(args: &ReplicasArgs, server: &mut Server, workdir: &Workdir) -> Result<String, AnyError> {
    let cores = args.replica_cores;
    let meter = LoadMeter::start();
    let now = SystemClock.now();
    // Each replica signs checkpoints with the same key, as every replica of
    // one installation must; made before any starts, so none races to.
    let signing_key = workdir.path().join("bench-replicas-signing-key");
    let key = auditlog_domain::checkpoint::SigningKey::generate("auditlog")?;
    std::fs::write(&signing_key, format!("{}\n", key.to_private_key_text()))?;
    let rows = seed::ingestible_entries(
        args.run.ingest.ingest_entries,
        now.minus_days(364),
        now.plus_millis(-60_000),
        RNG_SEED,
    );
    let mut runs = Vec::new();
    for (kind, clients) in [("batched", BATCH_CLIENTS), ("single-event", args.run.single.clients)] {
        for (round, (orgs, replicas, route)) in (0..ROUNDS).flat_map(|round| SHAPES.map(|shape| (round, shape))) {
            let (bodies, entries) = if kind == "batched" {
                (harness::batch_bodies(&rows)?, rows.len())
            } else {
                (
                    harness::single_bodies(args.run.single.single_events)?,
                    args.run.single.single_events,
                )
            };
            let shape = Shape {
                kind,
                orgs,
                replicas,
                route,
                cores,
                period: Duration::from_millis(args.replica_quota_period_ms),
                clients: clients * LOAD_FACTOR,
                round,
            };
            runs.push(shape.measure(server, workdir, &signing_key, bodies, entries).await?);
        }
    }
    Ok(render(args, cores, now, meter.others(), &runs))
}

#[derive(Clone, Copy)]
struct Shape {
    kind: &'static str,
    orgs: usize,
    replicas: usize,
    route: Route,
    cores: f64,
    /// The replicas' quota period.
    period: Duration,
    clients: usize,
    /// Which of the [`ROUNDS`] this run belongs to.
    round: usize,
}

impl Shape {
    /// One run: a fresh database, the replicas started under their quotas,
    /// the load through them, and what each part of the machine did.
    async fn measure(
        &self,
        server: &mut Server,
        workdir: &Workdir,
        signing_key: &std::path::Path,
        bodies: Vec<Vec<u8>>,
        entries: usize,
    ) -> Result<Run, AnyError> {
        settle(server).await;
        let (url, store, org) = prepared_database(server, "replicas").await?;
        let mut orgs: Vec<Org> = vec![org];
        for n in 2..=self.orgs {
            orgs.push(harness::bench_org_named(&store, &format!("bench-{n}")).await?);
        }
        let auth = harness::ingest_keys(&store, &orgs).await?;
        let client = harness::http_client(Some(Duration::from_secs(30)))?;
        let replicas = self.start_replicas(&url, workdir, signing_key, &client).await?;
        progress(format!(
            "    round {}/{ROUNDS}, {}: {} requests from {} clients to {} organization(s) through {} replica(s) of {} \
             cores{}",
            self.round + 1,
            self.kind,
            bodies.len(),
            self.clients,
            self.orgs,
            self.replicas,
            self.cores,
            routed_text(self.route)
        ));
        let bases: Vec<&str> = replicas.iter().map(|(c, _)| c.base.as_str()).collect();
        let requests = harness::spread_over_replicas(&bases, &orgs, &auth, bodies, self.route)?;
        let run = self.load(server, &url, &replicas, requests, entries).await?;
        for (mut child, quota) in replicas {
            child.stop()?;
            drop(quota);
        }
        harness::check_stored(&store, &orgs, entries).await?;
        // Each run's database goes at once: thirty of them would not all
        // fit on a small disk.
        drop(store);
        server.drop_databases().await;
        progress(format!(
            "    {:.0} entries/s, p99 {:.1} ms; replicas {}; PostgreSQL {}; backends: {}",
            run.rate(),
            ms(run.load.latency.p99),
            replica_cores_of(&run.replica_cores),
            cores_of(run.database),
            run.waits.describe()
        ));
        Ok(run)
    }

    /// Each replica an `auditlog serve` on the database at `url`, confined
    /// to its quota and ready.
    async fn start_replicas(
        &self,
        url: &str,
        workdir: &Workdir,
        signing_key: &std::path::Path,
        client: &reqwest::Client,
    ) -> Result<Vec<(ChildServer, CpuQuota)>, AnyError> {
        // Replicas' own limits well above the load, so only the quota bounds them.
        let flags = [
            "--signing-key".to_owned(),
            signing_key.display().to_string(),
            "--ingest-rate-per-key".to_owned(),
            "1000000000".to_owned(),
            "--ingest-rate-per-ip".to_owned(),
            "1000000000".to_owned(),
        ];
        let mut replicas = Vec::with_capacity(self.replicas);
        for i in 0..self.replicas {
            let log = workdir.path().join(format!("bench-replica-{i}.log"));
            let mut child = ChildServer::spawn(url, &flags, &log)?;
            let quota = CpuQuota::confine(
                child.child.id(),
                self.cores,
                self.period,
                &format!("auditlog-bench-replica-{i}"),
            )
            .map_err(|e| format!("cannot give the replica its CPU quota (this needs root): {e}"))?;
            child.wait_ready(client).await?;
            replicas.push((child, quota));
        }
        Ok(replicas)
    }

    /// Sends the requests through the replicas, measuring the CPU each
    /// replica and the database used, how often the quotas stopped the
    /// replicas, and what the database's backends waited for.
    async fn load(
        &self,
        server: &Server,
        url: &str,
        replicas: &[(ChildServer, CpuQuota)],
        requests: Vec<reqwest::Request>,
        entries: usize,
    ) -> Result<Run, AnyError> {
        let pids: Vec<String> = replicas.iter().map(|(c, _)| c.child.id().to_string()).collect();
        let before: Vec<Option<Duration>> = pids.iter().map(|p| harness::cpu_time(p)).collect();
        let throttled_before: Vec<Option<Throttling>> = replicas.iter().map(|(_, q)| q.throttling()).collect();
        let stop = CancellationToken::new();
        let sampler = tokio::spawn(sample_waits(url.to_owned(), stop.clone()));
        let measured = with_database_cpu(server, harness::send_all(requests, self.clients, StatusCode::CREATED)).await;
        let after: Vec<Option<Duration>> = pids.iter().map(|p| harness::cpu_time(p)).collect();
        let throttling = replicas
            .iter()
            .zip(&throttled_before)
            .map(|((_, q), b)| Some(q.throttling()?.since(b.as_ref()?)))
            .collect();
        stop.cancel();
        let waits = sampler.await??;
        let (load, database) = measured?;
        let secs = load.elapsed.as_secs_f64().max(f64::EPSILON);
        let replica_cores = before
            .iter()
            .zip(&after)
            .map(|(b, a)| Some(a.as_ref()?.saturating_sub(*b.as_ref()?).as_secs_f64() / secs))
            .collect();
        Ok(Run {
            shape: *self,
            entries,
            load,
            replica_cores,
            throttling,
            database,
            waits,
        })
    }
}

fn routed_text(route: Route) -> &'static str {
    match route {
        Route::Spread => "",
        Route::ByOrganization => ", routed by organization",
    }
}

/// Each replica's share of quota periods in which it was stopped, and the
/// time its threads stood stopped per second of load (summed over the
/// machine's cores, as the kernel counts it).
fn throttling_of(each: &[Option<Throttling>], elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64().max(f64::EPSILON);
    each.iter()
        .map(|t| match t {
            Some(t) => format!(
                "{:.0}% of periods, {:.0} ms/s",
                t.throttled_share() * 100.0,
                t.throttled.as_secs_f64() * 1000.0 / secs
            ),
            None => "unknown".to_owned(),
        })
        .collect::<Vec<_>>()
        .join(" + ")
}

fn ratio_of(one: &Run, two: &Run) -> f64 {
    two.rate() / one.rate().max(f64::EPSILON)
}

/// The (one replica, two replicas) runs of each round, for every shape a
/// second replica was measured in, in the order they ran.
fn pairs_by_shape(runs: &[Run]) -> Vec<Vec<(&Run, &Run)>> {
    let mut shapes: Vec<Vec<(&Run, &Run)>> = Vec::new();
    for two in runs.iter().filter(|t| t.shape.replicas == 2) {
        let Some(one) = runs.iter().find(|o| {
            o.shape.replicas == 1
                && o.shape.kind == two.shape.kind
                && o.shape.orgs == two.shape.orgs
                && o.shape.round == two.shape.round
        }) else {
            continue;
        };
        let same = |s: &&mut Vec<(&Run, &Run)>| {
            s.first().is_some_and(|(_, t)| {
                t.shape.kind == two.shape.kind && t.shape.orgs == two.shape.orgs && t.shape.route == two.shape.route
            })
        };
        match shapes.iter_mut().find(same) {
            Some(pairs) => pairs.push((one, two)),
            None => shapes.push(vec![(one, two)]),
        }
    }
    shapes
}

fn replica_cores_of(each: &[Option<f64>]) -> String {
    each.iter().map(|c| cores_of(*c)).collect::<Vec<_>>().join(" + ")
}

fn render(
    args: &ReplicasArgs,
    cores: f64,
    date: auditlog_domain::Timestamp,
    others: Option<f64>,
    runs: &[Run],
) -> String {
    let mut out = String::new();
    header(&mut out, args, cores, date, others);
    let _ = runs_table(runs).render(&mut out);
    let _ = writeln!(out);
    let _ = ratio_table(runs, cores).render(&mut out);
    out
}

/// The report's title and the facts of the run.
fn header(out: &mut String, args: &ReplicasArgs, cores: f64, date: auditlog_domain::Timestamp, others: Option<f64>) {
    let _ = writeln!(
        out,
        "### auditlog bench replicas URL --replica-cores {cores} --replica-quota-period-ms {}\n",
        args.replica_quota_period_ms
    );
    let _ = writeln!(out, "- Date: {}", date.to_rfc3339());
    let _ = writeln!(
        out,
        "- Machine: {} cores; each replica a separate `auditlog serve` confined to {cores} cores by a cgroup CPU \
         quota ({} ms period); PostgreSQL and the clients (in the bench process) unconfined on the same machine",
        report::cores(),
        args.replica_quota_period_ms
    );
    let _ = writeln!(
        out,
        "- Load: batched, {} entries in requests of {} events from {} clients; single-event, {} requests from {} \
         clients ({LOAD_FACTOR} times the main bench's concurrency, so that two replicas are kept busy); request i \
         goes to organization i mod orgs through replica (i div orgs) mod replicas, or, routed by organization, \
         through replica (i mod orgs) mod replicas; a fresh database for every run; every pair of runs made \
         {ROUNDS} times, rounds interleaved, and judged on its median ratio",
        args.run.ingest.ingest_entries,
        harness::BATCH_EVENTS,
        BATCH_CLIENTS * LOAD_FACTOR,
        args.run.single.single_events,
        args.run.single.clients * LOAD_FACTOR
    );
    if let Some(other) = others {
        let _ = writeln!(
            out,
            "- Busy outside the bench process during the run (PostgreSQL and the replicas included): {other:.2} \
             cores on average"
        );
    }
    let _ = writeln!(out);
}

/// Every run, in the order they ran.
fn runs_table(runs: &[Run]) -> Table {
    let mut t = Table::new(&[
        "Round",
        "Run",
        "Entries/s",
        "p50 / p99",
        "Replica cores (each)",
        "Throttled (each)",
        "PostgreSQL cores",
        "Machine busy",
        "Backends (average)",
    ]);
    for r in runs {
        t.row(vec![
            (r.shape.round + 1).to_string(),
            format!(
                "{}, {} org(s), {} replica(s){}",
                r.shape.kind,
                r.shape.orgs,
                r.shape.replicas,
                routed_text(r.shape.route)
            ),
            format!("{:.0}", r.rate()),
            format!("{:.2} ms / {:.2} ms", ms(r.load.latency.p50), ms(r.load.latency.p99)),
            replica_cores_of(&r.replica_cores),
            throttling_of(&r.throttling, r.load.elapsed),
            cores_of(r.database),
            cores_of(r.machine()),
            r.waits.describe(),
        ]);
    }
    t
}

/// Two replicas against one, for each shape a second replica ran in: the
/// median round's ratio, every round's, and the verdict.
fn ratio_table(runs: &[Run], cores: f64) -> Table {
    let mut ratios = Table::new(&[
        "Ingest",
        "1 replica",
        "2 replicas",
        "2 / 1 (median)",
        "Each round",
        "Target",
        "Verdict",
    ]);
    for pairs in pairs_by_shape(runs) {
        let each = pairs
            .iter()
            .map(|(one, two)| format!("{:.2}×", ratio_of(one, two)))
            .collect::<Vec<_>>()
            .join(", ");
        let mut by_ratio = pairs.clone();
        by_ratio.sort_by(|a, b| ratio_of(a.0, a.1).total_cmp(&ratio_of(b.0, b.1)));
        let Some(&(r, two)) = by_ratio.get(by_ratio.len() / 2) else {
            continue;
        };
        let ratio = ratio_of(r, two);
        ratios.row(vec![
            format!(
                "{}, {} org(s){}",
                r.shape.kind,
                r.shape.orgs,
                routed_text(two.shape.route)
            ),
            format!("{:.0} entries/s", r.rate()),
            format!("{:.0} entries/s", two.rate()),
            format!("{ratio:.2}×"),
            each,
            format!("≥ {TARGET_REPLICA_SPEEDUP}×"),
            verdict(r, two, cores),
        ]);
    }
    ratios
}

/// The verdict on a median pair: a miss counts only where one replica was
/// bound by its quota and neither the machine nor the database was the
/// limit with two.
fn verdict(one: &Run, two: &Run, cores: f64) -> String {
    let ratio = ratio_of(one, two);
    let bound = one
        .replica_cores
        .first()
        .copied()
        .flatten()
        .is_some_and(|c| c >= BOUND * cores)
        || one
            .throttling
            .first()
            .copied()
            .flatten()
            .is_some_and(|t| t.throttled_share() >= THROTTLED_BOUND);
    let saturated = two.machine().filter(|m| *m >= SATURATED * report::cores() as f64);
    let executing = two.waits.average(|k| k == "CPU");
    let queued = two.waits.average(|k| k.starts_with("Lock:"));
    let serialized = two.shape.orgs == 1 && executing >= HOLDER_BUSY && queued >= QUEUED;
    match (ratio >= TARGET_REPLICA_SPEEDUP, bound, saturated) {
        _ if two.shape.route == Route::ByOrganization => "— (the target is judged on the spread load)".to_owned(),
        (true, _, _) => "PASS".to_owned(),
        (false, false, _) => "not shown: one replica neither used its quota nor was throttled in most periods, so it \
                              was not the limit"
            .to_owned(),
        (false, true, Some(m)) => format!(
            "not shown: with two replicas the machine was the limit ({m:.2} of {} cores busy, PostgreSQL {})",
            report::cores(),
            cores_of(two.database)
        ),
        (false, true, None) if serialized => format!(
            "not shown: the database was the limit: one organization's appends take its log head in turn, and \
             PostgreSQL was executing them {executing:.1} of the time while a replica waited for the head \
             {queued:.1} of it"
        ),
        (false, true, None) => format!(
            "**MISS** ({:.1}% below)",
            (1.0 - ratio / TARGET_REPLICA_SPEEDUP) * 100.0
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(kind: &'static str, orgs: usize, replicas: usize, route: Route, round: usize, rate: usize) -> Run {
        Run {
            shape: Shape {
                kind,
                orgs,
                replicas,
                route,
                cores: 0.5,
                period: Duration::from_millis(10),
                clients: 4,
                round,
            },
            entries: rate,
            load: HttpLoad {
                requests: rate,
                clients: 4,
                elapsed: Duration::from_secs(1),
                cpu: None,
                machine: None,
                latency: Default::default(),
            },
            replica_cores: Vec::new(),
            throttling: Vec::new(),
            database: None,
            waits: Waits::default(),
        }
    }

    /// The row of the ratio table that starts with `prefix`, in the report
    /// of `runs` with the default options.
    fn ratio_row(runs: &[Run], prefix: &str) -> String {
        let args = crate::cli::tests::replica_defaults();
        let report = render(&args, 0.5, auditlog_domain::Timestamp(0), None, runs);
        report
            .lines()
            .find(|l| l.starts_with(prefix))
            .expect("a ratio row")
            .to_owned()
    }

    /// Each two-replica run is paired with the one-replica run of its own
    /// round and shape, routed runs apart from spread ones, and the rounds
    /// of a shape kept together in order.
    #[test]
    fn pairs_each_round_with_its_own_one_replica_run() {
        let mut runs = Vec::new();
        for round in 0..3 {
            runs.push(run("batched", 8, 1, Route::Spread, round, 100 + round));
            runs.push(run("batched", 8, 2, Route::Spread, round, 200 + round));
            runs.push(run("batched", 8, 2, Route::ByOrganization, round, 300 + round));
        }
        runs.push(run("single-event", 8, 1, Route::Spread, 0, 50));
        runs.push(run("single-event", 8, 2, Route::Spread, 0, 60));
        let pairs = pairs_by_shape(&runs);
        let rates =
            |p: &Vec<(&Run, &Run)>| -> Vec<(f64, f64)> { p.iter().map(|(o, t)| (o.rate(), t.rate())).collect() };
        assert_eq!(pairs.len(), 3);
        assert_eq!(rates(&pairs[0]), [(100.0, 200.0), (101.0, 201.0), (102.0, 202.0)]);
        assert_eq!(rates(&pairs[1]), [(100.0, 300.0), (101.0, 301.0), (102.0, 302.0)]);
        assert_eq!(rates(&pairs[2]), [(50.0, 60.0)]);
    }

    /// The verdict is taken from the round with the median ratio, not
    /// from the best one.
    #[test]
    fn judges_on_the_median_round() {
        let runs = vec![
            run("single-event", 1, 1, Route::Spread, 0, 100),
            run("single-event", 1, 2, Route::Spread, 0, 200),
            run("single-event", 1, 1, Route::Spread, 1, 100),
            run("single-event", 1, 2, Route::Spread, 1, 140),
            run("single-event", 1, 1, Route::Spread, 2, 100),
            run("single-event", 1, 2, Route::Spread, 2, 120),
        ];
        let row = ratio_row(&runs, "| single-event, 1 org(s) |");
        assert!(row.contains("| 1.40× | 2.00×, 1.40×, 1.20× |"), "{row}");
        assert!(row.contains("not shown"), "{row}");
    }

    /// A miss with one organization is put down to the database only when
    /// PostgreSQL was executing its appends most of the time while a
    /// replica queued for the head; with eight organizations, or a holder
    /// mostly idle (its replica working under the lock), it stays a miss.
    #[test]
    fn puts_a_miss_down_to_the_database_only_when_its_serialized_work_was_the_limit() {
        let verdict = |orgs: usize, waits: &[(&str, usize)]| {
            let mut one = run("batched", orgs, 1, Route::Spread, 0, 100);
            one.replica_cores = vec![Some(0.49)];
            let mut two = run("batched", orgs, 2, Route::Spread, 0, 130);
            two.waits = Waits::of(10, waits);
            ratio_row(&[one, two], &format!("| batched, {orgs} org(s) |"))
        };
        let executing = [("CPU", 9), ("Lock:transactionid", 8), ("idle in transaction", 5)];
        let waiting_on_replicas = [("CPU", 6), ("Lock:transactionid", 8), ("idle in transaction", 9)];
        assert!(
            verdict(1, &executing).contains("not shown: the database was the limit"),
            "{}",
            verdict(1, &executing)
        );
        assert!(verdict(1, &waiting_on_replicas).contains("**MISS**"));
        assert!(verdict(8, &executing).contains("**MISS**"));
    }
}

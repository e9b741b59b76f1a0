//! `auditlog bench streams`: SIEM streams to a real rsyslog over TLS on
//! loopback. Not part of `auditlog bench all`, as it needs rsyslog and
//! its TLS driver installed (it says how when they are missing).
//!
//! 1. **One stream** carries an organization's entries while ingest is
//!    paced to 20,000 entries/s (requests of 100 events, open loop); each
//!    entry's commit-to-receipt latency is the time the tail read its line
//!    from rsyslog's file minus its `received_at` (stamped by the writer
//!    as it begins the transaction that commits the entry); every `seq`
//!    must arrive, once.
//!    The same rate without a stream first, for the server's CPU time
//!    per entry with and without one.
//! 2. **The baseline**: messages of the same size written straight to the
//!    same rsyslog with rustls at the same pace, read by the same tail.
//! 3. **Ten streams** on one organization, each to its own rsyslog
//!    listener, at 1,000 entries/s, so each carries 1,000 entries/s.
//! 4. **What streams cost ingest**: closed-loop ingest (four clients,
//!    1,000-event requests) with 0, 1 and 10 streams, interleaved rounds,
//!    each on a fresh database; the ratios are to the 0-stream runs.
//!
//! The server runs in this process with its defaults but for the streams'
//! policy (loopback allowed); each run has a fresh SQLite database and an
//! organization of its own, whose slug tells its lines apart in rsyslog's
//! files. Streams are created through the API with rsyslog's CA.

mod baseline;
mod cpu;
mod drive;
mod render;
mod tail;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use auditlog_domain::api_key::Scope;
use auditlog_domain::{Clock, Org, Store, SystemClock};
use auditlog_server::ServerConfig;
use auditlog_server::workers::streams::{StreamPolicy, StreamsConfig};
use auditlog_sqlite::SqliteStore;
use reqwest::StatusCode;
use reqwest::header::HeaderValue;
use serde_json::json;

use self::cpu::{Snapshot, Split};
use self::drive::{Generator, Sent, Target};
use self::tail::{Received, Tail};
use crate::AnyError;
use crate::cli::StreamsArgs;
use crate::harness::{
    BATCH_CLIENTS, BATCH_EVENTS, InProcessServer, LoadMeter, Workdir, bench_org_named, http_client, progress,
    remove_database, settle_disk, unexpected,
};
use crate::make_key;
use crate::rsyslog::{self, Rsyslog};

/// Events per request in the paced runs.
const PACED_EVENTS: usize = 100;
/// How long streams may take to start delivering once created (the
/// supervisor claims new streams every ten seconds by default).
const START_WAIT: Duration = Duration::from_secs(45);
/// How long deliveries may take to arrive after the load ends.
const DRAIN_WAIT: Duration = Duration::from_secs(120);

pub async fn run_cli(args: &StreamsArgs) -> Result<(), AnyError> {
    let exe = rsyslog::find().map_err(|e| format!("auditlog bench streams needs rsyslog: {e}"))?;
    auditlog_server::init_tls();
    let meter = LoadMeter::start();
    let date = SystemClock.now();
    progress(format!(
        "streams: starting rsyslog with {} TLS listeners",
        args.fanout_streams + 1
    ));
    let bench = Bench {
        workdir: Workdir::new(args.dir.dir.as_deref())?,
        rsyslog: Rsyslog::start(&exe, args.fanout_streams + 1)?,
        generator: Generator::new()?,
        args: args.clone(),
    };
    let control = bench.delivery("streams-none", 0, args.stream_rate).await?;
    let one = bench.delivery("streams-one", 1, args.stream_rate).await?;
    let baseline = bench.baseline(&one).await?;
    let fanout = bench
        .delivery("streams-fanout", args.fanout_streams, args.fanout_rate)
        .await?;
    let ingest = bench.ingest_runs().await?;
    let report = render::Report {
        args: args.clone(),
        date,
        other_load: meter.others(),
        rsyslog_version: rsyslog_version(&exe),
        control,
        one,
        baseline,
        fanout,
        ingest,
    };
    println!("{}", render::render(&report)?);
    Ok(())
}

/// `rsyslogd 8.2302.0`, from `rsyslogd -v`.
fn rsyslog_version(exe: &std::path::Path) -> String {
    std::process::Command::new(exe)
        .arg("-v")
        .output()
        .ok()
        .and_then(|o| {
            let text = String::from_utf8_lossy(&o.stdout).into_owned();
            let first = text.lines().next()?.split(" (").next()?;
            Some(first.split_whitespace().collect::<Vec<_>>().join(" "))
        })
        .unwrap_or_else(|| "rsyslogd".into())
}

/// What every run shares.
struct Bench {
    workdir: Workdir,
    rsyslog: Rsyslog,
    generator: Generator,
    args: StreamsArgs,
}

/// One paced run's deliveries.
pub(crate) struct Delivery {
    pub(crate) streams: usize,
    pub(crate) rate: u32,
    pub(crate) sent: Sent,
    /// What each stream's listener received.
    pub(crate) received: Vec<Received>,
    /// `seq`s in (base, through] were ingested during the run.
    pub(crate) base: i64,
    pub(crate) through: i64,
    pub(crate) started_us: i64,
    /// From the start of the load until everything arrived (or the wait
    /// for it gave up).
    pub(crate) cpu: Split,
}

/// One closed-loop ingest run.
pub(crate) struct IngestRun {
    pub(crate) streams: usize,
    pub(crate) round: usize,
    pub(crate) sent: Sent,
    pub(crate) cpu: Split,
    /// Lines each stream's listener received during the load.
    pub(crate) delivered: Vec<usize>,
}

impl Bench {
    fn poll(&self) -> Duration {
        Duration::from_millis(self.args.tail_poll_ms)
    }

    fn pid(&self) -> u32 {
        self.rsyslog.pid()
    }

    /// `streams` streams (perhaps none) on a fresh organization `slug`,
    /// paced ingest at `rate` for the run's seconds, then every entry
    /// awaited.
    async fn delivery(&self, slug: &str, streams: usize, rate: u32) -> Result<Delivery, AnyError> {
        settle_disk();
        progress(format!(
            "streams: {streams} stream(s), {rate} entries/s for {} s",
            self.args.stream_seconds
        ));
        let service = Service::start(&self.workdir, slug).await?;
        let tail = Tail::start(&self.rsyslog.outputs[..streams], slug, self.poll())?;
        if streams > 0 {
            self.open(&service, streams, &tail).await?;
        }
        let base = service.head().await?;
        tail.count_from(base);
        let bodies = drive::bodies(PACED_EVENTS, 100)?;
        let (before, started_us) = (Snapshot::take(self.pid()), tail::now_us());
        let load = drive::paced(service.target(), bodies, PACED_EVENTS, rate, self.args.stream_seconds);
        let sent = self.generator.run(load).await?;
        let through = service.head().await?;
        let want = usize::try_from(through - base).unwrap_or(0);
        if !tail.wait(DRAIN_WAIT, |r| r.distinct >= want).await {
            progress(format!("    not every entry arrived within {DRAIN_WAIT:?}"));
        }
        let cpu = before.until(&Snapshot::take(self.pid()));
        let received = tail.finish()?;
        service.stop(self.keep()).await?;
        progress(format!("    CPU: {}", cpu.describe()));
        Ok(Delivery {
            streams,
            rate,
            sent,
            received,
            base,
            through,
            started_us,
            cpu,
        })
    }

    /// Creates `streams` streams and waits until each has delivered.
    async fn open(&self, service: &Service, streams: usize, tail: &Tail) -> Result<(), AnyError> {
        let ports = &self.rsyslog.ports[..streams];
        service.create_streams(ports, &self.rsyslog.ca_pem).await?;
        // An entry for every stream to carry, whatever the head was when
        // each was created.
        service.ingest_one().await?;
        if !tail.wait(START_WAIT, |r| r.lines > 0).await {
            return Err(format!(
                "the streams delivered nothing within {START_WAIT:?}; rsyslog's log:\n{}",
                self.rsyslog.log()
            )
            .into());
        }
        Ok(())
    }

    /// The baseline, paced as the one-stream run and sized as its lines.
    async fn baseline(&self, one: &Delivery) -> Result<Received, AnyError> {
        settle_disk();
        let r = one.received.first().ok_or("the one-stream run received nothing")?;
        let plan = baseline::Plan {
            messages: self.args.baseline_messages,
            per_write: PACED_EVENTS,
            rate: self.args.stream_rate,
            size: r.bytes / r.lines.max(1),
        };
        progress(format!(
            "streams: baseline, {} messages of {} bytes straight to rsyslog at {}/s",
            plan.messages, plan.size, plan.rate
        ));
        let last = self.args.fanout_streams;
        let (port, output) = (self.rsyslog.ports[last], self.rsyslog.outputs[last].clone());
        baseline::run(port, output, &self.rsyslog.ca_pem, plan, self.poll()).await
    }

    /// Closed-loop ingest with 0, 1 and the fan-out's streams, in rounds.
    async fn ingest_runs(&self) -> Result<Vec<IngestRun>, AnyError> {
        let bodies = drive::bodies(BATCH_EVENTS, 20)?;
        let mut runs = Vec::new();
        for round in 1..=self.args.ingest_rounds {
            for streams in [0, 1, self.args.fanout_streams] {
                runs.push(self.ingest_run(streams, round, bodies.clone()).await?);
            }
        }
        Ok(runs)
    }

    async fn ingest_run(
        &self,
        streams: usize,
        round: usize,
        bodies: Arc<Vec<bytes::Bytes>>,
    ) -> Result<IngestRun, AnyError> {
        settle_disk();
        let slug = format!("ingest-{streams}-{round}");
        let service = Service::start(&self.workdir, &slug).await?;
        let outputs = &self.rsyslog.outputs[..streams];
        if streams > 0 {
            let tail = Tail::start(outputs, &slug, self.poll())?;
            self.open(&service, streams, &tail).await?;
            tail.finish()?;
        }
        let (from, before) = (lengths(outputs), Snapshot::take(self.pid()));
        let load = drive::closed(
            service.target(),
            bodies,
            BATCH_EVENTS,
            BATCH_CLIENTS,
            self.args.ingest_seconds,
        );
        let sent = self.generator.run(load).await?;
        let (to, after) = (lengths(outputs), Snapshot::take(self.pid()));
        service.stop(self.keep()).await?;
        let cpu = before.until(&after);
        let delivered = count_lines(outputs, &from, &to)?;
        progress(format!(
            "streams: ingest with {streams} stream(s), round {round}: {:.0} entries/s; CPU: {}",
            sent.per_sec(),
            cpu.describe()
        ));
        Ok(IngestRun {
            streams,
            round,
            sent,
            cpu,
            delivered,
        })
    }

    /// Keep the databases where the caller named the directory.
    fn keep(&self) -> bool {
        self.args.dir.dir.is_some()
    }
}

/// Each file's length now.
fn lengths(files: &[PathBuf]) -> Vec<u64> {
    files
        .iter()
        .map(|f| std::fs::metadata(f).map_or(0, |m| m.len()))
        .collect()
}

/// Lines written to each file between the lengths `from` and `to`.
fn count_lines(files: &[PathBuf], from: &[u64], to: &[u64]) -> Result<Vec<usize>, AnyError> {
    use std::io::{Read, Seek, SeekFrom};
    let mut counts = Vec::with_capacity(files.len());
    for ((path, &from), &to) in files.iter().zip(from).zip(to) {
        let mut file = std::fs::File::open(path)?;
        file.seek(SeekFrom::Start(from))?;
        let mut bytes = Vec::new();
        file.take(to.saturating_sub(from)).read_to_end(&mut bytes)?;
        counts.push(bytes.iter().filter(|&&b| b == b'\n').count());
    }
    Ok(counts)
}

/// The service on a fresh database with one organization, a writing key
/// and an admin key.
struct Service {
    store: Arc<dyn Store>,
    org: Org,
    server: InProcessServer,
    path: PathBuf,
    write: HeaderValue,
    admin: String,
    control: reqwest::Client,
}

impl Service {
    async fn start(workdir: &Workdir, slug: &str) -> Result<Self, AnyError> {
        let path = workdir.fresh(&format!("bench-{slug}.db"))?;
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&path)?);
        let org = bench_org_named(store.as_ref(), slug).await?;
        let write = make_key(store.as_ref(), &org, "bench ingest", vec![Scope::AuditWrite]).await?;
        let admin = make_key(store.as_ref(), &org, "bench streams", vec![Scope::Admin]).await?;
        let config = ServerConfig {
            streams: StreamsConfig {
                policy: StreamPolicy {
                    allowed_subnets: vec!["127.0.0.0/8".parse()?],
                    allow_plaintext: false,
                },
                ..StreamsConfig::default()
            },
            ..ServerConfig::default()
        };
        let server = InProcessServer::start_with(config, store.clone()).await?;
        Ok(Self {
            store,
            org,
            server,
            path,
            write: HeaderValue::from_str(&format!("Bearer {write}"))?,
            admin,
            control: http_client(Some(Duration::from_secs(30)))?,
        })
    }

    fn target(&self) -> Target {
        let url = format!("{}/v1/orgs/{}/audit/events", self.server.base, self.org.slug);
        Target {
            url: reqwest::Url::parse(&url).expect("a valid URL"),
            auth: self.write.clone(),
        }
    }

    /// One stream per port, created through the API with rsyslog's CA.
    async fn create_streams(&self, ports: &[u16], ca_pem: &str) -> Result<(), AnyError> {
        let url = format!("{}/v1/orgs/{}/streams", self.server.base, self.org.slug);
        for (i, port) in ports.iter().enumerate() {
            let body = json!({
                "url": format!("syslog+tls://127.0.0.1:{port}"),
                "format": "rfc5424",
                "description": format!("bench receiver {i}"),
                "tls": {"ca_pem": ca_pem},
            });
            let resp = self
                .control
                .post(&url)
                .bearer_auth(&self.admin)
                .json(&body)
                .send()
                .await?;
            let status = resp.status();
            if status != StatusCode::CREATED {
                return Err(unexpected("creating a stream", status, &resp.bytes().await?));
            }
        }
        Ok(())
    }

    /// A request of one event.
    async fn ingest_one(&self) -> Result<(), AnyError> {
        let event = json!({"event": "guardrail.updated", "actor": "bench@acme.com",
                           "resource": {"type": "guardrail", "id": "g_start"},
                           "details": {"name": "PII", "changes": {"threshold": {"old": 0.5, "new": 0.6}}}});
        let t = self.target();
        let resp = self
            .control
            .post(t.url)
            .header(reqwest::header::AUTHORIZATION, t.auth)
            .json(&event)
            .send()
            .await?;
        let status = resp.status();
        if status != StatusCode::CREATED {
            return Err(unexpected("ingest", status, &resp.bytes().await?));
        }
        Ok(())
    }

    /// The organization's highest `seq`.
    async fn head(&self) -> Result<i64, AnyError> {
        Ok(self.store.log_size(self.org.id).await?)
    }

    /// Stops the server; removes the database unless `keep`.
    async fn stop(self, keep: bool) -> Result<(), AnyError> {
        self.server.stop().await?;
        drop(self.store);
        if !keep {
            remove_database(&self.path)?;
        }
        Ok(())
    }
}

//! The command line, as DESIGN.md's contract states it. Every command takes
//! `--database` / `AUDITLOG_DATABASE_URL`; `serve` also takes a
//! configuration file, whose keys mirror its flags.

use std::net::SocketAddr;
use std::path::PathBuf;

use auditlog_domain::api_key::Scope;
use auditlog_domain::export_format::ExportFormat;
use auditlog_domain::{Plan, Role};
use clap::{Args, Parser, Subcommand};
use serde::Serialize;

#[derive(Debug, Parser)]
#[command(
    name = "auditlog",
    version,
    about = "A self-hosted, tamper-evident audit log service"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP service.
    Serve(ServeArgs),
    /// Serve a seeded organization with a year of entries; print the URL and keys.
    Demo(DemoArgs),
    /// Apply pending database migrations and exit.
    Migrate(DatabaseArgs),
    /// Copy a whole installation from one store to another (SQLite to
    /// PostgreSQL) and verify the copy.
    MigrateStore(MigrateStoreArgs),
    /// Manage organizations.
    #[command(subcommand)]
    Org(OrgCommand),
    /// Manage API keys.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Manage members.
    #[command(subcommand)]
    Member(MemberCommand),
    /// Measure ingest, query and export throughput on this machine.
    Bench(BenchArgs),
    /// Write an organization's filtered log as CSV or JSON Lines.
    Export(ExportArgs),
    /// Check an export and checkpoints offline against the signing key.
    Verify(crate::verify::VerifyArgs),
    /// The configuration file of `serve`.
    #[command(subcommand)]
    Config(ConfigCommand),
}

#[derive(Debug, Clone, Args)]
pub struct SigningKeyArgs {
    /// The checkpoint signing key file; created on first start if missing.
    /// Default: the SQLite file's path with `.signing-key` added.
    #[arg(long, env = "AUDITLOG_SIGNING_KEY")]
    pub signing_key: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// Where entries are kept: sqlite://PATH (or a plain path), or
    /// postgres://USER:PASSWORD@HOST:PORT/DATABASE.
    #[arg(long, env = "AUDITLOG_DATABASE_URL", default_value = "sqlite://auditlog.db")]
    pub database: String,
}

// `serve` takes every setting as a flag, an environment variable or a key
// of its `--config` file. Each setting here is `None` unless a flag or its
// variable gave it (clap reads both, the flag first), so `settings::load`
// can put them above the file; the defaults live in `Settings`, once.
// The groups and their serde names are the file's tables.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// A TOML file of settings; `auditlog config default` prints one with
    /// every key. A flag or environment variable wins over the file.
    #[arg(long, env = "AUDITLOG_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub settings: SettingsArgs,
}

#[derive(Debug, Clone, Default, Args, Serialize)]
pub struct SettingsArgs {
    /// Address and port to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "AUDITLOG_LISTEN", value_name = "ADDR")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    /// Where entries are kept: sqlite://PATH (or a plain path), or
    /// postgres://USER:PASSWORD@HOST:PORT/DATABASE [default: sqlite://auditlog.db].
    #[arg(long, env = "AUDITLOG_DATABASE_URL", value_name = "URL")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    /// The checkpoint signing key file; created on first start if missing.
    /// Default: the SQLite file's path with `.signing-key` added.
    #[arg(long, env = "AUDITLOG_SIGNING_KEY", value_name = "FILE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signing_key: Option<PathBuf>,
    /// A catalog file of extra events (same format as the built-in catalog.toml).
    #[arg(long, env = "AUDITLOG_CATALOG", value_name = "FILE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub catalog: Option<PathBuf>,
    /// A proxy (CIDR) whose X-Forwarded-For is believed; repeat for several.
    #[arg(
        long = "trusted-proxy",
        env = "AUDITLOG_TRUSTED_PROXIES",
        value_delimiter = ',',
        value_name = "CIDR"
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trusted_proxies: Option<Vec<ipnet::IpNet>>,
    /// Mark the session cookie Secure (when users reach the service over HTTPS).
    #[arg(long, env = "AUDITLOG_SECURE_COOKIES", value_name = "BOOL",
          num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secure_cookies: Option<bool>,
    /// Connections open at once; more wait until one closes [default: 2048].
    #[arg(long, env = "AUDITLOG_MAX_CONNECTIONS", value_name = "N")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<usize>,
    /// Seconds a request may take to start its answer before it is ended
    /// with 503 (an export's body streams on past it) [default: 30].
    #[arg(long, env = "AUDITLOG_REQUEST_TIMEOUT", value_name = "SECONDS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_timeout: Option<u64>,
    /// Seconds a client may take to send a request's headers, or to start
    /// its next request on an open connection, before it is disconnected
    /// [default: 10].
    #[arg(long, env = "AUDITLOG_HEADER_TIMEOUT", value_name = "SECONDS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub header_timeout: Option<u64>,
    #[command(flatten)]
    pub retention: RetentionArgs,
    #[command(flatten)]
    pub rate_limits: RateLimitArgs,
    #[command(flatten)]
    pub bodies: BodyArgs,
    #[command(flatten)]
    pub webhooks: WebhookArgs,
}

// The `[retention]` table.
#[derive(Debug, Clone, Default, Args, Serialize)]
pub struct RetentionArgs {
    /// Seconds between retention passes (one also runs at start) [default: 900].
    #[arg(
        id = "retention_interval",
        long = "retention-interval",
        env = "AUDITLOG_RETENTION_INTERVAL",
        value_name = "SECONDS"
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval: Option<u64>,
}

// The `[rate_limits]` table.
#[derive(Debug, Clone, Default, Args, Serialize)]
pub struct RateLimitArgs {
    /// Ingest requests per second allowed per API key (twice as many in a
    /// burst); 0 for no limit [default: 10000].
    #[arg(
        id = "ingest_rate_per_key",
        long = "ingest-rate-per-key",
        env = "AUDITLOG_INGEST_RATE_PER_KEY",
        value_name = "PER_SECOND"
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ingest_per_key: Option<f64>,
    /// Ingest requests per second allowed per client address; 0 for no
    /// limit [default: 20000].
    #[arg(
        id = "ingest_rate_per_ip",
        long = "ingest-rate-per-ip",
        env = "AUDITLOG_INGEST_RATE_PER_IP",
        value_name = "PER_SECOND"
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ingest_per_ip: Option<f64>,
    /// Sign-in attempts per second allowed per client address (a burst of
    /// 20); 0 for no limit [default: 5].
    #[arg(
        id = "login_rate_per_ip",
        long = "login-rate-per-ip",
        env = "AUDITLOG_LOGIN_RATE_PER_IP",
        value_name = "PER_SECOND"
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub login_per_ip: Option<f64>,
}

// The `[bodies]` table.
#[derive(Debug, Clone, Default, Args, Serialize)]
pub struct BodyArgs {
    /// Megabytes (MiB) of request bodies held in memory at once across all
    /// requests; past it, requests wait briefly, then get 503 [default: 256].
    #[arg(
        id = "body_budget_mib",
        long = "body-budget-mib",
        env = "AUDITLOG_BODY_BUDGET_MIB",
        value_name = "MIB"
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub budget_mib: Option<usize>,
    /// Seconds a request body may take to arrive once the server reads it;
    /// past it, 408 and the connection is closed [default: 20].
    #[arg(
        id = "body_timeout",
        long = "body-timeout",
        env = "AUDITLOG_BODY_TIMEOUT",
        value_name = "SECONDS"
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u64>,
    /// Bytes per second a request body must arrive at, on average, after
    /// --body-rate-grace; slower ones are dropped with 408. 0 for no
    /// minimum [default: 1024].
    #[arg(
        id = "body_min_rate",
        long = "body-min-rate",
        env = "AUDITLOG_BODY_MIN_RATE",
        value_name = "BYTES_PER_SECOND"
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_rate: Option<u64>,
    /// Seconds a request body may arrive at any pace before
    /// --body-min-rate applies [default: 5].
    #[arg(
        id = "body_rate_grace",
        long = "body-rate-grace",
        env = "AUDITLOG_BODY_RATE_GRACE",
        value_name = "SECONDS"
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_grace: Option<u64>,
}

// The `[webhooks]` table.
#[derive(Debug, Clone, Default, Args, Serialize)]
pub struct WebhookArgs {
    /// A subnet (CIDR) webhooks may be delivered to although it is not
    /// public (loopback, private…); repeat for several.
    #[arg(
        id = "webhook_allow_subnets",
        long = "webhook-allow-subnet",
        env = "AUDITLOG_WEBHOOK_ALLOW_SUBNETS",
        value_delimiter = ',',
        value_name = "CIDR"
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_subnets: Option<Vec<ipnet::IpNet>>,
    /// Allow webhook URLs with plain http.
    #[arg(id = "webhook_allow_http", long = "webhook-allow-http", env = "AUDITLOG_WEBHOOK_ALLOW_HTTP",
          value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_http: Option<bool>,
    /// Seconds a webhook receiver has to answer. A delivery being sent is
    /// reserved for twice as long, so one whose sender crashed is sent
    /// again after that [default: 15].
    #[arg(
        id = "webhook_timeout",
        long = "webhook-timeout",
        env = "AUDITLOG_WEBHOOK_TIMEOUT",
        value_name = "SECONDS"
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u64>,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the default configuration file: every key with its default,
    /// its flag and environment variable, and what it does.
    Default,
    /// Print the settings `serve` would run with, given the same flags,
    /// environment and --config file (the database password hidden).
    Show(Box<ServeArgs>),
}

#[derive(Debug, Clone, Args)]
pub struct ExportArgs {
    /// The organization's slug.
    #[arg(long)]
    pub org: String,
    /// csv or jsonl.
    #[arg(long, default_value = "csv", value_parser = parse_export_format)]
    pub format: ExportFormat,
    /// Write to this file instead of standard output.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// A catalog file of extra events, as `serve --catalog` takes.
    #[arg(long, env = "AUDITLOG_CATALOG")]
    pub catalog: Option<PathBuf>,
    /// Filters as the API's query parameters take them, e.g.
    /// `event=api_key.*` `actor=ada@acme.com` `from=2026-01-01T00:00:00Z`
    /// `q='event:project.*'`.
    #[arg(value_name = "KEY=VALUE")]
    pub filters: Vec<String>,
    #[command(flatten)]
    pub db: DatabaseArgs,
}

#[derive(Debug, Clone, Args)]
pub struct MigrateStoreArgs {
    /// The installation to copy: sqlite://PATH.
    #[arg(long)]
    pub from: String,
    /// Where to copy it: postgres://…, an empty database.
    #[arg(long)]
    pub to: String,
}

#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// Address and port to listen on.
    #[arg(long, env = "AUDITLOG_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Database to seed; by default a fresh file in a temporary directory,
    /// removed when the demo stops.
    #[arg(long, env = "AUDITLOG_DATABASE_URL")]
    pub database: Option<String>,
    /// How many entries to seed across the year.
    #[arg(long, default_value_t = 25_000)]
    pub entries: usize,
    #[command(flatten)]
    pub signing: SigningKeyArgs,
}

#[derive(Debug, Subcommand)]
pub enum OrgCommand {
    /// Create an organization.
    Create(OrgCreateArgs),
}

#[derive(Debug, Args)]
pub struct OrgCreateArgs {
    /// The organization's stable name in URLs, e.g. `acme`.
    pub slug: String,
    /// Display name.
    #[arg(long)]
    pub name: String,
    #[arg(long, default_value = "team", value_parser = parse_plan)]
    pub plan: Plan,
    /// Retention for the enterprise plan, in days (default 2555, seven years).
    #[arg(long)]
    pub retention_days: Option<u32>,
    #[command(flatten)]
    pub db: DatabaseArgs,
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Create an API key; the key is printed once, alone on the last line.
    Create(KeyCreateArgs),
    /// Print the verifier key that checks this service's signed checkpoints.
    ShowSigning(ShowSigningArgs),
}

#[derive(Debug, Args)]
pub struct ShowSigningArgs {
    #[command(flatten)]
    pub db: DatabaseArgs,
    #[command(flatten)]
    pub signing: SigningKeyArgs,
}

#[derive(Debug, Args)]
pub struct KeyCreateArgs {
    /// The organization's slug.
    #[arg(long)]
    pub org: String,
    /// audit:write, audit:read or admin; repeat for several.
    #[arg(long = "scope", required = true, value_parser = parse_scope)]
    pub scopes: Vec<Scope>,
    /// A name to recognise the key by.
    #[arg(long, default_value = "cli")]
    pub name: String,
    #[command(flatten)]
    pub db: DatabaseArgs,
}

#[derive(Debug, Subcommand)]
pub enum MemberCommand {
    /// Add a person to an organization, or set the password of one already in
    /// it. The password is read from AUDITLOG_PASSWORD, else from stdin.
    Add(MemberAddArgs),
}

#[derive(Debug, Args)]
pub struct MemberAddArgs {
    /// The organization's slug.
    #[arg(long)]
    pub org: String,
    #[arg(long)]
    pub email: String,
    /// owner, admin, member or viewer.
    #[arg(long, value_parser = parse_role)]
    pub role: Role,
    #[command(flatten)]
    pub db: DatabaseArgs,
}

#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// Entries in the database the query and export measurements run on.
    #[arg(long, default_value_t = 1_000_000)]
    pub entries: usize,
    /// Entries sent by each ingest measurement.
    #[arg(long, default_value_t = 200_000)]
    pub ingest_entries: usize,
    /// Single-event requests sent by the concurrent-client measurement.
    #[arg(long, default_value_t = 60_000)]
    pub single_events: usize,
    /// Concurrent clients for single-event ingest.
    #[arg(long, default_value_t = 64)]
    pub clients: usize,
    /// Requests per query kind for the latency percentiles.
    #[arg(long, default_value_t = 300)]
    pub query_samples: usize,
    /// Directory for the benchmark's databases (default: a temporary one).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Run only the webhook commit-to-delivery measurement.
    #[arg(long)]
    pub webhooks: bool,
    /// Run only the tamper-evidence cost measurement (appends with and
    /// without the Merkle tree).
    #[arg(long, conflicts_with = "webhooks")]
    pub integrity: bool,
    /// Run only the PostgreSQL measurements, against this server
    /// (postgres://…): the bench creates, fills and drops databases of its own
    /// there.
    #[arg(long, conflicts_with_all = ["webhooks", "integrity"])]
    pub postgres: Option<String>,
    /// With --postgres, run only the replica measurement, each replica a
    /// separate `auditlog serve` confined to this many cores by a cgroup CPU
    /// quota (needs root), so that the replicas rather than the database are
    /// the limit.
    #[arg(long, requires = "postgres", value_name = "CORES")]
    pub replica_cores: Option<f64>,
    /// With --replica-cores, the quota's accounting period in milliseconds
    /// (1 to 1000). A replica runs at full speed until its share of the
    /// period is spent, then stops until the period ends; the shorter the
    /// period, the shorter those stops.
    #[arg(long, requires = "replica_cores", value_name = "MS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub replica_quota_period_ms: u64,
    /// Run only the sustained-load test: ingest at --load-rate for
    /// --load-seconds against a separate server, with latency and memory
    /// per minute.
    #[arg(long, conflicts_with_all = ["webhooks", "integrity", "postgres"])]
    pub load: bool,
    /// Entries per second for the load test (the single-event target).
    #[arg(long, default_value_t = 10_000)]
    pub load_rate: u32,
    /// Events per request in the load test.
    #[arg(long, default_value_t = 10)]
    pub load_batch: u32,
    /// Seconds the load test lasts.
    #[arg(long, default_value_t = 600)]
    pub load_seconds: u32,
    /// Load test: send entries with their own times, spread over the past
    /// month (a backfill), instead of letting the server stamp them.
    #[arg(long)]
    pub load_backfill: bool,
    /// Run only the abuse measurement: slow 19 MiB sign-ins and trickled
    /// ingest bodies against a separate server, with its memory, `/healthz`
    /// latency and ingest during and after the attack.
    #[arg(long, conflicts_with_all = ["webhooks", "integrity", "postgres", "load"])]
    pub abuse: bool,
    /// Attacking connections of each kind in the abuse measurement.
    #[arg(long, default_value_t = 300)]
    pub abuse_connections: usize,
    /// Seconds the abuse measurement attacks for.
    #[arg(long, default_value_t = 30)]
    pub abuse_seconds: u64,
    /// Seconds after the attack at which memory is measured again.
    #[arg(long, default_value_t = 60)]
    pub abuse_settle_seconds: u64,
    /// The `auditlog` binary to attack (another build, e.g. one without a
    /// fix); default: this one.
    #[arg(long, requires = "abuse")]
    pub abuse_server: Option<PathBuf>,
    /// Server memory (MiB) at which the abuse measurement stops its attack
    /// early, so that a server without defences cannot exhaust the machine.
    #[arg(long, default_value_t = 4096)]
    pub abuse_rss_cap_mib: u64,
    /// Entries per second for the webhook measurement.
    #[arg(long, default_value_t = 1000)]
    pub webhook_rate: u32,
    /// Seconds of sustained load for the webhook measurement.
    #[arg(long, default_value_t = 30)]
    pub webhook_seconds: u32,
    /// Endpoints every entry is delivered to.
    #[arg(long, default_value_t = 10)]
    pub webhook_endpoints: u32,
}

fn parse_export_format(s: &str) -> Result<ExportFormat, String> {
    s.parse()
        .map_err(|e: auditlog_domain::export_format::UnknownFormat| e.to_string())
}

fn parse_plan(s: &str) -> Result<Plan, String> {
    s.parse().map_err(|e: auditlog_domain::org::UnknownPlan| e.to_string())
}

fn parse_scope(s: &str) -> Result<Scope, String> {
    s.parse()
        .map_err(|e: auditlog_domain::api_key::UnknownScope| e.to_string())
}

fn parse_role(s: &str) -> Result<Role, String> {
    s.parse().map_err(|e: auditlog_domain::role::UnknownRole| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bench(args: &[&str]) -> Result<BenchArgs, clap::Error> {
        let argv = ["auditlog", "bench", "--postgres", "postgres://localhost/postgres"];
        match Cli::try_parse_from(argv.iter().chain(args))?.command {
            Command::Bench(args) => Ok(args),
            _ => unreachable!("parsed as bench"),
        }
    }

    #[test]
    fn the_quota_period_defaults_to_ten_ms_and_needs_replica_cores() {
        assert_eq!(bench(&["--replica-cores", "0.5"]).unwrap().replica_quota_period_ms, 10);
        let two = bench(&["--replica-cores", "0.5", "--replica-quota-period-ms", "2"]).unwrap();
        assert_eq!(two.replica_quota_period_ms, 2);
        let alone = bench(&["--replica-quota-period-ms", "2"]).unwrap_err();
        assert!(alone.to_string().contains("--replica-cores"), "{alone}");
        for outside in ["0", "1001"] {
            let refused = bench(&["--replica-cores", "0.5", "--replica-quota-period-ms", outside]).unwrap_err();
            assert!(refused.to_string().contains("1..=1000"), "{refused}");
        }
    }
}

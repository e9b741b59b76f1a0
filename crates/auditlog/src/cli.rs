//! The command line, as DESIGN.md's contract states it. Every command takes
//! `--database` / `AUDITLOG_DATABASE_URL`.

use std::net::SocketAddr;
use std::path::PathBuf;

use auditlog_domain::api_key::Scope;
use auditlog_domain::export_format::ExportFormat;
use auditlog_domain::{Plan, Role};
use clap::{Args, Parser, Subcommand};

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
    /// Measure ingest, queries, export, webhooks and more on this machine,
    /// one section at a time or all of them.
    #[command(subcommand)]
    Bench(auditlog_bench::Section),
    /// Write an organization's filtered log as CSV or JSON Lines.
    Export(ExportArgs),
    /// Check an export and checkpoints offline against the signing key.
    Verify(crate::verify::VerifyArgs),
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

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address and port to listen on.
    #[arg(long, env = "AUDITLOG_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    #[command(flatten)]
    pub db: DatabaseArgs,
    #[command(flatten)]
    pub signing: SigningKeyArgs,
    /// A catalog file of extra events (same format as the built-in catalog.toml).
    #[arg(long, env = "AUDITLOG_CATALOG")]
    pub catalog: Option<PathBuf>,
    /// A proxy (CIDR) whose X-Forwarded-For is believed; repeat for several.
    #[arg(long = "trusted-proxy", env = "AUDITLOG_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Mark the session cookie Secure (when users reach the service over HTTPS).
    #[arg(long, env = "AUDITLOG_SECURE_COOKIES")]
    pub secure_cookies: bool,
    /// A subnet (CIDR) webhooks may be delivered to although it is not
    /// public (loopback, private…); repeat for several.
    #[arg(
        long = "webhook-allow-subnet",
        env = "AUDITLOG_WEBHOOK_ALLOW_SUBNETS",
        value_delimiter = ','
    )]
    pub webhook_allow_subnets: Vec<ipnet::IpNet>,
    /// Allow webhook URLs with plain http.
    #[arg(long, env = "AUDITLOG_WEBHOOK_ALLOW_HTTP")]
    pub webhook_allow_http: bool,
    /// Seconds between retention passes (one also runs at start).
    #[arg(long, env = "AUDITLOG_RETENTION_INTERVAL", default_value_t = 900)]
    pub retention_interval: u64,
    /// Ingest requests per second allowed per API key (twice as many in a
    /// burst); 0 for no limit.
    #[arg(long, env = "AUDITLOG_INGEST_RATE_PER_KEY", default_value_t = 10_000.0)]
    pub ingest_rate_per_key: f64,
    /// Ingest requests per second allowed per client address; 0 for no limit.
    #[arg(long, env = "AUDITLOG_INGEST_RATE_PER_IP", default_value_t = 20_000.0)]
    pub ingest_rate_per_ip: f64,
    /// Sign-in attempts per second allowed per client address (a burst of
    /// 20); 0 for no limit.
    #[arg(long, env = "AUDITLOG_LOGIN_RATE_PER_IP", default_value_t = 5.0)]
    pub login_rate_per_ip: f64,
    /// Connections open at once; more wait until one closes.
    #[arg(long, env = "AUDITLOG_MAX_CONNECTIONS", default_value_t = 2048)]
    pub max_connections: usize,
    /// Seconds a request may take to start its answer before it is ended
    /// with 503 (an export's body streams on past it).
    #[arg(long, env = "AUDITLOG_REQUEST_TIMEOUT", default_value_t = 30)]
    pub request_timeout: u64,
    /// Seconds a client may take to send a request's headers, or to start
    /// its next request on an open connection, before it is disconnected.
    #[arg(long, env = "AUDITLOG_HEADER_TIMEOUT", default_value_t = 10)]
    pub header_timeout: u64,
    /// Megabytes (MiB) of request bodies held in memory at once across all
    /// requests; past it, requests wait briefly, then get 503.
    #[arg(long, env = "AUDITLOG_BODY_BUDGET_MIB", default_value_t = 256)]
    pub body_budget_mib: usize,
    /// Seconds a request body may take to arrive once the server reads it;
    /// past it, 408 and the connection is closed.
    #[arg(long, env = "AUDITLOG_BODY_TIMEOUT", default_value_t = 20)]
    pub body_timeout: u64,
    /// Bytes per second a request body must arrive at, on average, after
    /// --body-rate-grace; slower ones are dropped with 408. 0 for no minimum.
    #[arg(long, env = "AUDITLOG_BODY_MIN_RATE", default_value_t = 1024)]
    pub body_min_rate: u64,
    /// Seconds a request body may arrive at any pace before
    /// --body-min-rate applies.
    #[arg(long, env = "AUDITLOG_BODY_RATE_GRACE", default_value_t = 5)]
    pub body_rate_grace: u64,
    /// Seconds a webhook receiver has to answer. A delivery being sent is
    /// reserved for twice as long, so one whose sender crashed is sent
    /// again after that.
    #[arg(long, env = "AUDITLOG_WEBHOOK_TIMEOUT", default_value_t = 15)]
    pub webhook_timeout: u64,
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

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
    Serve(Box<ServeArgs>),
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
    /// Manage SIEM streams (syslog over TLS in RFC 5424, CEF or OCSF).
    #[command(subcommand)]
    Stream(StreamCommand),
    /// Measure ingest, queries, export, webhooks and more on this machine,
    /// one section at a time or all of them.
    #[command(subcommand)]
    Bench(auditlog_bench::Section),
    /// Write an organization's filtered log as CSV or JSON Lines.
    Export(ExportArgs),
    /// Check an export and checkpoints offline against the signing key.
    Verify(crate::verify::VerifyArgs),
    /// Snapshot the embedded SQLite database while the server runs.
    Backup(BackupArgs),
    /// Recompute every entry's leaf and every log's root, and hold them
    /// against the stored tree and the latest signed checkpoint.
    Check(CheckArgs),
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
    /// Where people reach the service, such as https://audit.example.com;
    /// single sign-on's redirect URI is this plus /sso/callback.
    #[arg(long, env = "AUDITLOG_PUBLIC_URL", value_name = "URL")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
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
    #[command(flatten)]
    pub streams: StreamArgs,
    #[command(flatten)]
    pub sso: SsoArgs,
}

// The `[streams]` table.
#[derive(Debug, Clone, Default, Args, Serialize)]
pub struct StreamArgs {
    /// A subnet (CIDR) SIEM streams may send to although it is not public
    /// (loopback, private…); repeat for several.
    #[arg(
        id = "stream_allow_subnets",
        long = "stream-allow-subnet",
        env = "AUDITLOG_STREAM_ALLOW_SUBNETS",
        value_delimiter = ',',
        value_name = "CIDR"
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_subnets: Option<Vec<ipnet::IpNet>>,
    /// Allow streams over plain TCP (`syslog+tcp://`), which send entries
    /// in clear.
    #[arg(id = "stream_allow_plaintext", long = "stream-allow-plaintext", env = "AUDITLOG_STREAM_ALLOW_PLAINTEXT",
          value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_plaintext: Option<bool>,
    /// Seconds a stream may fail before it is reported unhealthy (the API,
    /// the Streams page, the `auditlog_streams_unhealthy` metric)
    /// [default: 900].
    #[arg(
        id = "stream_unhealthy_after",
        long = "stream-unhealthy-after",
        env = "AUDITLOG_STREAM_UNHEALTHY_AFTER",
        value_name = "SECONDS"
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unhealthy_after: Option<u64>,
}

// The `[sso]` table.
#[derive(Debug, Clone, Default, Args, Serialize)]
pub struct SsoArgs {
    /// A subnet (CIDR) organizations' identity providers may be in although
    /// it is not public (loopback, private…); repeat for several.
    #[arg(
        id = "sso_allow_subnets",
        long = "sso-allow-subnet",
        env = "AUDITLOG_SSO_ALLOW_SUBNETS",
        value_delimiter = ',',
        value_name = "CIDR"
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_subnets: Option<Vec<ipnet::IpNet>>,
    /// Allow identity providers (issuers) with plain http.
    #[arg(id = "sso_allow_http", long = "sso-allow-http", env = "AUDITLOG_SSO_ALLOW_HTTP",
          value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_http: Option<bool>,
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
    /// csv, jsonl (one entry per line) or ocsf (one OCSF 1.8.0 event per
    /// line).
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
    /// Set or remove an organization's single sign-on (OpenID Connect).
    /// The client secret is read from AUDITLOG_SSO_CLIENT_SECRET or
    /// standard input when --client-secret-stdin is given.
    Sso(OrgSsoArgs),
}

#[derive(Debug, Args)]
pub struct OrgSsoArgs {
    /// The organization's slug.
    pub slug: String,
    /// The provider's issuer URL, such as https://acme.okta.com/oauth2/default.
    #[arg(long, required_unless_present = "remove")]
    pub issuer: Option<String>,
    /// The client id registered at the provider.
    #[arg(long, required_unless_present = "remove")]
    pub client_id: Option<String>,
    /// Read the client secret from standard input (one line), unless
    /// AUDITLOG_SSO_CLIENT_SECRET is set. Without either, the stored
    /// secret is kept.
    #[arg(long)]
    pub client_secret_stdin: bool,
    /// An email domain whose people may sign in this way; repeat for
    /// several. None: any.
    #[arg(long = "allowed-domain", value_name = "DOMAIN")]
    pub allowed_domains: Vec<String>,
    /// Add people who are not members yet on their first sign-in, with this
    /// role (admin, member or viewer). Absent: they are refused.
    #[arg(long, value_parser = parse_role)]
    pub provision_role: Option<Role>,
    /// Refuse password sign-ins for the organization's members (owners keep
    /// a break-glass password).
    #[arg(long)]
    pub enforced: bool,
    /// Remove single sign-on and its secret.
    #[arg(long, conflicts_with_all = ["issuer", "client_id", "client_secret_stdin", "allowed_domains", "provision_role", "enforced"])]
    pub remove: bool,
    #[command(flatten)]
    pub db: DatabaseArgs,
    #[command(flatten)]
    pub signing: SigningKeyArgs,
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
    /// Erase a person's personal data from an organization's log: their
    /// values show as erased from now on, every proof still holds. Recorded
    /// as audit_log.subject_erased.
    Erase(MemberEraseArgs),
}

#[derive(Debug, Args)]
pub struct MemberEraseArgs {
    /// The organization's slug.
    #[arg(long)]
    pub org: String,
    /// The person, as the log names them (their email).
    #[arg(long)]
    pub email: String,
    #[command(flatten)]
    pub signing: SigningKeyArgs,
    #[command(flatten)]
    pub db: DatabaseArgs,
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

#[derive(Debug, Args)]
pub struct BackupArgs {
    #[command(flatten)]
    pub db: DatabaseArgs,
    /// The snapshot file to write; it must not exist.
    #[arg(long, value_name = "FILE")]
    pub to: PathBuf,
    /// Also copy the checkpoint signing key, to FILE.signing-key (readable
    /// by its owner only). Keep the key apart from the backups instead, if
    /// you can: see README, "Backups".
    #[arg(long)]
    pub include_signing_key: bool,
    /// The checkpoint signing key file. Default: the SQLite file's path
    /// with `.signing-key` added.
    #[arg(long, env = "AUDITLOG_SIGNING_KEY")]
    pub signing_key: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub db: DatabaseArgs,
    /// Only this organization (its slug); every one by default.
    #[arg(long)]
    pub org: Option<String>,
    /// The service's verifier key (`auditlog key show-signing`), or a file
    /// holding it, to check each checkpoint's signature. Without it the
    /// key is derived from the signing key file if there is one (see
    /// `--signing-key`); with neither, signatures are not checked and the
    /// report says so.
    #[arg(long)]
    pub key: Option<String>,
    /// The checkpoint signing key file. Default: the SQLite file's path
    /// with `.signing-key` added, if it exists (never created here).
    #[arg(long, env = "AUDITLOG_SIGNING_KEY")]
    pub signing_key: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum StreamCommand {
    /// Send an organization's entries from now on to a syslog receiver.
    Create(Box<StreamCreateArgs>),
    /// List an organization's streams and how each is doing.
    List(StreamOrgArgs),
    /// Start sending again (a failing stream's failure is cleared).
    Enable(StreamIdArgs),
    /// Stop sending; the stream keeps its place in the log.
    Disable(StreamIdArgs),
    /// Delete a stream.
    Delete(StreamIdArgs),
}

#[derive(Debug, Args)]
pub struct StreamOrgArgs {
    /// The organization's slug.
    #[arg(long)]
    pub org: String,
    #[command(flatten)]
    pub db: DatabaseArgs,
}

#[derive(Debug, Args)]
pub struct StreamIdArgs {
    /// The organization's slug.
    #[arg(long)]
    pub org: String,
    /// The stream's id (`st_…`).
    pub id: String,
    #[command(flatten)]
    pub db: DatabaseArgs,
}

#[derive(Debug, Args)]
pub struct StreamCreateArgs {
    /// The organization's slug.
    #[arg(long)]
    pub org: String,
    /// `syslog+tls://HOST[:PORT]` (6514 by default), or `syslog+tcp://`
    /// with --stream-allow-plaintext.
    #[arg(long)]
    pub url: String,
    /// rfc5424, cef or ocsf.
    #[arg(long)]
    pub format: String,
    /// An event pattern such as `api_key.*`; repeat for several. None:
    /// every event.
    #[arg(long = "event", value_name = "PATTERN")]
    pub events: Vec<String>,
    /// Syslog facility, 0 to 23 [default: 13, log audit].
    #[arg(long)]
    pub facility: Option<u8>,
    /// RFC 5424 APP-NAME [default: auditlog].
    #[arg(long)]
    pub app_name: Option<String>,
    #[arg(long)]
    pub description: Option<String>,
    /// PEM file of the CA that signed the receiver's certificate, instead
    /// of the system's roots.
    #[arg(long, value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// PEM file of a client certificate for receivers that ask for one.
    #[arg(long, value_name = "FILE", requires = "client_key")]
    pub client_cert: Option<PathBuf>,
    /// PEM file of the client certificate's private key (stored sealed).
    #[arg(long, value_name = "FILE", requires = "client_cert")]
    pub client_key: Option<PathBuf>,
    /// A catalog file of extra events, as `serve --catalog` takes, so the
    /// patterns may name its events.
    #[arg(long, env = "AUDITLOG_CATALOG")]
    pub catalog: Option<PathBuf>,
    #[command(flatten)]
    pub policy: StreamArgs,
    #[command(flatten)]
    pub signing: SigningKeyArgs,
    #[command(flatten)]
    pub db: DatabaseArgs,
}

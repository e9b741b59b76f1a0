//! What the server needs to run: settings, and the parts a process makes
//! for itself (`Runtime`). The binary builds it from the settings a person
//! writes (flags, environment variables, configuration file; its
//! `settings` module); tests build it directly.

use std::sync::Arc;
use std::time::Duration;

use auditlog_domain::rate_limit::Rate;
use auditlog_domain::{Catalog, Clock, SystemClock};
use ipnet::IpNet;

use crate::workers::checkpointer::CheckpointConfig;
use crate::workers::dispatcher::DispatcherConfig;
use crate::workers::streams::StreamsConfig;
use crate::workers::webhook_client::DestinationPolicy;
use crate::workers::writer::WriterConfig;

pub use crate::workers::retention::RetentionConfig;

/// What a process makes for itself rather than reads from its settings,
/// kept apart from them so that the other fields of `ServerConfig` are
/// settings (but for the signing key in `checkpoints`, which a process
/// loads from the file its settings name).
#[derive(Clone)]
pub struct Runtime {
    /// The event catalog, built-in plus operator extensions.
    pub catalog: Arc<Catalog>,
    /// Source of "now" for validation windows, sessions and retention.
    pub clock: Arc<dyn Clock>,
    /// Where the server counts what it does (served at `/metrics`).
    pub metrics: crate::metrics::Metrics,
}

impl Default for Runtime {
    fn default() -> Self {
        Self {
            catalog: Arc::new(Catalog::builtin()),
            clock: Arc::new(SystemClock),
            metrics: crate::metrics::Metrics::new(),
        }
    }
}

#[derive(Clone)]
pub struct ServerConfig {
    pub runtime: Runtime,
    /// Largest request body accepted. A full batch is 1000 events with up to
    /// 16 KiB of details each, so 20 MiB leaves room for the envelope.
    pub max_body_bytes: usize,
    pub writer: WriterConfig,
    /// Proxies whose `X-Forwarded-For` is believed. Empty: the TCP peer is
    /// the client.
    pub trusted_proxies: Vec<IpNet>,
    /// Mark the session cookie `Secure` (served over HTTPS, directly or
    /// behind a terminating proxy).
    pub secure_cookies: bool,
    pub retention: RetentionConfig,
    pub login: LoginLimits,
    /// Where webhooks may be delivered.
    pub webhook_policy: DestinationPolicy,
    /// Where organizations' identity providers may be.
    pub sso_policy: DestinationPolicy,
    /// Where people reach the service; single sign-on needs it for its
    /// redirect URI and is refused without it.
    pub public_url: Option<url::Url>,
    /// A webhook answer must arrive within this long to count.
    pub webhook_timeout: Duration,
    pub dispatcher: DispatcherConfig,
    /// SIEM streams: where they may go, when one is unhealthy.
    pub streams: StreamsConfig,
    pub checkpoints: CheckpointConfig,
    pub rate_limits: RateLimits,
    /// Connections open at once; more wait in the accept backlog.
    pub max_connections: usize,
    /// How long a request may take to produce its answer (an export's body
    /// streams on after that); past it, 503 and the client retries.
    pub request_timeout: Duration,
    /// How long a client may take to send a request's headers (and, on a
    /// kept-alive connection, to start its next request) before the
    /// connection is closed, so slow or silent clients cannot hold
    /// connections under the cap.
    pub header_read_timeout: Duration,
    /// Largest request headers accepted, all together; larger ones get a
    /// JSON 431.
    pub max_header_bytes: usize,
    /// How request bodies are read: sizes, memory budget and pace.
    pub bodies: BodyLimits,
    /// How long an invitation or a password reset token can be used.
    pub invitation_ttl_ms: i64,
    /// Record reads of the log (`audit_log.viewed`). Always on in a
    /// served binary; tests of what a listing selects turn it off, so the
    /// listing's own records do not join what they count.
    pub record_reads: bool,
}

/// Request rates per API key and per client address, past which requests
/// are refused with 429 and `Retry-After`. Each replica counts on its own.
#[derive(Debug, Clone)]
pub struct RateLimits {
    /// Ingest requests per API key (or signed-in person).
    pub ingest_per_key: Rate,
    /// Ingest requests per client address.
    pub ingest_per_ip: Rate,
    /// Sign-in attempts per client address, failed or not: each costs an
    /// argon2 hash, so this bounds what one address can make the CPU do.
    pub login_per_ip: Rate,
    /// Keys and addresses remembered per limit.
    pub tracked: usize,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            // Well above what one machine ingests (see BENCHMARKS.md), so
            // only a runaway client meets it; operators size it to theirs.
            ingest_per_key: Rate::per_second(10_000.0),
            ingest_per_ip: Rate::per_second(20_000.0),
            login_per_ip: Rate {
                per_second: 5.0,
                burst: 20.0,
            },
            tracked: 100_000,
        }
    }
}

/// How request bodies are read, so that neither their size nor their
/// slowness lets clients exhaust the server's memory or connections.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    /// Largest body on routes anyone may call without signing in (sign-in,
    /// invitations): theirs are a few fields, and a stranger must not be able
    /// to make the server hold more.
    pub small_bytes: usize,
    /// Bytes of request bodies held in memory at once, across all requests:
    /// each reserves its declared length (a chunked one its route's limit)
    /// before its body is read, and gives it back when its handler is done.
    pub budget_bytes: usize,
    /// How long a request waits for room under the budget before it is
    /// refused with 503 and `Retry-After`.
    pub budget_wait: Duration,
    /// The whole body within this long of the server starting to read it;
    /// past it, 408 and the connection is closed. Below `request_timeout`,
    /// so a stalled body is told why.
    pub timeout: Duration,
    /// After `rate_grace`, a body must arrive at this many bytes per second
    /// on average or be dropped, so slow clients free their connection
    /// early; 0 for no minimum.
    pub min_rate: u64,
    pub rate_grace: Duration,
}

impl Default for BodyLimits {
    fn default() -> Self {
        Self {
            small_bytes: 8 * 1024,
            budget_bytes: 256 * 1024 * 1024,
            budget_wait: Duration::from_secs(2),
            timeout: Duration::from_secs(20),
            min_rate: 1024,
            rate_grace: Duration::from_secs(5),
        }
    }
}

#[derive(Debug, Clone)]
pub struct LoginLimits {
    /// Failures counted within this window.
    pub window_ms: i64,
    /// Failed sign-ins at one account from one client address within the
    /// window before that address is refused for it. Past as many failures
    /// at the account from all addresses, every attempt at it is slowed
    /// (up to 2 s), never refused, so no one can lock its owner out.
    pub per_account: usize,
    /// Failed sign-ins from one client address, at any accounts, within the
    /// window before the address is refused.
    pub per_ip: usize,
}

impl Default for LoginLimits {
    fn default() -> Self {
        Self {
            window_ms: 15 * 60 * 1000,
            per_account: 5,
            per_ip: 20,
        }
    }
}

impl std::fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerConfig")
            .field("catalog_events", &self.runtime.catalog.len())
            .field("max_body_bytes", &self.max_body_bytes)
            .field("writer", &self.writer)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("secure_cookies", &self.secure_cookies)
            .field("retention", &self.retention)
            .field("login", &self.login)
            .field("webhook_policy", &self.webhook_policy)
            .field("sso_policy", &self.sso_policy)
            .field("public_url", &self.public_url.as_ref().map(url::Url::as_str))
            .field("webhook_timeout", &self.webhook_timeout)
            .field("dispatcher", &self.dispatcher)
            .field("streams", &self.streams)
            .field("checkpoints", &self.checkpoints)
            .field("bodies", &self.bodies)
            .finish_non_exhaustive()
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            runtime: Runtime::default(),
            max_body_bytes: 20 * 1024 * 1024,
            writer: WriterConfig::default(),
            trusted_proxies: Vec::new(),
            secure_cookies: false,
            retention: RetentionConfig::default(),
            login: LoginLimits::default(),
            webhook_policy: DestinationPolicy::default(),
            sso_policy: DestinationPolicy::default(),
            public_url: None,
            webhook_timeout: Duration::from_secs(15),
            dispatcher: DispatcherConfig::default(),
            streams: StreamsConfig::default(),
            checkpoints: CheckpointConfig::default(),
            rate_limits: RateLimits::default(),
            max_connections: 2048,
            request_timeout: Duration::from_secs(30),
            header_read_timeout: Duration::from_secs(10),
            max_header_bytes: 16 * 1024,
            bodies: BodyLimits::default(),
            invitation_ttl_ms: auditlog_domain::invitation::DEFAULT_TTL_MS,
            record_reads: true,
        }
    }
}

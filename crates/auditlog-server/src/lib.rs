//! auditlog's server: the HTTP API and web pages, the group-commit writer
//! and the background workers (webhook delivery, checkpoint signing,
//! retention, the read recorder), all around a [`Store`] chosen by the
//! binary. ARCHITECTURE.md follows one entry through them.
//!
//! # Layout
//!
//! - [`config`]: what the server needs to run, with defaults.
//! - [`connections`]: the cap on open connections.
//! - [`error`]: the one API error type and its mapping to HTTP.
//! - [`metrics`]: Prometheus metrics of ingest, commits, webhooks, purges.
//! - [`auth`]: who is calling (API key or session), for which organization,
//!   and what they may do.
//! - [`context`]: the client's address (trusted proxies), user agent and
//!   request id.
//! - [`request_guard`]: state changes refused from other sites' pages, and
//!   JSON API bodies that are not JSON.
//! - [`body`]: JSON request bodies with the API's error format.
//! - [`body_gate`]: body size limits per route and the memory budget of bodies.
//! - [`guarded_body`]: a body read under the budget and a minimum pace.
//! - [`checkpointer`]: signed checkpoints of each organization's Merkle tree.
//! - [`recorder`]: the service's own actions, recorded with their changes.
//! - [`retention`]: the background purger of entries past the plan's window.
//! - [`webhook_client`]: the HTTP client for webhooks and where it may go.
//! - [`dispatcher`]: delivering the webhook outbox, with retries.
//! - [`writer`]: the single writer that batches concurrent requests into one
//!   durable transaction and acknowledges each only after commit.
//! - [`query_string`]: reading repeatable query parameters.
//! - [`read_audit`]: recording reads of the log, one entry per look.
//! - [`routes`]: one module per group of endpoints.
//! - [`openapi`]: the OpenAPI document of the JSON API, derived from the
//!   handlers.
//! - [`ui`]: the web pages for people (sign-in, Platform → Audit).
//!
//! [`serve`] takes its listener and shutdown token as arguments, so tests run
//! it on port 0 and stop it when they like.

#![forbid(unsafe_code)]

pub mod auth;
pub mod body;
pub mod body_gate;
pub mod checkpointer;
pub mod config;
pub mod connections;
pub mod context;
pub mod dispatcher;
pub mod error;
pub mod fault;
pub mod guarded_body;
pub mod http_server;
pub mod known_parameters;
pub mod metrics;
pub mod openapi;
pub mod query_string;
pub mod read_audit;
pub mod recorder;
pub mod request_guard;
pub mod retention;
pub mod routes;
pub mod ui;
pub mod webhook_client;
pub mod writer;

use std::sync::{Arc, Mutex};

use auditlog_domain::rate_limit::RateLimiter;
use auditlog_domain::throttle::LoginThrottle;
use auditlog_domain::{Catalog, Clock, Store};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use config::ServerConfig;
pub use writer::Writer;

/// Installs the process's TLS crypto provider (ring). Every HTTPS client in
/// the process needs it; calling it again does nothing.
pub fn init_tls() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub catalog: Arc<Catalog>,
    pub clock: Arc<dyn Clock>,
    pub writer: Writer,
    pub config: Arc<ServerConfig>,
    /// Failed sign-ins by account and by client address. In memory: each
    /// replica limits on its own, which bounds guessing per replica.
    pub login: Arc<Mutex<LoginThrottle>>,
    /// Sends webhooks (test events from handlers, deliveries from the
    /// dispatcher) under the destination policy.
    pub webhooks: webhook_client::WebhookClient,
    pub keys: Arc<auth::KeyCache>,
    pub checkpoints: checkpointer::Checkpointer,
    pub limits: Arc<Limiters>,
    /// Which reads of the log were recorded lately (`audit_log.viewed`).
    pub reads: Arc<read_audit::ReadAudit>,
}

/// The request-rate limits of [`config::RateLimits`], in memory per process.
#[derive(Debug)]
pub struct Limiters {
    pub ingest_per_key: Mutex<RateLimiter>,
    pub ingest_per_ip: Mutex<RateLimiter>,
    pub login_per_ip: Mutex<RateLimiter>,
}

impl Limiters {
    pub fn new(limits: &config::RateLimits) -> Self {
        let make = |rate| Mutex::new(RateLimiter::new(rate, limits.tracked));
        Self {
            ingest_per_key: make(limits.ingest_per_key),
            ingest_per_ip: make(limits.ingest_per_ip),
            login_per_ip: make(limits.login_per_ip),
        }
    }

    /// Takes one request from `limiter` for `key`; 429 when it is over.
    pub fn take(
        limiter: &Mutex<RateLimiter>,
        key: &str,
        now: auditlog_domain::Timestamp,
    ) -> Result<(), error::ApiError> {
        limiter
            .lock()
            .map_err(|_| error::ApiError::Internal("rate limiter poisoned".into()))?
            .take(key, now)
            .map_err(error::ApiError::TooManyRequests)
    }
}

impl AppState {
    pub fn login_throttle(&self) -> Result<std::sync::MutexGuard<'_, LoginThrottle>, error::ApiError> {
        self.login
            .lock()
            .map_err(|_| error::ApiError::Internal("login throttle poisoned".into()))
    }
}

/// What seals webhook secrets at rest: a key derived from the checkpoint
/// signing key, which is held outside the database and is the same on every
/// replica.
pub fn secret_sealer(config: &ServerConfig) -> auditlog_domain::sealed::SecretSealer {
    auditlog_domain::sealed::SecretSealer::derive(&config.checkpoints.key.seed())
}

/// Serves the API on `listener` until `shutdown` is cancelled, then stops
/// accepting connections, lets in-flight requests finish (their commits
/// included), stops the purger and drains the writer before returning.
pub async fn serve(
    config: ServerConfig,
    store: Arc<dyn Store>,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let (clock, metrics) = (config.runtime.clock.clone(), config.runtime.metrics.clone());
    let (writer, writer_task) =
        Writer::spawn_observed(store.clone(), clock.clone(), config.writer.clone(), metrics.clone());
    let sealer = Arc::new(secret_sealer(&config));
    seal_clear_secrets(store.as_ref(), &sealer).await;
    let webhooks = webhook_client::WebhookClient::new(config.webhook_policy.clone(), config.webhook_timeout)
        .map_err(std::io::Error::other)?
        .with_sealer(sealer);
    let workers = Workers::start(&config, &store, &writer, &webhooks, &shutdown);
    let login = Arc::new(Mutex::new(LoginThrottle::new(
        config.login.window_ms,
        config.login.per_account,
        config.login.per_ip,
    )));
    let limits = Arc::new(Limiters::new(&config.rate_limits));
    let (reads, reads_task) = read_audit::ReadAudit::spawn(writer.clone(), metrics);
    let max_connections = config.max_connections;
    let header_read_timeout = config.header_read_timeout;
    let state = AppState {
        store,
        catalog: config.runtime.catalog.clone(),
        clock,
        writer,
        config: Arc::new(config),
        login,
        webhooks,
        keys: Arc::default(),
        checkpoints: workers.checkpoints.clone(),
        limits,
        reads,
    };
    let app = routes::router(state);
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "auditlog listening");
    let listener = connections::LimitedListener::new(listener, max_connections);
    http_server::serve(listener, app, header_read_timeout, shutdown).await;
    workers.join().await;
    // Every handler, and with them the recorder's queue, is gone: it
    // commits what it holds before the writer drains.
    if let Err(e) = reads_task.await {
        tracing::error!(error = %e, "read recorder failed");
    }
    // The router, the purger and with them every writer handle are gone;
    // the writer commits what is queued and ends.
    if let Err(e) = writer_task.await {
        tracing::error!(error = %e, "writer task failed");
    }
    tracing::info!("auditlog stopped");
    Ok(())
}

/// Secrets written before they were sealed are sealed now, once; every
/// replica may try, and the store's compare-and-set lets one win.
async fn seal_clear_secrets(store: &dyn Store, sealer: &Arc<auditlog_domain::sealed::SecretSealer>) {
    match store.seal_clear_webhook_secrets(sealer.clone()).await {
        Ok(0) => {}
        Ok(sealed) => tracing::info!(sealed, "sealed webhook secrets that were stored in clear"),
        Err(e) => {
            tracing::warn!(error = %e, "could not seal webhook secrets stored in clear; trying again at the next start")
        }
    }
}

/// The background work beside the HTTP server: webhook delivery,
/// checkpoint signing and retention, each ending on shutdown.
struct Workers {
    checkpoints: checkpointer::Checkpointer,
    tasks: Vec<(&'static str, tokio::task::JoinHandle<()>)>,
}

impl Workers {
    fn start(
        config: &ServerConfig,
        store: &Arc<dyn Store>,
        writer: &Writer,
        webhooks: &webhook_client::WebhookClient,
        shutdown: &CancellationToken,
    ) -> Self {
        let (clock, metrics) = (&config.runtime.clock, &config.runtime.metrics);
        let dispatcher = dispatcher::Dispatcher::new(
            store.clone(),
            writer.clone(),
            clock.clone(),
            webhooks.clone(),
            config.dispatcher.clone(),
        )
        .with_metrics(metrics.clone());
        let checkpoints = checkpointer::Checkpointer::new(store.clone(), clock.clone(), config.checkpoints.clone())
            .with_metrics(metrics.clone());
        let purger = retention::run(
            store.clone(),
            writer.clone(),
            clock.clone(),
            config.retention.clone(),
            metrics.clone(),
            shutdown.clone(),
        );
        let tasks = vec![
            (
                "webhook dispatcher",
                tokio::spawn(dispatcher::run(dispatcher, writer.committed(), shutdown.clone())),
            ),
            (
                "checkpoint signer",
                tokio::spawn(checkpointer::run(checkpoints.clone(), shutdown.clone())),
            ),
            ("retention purger", tokio::spawn(purger)),
        ];
        Self { checkpoints, tasks }
    }

    async fn join(self) {
        for (name, task) in self.tasks {
            if let Err(e) = task.await {
                tracing::error!(error = %e, "{name} failed");
            }
        }
    }
}

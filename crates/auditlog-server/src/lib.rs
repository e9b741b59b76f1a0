//! auditlog's server: the HTTP API and web pages, the group-commit writer
//! and the background workers (webhook delivery, checkpoint signing,
//! retention, the read recorder), all around a [`Store`] chosen by the
//! binary. ARCHITECTURE.md follows one entry through them.
//!
//! # Layout
//!
//! - [`config`]: what the server needs to run, with defaults.
//! - [`metrics`]: Prometheus metrics of ingest, commits, webhooks, purges.
//! - [`http`]: the JSON API, its layers, callers and errors, and
//!   [`http::state::AppState`].
//! - [`ui`]: the web pages for people (sign-in, Platform → Audit), built on
//!   `http`.
//! - [`workers`]: the writer and the background tasks; they know nothing
//!   of HTTP.
//!
//! Arrows run one way: `ui` → `http` → `workers` → `config`, `metrics`;
//! only this file, which starts them all, sees every one.
//!
//! [`serve`] takes its listener and shutdown token as arguments, so tests run
//! it on port 0 and stop it when they like.

#![forbid(unsafe_code)]

pub mod config;
pub mod erasure;
pub mod http;
pub mod metrics;
pub mod sso;
pub mod ui;
pub mod workers;

use std::sync::{Arc, Mutex};

use auditlog_domain::Store;
use auditlog_domain::throttle::LoginThrottle;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use config::ServerConfig;
pub use workers::webhook_client::init_tls;
pub use workers::writer::Writer;

use http::state::{AppState, Limiters};
use workers::Workers;
use workers::read_recorder::ReadAudit;
use workers::webhook_client::WebhookClient;

/// What seals webhook secrets at rest: a key derived from the checkpoint
/// signing key, which is held outside the database and is the same on every
/// replica.
pub fn secret_sealer(config: &ServerConfig) -> auditlog_domain::sealed::SecretSealer {
    auditlog_domain::sealed::SecretSealer::derive(&config.checkpoints.key.seed())
}

/// The personal-data keys, derived from the checkpoint signing key as the
/// sealer's are, with the catalog's marks of what is personal.
pub fn personal_data(config: &ServerConfig) -> auditlog_domain::personal::PersonalData {
    auditlog_domain::personal::PersonalData::new(&config.checkpoints.key.seed(), config.runtime.catalog.clone())
}

/// A provider must answer single sign-on's requests within this long: a
/// person is waiting.
const SSO_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

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
    // Before anything writes: every entry from here on is sealed.
    let personal = Arc::new(personal_data(&config));
    store.use_personal_data(personal.clone());
    let (writer, writer_task) =
        Writer::spawn_observed(store.clone(), clock.clone(), config.writer.clone(), metrics.clone());
    let sealer = Arc::new(secret_sealer(&config));
    seal_clear_secrets(store.as_ref(), &sealer).await;
    let webhooks = WebhookClient::new(config.webhook_policy.clone(), config.webhook_timeout)
        .map_err(std::io::Error::other)?
        .with_sealer(sealer.clone());
    let sso = sso::provider::Providers::new(config.sso_policy.clone(), SSO_TIMEOUT).map_err(std::io::Error::other)?;
    let workers = Workers::start(&config, &store, &writer, &webhooks, &sealer, &shutdown);
    let login = Arc::new(Mutex::new(LoginThrottle::new(
        config.login.window_ms,
        config.login.per_account,
        config.login.per_ip,
    )));
    let limits = Arc::new(Limiters::new(&config.rate_limits));
    let (reads, reads_task) = ReadAudit::spawn(writer.clone(), metrics);
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
        sealer,
        sso,
        personal,
    };
    let app = http::router(state, ui::router());
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "auditlog listening");
    let listener = http::connections::LimitedListener::new(listener, max_connections);
    http::server::serve(listener, app, header_read_timeout, shutdown).await;
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

//! auditlog's server: the HTTP API, the group-commit writer and, later, the
//! background workers, all around a [`Store`] chosen by the binary.
//!
//! # Layout
//!
//! - [`config`]: what the server needs to run, with defaults.
//! - [`error`]: the one API error type and its mapping to HTTP.
//! - [`auth`]: who is calling (API keys) and what they may do.
//! - [`writer`]: the single writer that batches concurrent requests into one
//!   durable transaction and acknowledges each only after commit.
//! - [`query_string`]: reading repeatable query parameters.
//! - [`routes`]: one module per group of endpoints.
//!
//! [`serve`] takes its listener and shutdown token as arguments, so tests run
//! it on port 0 and stop it when they like.

#![forbid(unsafe_code)]

pub mod auth;
pub mod config;
pub mod context;
pub mod error;
pub mod query_string;
pub mod recorder;
pub mod routes;
pub mod writer;

use std::net::SocketAddr;
use std::sync::Arc;

use auditlog_domain::{Catalog, Clock, Store};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use config::ServerConfig;
pub use writer::Writer;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub catalog: Arc<Catalog>,
    pub clock: Arc<dyn Clock>,
    pub writer: Writer,
    pub config: Arc<ServerConfig>,
}

/// Serves the API on `listener` until `shutdown` is cancelled, then stops
/// accepting connections, lets in-flight requests finish (their commits
/// included) and drains the writer before returning.
pub async fn serve(
    config: ServerConfig,
    store: Arc<dyn Store>,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let (writer, writer_task) = Writer::spawn(store.clone(), config.clock.clone(), config.writer.clone());
    let state = AppState {
        store,
        catalog: config.catalog.clone(),
        clock: config.clock.clone(),
        writer,
        config: Arc::new(config),
    };
    let app = routes::router(state);
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "auditlog listening");
    let result = axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await;
    // The router (and with it every writer handle) is gone; the writer
    // commits what is queued and ends.
    if let Err(e) = writer_task.await {
        tracing::error!(error = %e, "writer task failed");
    }
    tracing::info!("auditlog stopped");
    result
}

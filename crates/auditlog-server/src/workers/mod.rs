//! The work beside the HTTP server: the group-commit writer every write
//! goes through, and the background tasks around the store.
//!
//! - [`writer`]: the single writer that batches concurrent requests into
//!   one durable transaction and acknowledges each only after commit.
//! - [`dispatcher`]: delivering the webhook outbox, with retries, through
//!   [`webhook_client`] (the HTTP client and where it may go).
//! - [`checkpointer`]: signed checkpoints of each organization's Merkle
//!   tree, and the proofs put together from its stored nodes.
//! - [`retention`]: the purger of entries past the plan's window.
//! - [`sessions`]: the end of expired sessions, recorded (run with the
//!   purger, at its interval).
//! - [`read_recorder`]: recording reads of the log, one entry per look.
//! - [`streams`]: SIEM streams, one sender per stream across replicas.
//! - [`org_slugs`]: organizations' slugs for what those two send.
//! - [`fault`]: points where tests make the process die on purpose.
//!
//! Nothing here knows HTTP: handlers reach the workers through
//! `http::state::AppState`, never the other way round.

pub mod checkpointer;
pub mod dispatcher;
pub mod fault;
pub mod org_slugs;
pub mod read_recorder;
pub mod retention;
pub mod sessions;
pub mod streams;
pub mod webhook_client;
pub mod writer;

use std::sync::Arc;

use auditlog_domain::Store;
use auditlog_domain::sealed::SecretSealer;
use tokio_util::sync::CancellationToken;

use crate::config::ServerConfig;
use checkpointer::Checkpointer;
use dispatcher::Dispatcher;
use webhook_client::WebhookClient;
use writer::Writer;

/// The background work beside the HTTP server: webhook delivery,
/// checkpoint signing and retention, each ending on shutdown.
pub struct Workers {
    pub checkpoints: Checkpointer,
    tasks: Vec<(&'static str, tokio::task::JoinHandle<()>)>,
}

impl Workers {
    pub fn start(
        config: &ServerConfig,
        store: &Arc<dyn Store>,
        writer: &Writer,
        webhooks: &WebhookClient,
        sealer: &Arc<SecretSealer>,
        shutdown: &CancellationToken,
    ) -> Self {
        let (clock, metrics) = (&config.runtime.clock, &config.runtime.metrics);
        let dispatcher = Dispatcher::new(
            store.clone(),
            writer.clone(),
            clock.clone(),
            webhooks.clone(),
            config.dispatcher.clone(),
        )
        .with_metrics(metrics.clone());
        let checkpoints =
            Checkpointer::new(store.clone(), clock.clone(), config.checkpoints.clone()).with_metrics(metrics.clone());
        let purger = retention::run(
            store.clone(),
            writer.clone(),
            clock.clone(),
            config.retention.clone(),
            metrics.clone(),
            shutdown.clone(),
        );
        let mut tasks = vec![
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
        if config.streams.background {
            let supervisor = streams::Supervisor {
                store: streams::thread::MainStore::new(store.clone()),
                clock: clock.clone(),
                config: config.streams.clone(),
                metrics: metrics.clone(),
                sealer: Some(sealer.clone()),
                commits: writer.commits(),
            };
            tasks.push(("SIEM streams", streams::thread::spawn(supervisor.run(shutdown.clone()))));
        }
        Self { checkpoints, tasks }
    }

    pub async fn join(self) {
        for (name, task) in self.tasks {
            if let Err(e) = task.await {
                tracing::error!(error = %e, "{name} failed");
            }
        }
    }
}

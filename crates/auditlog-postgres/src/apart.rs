//! A runtime of the store's own, on a thread of its own, where appends run.
//!
//! While an append holds an organization's log head, every other replica
//! appending to that organization waits, so each answer PostgreSQL sends
//! the append must be taken up at once. On the server's runtime it would
//! wait its turn behind every HTTP request ready to run: under load that
//! wait was a large part of the time a head stayed locked. Here
//! an append's only neighbours are the other appends and the connections
//! they read from, which are made on this runtime and so driven by it (a
//! pooled connection is driven by the runtime that made it).

use std::future::Future;

use auditlog_domain::StoreError;
use tokio::runtime::Handle;
use tokio::sync::oneshot;

/// The runtime; it stops once this is dropped, after the work it holds.
pub struct Apart {
    handle: Handle,
    /// Dropped with the store, which ends the runtime's thread.
    _stop: oneshot::Sender<()>,
}

impl Apart {
    /// Starts the runtime on a thread named `name`.
    pub fn start(name: &str) -> Result<Self, StoreError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| StoreError::Internal(format!("a runtime for appends: {e}")))?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        // The runtime is dropped on its own thread once `block_on` returns,
        // outside any asynchronous context, as a runtime must be.
        std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                runtime.block_on(async {
                    let _ = stopped.await;
                })
            })
            .map_err(|e| StoreError::Internal(format!("a thread for appends: {e}")))?;
        Ok(Self { handle, _stop: stop })
    }

    /// Runs `work` there and waits for its result. The work goes on if the
    /// caller stops waiting: what it commits stands, as it would have had
    /// the caller waited.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl Future<Output = T> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.handle
            .spawn(work)
            .await
            .map_err(|e| StoreError::Internal(format!("an append did not finish: {e}")))
    }
}

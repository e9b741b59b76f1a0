//! The streams' own thread: the supervisor and every sender run on a
//! runtime of their own, on a thread that yields the CPU to the rest of the
//! service.
//!
//! A stream delivers entries already committed, from a cursor kept in the
//! store, so it can fall behind and catch up without losing anything;
//! ingest cannot wait without keeping producers waiting. On a busy machine
//! the scheduler should therefore pick the writer and the request handlers
//! first. On Linux the thread's nice value is raised by [`NICE`] (a nice
//! value is per thread there; threads it starts, such as its runtime's
//! blocking pool, inherit it): formatting, encrypting and writing run at
//! that priority, the store's reads at the service's (see [`MainStore`]).
//! With idle CPU the streams run at full speed: a lower priority only
//! matters when something else wants the same core.
//!
//! The store is called from the main runtime ([`MainStore`]): a pooled
//! database connection is driven by the runtime that opened it, and one the
//! writer may use next must neither wait on a thread that yields nor end
//! when the streams' runtime does.

use std::future::Future;
use std::sync::Arc;

use auditlog_domain::{Store, StoreError};
use tokio::runtime::Handle;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How much lower the streams' thread runs than the rest of the process.
/// Under contention the scheduler gives a thread at nice 5 about a third
/// of the time it gives one at 0. Measured (`auditlog bench streams`,
/// BENCHMARKS.md): at 10 one stream at 20,000 entries/s missed its p99 of
/// 250 ms; at 5 it keeps it, and ten streams cost closed-loop ingest 40%
/// where they cost 80% at the service's own priority. Since formatting got
/// cheaper, 19 keeps that p99 too but costs ingest no less than 5 does.
pub const NICE: i32 = 5;

/// The thread's name, as `/proc/<pid>/task/<tid>/comm` shows it.
pub const NAME: &str = "auditlog-stream";

/// Runs `work` on its own thread and runtime, at a lower priority; the
/// handle resolves when it has ended.
pub fn spawn<F>(work: F) -> JoinHandle<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    let (done, ended) = oneshot::channel::<()>();
    let started = std::thread::Builder::new().name(NAME.into()).spawn(move || {
        lower_priority();
        match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(rt) => rt.block_on(work),
            Err(e) => tracing::error!(error = %e, "the SIEM streams' runtime did not start; no stream is sent"),
        }
        let _ = done.send(());
    });
    if let Err(e) = started {
        tracing::error!(error = %e, "the SIEM streams' thread did not start; no stream is sent");
    }
    tokio::spawn(async move {
        let _ = ended.await;
    })
}

#[cfg(target_os = "linux")]
fn lower_priority() {
    use rustix::process::{getpriority_process, setpriority_process};
    let me = Some(rustix::thread::gettid());
    let now = getpriority_process(me).unwrap_or(0);
    if let Err(e) = setpriority_process(me, (now + NICE).min(19)) {
        tracing::warn!(error = %e, "the SIEM streams' thread runs at the service's priority");
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_priority() {
    // Elsewhere a nice value belongs to the whole process: the streams run
    // at the service's priority.
}

/// The store, called on the service's main runtime (see the module
/// comment). Made on that runtime.
#[derive(Clone)]
pub struct MainStore {
    store: Arc<dyn Store>,
    main: Handle,
}

impl MainStore {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self {
            store,
            main: Handle::current(),
        }
    }

    /// Starts `call` on the main runtime; the handle gives its answer.
    pub fn spawn<T, Fut>(&self, call: impl FnOnce(Arc<dyn Store>) -> Fut) -> JoinHandle<Result<T, StoreError>>
    where
        Fut: Future<Output = Result<T, StoreError>> + Send + 'static,
        T: Send + 'static,
    {
        self.main.spawn(call(self.store.clone()))
    }

    /// Runs `call` on the main runtime and waits for its answer.
    pub async fn call<T, Fut>(&self, call: impl FnOnce(Arc<dyn Store>) -> Fut) -> Result<T, StoreError>
    where
        Fut: Future<Output = Result<T, StoreError>> + Send + 'static,
        T: Send + 'static,
    {
        answer(self.spawn(call).await)
    }
}

/// A store call's answer, or why its task gave none.
pub fn answer<T>(joined: Result<Result<T, StoreError>, tokio::task::JoinError>) -> Result<T, StoreError> {
    joined.unwrap_or_else(|e| Err(StoreError::Internal(format!("a store call's task failed: {e}"))))
}

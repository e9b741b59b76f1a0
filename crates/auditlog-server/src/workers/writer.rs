//! The single writer: group commit.
//!
//! Requests queue on a channel; the writer takes everything queued (up to a
//! bound), commits it in one transaction and only then answers each caller.
//! While one commit's fsync runs, the next batch gathers, so throughput
//! grows with concurrency while every acknowledgement stays durable.
//!
//! The loop is a thin shell around [`commit_batch`], which tests can call
//! directly.

use std::sync::Arc;
use std::time::Instant;

use auditlog_domain::store::{AppendRequest, Appended};
use auditlog_domain::{Clock, Store, StoreError};
use tokio::sync::{Notify, mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::metrics::{Metrics, Outcome};

#[derive(Debug, Clone)]
pub struct WriterConfig {
    /// Requests that may wait for the writer before senders are slowed down.
    pub queue: usize,
    /// Entries committed in one transaction at most; bounds the time one
    /// commit holds the database and the memory a batch takes.
    pub max_entries_per_commit: usize,
}

impl Default for WriterConfig {
    fn default() -> Self {
        Self {
            queue: 4096,
            max_entries_per_commit: 10_000,
        }
    }
}

struct Job {
    request: AppendRequest,
    reply: oneshot::Sender<Result<Vec<Appended>, StoreError>>,
}

/// A handle to the writer; cheap to clone.
#[derive(Clone)]
pub struct Writer {
    tx: mpsc::Sender<Job>,
    /// Signalled after every commit, so the webhook dispatcher wakes as soon
    /// as there may be something to deliver.
    committed: Arc<Notify>,
    /// The number of commits so far, which every SIEM stream's sender
    /// watches: unlike a notification, a change is never missed by a
    /// sender that was busy when it happened.
    commits: watch::Receiver<u64>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Writer")
    }
}

impl Writer {
    /// Starts the writer task. It ends once every handle is dropped and the
    /// queue is drained.
    pub fn spawn(store: Arc<dyn Store>, clock: Arc<dyn Clock>, config: WriterConfig) -> (Writer, JoinHandle<()>) {
        Self::spawn_observed(store, clock, config, Metrics::default())
    }

    /// [`Writer::spawn`], counting commits, their sizes and the queue in
    /// `metrics`.
    pub fn spawn_observed(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        config: WriterConfig,
        metrics: Metrics,
    ) -> (Writer, JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(config.queue);
        let committed = Arc::new(Notify::new());
        let (counter, commits) = watch::channel(0);
        let signals = Signals {
            committed: committed.clone(),
            counter,
        };
        let task = tokio::spawn(run(store, clock, config, rx, signals, metrics));
        (Writer { tx, committed, commits }, task)
    }

    /// Changes after each commit.
    pub fn commits(&self) -> watch::Receiver<u64> {
        self.commits.clone()
    }

    /// Notified after each commit.
    pub fn committed(&self) -> Arc<Notify> {
        self.committed.clone()
    }

    /// Appends one caller's entries; returns once they are committed.
    pub async fn append(&self, request: AppendRequest) -> Result<Vec<Appended>, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Job { request, reply })
            .await
            .map_err(|_| StoreError::Unavailable("the writer has stopped (shutting down)".into()))?;
        rx.await
            .map_err(|_| StoreError::Internal("the writer dropped a request without answering".into()))?
    }

    /// False once the writer task has ended.
    pub fn is_running(&self) -> bool {
        !self.tx.is_closed()
    }
}

async fn run(
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    config: WriterConfig,
    mut rx: mpsc::Receiver<Job>,
    signals: Signals,
    metrics: Metrics,
) {
    while let Some(first) = rx.recv().await {
        let mut entries = first.request.entries.len();
        let mut jobs = vec![first];
        while entries < config.max_entries_per_commit {
            match rx.try_recv() {
                Ok(job) => {
                    entries += job.request.entries.len();
                    jobs.push(job);
                }
                Err(_) => break,
            }
        }
        metrics.writer_queue.set(rx.len() as i64);
        let started = Instant::now();
        let outcome = commit_batch(store.as_ref(), clock.as_ref(), jobs).await;
        metrics.commit_seconds.observe(started.elapsed().as_secs_f64());
        metrics.commit_entries.observe(entries as f64);
        metrics.commits.get_or_create(&Outcome::of(outcome)).inc();
        signals.committed.notify_one();
        signals.counter.send_modify(|n| *n += 1);
    }
    tracing::debug!("writer drained and stopped");
}

/// What the writer signals after each commit.
struct Signals {
    committed: Arc<Notify>,
    counter: watch::Sender<u64>,
}

/// Commits a batch of jobs and answers each. If the commit fails for a
/// reason other than the database being unavailable (the whole batch, or,
/// where the store split it, one of its transactions), those jobs are
/// retried one by one so one bad request cannot fail the others.
/// Returns how the transaction ended, for the metrics.
async fn commit_batch(store: &dyn Store, clock: &dyn Clock, jobs: Vec<Job>) -> &'static str {
    let several = jobs.len() > 1;
    let requests: Vec<AppendRequest> = jobs.iter().map(|j| j.request.clone()).collect();
    match store.append(requests, clock.now()).await {
        Ok(results) => {
            crate::workers::fault::point(crate::workers::fault::AFTER_COMMIT);
            let mut failed = Vec::new();
            for (job, result) in jobs.into_iter().zip(results) {
                match result {
                    Err(StoreError::Internal(cause)) if several => {
                        tracing::warn!(%cause, "a transaction of the batch failed; retrying its requests one by one");
                        failed.push(job);
                    }
                    // A caller that went away still had its entries committed.
                    result => {
                        let _ = job.reply.send(result);
                    }
                }
            }
            append_alone(store, clock, failed).await;
            "committed"
        }
        Err(StoreError::Internal(cause)) if several => {
            tracing::warn!(%cause, jobs = jobs.len(), "batch commit failed; retrying requests one by one");
            append_alone(store, clock, jobs).await;
            "retried_one_by_one"
        }
        Err(e) => {
            let message = e.to_string();
            let unavailable = matches!(e, StoreError::Unavailable(_));
            for job in jobs {
                let err = if unavailable {
                    StoreError::Unavailable(message.clone())
                } else {
                    StoreError::Internal(message.clone())
                };
                let _ = job.reply.send(Err(err));
            }
            if unavailable { "unavailable" } else { "failed" }
        }
    }
}

/// Appends each job's request in a transaction of its own and answers it.
async fn append_alone(store: &dyn Store, clock: &dyn Clock, jobs: Vec<Job>) {
    for job in jobs {
        let result = match store.append(vec![job.request.clone()], clock.now()).await {
            Ok(mut r) => r.pop().unwrap_or_else(|| Ok(Vec::new())),
            Err(e) => Err(e),
        };
        let _ = job.reply.send(result);
    }
}

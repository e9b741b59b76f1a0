//! SIEM streams in this process: a supervisor that takes the leases of
//! streams no other process holds, and one sender per stream it holds.
//!
//! Every process runs a supervisor; the store's leases make sure one
//! sender at a time works on each stream, whichever replica it is in. A
//! process that dies leaves its leases to run out, after which another
//! takes its streams on from their stored cursors. The supervisor and its
//! senders run on a thread of their own that yields to ingest ([`thread`]).

mod connect;
mod sender;
pub mod settings;
pub mod thread;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use auditlog_domain::sealed::SecretSealer;
use auditlog_domain::store::{HeldStream, Progress};
use auditlog_domain::stream::{Transport, unhealthy};
use auditlog_domain::{Clock, OrgId};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use connect::{StreamPolicy, tls_config};
use sender::{Sender, SenderParts};
use thread::MainStore;

use crate::metrics::Metrics;
use crate::workers::org_slugs::OrgSlugs;

#[derive(Debug, Clone)]
pub struct StreamsConfig {
    /// Where streams may go.
    pub policy: StreamPolicy,
    /// A stream failing for this long is reported unhealthy (the API, the
    /// console, the `auditlog_streams_unhealthy` metric).
    pub unhealthy_after: Duration,
    /// How long a held stream stays reserved to its sender without word
    /// from it; another process takes it over after that.
    pub lease: Duration,
    /// A receiver that takes no bytes for this long is given up on (and
    /// connected to again after a pause).
    pub write_timeout: Duration,
    pub connect_timeout: Duration,
    /// New entries are looked for at least this often (the writer's
    /// commits wake senders at once; this is for other replicas' entries).
    pub poll_interval: Duration,
    /// The HOSTNAME of the messages' RFC 5424 header.
    pub hostname: String,
    /// Run senders in this process.
    pub background: bool,
}

impl Default for StreamsConfig {
    fn default() -> Self {
        Self {
            policy: StreamPolicy::default(),
            unhealthy_after: Duration::from_secs(15 * 60),
            lease: Duration::from_secs(30),
            write_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            poll_interval: Duration::from_millis(500),
            hostname: local_hostname(),
            background: true,
        }
    }
}

/// The machine's name, for the syslog header; `-` (NILVALUE) if unknown.
fn local_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "-".into())
}

/// Takes and keeps the leases of streams, and runs their senders.
pub struct Supervisor {
    pub store: MainStore,
    pub clock: Arc<dyn Clock>,
    pub config: StreamsConfig,
    pub metrics: Metrics,
    pub sealer: Option<Arc<SecretSealer>>,
    pub commits: watch::Receiver<u64>,
}

/// A sender at work: which settings it runs on, and its task.
struct Running {
    revision: i64,
    task: JoinHandle<()>,
}

impl Supervisor {
    /// Claims streams every third of a lease until `cancel`, then waits
    /// for the senders to release theirs.
    pub async fn run(self, cancel: CancellationToken) {
        let holder = uuid::Uuid::now_v7().to_string();
        let parts = SenderParts {
            store: self.store.clone(),
            clock: self.clock.clone(),
            config: self.config.clone(),
            metrics: self.metrics.clone(),
            holder: holder.clone(),
            commits: self.commits.clone(),
            cancel: cancel.child_token(),
        };
        let mut running: HashMap<(OrgId, String), Running> = HashMap::new();
        let slugs = OrgSlugs::default();
        loop {
            self.round(&parts, &mut running, &slugs).await;
            tokio::select! {
                () = tokio::time::sleep(self.config.lease / 3) => {}
                () = cancel.cancelled() => break,
            }
        }
        for (_, r) in running.drain() {
            let _ = r.task.await;
        }
    }

    async fn round(&self, parts: &SenderParts, running: &mut HashMap<(OrgId, String), Running>, slugs: &OrgSlugs) {
        running.retain(|_, r| !r.task.is_finished());
        let now = self.clock.now();
        let until = now.plus_millis(self.config.lease.as_millis() as i64);
        let holder = parts.holder.clone();
        let claimed = (self.store)
            .call(move |store| async move { store.claim_streams(&holder, now, until, 1000).await })
            .await;
        let held = match claimed {
            Ok(h) => h,
            Err(e) => {
                tracing::warn!(error = %e, "claiming SIEM streams");
                return;
            }
        };
        let after = self.config.unhealthy_after.as_millis() as i64;
        let sick = held
            .iter()
            .filter(|h| unhealthy(h.stream.state.failing_since, now, after))
            .count();
        self.metrics.streams_unhealthy.set(sick as i64);
        for h in held {
            let key = (h.org_id, h.stream.settings.id.clone());
            if running.get(&key).is_some_and(|r| r.revision == h.stream.state.revision) {
                continue;
            }
            if let Some(old) = running.remove(&key) {
                // Settings changed: stopped where it is, without releasing
                // the lease its successor is about to work under.
                old.task.abort();
            }
            let (slugs, org) = (slugs.clone(), h.org_id);
            let named = (self.store)
                .call(move |store| async move { slugs.get(store.as_ref(), org).await })
                .await;
            let Ok(slug) = named else {
                continue;
            };
            let revision = h.stream.state.revision;
            let tls = match h.stream.settings.destination.transport {
                Transport::SyslogTls => match tls_config(&h.stream.settings.tls, self.sealer.as_deref()) {
                    Ok(tls) => Some(tls),
                    Err(e) => {
                        self.unusable(parts, &h, e).await;
                        continue;
                    }
                },
                Transport::SyslogTcp => None,
            };
            let task = tokio::spawn(Sender::new_held(parts.clone(), h, slug, tls).run());
            running.insert(key, Running { revision, task });
        }
    }

    /// Records why a stream cannot start (its client key no longer opens
    /// under the operator's key, say), where the API shows it.
    async fn unusable(&self, parts: &SenderParts, h: &HeldStream, error: String) {
        tracing::error!(stream = %h.stream.settings.id, error = %error, "a SIEM stream's TLS settings are unusable");
        let now = self.clock.now();
        let progress = Progress {
            cursor: h.stream.state.cursor,
            error: Some(format!("TLS settings: {error}")),
            at: now,
            lease_until: now,
            purged: 0,
        };
        let (org, rev) = (h.org_id, h.stream.state.revision);
        let (id, holder) = (h.stream.settings.id.clone(), parts.holder.clone());
        let recorded = (self.store)
            .call(move |store| async move { store.stream_progress(org, &id, &holder, rev, progress).await })
            .await;
        if let Err(e) = recorded {
            tracing::warn!(stream = %h.stream.settings.id, error = %e, "recording a SIEM stream's failure");
        }
    }
}

//! The webhook dispatcher: claims due deliveries from the outbox, sends them
//! with bounded concurrency, and records each attempt.
//!
//! A delivery is claimed under a lease before it is sent, so a dispatcher
//! that dies mid-flight (or a replica that is killed) only delays it: when
//! the lease runs out it is due again. Delivery is therefore at least once;
//! receivers de-duplicate on `webhook-id`, which is stable per entry and
//! endpoint.
//!
//! [`Dispatcher::step`] is one round, which tests call directly; [`run`]
//! repeats it whenever the writer commits (or, with several replicas on one
//! database, another replica's writer: see [`Store::wait_for_deliveries`]),
//! and at least every poll interval, until shutdown.
//!
//! Each endpoint's body is shaped by its payload format; an OCSF event names
//! the organization by its slug, which the dispatcher keeps from the store's
//! list of organizations (slugs never change), read again only when it meets
//! an organization it does not know yet.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use auditlog_domain::change::Change;
use auditlog_domain::delivery::{Outcome, classify, next_attempt, should_disable};
use auditlog_domain::entry::Resource;
use auditlog_domain::store::{AppendRequest, Attempt, AttemptResult, DueDelivery, RecordedAttempt};
use auditlog_domain::webhook::{Endpoint, PayloadFormat, message_id, payload_body};
use auditlog_domain::{Clock, NewEntry, OrgId, Store, StoreError};
use rand::RngExt;
use serde_json::json;
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::metrics::{self, Metrics};
use crate::workers::org_slugs::OrgSlugs;
use crate::workers::webhook_client::WebhookClient;
use crate::workers::writer::Writer;

#[derive(Debug, Clone)]
pub struct DispatcherConfig {
    /// Deliveries in flight at once.
    pub concurrency: usize,
    /// Deliveries claimed per round.
    pub batch: u32,
    /// How long a claimed delivery is reserved: twice the send timeout, so
    /// a slow attempt is not sent twice, while a crashed one is soon retried.
    pub lease: Duration,
    /// Rounds run at least this often, for retries coming due.
    pub poll_interval: Duration,
    /// Rounds run side by side: while one waits on receivers, another
    /// claims and sends, so a slow endpoint does not hold up the rest.
    pub workers: usize,
    /// Run the dispatcher in this process. Off for a replica that should
    /// only serve the API (and for tests that drive rounds themselves).
    pub background: bool,
}

impl Default for DispatcherConfig {
    fn default() -> Self {
        Self {
            concurrency: 64,
            batch: 300,
            lease: Duration::from_secs(30),
            poll_interval: Duration::from_secs(1),
            background: true,
            workers: 3,
        }
    }
}

/// Each body of a round, by organization, entry and payload format.
type Bodies = HashMap<(OrgId, i64, PayloadFormat), Arc<Vec<u8>>>;

#[derive(Clone)]
pub struct Dispatcher {
    store: Arc<dyn Store>,
    writer: Writer,
    clock: Arc<dyn Clock>,
    client: WebhookClient,
    config: DispatcherConfig,
    metrics: Metrics,
    /// Organizations' slugs for OCSF bodies.
    slugs: OrgSlugs,
}

impl Dispatcher {
    pub fn new(
        store: Arc<dyn Store>,
        writer: Writer,
        clock: Arc<dyn Clock>,
        client: WebhookClient,
        config: DispatcherConfig,
    ) -> Self {
        Self {
            store,
            writer,
            clock,
            client,
            config,
            metrics: Metrics::default(),
            slugs: OrgSlugs::default(),
        }
    }

    /// Counts attempts and delivery lag in `metrics`.
    pub fn with_metrics(self, metrics: Metrics) -> Self {
        Self { metrics, ..self }
    }

    /// One round: claims what is due, attempts it all with bounded
    /// concurrency, then records every attempt in one transaction. Returns
    /// how many deliveries were attempted. When the bodies cannot be made
    /// (an organization's slug unreadable) the round fails before sending,
    /// and its deliveries come due again when their lease runs out.
    pub async fn step(&self) -> Result<usize, StoreError> {
        let now = self.clock.now();
        let lease_until = now.plus_millis(self.config.lease.as_millis() as i64);
        let due = self.store.claim_deliveries(now, lease_until, self.config.batch).await?;
        let n = due.len();
        if n > 0 {
            crate::workers::fault::point(crate::workers::fault::AFTER_CLAIM);
        }
        let bodies = self.bodies(&due).await?;
        let done = self.send_all(due, &bodies).await;
        self.count(&done);
        if !done.is_empty() {
            crate::workers::fault::point(crate::workers::fault::AFTER_SEND);
        }
        let records = done
            .iter()
            .map(|(d, attempt)| RecordedAttempt {
                org_id: d.org_id,
                delivery_id: d.delivery.id.clone(),
                attempt: attempt.clone(),
            })
            .collect();
        let health = self.store.record_attempts(records).await?;
        self.disable_unhealthy(&done, health).await;
        Ok(n)
    }

    /// Each body the round sends, made once: an entry going to several
    /// endpoints is serialised once per payload format.
    async fn bodies(&self, due: &[DueDelivery]) -> Result<Bodies, StoreError> {
        let mut bodies = Bodies::new();
        for d in due {
            let key = (d.org_id, d.entry.seq, d.endpoint.payload_format);
            if bodies.contains_key(&key) {
                continue;
            }
            let org = match key.2 {
                // The entry names its organization by id; no slug needed.
                PayloadFormat::Auditlog => String::new(),
                PayloadFormat::Ocsf => self.slugs.get(self.store.as_ref(), d.org_id).await?,
            };
            bodies.insert(key, Arc::new(payload_body(&d.entry, key.2, &org)));
        }
        Ok(bodies)
    }

    /// Attempts every delivery, at most `concurrency` at once; answers each
    /// with its attempt, in the order they finish.
    async fn send_all(&self, due: Vec<DueDelivery>, bodies: &Bodies) -> Vec<(DueDelivery, Attempt)> {
        let permits = Arc::new(Semaphore::new(self.config.concurrency.max(1)));
        let mut tasks = tokio::task::JoinSet::new();
        for d in due {
            let key = (d.org_id, d.entry.seq, d.endpoint.payload_format);
            let body = bodies.get(&key).cloned().unwrap_or_default();
            let Ok(permit) = permits.clone().acquire_owned().await else {
                break;
            };
            let this = self.clone();
            tasks.spawn(async move {
                let attempt = this.attempt(&d, &body).await;
                drop(permit);
                (d, attempt)
            });
        }
        let mut done = Vec::with_capacity(tasks.len());
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok(pair) => done.push(pair),
                // Its lease runs out and the delivery comes due again.
                Err(e) => tracing::error!(error = %e, "a delivery attempt panicked"),
            }
        }
        done
    }

    /// Counts the attempts by outcome, and the lag of those delivered.
    fn count(&self, done: &[(DueDelivery, Attempt)]) {
        for (d, attempt) in done {
            let outcome = match attempt.result {
                AttemptResult::Delivered => {
                    let lag_ms = attempt.at.millis() - d.entry.received_at.millis();
                    self.metrics.webhook_lag_seconds.observe(lag_ms.max(0) as f64 / 1000.0);
                    "delivered"
                }
                AttemptResult::RetryAt(_) => "retry",
                AttemptResult::Failed => "failed",
            };
            self.metrics
                .webhook_attempts
                .get_or_create(&metrics::Outcome::of(outcome))
                .inc();
        }
    }

    /// Disables, once each, the endpoints that answered 410 Gone or whose
    /// every delivery has failed too long (`health`: each attempt's
    /// endpoint failing since when, as recorded).
    async fn disable_unhealthy(
        &self,
        done: &[(DueDelivery, Attempt)],
        health: Vec<Option<auditlog_domain::Timestamp>>,
    ) {
        let now = self.clock.now();
        let mut disabled = std::collections::HashSet::new();
        for ((d, attempt), failing_since) in done.iter().zip(health) {
            let gone = attempt.status == Some(410);
            let failing = attempt.result != AttemptResult::Delivered && should_disable(failing_since, now);
            if (gone || failing) && d.endpoint.enabled && disabled.insert((d.org_id, d.endpoint.id.clone())) {
                let reason = if gone {
                    "the receiver answered 410 Gone"
                } else {
                    "every delivery failed for 5 days"
                };
                self.disable(d.org_id, &d.endpoint, reason).await;
            }
        }
    }

    /// One attempt; decides what comes next but records nothing.
    async fn attempt(&self, due: &DueDelivery, body: &[u8]) -> Attempt {
        let DueDelivery {
            delivery,
            endpoint,
            entry,
            ..
        } = due;
        let now = self.clock.now();
        if !endpoint.enabled {
            return Attempt {
                at: now,
                status: None,
                latency_ms: 0,
                error: Some("the endpoint is disabled".into()),
                result: AttemptResult::Failed,
            };
        }
        let msg = message_id(&endpoint.id, entry);
        let sent = self
            .client
            .send(&endpoint.url, &endpoint.signing_secrets(now), &msg, now, body.to_vec())
            .await;
        let done = self.clock.now();
        let result = match classify(sent.status, sent.retry_after_secs, done) {
            Outcome::Delivered => AttemptResult::Delivered,
            Outcome::Gone => AttemptResult::Failed,
            Outcome::Retry { not_before } => {
                let jitter: f64 = rand::rng().random();
                match next_attempt(delivery.attempts + 1, done, jitter, not_before) {
                    Some(t) => AttemptResult::RetryAt(t),
                    None => AttemptResult::Failed,
                }
            }
        };
        Attempt {
            at: done,
            status: sent.status,
            latency_ms: sent.latency_ms,
            error: sent.error,
            result,
        }
    }

    /// Disables an endpoint and records `webhook.disabled`, once.
    async fn disable(&self, org_id: OrgId, endpoint: &Endpoint, reason: &str) {
        let entry = NewEntry::by_system(
            self.clock.now(),
            "webhook.disabled",
            Resource {
                kind: "webhook".into(),
                id: endpoint.id.clone(),
                name: None,
            },
            json!({"url": endpoint.url, "reason": reason}),
        );
        let request = AppendRequest {
            org_id,
            changes: vec![Change::DisableWebhook {
                id: endpoint.id.clone(),
                reason: reason.to_owned(),
            }],
            entries: vec![entry],
        };
        match self.writer.append(request).await {
            Ok(_) => tracing::warn!(webhook = %endpoint.id, %reason, "webhook endpoint disabled"),
            // Already disabled by another attempt: recorded once.
            Err(StoreError::Rejected { .. }) => {}
            Err(e) => tracing::warn!(error = %e, webhook = %endpoint.id, "could not disable the endpoint"),
        }
    }
}

pub async fn run(dispatcher: Dispatcher, wake: Arc<Notify>, shutdown: CancellationToken) {
    if !dispatcher.config.background {
        return;
    }
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..dispatcher.config.workers.max(1) {
        workers.spawn(work(dispatcher.clone(), wake.clone(), shutdown.clone()));
    }
    while workers.join_next().await.is_some() {}
    tracing::debug!("webhook dispatcher stopped");
}

/// One worker: a round whenever this process's writer commits or the store
/// signals deliveries written by another replica, at least every poll
/// interval, and straight away again after a full round.
async fn work(dispatcher: Dispatcher, wake: Arc<Notify>, shutdown: CancellationToken) {
    let poll = dispatcher.config.poll_interval;
    let batch = dispatcher.config.batch as usize;
    let store = dispatcher.store.clone();
    let mut signals_seen = 0;
    loop {
        match dispatcher.step().await {
            Ok(n) if n >= batch => continue,
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "webhook round failed; retrying"),
        }
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = wake.notified() => {}
            seen = store.wait_for_deliveries(signals_seen) => signals_seen = seen,
            () = tokio::time::sleep(poll) => {}
        }
    }
}

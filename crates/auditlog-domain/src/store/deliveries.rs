//! Webhook endpoints and the deliveries of entries to them: claiming
//! the due ones, recording attempts, and waking the dispatchers.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use serde::Serialize;

use crate::pattern::EventPattern;
use crate::sealed::SecretSealer;
use crate::store::StoreError;
use crate::webhook::Endpoint;
use crate::{Entry, OrgId, Timestamp};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum DeliveryStatus {
    Pending,
    Delivered,
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
        }
    }

    /// The status stored as [`as_str`](Self::as_str) wrote it.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Pending, Self::Delivered, Self::Failed]
            .into_iter()
            .find(|d| d.as_str() == s)
    }
}

/// One entry's delivery to one endpoint, and how it went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Delivery {
    pub id: String,
    pub webhook_id: String,
    pub seq: i64,
    pub status: DeliveryStatus,
    pub attempts: u32,
    pub next_attempt_at: Option<Timestamp>,
    pub last_attempt_at: Option<Timestamp>,
    pub last_status: Option<u16>,
    pub last_latency_ms: Option<u64>,
    pub last_error: Option<String>,
    pub created_at: Timestamp,
}

/// A delivery claimed for sending, with what is needed to send it.
#[derive(Debug, Clone)]
pub struct DueDelivery {
    pub org_id: OrgId,
    pub delivery: Delivery,
    pub endpoint: Endpoint,
    pub entry: Entry,
}

/// What the dispatcher decided after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptResult {
    Delivered,
    RetryAt(Timestamp),
    /// The schedule is spent.
    Failed,
}

impl AttemptResult {
    /// The delivery's status after the attempt, and when to try next.
    pub fn stored(self) -> (DeliveryStatus, Option<Timestamp>) {
        match self {
            AttemptResult::Delivered => (DeliveryStatus::Delivered, None),
            AttemptResult::RetryAt(t) => (DeliveryStatus::Pending, Some(t)),
            AttemptResult::Failed => (DeliveryStatus::Failed, None),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub at: Timestamp,
    pub status: Option<u16>,
    pub latency_ms: u64,
    pub error: Option<String>,
    pub result: AttemptResult,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedAttempt {
    pub org_id: OrgId,
    pub delivery_id: String,
    pub attempt: Attempt,
}

/// What a replay queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Replay {
    /// New deliveries queued.
    pub queued: u64,
    /// The last `seq` looked at, when any was: a longer replay goes on
    /// from the one after.
    pub through: Option<i64>,
}

/// Webhook endpoints and their deliveries.
#[async_trait]
pub trait DeliveryStore: Send + Sync + 'static {
    async fn webhooks(&self, org: OrgId) -> Result<Vec<Endpoint>, StoreError>;

    async fn webhook(&self, org: OrgId, id: &str) -> Result<Option<Endpoint>, StoreError>;

    /// Seals, in one transaction, every webhook secret (current or previous)
    /// still stored in clear, as written before secrets were sealed; a value
    /// changed meanwhile is left to its writer. Returns how many were sealed.
    async fn seal_clear_webhook_secrets(&self, sealer: Arc<SecretSealer>) -> Result<u64, StoreError>;

    /// Claims up to `limit` pending deliveries that are due, across all
    /// organizations, oldest first. A claimed delivery is not due again
    /// until `lease_until`, so a dispatcher that dies mid-flight only
    /// delays it; entries and endpoints come along for sending.
    async fn claim_deliveries(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<DueDelivery>, StoreError>;

    /// Records attempts on deliveries, in one transaction, and each
    /// endpoint's health: a success clears its failing-since time, a failure
    /// starts it if not running. Returns, per attempt, the endpoint's
    /// failing-since time afterwards (`None` also when the delivery is gone).
    async fn record_attempts(&self, attempts: Vec<RecordedAttempt>) -> Result<Vec<Option<Timestamp>>, StoreError>;

    /// [`DeliveryStore::record_attempts`] for one attempt.
    async fn record_attempt(
        &self,
        org: OrgId,
        delivery_id: &str,
        attempt: Attempt,
    ) -> Result<Option<Timestamp>, StoreError> {
        let one = RecordedAttempt {
            org_id: org,
            delivery_id: delivery_id.to_owned(),
            attempt,
        };
        Ok(self.record_attempts(vec![one]).await?.pop().flatten())
    }

    /// An endpoint's deliveries, newest first.
    async fn deliveries(&self, org: OrgId, webhook_id: &str, limit: u32) -> Result<Vec<Delivery>, StoreError>;

    /// Every endpoint's newest `per_endpoint` deliveries, newest first, in
    /// one read: the webhooks page's health column.
    async fn latest_deliveries(
        &self,
        org: OrgId,
        per_endpoint: u32,
    ) -> Result<HashMap<String, Vec<Delivery>>, StoreError>;

    /// Makes delivery `delivery_id` of endpoint `webhook_id` due now again,
    /// whatever its state; `NotFound` when the endpoint has no such
    /// delivery.
    async fn retry_delivery(
        &self,
        org: OrgId,
        webhook_id: &str,
        delivery_id: &str,
        now: Timestamp,
    ) -> Result<Delivery, StoreError>;

    /// Queues endpoint `webhook_id` a new delivery of each entry from seq
    /// `from` on whose event `patterns` match (empty: every event), looking
    /// at `limit` entries at most, in `seq` order: for a receiver that lost
    /// what it was sent. Deliveries already made stay as they are.
    async fn replay_deliveries(
        &self,
        org: OrgId,
        webhook_id: &str,
        patterns: &[EventPattern],
        from: i64,
        limit: u32,
        now: Timestamp,
    ) -> Result<Replay, StoreError>;

    /// Waits for a sign that deliveries were written by any process sharing
    /// the database: returns once more than `seen` signs were given since
    /// the store was opened, with their number. A worker passes the number
    /// it last got, so a sign given while it was busy is not lost. This lets
    /// every replica's dispatcher start on a new delivery at once, not at
    /// its next poll. The default never returns: with one process, its own
    /// writer already wakes its dispatcher.
    async fn wait_for_deliveries(&self, seen: u64) -> u64 {
        let _ = seen;
        std::future::pending().await
    }
}

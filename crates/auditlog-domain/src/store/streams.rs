//! SIEM streams: their settings and cursors, and the lease that lets one
//! sender at a time, in any replica, work on each.

use async_trait::async_trait;

use crate::store::StoreError;
use crate::stream::Stream;
use crate::{OrgId, Timestamp};

/// A stream a sender holds, with its organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldStream {
    pub org_id: OrgId,
    pub stream: Stream,
}

/// What a sender reports about a stream it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    /// The stream's new cursor (never moved back).
    pub cursor: i64,
    /// `Some`: connecting or sending failed with this error, which starts
    /// the stream's failing time if it is not running. `None` with a cursor
    /// past the stored one clears it.
    pub error: Option<String>,
    pub at: Timestamp,
    /// The lease is renewed until then.
    pub lease_until: Timestamp,
    /// Entries found purged before they were sent since the last report,
    /// added to the stream's count.
    pub purged: u64,
}

#[async_trait]
pub trait StreamStore: Send + Sync + 'static {
    async fn streams(&self, org: OrgId) -> Result<Vec<Stream>, StoreError>;

    async fn stream(&self, org: OrgId, id: &str) -> Result<Option<Stream>, StoreError>;

    /// Takes (or renews) the lease of up to `limit` enabled streams, across
    /// organizations, whose lease is free, ran out before `now`, or is
    /// already `holder`'s, until `lease_until`; returns them as taken.
    async fn claim_streams(
        &self,
        holder: &str,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<HeldStream>, StoreError>;

    /// Records `progress` while `holder` still holds the stream's lease and
    /// its settings are still at `revision`; `false` when not (the lease
    /// ran out and another took it, or the stream was changed, disabled or
    /// deleted): the sender must stop.
    async fn stream_progress(
        &self,
        org: OrgId,
        id: &str,
        holder: &str,
        revision: i64,
        progress: Progress,
    ) -> Result<bool, StoreError>;

    /// Gives up `holder`'s lease of the stream, so another can take it at
    /// once (on shutdown).
    async fn release_stream(&self, org: OrgId, id: &str, holder: &str) -> Result<(), StoreError>;
}

//! What lets a caller in: API keys, passwords and sessions.

use async_trait::async_trait;

use crate::api_key::{KeyHash, KeyPrefix, Scope};
use crate::session::Session;
use crate::sso::{Flow, Taken};
use crate::store::StoreError;
use crate::{OrgId, SubmittedBy, Timestamp};

#[derive(Debug, Clone)]
pub struct NewApiKey {
    pub org_id: OrgId,
    pub prefix: KeyPrefix,
    pub name: String,
    pub scopes: Vec<Scope>,
    pub hash: KeyHash,
    /// The credential that created it, as entries name one.
    pub created_by: Option<SubmittedBy>,
}

impl NewApiKey {
    /// The record of this key once stored at `now`: never used, not revoked.
    pub fn created(self, now: Timestamp) -> ApiKeyRecord {
        ApiKeyRecord {
            org_id: self.org_id,
            prefix: self.prefix,
            name: self.name,
            scopes: self.scopes,
            hash: self.hash,
            created_at: now,
            revoked_at: None,
            last_used_at: None,
            created_by: self.created_by,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ApiKeyRecord {
    pub org_id: OrgId,
    pub prefix: KeyPrefix,
    pub name: String,
    pub scopes: Vec<Scope>,
    pub hash: KeyHash,
    pub created_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
    pub last_used_at: Option<Timestamp>,
    /// Absent for keys made before the service recorded it.
    pub created_by: Option<SubmittedBy>,
}

/// API keys, passwords and sessions.
#[async_trait]
pub trait AccessStore: Send + Sync + 'static {
    async fn create_api_key(&self, key: NewApiKey, now: Timestamp) -> Result<ApiKeyRecord, StoreError>;

    /// Looks a key up by its public prefix, which is unique across the
    /// installation, so a key used against another organization can be told
    /// apart from a key that does not exist.
    async fn api_key(&self, prefix: &KeyPrefix) -> Result<Option<ApiKeyRecord>, StoreError>;

    async fn api_keys(&self, org: OrgId) -> Result<Vec<ApiKeyRecord>, StoreError>;

    /// Sets an account's password, creating the account if needed.
    async fn set_password(&self, email: &str, password_hash: &str, now: Timestamp) -> Result<(), StoreError>;

    async fn create_session(&self, session: Session) -> Result<(), StoreError>;

    /// The session with this token hash, if it exists and has not expired.
    async fn session(&self, token_hash: &[u8; 32], now: Timestamp) -> Result<Option<Session>, StoreError>;

    async fn delete_session(&self, token_hash: &[u8; 32]) -> Result<(), StoreError>;

    /// Up to `limit` sessions past their expiry at `now`, oldest first.
    async fn expired_sessions(&self, now: Timestamp, limit: u32) -> Result<Vec<Session>, StoreError>;

    /// The sessions of `email` still live at `now`.
    async fn live_sessions(&self, email: &str, now: Timestamp) -> Result<Vec<Session>, StoreError>;

    /// Keeps a sign-in sent to an identity provider; expired ones are swept.
    async fn begin_sso_flow(&self, flow: Flow) -> Result<(), StoreError>;

    /// Takes the sign-in with this state hash: fresh the first time before
    /// it expires, replayed after (until it is swept).
    async fn take_sso_flow(&self, state_hash: &[u8; 32], now: Timestamp) -> Result<Taken, StoreError>;
}

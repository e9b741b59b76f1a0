//! [`AccessStore`] on PostgreSQL: API keys, passwords and sessions.

use async_trait::async_trait;
use auditlog_domain::api_key::KeyPrefix;
use auditlog_domain::session::Session;
use auditlog_domain::sso::{self, Flow, Taken};
use auditlog_domain::store::{AccessStore, ApiKeyRecord, NewApiKey};
use auditlog_domain::{OrgId, StoreError, SubmittedBy, Timestamp};

use crate::PostgresStore;
use crate::error::{conflict_or, db_err};
use crate::rows::{API_KEY_COLUMNS, SESSION_COLUMNS};
use crate::{db, rows};

#[async_trait]
impl AccessStore for PostgresStore {
    async fn create_api_key(&self, key: NewApiKey, now: Timestamp) -> Result<ApiKeyRecord, StoreError> {
        let client = self.client().await?;
        db::execute(
            &client,
            "INSERT INTO api_keys (org_id, prefix, name, scopes, secret_hash, created_at, created_by) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[
                &key.org_id.0,
                &key.prefix.as_str(),
                &key.name,
                &rows::scopes_to_sql(&key.scopes),
                &&key.hash.0[..],
                &now.millis(),
                &key.created_by.as_ref().map(SubmittedBy::to_text),
            ],
        )
        .await
        .map_err(|e| conflict_or(e, format!("API key {}", key.prefix)))?;
        Ok(key.created(now))
    }

    async fn api_key(&self, prefix: &KeyPrefix) -> Result<Option<ApiKeyRecord>, StoreError> {
        let client = self.client().await?;
        db::query_opt(
            &client,
            &format!("SELECT {API_KEY_COLUMNS} FROM api_keys WHERE prefix = $1"),
            &[&prefix.as_str()],
        )
        .await
        .map_err(db_err)?
        .map(|r| rows::api_key(&r))
        .transpose()
    }

    async fn api_keys(&self, org: OrgId) -> Result<Vec<ApiKeyRecord>, StoreError> {
        let client = self.client().await?;
        db::query(
            &client,
            &format!("SELECT {API_KEY_COLUMNS} FROM api_keys WHERE org_id = $1 ORDER BY created_at, prefix"),
            &[&org.0],
        )
        .await
        .map_err(db_err)?
        .iter()
        .map(rows::api_key)
        .collect()
    }

    async fn set_password(&self, email: &str, password_hash: &str, now: Timestamp) -> Result<(), StoreError> {
        let client = self.client().await?;
        db::execute(
            &client,
            "INSERT INTO users (email, password_hash, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (email) DO UPDATE SET password_hash = excluded.password_hash",
            &[&email, &password_hash, &now.millis()],
        )
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn create_session(&self, session: Session) -> Result<(), StoreError> {
        let client = self.client().await?;
        db::execute(
            &client,
            "INSERT INTO sessions (token_hash, email, csrf_token, created_at, expires_at, method, sso_org_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[
                &&session.token_hash[..],
                &session.email,
                &session.csrf_token,
                &session.created_at.millis(),
                &session.expires_at.millis(),
                &session.origin.method.as_str(),
                &session.origin.sso_org.map(|o| o.0),
            ],
        )
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn session(&self, token_hash: &[u8; 32], now: Timestamp) -> Result<Option<Session>, StoreError> {
        let client = self.client().await?;
        db::query_opt(
            &client,
            &format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE token_hash = $1 AND expires_at > $2"),
            &[&&token_hash[..], &now.millis()],
        )
        .await
        .map_err(db_err)?
        .map(|r| rows::session(&r))
        .transpose()
    }

    async fn delete_session(&self, token_hash: &[u8; 32]) -> Result<(), StoreError> {
        let client = self.client().await?;
        db::execute(
            &client,
            "DELETE FROM sessions WHERE token_hash = $1",
            &[&&token_hash[..]],
        )
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn expired_sessions(&self, now: Timestamp, limit: u32) -> Result<Vec<Session>, StoreError> {
        let client = self.client().await?;
        db::query(
            &client,
            &format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE expires_at <= $1 ORDER BY expires_at LIMIT $2"),
            &[&now.millis(), &i64::from(limit)],
        )
        .await
        .map_err(db_err)?
        .iter()
        .map(rows::session)
        .collect()
    }

    async fn live_sessions(&self, email: &str, now: Timestamp) -> Result<Vec<Session>, StoreError> {
        let client = self.client().await?;
        db::query(
            &client,
            &format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE email = $1 AND expires_at > $2"),
            &[&email, &now.millis()],
        )
        .await
        .map_err(db_err)?
        .iter()
        .map(rows::session)
        .collect()
    }

    async fn begin_sso_flow(&self, flow: Flow) -> Result<(), StoreError> {
        let client = self.client().await?;
        db::execute(
            &client,
            "DELETE FROM sso_flows WHERE expires_at <= $1",
            &[&(flow.expires_at.millis() - sso::FLOW_TTL_MS)],
        )
        .await
        .map_err(db_err)?;
        db::execute(
            &client,
            "INSERT INTO sso_flows (state_hash, org_id, sealed, expires_at) VALUES ($1, $2, $3, $4)",
            &[
                &&flow.state_hash[..],
                &flow.org_id.0,
                &flow.sealed,
                &flow.expires_at.millis(),
            ],
        )
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn take_sso_flow(&self, state_hash: &[u8; 32], now: Timestamp) -> Result<Taken, StoreError> {
        let client = self.client().await?;
        // The condition is checked again under the row's lock, so of two
        // takes at once one finds it fresh.
        let fresh = db::execute(
            &client,
            "UPDATE sso_flows SET taken_at = $2 WHERE state_hash = $1 AND taken_at IS NULL AND expires_at > $2",
            &[&&state_hash[..], &now.millis()],
        )
        .await
        .map_err(db_err)?
            == 1;
        let row = db::query_opt(
            &client,
            "SELECT org_id, sealed, expires_at FROM sso_flows WHERE state_hash = $1",
            &[&&state_hash[..]],
        )
        .await
        .map_err(db_err)?;
        let Some(row) = row else { return Ok(Taken::Unknown) };
        let flow = Flow {
            state_hash: *state_hash,
            org_id: OrgId(row.try_get(0).map_err(db_err)?),
            sealed: row.try_get(1).map_err(db_err)?,
            expires_at: Timestamp(row.try_get(2).map_err(db_err)?),
        };
        Ok(if fresh {
            Taken::Fresh(flow)
        } else {
            Taken::Replayed(flow)
        })
    }
}

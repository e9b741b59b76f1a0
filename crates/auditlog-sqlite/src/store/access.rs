//! [`AccessStore`] on SQLite: API keys, passwords and sessions.

use async_trait::async_trait;
use auditlog_domain::api_key::KeyPrefix;
use auditlog_domain::session::Session;
use auditlog_domain::sso::{self, Flow, Taken};
use auditlog_domain::store::{AccessStore, ApiKeyRecord, NewApiKey};
use auditlog_domain::{OrgId, StoreError, SubmittedBy, Timestamp};
use r2d2_sqlite::rusqlite::{OptionalExtension, params};

use crate::SqliteStore;
use crate::rows;
use crate::rows::{API_KEY_COLUMNS, SESSION_COLUMNS, db_err};

#[async_trait]
impl AccessStore for SqliteStore {
    async fn create_api_key(&self, key: NewApiKey, now: Timestamp) -> Result<ApiKeyRecord, StoreError> {
        self.write(move |conn| {
            let scopes = rows::scopes_to_text(&key.scopes);
            conn.execute(
                "INSERT INTO api_keys (org_id, prefix, name, scopes, secret_hash, created_at, created_by) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    key.org_id.0,
                    key.prefix.as_str(),
                    key.name,
                    scopes,
                    &key.hash.0[..],
                    now.millis(),
                    key.created_by.as_ref().map(SubmittedBy::to_text),
                ],
            )
            .map_err(|e| rows::conflict_or(e, format!("API key {}", key.prefix)))?;
            Ok(key.created(now))
        })
        .await
    }

    async fn api_key(&self, prefix: &KeyPrefix) -> Result<Option<ApiKeyRecord>, StoreError> {
        let prefix = prefix.as_str().to_owned();
        self.read(move |conn| {
            conn.prepare_cached(&format!("SELECT {API_KEY_COLUMNS} FROM api_keys WHERE prefix = ?1"))
                .and_then(|mut s| s.query_row([prefix], rows::api_key_from_row).optional())
                .map_err(db_err)
        })
        .await
    }

    async fn api_keys(&self, org: OrgId) -> Result<Vec<ApiKeyRecord>, StoreError> {
        self.read(move |conn| {
            let mut s = conn
                .prepare_cached(&format!(
                    "SELECT {API_KEY_COLUMNS} FROM api_keys WHERE org_id = ?1 ORDER BY created_at, prefix"
                ))
                .map_err(db_err)?;
            let rows = s.query_map([org.0], rows::api_key_from_row).map_err(db_err)?;
            rows.collect::<Result<_, _>>().map_err(db_err)
        })
        .await
    }

    async fn set_password(&self, email: &str, password_hash: &str, now: Timestamp) -> Result<(), StoreError> {
        let (email, hash) = (email.to_owned(), password_hash.to_owned());
        self.write(move |conn| {
            conn.execute(
                "INSERT INTO users (email, password_hash, created_at) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (email) DO UPDATE SET password_hash = excluded.password_hash",
                params![email, hash, now.millis()],
            )
            .map_err(db_err)?;
            Ok(())
        })
        .await
    }

    async fn create_session(&self, session: Session) -> Result<(), StoreError> {
        self.write(move |conn| {
            conn.execute(
                "INSERT INTO sessions (token_hash, email, csrf_token, created_at, expires_at, method, sso_org_id) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    &session.token_hash[..],
                    session.email,
                    session.csrf_token,
                    session.created_at.millis(),
                    session.expires_at.millis(),
                    session.origin.method.as_str(),
                    session.origin.sso_org.map(|o| o.0),
                ],
            )
            .map_err(db_err)?;
            Ok(())
        })
        .await
    }

    async fn session(&self, token_hash: &[u8; 32], now: Timestamp) -> Result<Option<Session>, StoreError> {
        let hash = *token_hash;
        self.read(move |conn| {
            conn.prepare_cached(&format!(
                "SELECT {SESSION_COLUMNS} FROM sessions WHERE token_hash = ?1 AND expires_at > ?2"
            ))
            .and_then(|mut s| {
                s.query_row(params![&hash[..], now.millis()], rows::session_from_row)
                    .optional()
            })
            .map_err(db_err)
        })
        .await
    }

    async fn delete_session(&self, token_hash: &[u8; 32]) -> Result<(), StoreError> {
        let hash = *token_hash;
        self.write(move |conn| {
            conn.execute("DELETE FROM sessions WHERE token_hash = ?1", [&hash[..]])
                .map_err(db_err)?;
            Ok(())
        })
        .await
    }

    async fn expired_sessions(&self, now: Timestamp, limit: u32) -> Result<Vec<Session>, StoreError> {
        self.read(move |conn| {
            let mut s = conn
                .prepare_cached(&format!(
                    "SELECT {SESSION_COLUMNS} FROM sessions WHERE expires_at <= ?1 ORDER BY expires_at LIMIT ?2"
                ))
                .map_err(db_err)?;
            let rows = s
                .query_map(params![now.millis(), limit], rows::session_from_row)
                .map_err(db_err)?;
            rows.collect::<Result<_, _>>().map_err(db_err)
        })
        .await
    }

    async fn live_sessions(&self, email: &str, now: Timestamp) -> Result<Vec<Session>, StoreError> {
        let email = email.to_owned();
        self.read(move |conn| {
            let mut s = conn
                .prepare_cached(&format!(
                    "SELECT {SESSION_COLUMNS} FROM sessions WHERE email = ?1 AND expires_at > ?2"
                ))
                .map_err(db_err)?;
            let rows = s
                .query_map(params![email, now.millis()], rows::session_from_row)
                .map_err(db_err)?;
            rows.collect::<Result<_, _>>().map_err(db_err)
        })
        .await
    }

    async fn begin_sso_flow(&self, flow: Flow) -> Result<(), StoreError> {
        self.write(move |conn| {
            conn.execute(
                "DELETE FROM sso_flows WHERE expires_at <= ?1",
                [flow.expires_at.millis() - sso::FLOW_TTL_MS],
            )
            .map_err(db_err)?;
            conn.execute(
                "INSERT INTO sso_flows (state_hash, org_id, sealed, expires_at) VALUES (?1, ?2, ?3, ?4)",
                params![
                    &flow.state_hash[..],
                    flow.org_id.0,
                    flow.sealed,
                    flow.expires_at.millis()
                ],
            )
            .map_err(db_err)?;
            Ok(())
        })
        .await
    }

    async fn take_sso_flow(&self, state_hash: &[u8; 32], now: Timestamp) -> Result<Taken, StoreError> {
        let hash = *state_hash;
        self.write(move |conn| {
            // One writer connection: the mark and the read are not
            // interleaved with another take.
            let fresh = conn
                .execute(
                    "UPDATE sso_flows SET taken_at = ?2 WHERE state_hash = ?1 AND taken_at IS NULL AND expires_at > ?2",
                    params![&hash[..], now.millis()],
                )
                .map_err(db_err)?
                == 1;
            let flow = conn
                .query_row(
                    "SELECT org_id, sealed, expires_at FROM sso_flows WHERE state_hash = ?1",
                    [&hash[..]],
                    |r| {
                        Ok(Flow {
                            state_hash: hash,
                            org_id: OrgId(r.get(0)?),
                            sealed: r.get(1)?,
                            expires_at: Timestamp(r.get(2)?),
                        })
                    },
                )
                .optional()
                .map_err(db_err)?;
            Ok(match flow {
                Some(flow) if fresh => Taken::Fresh(flow),
                Some(flow) => Taken::Replayed(flow),
                None => Taken::Unknown,
            })
        })
        .await
    }
}

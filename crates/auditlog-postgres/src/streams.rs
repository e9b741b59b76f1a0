//! The `streams` table on PostgreSQL, laid out as the SQLite store's:
//! reading a stream from its row, and the changes to streams applied inside
//! the writer's transaction.

use auditlog_domain::change::Change;
use auditlog_domain::change_rules as rules;
use auditlog_domain::pattern::EventPattern;
use auditlog_domain::siem::Format;
use auditlog_domain::stream::{Destination, Stream, StreamSettings, StreamState, TlsSettings, Transport};
use auditlog_domain::{OrgId, StoreError, Timestamp};
use deadpool_postgres::Transaction;
use tokio_postgres::Row;

use crate::db;
use crate::error::{Failure, conflict_or};
use crate::rows::{bad, get, timestamp_opt};

pub const COLUMNS: &str = "id, transport, host, port, format, events, facility, app_name, description, enabled, \
     tls_ca, tls_client_cert, tls_client_key, created_at, revision, cursor, failing_since, last_error, \
     last_delivered_at, purged_unsent";

/// Reads a stream from [`COLUMNS`] starting at column `at`.
pub fn stream_at(r: &Row, at: usize) -> Result<Stream, StoreError> {
    let transport: &str = get(r, at + 1)?;
    let format: &str = get(r, at + 4)?;
    let events: Vec<&str> = get(r, at + 5)?;
    let port: i32 = get(r, at + 3)?;
    let facility: i16 = get(r, at + 6)?;
    let settings = StreamSettings {
        id: get(r, at)?,
        destination: Destination {
            transport: Transport::parse(transport).ok_or_else(|| bad("unknown transport"))?,
            host: get(r, at + 2)?,
            port: u16::try_from(port).map_err(|_| bad("port out of range"))?,
        },
        format: Format::parse(format).ok_or_else(|| bad("unknown format"))?,
        events: events
            .into_iter()
            .map(|p| EventPattern::parse(p).map_err(|_| bad("bad event pattern")))
            .collect::<Result<_, _>>()?,
        facility: u8::try_from(facility).map_err(|_| bad("facility out of range"))?,
        app_name: get(r, at + 7)?,
        description: get(r, at + 8)?,
        enabled: get(r, at + 9)?,
        tls: TlsSettings {
            ca_pem: get(r, at + 10)?,
            client_cert_pem: get(r, at + 11)?,
            client_key: get(r, at + 12)?,
        },
    };
    Ok(Stream {
        settings,
        created_at: Timestamp(get(r, at + 13)?),
        state: StreamState {
            revision: get(r, at + 14)?,
            cursor: get(r, at + 15)?,
            failing_since: timestamp_opt(r, at + 16)?,
            last_error: get(r, at + 17)?,
            last_delivered_at: timestamp_opt(r, at + 18)?,
            purged_unsent: get(r, at + 19)?,
        },
    })
}

/// Applies a change to streams.
pub async fn apply(tx: &Transaction<'_>, org: OrgId, change: &Change) -> Result<(), Failure> {
    match change {
        Change::CreateStream(s) => create(tx, org, s).await,
        Change::UpdateStream { settings, keep_tls_key } => update(tx, org, settings, *keep_tls_key).await,
        Change::DeleteStream { id } => {
            let n = db::execute(tx, "DELETE FROM streams WHERE org_id = $1 AND id = $2", &[&org.0, id]).await?;
            Ok(rules::expect_one(n, &format!("stream {id}"))?)
        }
        other => Err(Failure::Store(StoreError::Internal(format!(
            "not a change to streams: {other:?}"
        )))),
    }
}

type Param = Box<dyn tokio_postgres::types::ToSql + Sync + Send>;

/// A stream's settings as the parameters `$3` to `$14` of both statements
/// below (`$1` the organization, `$2` the id, `$15` each one's own).
fn settings_params(org: OrgId, c: &StreamSettings, last: Param) -> Vec<Param> {
    vec![
        Box::new(org.0),
        Box::new(c.id.clone()),
        Box::new(c.destination.transport.as_str()),
        Box::new(c.destination.host.clone()),
        Box::new(i32::from(c.destination.port)),
        Box::new(c.format.as_str()),
        Box::new(c.events.iter().map(|p| p.as_str().to_owned()).collect::<Vec<String>>()),
        Box::new(i16::from(c.facility)),
        Box::new(c.app_name.clone()),
        Box::new(c.description.clone()),
        Box::new(c.enabled),
        Box::new(c.tls.ca_pem.clone()),
        Box::new(c.tls.client_cert_pem.clone()),
        Box::new(c.tls.client_key.clone()),
        last,
    ]
}

fn refs(params: &[Param]) -> Vec<&(dyn tokio_postgres::types::ToSql + Sync)> {
    params
        .iter()
        .map(|p| p.as_ref() as &(dyn tokio_postgres::types::ToSql + Sync))
        .collect()
}

/// Inserts the stream with its cursor at the log's head, read in this
/// transaction (which holds the head's lock): it carries every entry
/// committed after it.
async fn create(tx: &Transaction<'_>, org: OrgId, s: &Stream) -> Result<(), Failure> {
    let c = &s.settings;
    let params = settings_params(org, c, Box::new(s.created_at.millis()));
    db::execute(
        tx,
        "INSERT INTO streams (org_id, id, transport, host, port, format, events, facility, app_name, description, \
         enabled, tls_ca, tls_client_cert, tls_client_key, created_at, revision, cursor) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, 1, \
         COALESCE((SELECT size FROM log_heads WHERE org_id = $1), 0))",
        &refs(&params),
    )
    .await
    .map_err(|e| Failure::Store(conflict_or(e, format!("stream {}", c.id))))?;
    Ok(())
}

/// Replaces the settings and bumps the revision, so the sender on the old
/// ones stops; re-enabling clears the failure.
async fn update(tx: &Transaction<'_>, org: OrgId, c: &StreamSettings, keep_key: bool) -> Result<(), Failure> {
    let params = settings_params(org, c, Box::new(keep_key));
    let n = db::execute(
        tx,
        "UPDATE streams SET transport = $3, host = $4, port = $5, format = $6, events = $7, facility = $8, \
         app_name = $9, description = $10, \
         failing_since = CASE WHEN $11 AND NOT enabled THEN NULL ELSE failing_since END, \
         last_error = CASE WHEN $11 AND NOT enabled THEN NULL ELSE last_error END, \
         enabled = $11, tls_ca = $12, tls_client_cert = $13, \
         tls_client_key = CASE WHEN $15 THEN tls_client_key ELSE $14 END, revision = revision + 1 \
         WHERE org_id = $1 AND id = $2",
        &refs(&params),
    )
    .await?;
    Ok(rules::expect_one(n, &format!("stream {}", c.id))?)
}

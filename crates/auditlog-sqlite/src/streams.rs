//! The `streams` table on SQLite: reading a stream from its row, and the
//! changes to streams applied inside the writer's transaction.

use auditlog_domain::change::Change;
use auditlog_domain::change_rules as rules;
use auditlog_domain::pattern::EventPattern;
use auditlog_domain::siem::Format;
use auditlog_domain::stream::{Destination, Stream, StreamSettings, StreamState, TlsSettings, Transport};
use auditlog_domain::{OrgId, StoreError, Timestamp};
use r2d2_sqlite::rusqlite::types::ToSql;
use r2d2_sqlite::rusqlite::{self, Connection, Row, params, params_from_iter};

use crate::rows::{bad_column, conflict_or, db_err, patterns_to_text};

pub const COLUMNS: &str = "id, transport, host, port, format, events, facility, app_name, description, enabled, \
     tls_ca, tls_client_cert, tls_client_key, created_at, revision, cursor, failing_since, last_error, \
     last_delivered_at, purged_unsent";

/// Reads a stream from [`COLUMNS`] starting at column `at`.
pub fn stream_at(r: &Row<'_>, at: usize) -> rusqlite::Result<Stream> {
    let transport: String = r.get(at + 1)?;
    let format: String = r.get(at + 4)?;
    let events: String = r.get(at + 5)?;
    let settings = StreamSettings {
        id: r.get(at)?,
        destination: Destination {
            transport: Transport::parse(&transport).ok_or_else(|| bad_column(at + 1, "unknown transport"))?,
            host: r.get(at + 2)?,
            port: r.get(at + 3)?,
        },
        format: Format::parse(&format).ok_or_else(|| bad_column(at + 4, "unknown format"))?,
        events: events
            .split_whitespace()
            .map(|p| EventPattern::parse(p).map_err(|_| bad_column(at + 5, "bad event pattern")))
            .collect::<Result<_, _>>()?,
        facility: r.get(at + 6)?,
        app_name: r.get(at + 7)?,
        description: r.get(at + 8)?,
        enabled: r.get(at + 9)?,
        tls: TlsSettings {
            ca_pem: r.get(at + 10)?,
            client_cert_pem: r.get(at + 11)?,
            client_key: r.get(at + 12)?,
        },
    };
    Ok(Stream {
        settings,
        created_at: Timestamp(r.get(at + 13)?),
        state: StreamState {
            revision: r.get(at + 14)?,
            cursor: r.get(at + 15)?,
            failing_since: r.get::<_, Option<i64>>(at + 16)?.map(Timestamp),
            last_error: r.get(at + 17)?,
            last_delivered_at: r.get::<_, Option<i64>>(at + 18)?.map(Timestamp),
            purged_unsent: r.get(at + 19)?,
        },
    })
}

/// Applies a change to streams.
pub fn apply(conn: &Connection, org: OrgId, change: &Change) -> Result<(), StoreError> {
    match change {
        Change::CreateStream(s) => create(conn, org, s),
        Change::UpdateStream { settings, keep_tls_key } => update(conn, org, settings, *keep_tls_key),
        Change::DeleteStream { id } => {
            let n = conn
                .execute("DELETE FROM streams WHERE org_id = ?1 AND id = ?2", params![org.0, id])
                .map_err(db_err)?;
            rules::expect_one(n as u64, &format!("stream {id}"))
        }
        other => Err(StoreError::Internal(format!("not a change to streams: {other:?}"))),
    }
}

/// A stream's settings as the parameters `?3` to `?14` of both statements
/// below (`?1` the organization, `?2` the id, `?15` each one's own).
fn settings_params(org: OrgId, c: &StreamSettings, last: Box<dyn ToSql>) -> Vec<Box<dyn ToSql>> {
    vec![
        Box::new(org.0),
        Box::new(c.id.clone()),
        Box::new(c.destination.transport.as_str()),
        Box::new(c.destination.host.clone()),
        Box::new(c.destination.port),
        Box::new(c.format.as_str()),
        Box::new(patterns_to_text(&c.events)),
        Box::new(c.facility),
        Box::new(c.app_name.clone()),
        Box::new(c.description.clone()),
        Box::new(c.enabled),
        Box::new(c.tls.ca_pem.clone()),
        Box::new(c.tls.client_cert_pem.clone()),
        Box::new(c.tls.client_key.clone()),
        last,
    ]
}

/// Inserts the stream with its cursor at the log's head, read in this
/// transaction: it carries every entry committed after it.
fn create(conn: &Connection, org: OrgId, s: &Stream) -> Result<(), StoreError> {
    let c = &s.settings;
    conn.execute(
        "INSERT INTO streams (org_id, id, transport, host, port, format, events, facility, app_name, description, \
         enabled, tls_ca, tls_client_cert, tls_client_key, created_at, revision, cursor) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, 1, \
         COALESCE((SELECT size FROM log_heads WHERE org_id = ?1), 0))",
        params_from_iter(settings_params(org, c, Box::new(s.created_at.millis()))),
    )
    .map_err(|e| conflict_or(e, format!("stream {}", c.id)))?;
    Ok(())
}

/// Replaces the settings and bumps the revision, so the sender on the old
/// ones stops; re-enabling clears the failure.
fn update(conn: &Connection, org: OrgId, c: &StreamSettings, keep_key: bool) -> Result<(), StoreError> {
    let n = conn
        .execute(
            "UPDATE streams SET transport = ?3, host = ?4, port = ?5, format = ?6, events = ?7, facility = ?8, \
             app_name = ?9, description = ?10, \
             failing_since = CASE WHEN ?11 AND NOT enabled THEN NULL ELSE failing_since END, \
             last_error = CASE WHEN ?11 AND NOT enabled THEN NULL ELSE last_error END, \
             enabled = ?11, tls_ca = ?12, tls_client_cert = ?13, \
             tls_client_key = CASE WHEN ?15 THEN tls_client_key ELSE ?14 END, revision = revision + 1 \
             WHERE org_id = ?1 AND id = ?2",
            params_from_iter(settings_params(org, c, Box::new(keep_key))),
        )
        .map_err(db_err)?;
    rules::expect_one(n as u64, &format!("stream {}", c.id))
}

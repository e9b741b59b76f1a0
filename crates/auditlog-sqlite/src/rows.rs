//! Mapping between SQLite rows and domain types, and from SQLite errors to
//! [`StoreError`].

use std::collections::BTreeMap;

use auditlog_domain::api_key::{KeyHash, KeyPrefix, Scope};
use auditlog_domain::entry::{Actor, ActorType, Resource};
use auditlog_domain::invitation::{Invitation, InvitationKind};
use auditlog_domain::member::{Member, Project};
use auditlog_domain::org::Sso;
use auditlog_domain::pattern::EventPattern;
use auditlog_domain::personal::{Disclosure, decode_commitments};
use auditlog_domain::session::Session;
use auditlog_domain::sso::{self, SessionOrigin};
use auditlog_domain::store::{ApiKeyRecord, Delivery, DeliveryStatus};
use auditlog_domain::webhook::{Endpoint, Secret};
use auditlog_domain::{Entry, Org, OrgId, StoreError, SubmittedBy, SubmitterKind, Timestamp};
use r2d2_sqlite::rusqlite::{self, ErrorCode, Row, Statement, params};
use uuid::Uuid;

pub const ENTRY_COLUMNS: &str = "org_id, seq, id, ts, received_at, actor_type, actor, event, resource_type, \
     resource_id, resource_name, details, ip_address, user_agent, request_id, idempotency_key, \
     submitted_by_kind, submitted_by_id, canonical_version, commitments";

/// The columns every schema since the first has, which
/// [`entry_from_row`] reads as canonical version 1: for migrations that run
/// before the later columns exist (the tree's backfill).
pub const ENTRY_V1_COLUMNS: &str = "org_id, seq, id, ts, received_at, actor_type, actor, event, resource_type, \
     resource_id, resource_name, details, ip_address, user_agent, request_id, idempotency_key";

pub const ORG_COLUMNS: &str = "org_id, slug, name, plan, enterprise_retention_days, created_at, sso_issuer, \
     sso_client_id, sso_enforced, sso_allowed_domains, sso_provision_role, sso_client_secret";
/// How many columns [`ORG_COLUMNS`] names: the index of a column selected
/// after them.
pub const ORG_COLUMN_COUNT: usize = 12;

pub const API_KEY_COLUMNS: &str =
    "org_id, prefix, name, scopes, secret_hash, created_at, revoked_at, last_used_at, created_by";

pub(crate) fn bad_column(i: usize, what: &str) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, what.to_owned().into())
}

pub fn entry_from_row(r: &Row<'_>) -> rusqlite::Result<Entry> {
    let v1 = r.as_ref().column_count() == 16;
    let id: Vec<u8> = r.get(2)?;
    let actor_type: String = r.get(5)?;
    let details: String = r.get(11)?;
    let ip: Option<String> = r.get(12)?;
    Ok(Entry {
        org_id: OrgId(r.get(0)?),
        seq: r.get(1)?,
        id: Uuid::from_slice(&id).map_err(|_| bad_column(2, "entry id is not 16 bytes"))?,
        timestamp: Timestamp(r.get(3)?),
        received_at: Timestamp(r.get(4)?),
        actor: Actor {
            kind: ActorType::parse(&actor_type).ok_or_else(|| bad_column(5, "unknown actor type"))?,
            id: r.get(6)?,
        },
        event: r.get(7)?,
        resource: Resource {
            kind: r.get(8)?,
            id: r.get(9)?,
            name: r.get(10)?,
        },
        details: serde_json::from_str(&details).map_err(|_| bad_column(11, "details are not a JSON object"))?,
        ip_address: ip
            .map(|s| s.parse().map_err(|_| bad_column(12, "bad IP address")))
            .transpose()?,
        user_agent: r.get(13)?,
        request_id: r.get(14)?,
        idempotency_key: r.get(15)?,
        submitted_by: if v1 { None } else { submitter_from_row(r, 16)? },
        canonical_version: if v1 { 1 } else { r.get(18)? },
        personal: if v1 {
            Default::default()
        } else {
            commitments_from_row(r, 19)?
        },
    })
}

/// A version-3 entry's commitments, as the erased disclosures its
/// personal values start from until they are restored.
fn commitments_from_row(r: &Row<'_>, at: usize) -> rusqlite::Result<BTreeMap<String, Disclosure>> {
    match r.get_ref(at)?.as_blob_or_null()? {
        None => Ok(BTreeMap::new()),
        Some(bytes) => {
            decode_commitments(bytes).ok_or_else(|| bad_column(at, "commitments are not what the writer stores"))
        }
    }
}

/// The submitter in columns `at` (kind) and `at + 1` (id); absent on
/// entries written before it was kept.
fn submitter_from_row(r: &Row<'_>, at: usize) -> rusqlite::Result<Option<SubmittedBy>> {
    match (r.get::<_, Option<String>>(at)?, r.get::<_, Option<String>>(at + 1)?) {
        (Some(kind), Some(id)) => Ok(Some(SubmittedBy {
            kind: SubmitterKind::parse(&kind).ok_or_else(|| bad_column(at, "unknown submitter kind"))?,
            id,
        })),
        _ => Ok(None),
    }
}

/// Inserts `e`'s row; `commitments` for a version-3 entry.
pub fn insert_entry(stmt: &mut Statement<'_>, e: &Entry, commitments: Option<&[u8]>) -> rusqlite::Result<()> {
    stmt.execute(params![
        e.org_id.0,
        e.seq,
        &e.id.as_bytes()[..],
        e.timestamp.millis(),
        e.received_at.millis(),
        e.actor.kind.as_str(),
        e.actor.id,
        e.event,
        e.resource.kind,
        e.resource.id,
        e.resource.name,
        e.details_json(),
        e.ip_address.map(|ip| ip.to_string()),
        e.user_agent,
        e.request_id,
        e.idempotency_key,
        e.submitted_by.as_ref().map(|b| b.kind.as_str()),
        e.submitted_by.as_ref().map(|b| b.id.as_str()),
        e.canonical_version,
        commitments,
    ])?;
    Ok(())
}

pub fn org_from_row(r: &Row<'_>) -> rusqlite::Result<Org> {
    let plan: String = r.get(3)?;
    Ok(Org {
        id: OrgId(r.get(0)?),
        slug: r.get(1)?,
        name: r.get(2)?,
        plan: plan.parse().map_err(|_| bad_column(3, "unknown plan"))?,
        enterprise_retention_days: r.get(4)?,
        created_at: Timestamp(r.get(5)?),
        sso: match (r.get::<_, Option<String>>(6)?, r.get::<_, Option<String>>(7)?) {
            (Some(issuer), Some(client_id)) => Some(Sso {
                issuer,
                client_id,
                enforced: r.get::<_, Option<bool>>(8)?.unwrap_or(false),
                allowed_domains: sso::domains_from_stored(r.get::<_, Option<String>>(9)?.as_deref()),
                provision_role: r
                    .get::<_, Option<String>>(10)?
                    .map(|role| role.parse().map_err(|_| bad_column(10, "unknown role")))
                    .transpose()?,
                client_secret_set: r.get::<_, Option<Vec<u8>>>(11)?.is_some(),
            }),
            _ => None,
        },
    })
}

pub fn member_from_row(r: &Row<'_>) -> rusqlite::Result<Member> {
    let role: String = r.get(1)?;
    Ok(Member {
        email: r.get(0)?,
        role: role.parse().map_err(|_| bad_column(1, "unknown role"))?,
        added_at: Timestamp(r.get(2)?),
    })
}

pub fn project_from_row(r: &Row<'_>) -> rusqlite::Result<Project> {
    Ok(Project {
        id: r.get(0)?,
        name: r.get(1)?,
        created_at: Timestamp(r.get(2)?),
    })
}

/// The columns [`session_from_row`] reads, in its order.
pub const SESSION_COLUMNS: &str = "token_hash, email, csrf_token, created_at, expires_at, method, sso_org_id";

pub fn session_from_row(r: &Row<'_>) -> rusqlite::Result<Session> {
    let hash: Vec<u8> = r.get(0)?;
    Ok(Session {
        token_hash: hash
            .try_into()
            .map_err(|_| bad_column(0, "session hash is not 32 bytes"))?,
        email: r.get(1)?,
        csrf_token: r.get(2)?,
        created_at: Timestamp(r.get(3)?),
        expires_at: Timestamp(r.get(4)?),
        origin: SessionOrigin::from_stored(&r.get::<_, String>(5)?, r.get(6)?),
    })
}

/// The columns [`invitation_from_row`] reads, in its order.
pub const INVITATION_COLUMNS: &str =
    "org_id, token_hash, kind, email, role, invited_by, created_at, expires_at, accepted_at";

pub fn invitation_from_row(r: &Row<'_>) -> rusqlite::Result<Invitation> {
    let hash: Vec<u8> = r.get(1)?;
    let kind: String = r.get(2)?;
    let role: String = r.get(4)?;
    Ok(Invitation {
        org_id: OrgId(r.get(0)?),
        token_hash: hash
            .try_into()
            .map_err(|_| bad_column(1, "invitation hash is not 32 bytes"))?,
        kind: InvitationKind::parse(&kind).ok_or_else(|| bad_column(2, "unknown invitation kind"))?,
        email: r.get(3)?,
        role: role.parse().map_err(|_| bad_column(4, "unknown role"))?,
        invited_by: r.get(5)?,
        created_at: Timestamp(r.get(6)?),
        expires_at: Timestamp(r.get(7)?),
        accepted_at: r.get::<_, Option<i64>>(8)?.map(Timestamp),
    })
}

pub fn scopes_to_text(scopes: &[Scope]) -> String {
    scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" ")
}

pub fn api_key_from_row(r: &Row<'_>) -> rusqlite::Result<ApiKeyRecord> {
    let prefix: String = r.get(1)?;
    let scopes: String = r.get(3)?;
    let hash: Vec<u8> = r.get(4)?;
    Ok(ApiKeyRecord {
        org_id: OrgId(r.get(0)?),
        prefix: KeyPrefix::parse(&prefix).ok_or_else(|| bad_column(1, "malformed key prefix"))?,
        name: r.get(2)?,
        scopes: scopes
            .split_whitespace()
            .map(|s| s.parse().map_err(|_| bad_column(3, "unknown scope")))
            .collect::<Result<_, _>>()?,
        hash: KeyHash(hash.try_into().map_err(|_| bad_column(4, "key hash is not 32 bytes"))?),
        created_at: Timestamp(r.get(5)?),
        revoked_at: r.get::<_, Option<i64>>(6)?.map(Timestamp),
        last_used_at: r.get::<_, Option<i64>>(7)?.map(Timestamp),
        created_by: r
            .get::<_, Option<String>>(8)?
            .as_deref()
            .and_then(SubmittedBy::parse_text),
    })
}

/// Errors a client can do nothing about but wait: the service answers 503.
pub fn db_err(e: rusqlite::Error) -> StoreError {
    match e.sqlite_error_code() {
        Some(
            ErrorCode::DatabaseBusy
            | ErrorCode::DatabaseLocked
            | ErrorCode::DiskFull
            | ErrorCode::SystemIoFailure
            | ErrorCode::CannotOpen
            | ErrorCode::ReadOnly
            | ErrorCode::OutOfMemory,
        ) => StoreError::Unavailable(e.to_string()),
        _ => StoreError::Internal(e.to_string()),
    }
}

pub fn conflict_or(e: rusqlite::Error, what: String) -> StoreError {
    if e.sqlite_error_code() == Some(ErrorCode::ConstraintViolation) {
        StoreError::Conflict(what)
    } else {
        db_err(e)
    }
}

pub const WEBHOOK_COLUMNS: &str = "id, url, description, events, enabled, secret, previous_secret, \
     previous_secret_until, created_at, failing_since, disabled_reason, payload_format";

pub fn patterns_to_text(p: &[EventPattern]) -> String {
    p.iter().map(|p| p.as_str()).collect::<Vec<_>>().join(" ")
}

/// Reads a webhook from `WEBHOOK_COLUMNS` starting at column `at`.
pub fn webhook_at(r: &Row<'_>, at: usize) -> rusqlite::Result<Endpoint> {
    let events: String = r.get(at + 3)?;
    let previous: Option<Vec<u8>> = r.get(at + 6)?;
    let until: Option<i64> = r.get(at + 7)?;
    Ok(Endpoint {
        id: r.get(at)?,
        url: r.get(at + 1)?,
        description: r.get(at + 2)?,
        events: events
            .split_whitespace()
            .map(|p| EventPattern::parse(p).map_err(|_| bad_column(at + 3, "bad event pattern")))
            .collect::<Result<_, _>>()?,
        enabled: r.get(at + 4)?,
        secret: Secret(r.get(at + 5)?),
        previous_secret: previous.zip(until).map(|(s, u)| (Secret(s), Timestamp(u))),
        created_at: Timestamp(r.get(at + 8)?),
        failing_since: r.get::<_, Option<i64>>(at + 9)?.map(Timestamp),
        disabled_reason: r.get(at + 10)?,
        payload_format: r
            .get::<_, String>(at + 11)?
            .parse()
            .map_err(|_| bad_column(at + 11, "unknown payload format"))?,
    })
}

pub const DELIVERY_COLUMNS: &str = "id, webhook_id, seq, status, attempts, next_attempt_at, last_attempt_at, \
     last_status, last_latency_ms, last_error, created_at";

/// Reads a delivery from `DELIVERY_COLUMNS` starting at column `at`.
pub fn delivery_at(r: &Row<'_>, at: usize) -> rusqlite::Result<Delivery> {
    let status: String = r.get(at + 3)?;
    Ok(Delivery {
        id: r.get(at)?,
        webhook_id: r.get(at + 1)?,
        seq: r.get(at + 2)?,
        status: DeliveryStatus::parse(&status).ok_or_else(|| bad_column(at + 3, "unknown delivery status"))?,
        attempts: r.get(at + 4)?,
        next_attempt_at: r.get::<_, Option<i64>>(at + 5)?.map(Timestamp),
        last_attempt_at: r.get::<_, Option<i64>>(at + 6)?.map(Timestamp),
        last_status: r.get(at + 7)?,
        last_latency_ms: r.get::<_, Option<i64>>(at + 8)?.map(|v| v.max(0) as u64),
        last_error: r.get(at + 9)?,
        created_at: Timestamp(r.get(at + 10)?),
    })
}

//! Mapping between PostgreSQL rows and domain types.
//!
//! Each `*_COLUMNS` list is the one order in which a type's columns are
//! selected; its reader takes the row and the index of the first column, so
//! the same reader serves a join that selects other columns first.

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
use auditlog_domain::webhook::{Endpoint, Secret, UnknownPayloadFormat};
use auditlog_domain::{Entry, Org, OrgId, StoreError, SubmittedBy, SubmitterKind, Timestamp};
use tokio_postgres::Row;
use tokio_postgres::types::{FromSql, Json};

pub const ENTRY_COLUMNS: &str = "org_id, seq, ts, received_at, id, actor_type, actor, event, resource_type, \
     resource_id, resource_name, details, ip_address, user_agent, request_id, idempotency_key, \
     submitted_by_kind, submitted_by_id, canonical_version, commitments";

pub const ORG_COLUMNS: &str = "org_id, slug, name, plan, enterprise_retention_days, created_at, sso_issuer, \
     sso_client_id, sso_enforced, sso_allowed_domains, sso_provision_role, sso_client_secret";
/// How many columns [`ORG_COLUMNS`] names: the index of a column selected
/// after them.
pub const ORG_COLUMN_COUNT: usize = 12;

pub const API_KEY_COLUMNS: &str =
    "org_id, prefix, name, scopes, secret_hash, created_at, revoked_at, last_used_at, created_by";

pub const WEBHOOK_COLUMNS: &str = "id, url, description, events, enabled, secret, previous_secret, \
     previous_secret_until, created_at, failing_since, disabled_reason, payload_format";

pub const DELIVERY_COLUMNS: &str = "id, webhook_id, seq, status, attempts, next_attempt_at, last_attempt_at, \
     last_status, last_latency_ms, last_error, created_at";

/// `columns` with each name qualified by `table` (`e.org_id, e.seq, …`), for joins.
pub fn qualified(table: &str, columns: &str) -> String {
    columns
        .split(", ")
        .map(|c| format!("{table}.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(crate) fn bad(what: impl std::fmt::Display) -> StoreError {
    StoreError::Internal(format!("unreadable row: {what}"))
}

/// One column, its conversion failure reported as the bug it is.
pub fn get<'a, T: FromSql<'a>>(r: &'a Row, i: usize) -> Result<T, StoreError> {
    r.try_get(i).map_err(bad)
}

pub(crate) fn timestamp_opt(r: &Row, i: usize) -> Result<Option<Timestamp>, StoreError> {
    Ok(get::<Option<i64>>(r, i)?.map(Timestamp))
}

pub fn hash_of(bytes: &[u8]) -> Result<[u8; 32], StoreError> {
    bytes.try_into().map_err(|_| bad("a hash is not 32 bytes"))
}

/// Reads an entry from `ENTRY_COLUMNS` starting at column `at`.
pub fn entry_at(r: &Row, at: usize) -> Result<Entry, StoreError> {
    let actor_type: &str = get(r, at + 5)?;
    let Json(details) = get::<Json<serde_json::Map<String, serde_json::Value>>>(r, at + 11)?;
    Ok(Entry {
        org_id: OrgId(get(r, at)?),
        seq: get(r, at + 1)?,
        timestamp: Timestamp(get(r, at + 2)?),
        received_at: Timestamp(get(r, at + 3)?),
        id: get(r, at + 4)?,
        actor: Actor {
            kind: ActorType::parse(actor_type).ok_or_else(|| bad("unknown actor type"))?,
            id: get(r, at + 6)?,
        },
        event: get(r, at + 7)?,
        resource: Resource {
            kind: get(r, at + 8)?,
            id: get(r, at + 9)?,
            name: get(r, at + 10)?,
        },
        details,
        ip_address: get(r, at + 12)?,
        user_agent: get(r, at + 13)?,
        request_id: get(r, at + 14)?,
        idempotency_key: get(r, at + 15)?,
        submitted_by: match (get::<Option<&str>>(r, at + 16)?, get::<Option<String>>(r, at + 17)?) {
            (Some(kind), Some(id)) => Some(SubmittedBy {
                kind: SubmitterKind::parse(kind).ok_or_else(|| bad("unknown submitter kind"))?,
                id,
            }),
            _ => None,
        },
        canonical_version: u8::try_from(get::<i16>(r, at + 18)?).map_err(|_| bad("canonical version out of range"))?,
        personal: commitments_at(r, at + 19)?,
    })
}

/// A version-3 entry's commitments, as the erased disclosures its personal
/// values start from until they are restored (see `personal::restore`).
fn commitments_at(r: &Row, at: usize) -> Result<BTreeMap<String, Disclosure>, StoreError> {
    match get::<Option<&[u8]>>(r, at)? {
        None => Ok(BTreeMap::new()),
        Some(bytes) => decode_commitments(bytes).ok_or_else(|| bad("commitments are not what the writer stores")),
    }
}

pub fn entry(r: &Row) -> Result<Entry, StoreError> {
    entry_at(r, 0)
}

/// Reads an organization from `ORG_COLUMNS` starting at column 0.
pub fn org(r: &Row) -> Result<Org, StoreError> {
    let plan: &str = get(r, 3)?;
    let days: Option<i64> = get(r, 4)?;
    Ok(Org {
        id: OrgId(get(r, 0)?),
        slug: get(r, 1)?,
        name: get(r, 2)?,
        plan: plan.parse().map_err(|_| bad("unknown plan"))?,
        enterprise_retention_days: days
            .map(u32::try_from)
            .transpose()
            .map_err(|_| bad("retention days out of range"))?,
        created_at: Timestamp(get(r, 5)?),
        sso: match (get::<Option<String>>(r, 6)?, get::<Option<String>>(r, 7)?) {
            (Some(issuer), Some(client_id)) => Some(Sso {
                issuer,
                client_id,
                enforced: get::<Option<bool>>(r, 8)?.unwrap_or(false),
                allowed_domains: sso::domains_from_stored(get::<Option<&str>>(r, 9)?),
                provision_role: get::<Option<&str>>(r, 10)?
                    .map(|role| role.parse().map_err(|_| bad("unknown role")))
                    .transpose()?,
                client_secret_set: get::<Option<&[u8]>>(r, 11)?.is_some(),
            }),
            _ => None,
        },
    })
}

/// Reads `email, role, added_at`.
pub fn member(r: &Row) -> Result<Member, StoreError> {
    let role: &str = get(r, 1)?;
    Ok(Member {
        email: get(r, 0)?,
        role: role.parse().map_err(|_| bad("unknown role"))?,
        added_at: Timestamp(get(r, 2)?),
    })
}

/// Reads `id, name, created_at`.
pub fn project(r: &Row) -> Result<Project, StoreError> {
    Ok(Project {
        id: get(r, 0)?,
        name: get(r, 1)?,
        created_at: Timestamp(get(r, 2)?),
    })
}

/// Reads `token_hash, email, csrf_token, created_at, expires_at`.
/// The columns [`invitation`] reads, in its order.
pub const INVITATION_COLUMNS: &str =
    "org_id, token_hash, kind, email, role, invited_by, created_at, expires_at, accepted_at";

pub fn invitation(r: &Row) -> Result<Invitation, StoreError> {
    let kind: String = get(r, 2)?;
    let role: String = get(r, 4)?;
    Ok(Invitation {
        org_id: OrgId(get(r, 0)?),
        token_hash: hash_of(get(r, 1)?)?,
        kind: InvitationKind::parse(&kind).ok_or_else(|| bad("unknown invitation kind"))?,
        email: get(r, 3)?,
        role: role.parse().map_err(|_| bad("unknown role"))?,
        invited_by: get(r, 5)?,
        created_at: Timestamp(get(r, 6)?),
        expires_at: Timestamp(get(r, 7)?),
        accepted_at: timestamp_opt(r, 8)?,
    })
}

/// The columns [`session`] reads, in its order.
pub const SESSION_COLUMNS: &str = "token_hash, email, csrf_token, created_at, expires_at, method, sso_org_id";

pub fn session(r: &Row) -> Result<Session, StoreError> {
    let hash: &[u8] = get(r, 0)?;
    Ok(Session {
        token_hash: hash_of(hash)?,
        email: get(r, 1)?,
        csrf_token: get(r, 2)?,
        created_at: Timestamp(get(r, 3)?),
        expires_at: Timestamp(get(r, 4)?),
        origin: SessionOrigin::from_stored(get(r, 5)?, get(r, 6)?),
    })
}

pub fn scopes_to_sql(scopes: &[Scope]) -> Vec<&'static str> {
    scopes.iter().map(|s| s.as_str()).collect()
}

pub fn api_key(r: &Row) -> Result<ApiKeyRecord, StoreError> {
    let prefix: &str = get(r, 1)?;
    let scopes: Vec<&str> = get(r, 3)?;
    let hash: &[u8] = get(r, 4)?;
    Ok(ApiKeyRecord {
        org_id: OrgId(get(r, 0)?),
        prefix: KeyPrefix::parse(prefix).ok_or_else(|| bad("malformed key prefix"))?,
        name: get(r, 2)?,
        scopes: scopes
            .into_iter()
            .map(|s| s.parse().map_err(|_| bad("unknown scope")))
            .collect::<Result<_, _>>()?,
        hash: KeyHash(hash_of(hash)?),
        created_at: Timestamp(get(r, 5)?),
        revoked_at: timestamp_opt(r, 6)?,
        last_used_at: timestamp_opt(r, 7)?,
        created_by: get::<Option<&str>>(r, 8)?.and_then(SubmittedBy::parse_text),
    })
}

pub fn patterns_to_sql(p: &[EventPattern]) -> Vec<&str> {
    p.iter().map(|p| p.as_str()).collect()
}

/// Reads a webhook from `WEBHOOK_COLUMNS` starting at column `at`.
pub fn webhook_at(r: &Row, at: usize) -> Result<Endpoint, StoreError> {
    let events: Vec<&str> = get(r, at + 3)?;
    let previous: Option<Vec<u8>> = get(r, at + 6)?;
    let until = timestamp_opt(r, at + 7)?;
    Ok(Endpoint {
        id: get(r, at)?,
        url: get(r, at + 1)?,
        description: get(r, at + 2)?,
        events: events
            .into_iter()
            .map(|p| EventPattern::parse(p).map_err(|_| bad("bad event pattern")))
            .collect::<Result<_, _>>()?,
        enabled: get(r, at + 4)?,
        secret: Secret(get(r, at + 5)?),
        previous_secret: previous.zip(until).map(|(s, u)| (Secret(s), u)),
        created_at: Timestamp(get(r, at + 8)?),
        failing_since: timestamp_opt(r, at + 9)?,
        disabled_reason: get(r, at + 10)?,
        payload_format: get::<&str>(r, at + 11)?
            .parse()
            .map_err(|e: UnknownPayloadFormat| bad(e))?,
    })
}

/// Reads a delivery from `DELIVERY_COLUMNS` starting at column `at`.
pub fn delivery_at(r: &Row, at: usize) -> Result<Delivery, StoreError> {
    let status: &str = get(r, at + 3)?;
    let last_status: Option<i32> = get(r, at + 7)?;
    Ok(Delivery {
        id: get(r, at)?,
        webhook_id: get(r, at + 1)?,
        seq: get(r, at + 2)?,
        status: DeliveryStatus::parse(status).ok_or_else(|| bad("unknown delivery status"))?,
        attempts: u32::try_from(get::<i32>(r, at + 4)?).map_err(|_| bad("negative attempts"))?,
        next_attempt_at: timestamp_opt(r, at + 5)?,
        last_attempt_at: timestamp_opt(r, at + 6)?,
        last_status: last_status
            .map(u16::try_from)
            .transpose()
            .map_err(|_| bad("HTTP status out of range"))?,
        last_latency_ms: get::<Option<i64>>(r, at + 8)?.map(|v| v.max(0) as u64),
        last_error: get(r, at + 9)?,
        created_at: Timestamp(get(r, at + 10)?),
    })
}

//! An audit entry: who did what, to which object, when and from where.
//!
//! [`NewEntry`] is what a caller asked to record, already validated;
//! [`Entry`] is what the log holds once the writer has given it an id, a
//! sequence number and a received-at time. The JSON form of [`Entry`] is the
//! one the query API, the JSON Lines export and (later) webhooks all show.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::personal::Disclosure;
use crate::{OrgId, Timestamp};

/// The version of the canonical form (`crate::canonical`) new entries are
/// written with.
pub const CURRENT_VERSION: u8 = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum ActorType {
    /// A person, named by email.
    User,
    /// An API key, named by its public prefix (`lqt_ab12cd34`).
    ApiKey,
    /// auditlog itself (retention, automatic disabling).
    System,
    /// Another service of the platform acting on its own behalf.
    Service,
}

impl ActorType {
    pub fn as_str(self) -> &'static str {
        match self {
            ActorType::User => "user",
            ActorType::ApiKey => "api_key",
            ActorType::System => "system",
            ActorType::Service => "service",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "user" => ActorType::User,
            "api_key" => ActorType::ApiKey,
            "system" => ActorType::System,
            "service" => ActorType::Service,
            _ => return None,
        })
    }

    /// The type an actor id implies when the caller does not say: an email is
    /// a user, an `lqt_` prefix a key, `system` the service itself.
    pub fn infer(actor: &str) -> Self {
        if actor == "system" {
            ActorType::System
        } else if actor.starts_with("lqt_") {
            ActorType::ApiKey
        } else if actor.contains('@') {
            ActorType::User
        } else {
            ActorType::Service
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Actor {
    #[serde(rename = "type")]
    pub kind: ActorType,
    pub id: String,
}

impl Actor {
    pub fn system() -> Self {
        Self {
            kind: ActorType::System,
            id: "system".into(),
        }
    }

    pub fn api_key(prefix: &str) -> Self {
        Self {
            kind: ActorType::ApiKey,
            id: prefix.to_owned(),
        }
    }
}

/// Which kind of credential submitted an entry to the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum SubmitterKind {
    /// auditlog itself, with no request behind it (retention, the
    /// dispatcher disabling an endpoint).
    Service,
    /// An API key, by its public prefix.
    ApiKey,
    /// A person signed in to the web UI or the API, by email.
    Session,
    /// The operator's command line on the host, as `user@host`.
    Cli,
}

impl SubmitterKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SubmitterKind::Service => "service",
            SubmitterKind::ApiKey => "api_key",
            SubmitterKind::Session => "session",
            SubmitterKind::Cli => "cli",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "service" => SubmitterKind::Service,
            "api_key" => SubmitterKind::ApiKey,
            "session" => SubmitterKind::Session,
            "cli" => SubmitterKind::Cli,
            _ => return None,
        })
    }
}

/// Who vouched for an entry: the credential that submitted it, set by the
/// service and never by the client. `actor` is what the entry says was
/// done by whom; `submitted_by` is who told the log so.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SubmittedBy {
    pub kind: SubmitterKind,
    pub id: String,
}

impl SubmittedBy {
    pub fn service() -> Self {
        Self {
            kind: SubmitterKind::Service,
            id: "auditlog".into(),
        }
    }

    pub fn new(kind: SubmitterKind, id: impl Into<String>) -> Self {
        Self { kind, id: id.into() }
    }

    /// `kind:id`, the text form of CSV cells and filters.
    pub fn to_text(&self) -> String {
        format!("{}:{}", self.kind.as_str(), self.id)
    }

    /// Reads `kind:id`.
    pub fn parse_text(s: &str) -> Option<Self> {
        let (kind, id) = s.split_once(':')?;
        let kind = SubmitterKind::parse(kind)?;
        (!id.is_empty()).then(|| Self::new(kind, id))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Resource {
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl Resource {
    /// A person of the organization, by email: the resource of every
    /// membership and sign-in event, which the catalog marks personal.
    pub fn member(email: &str) -> Self {
        Self {
            kind: "member".into(),
            id: email.to_owned(),
            name: None,
        }
    }
}

/// A validated entry waiting to be committed.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEntry {
    pub timestamp: Timestamp,
    pub actor: Actor,
    pub event: String,
    pub resource: Resource,
    pub details: serde_json::Map<String, serde_json::Value>,
    pub ip_address: Option<IpAddr>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    pub idempotency_key: Option<String>,
    /// Set by the service from the request's credential, never from its
    /// body.
    pub submitted_by: SubmittedBy,
}

impl NewEntry {
    /// An entry auditlog records as itself, with no request behind it
    /// (retention, the command line).
    pub fn by_system(timestamp: Timestamp, event: &str, resource: Resource, details: serde_json::Value) -> Self {
        Self {
            timestamp,
            actor: Actor::system(),
            event: event.to_owned(),
            resource,
            details: match details {
                serde_json::Value::Object(m) => m,
                _ => serde_json::Map::new(),
            },
            ip_address: None,
            user_agent: None,
            request_id: None,
            idempotency_key: None,
            submitted_by: SubmittedBy::service(),
        }
    }
}

/// A committed entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Entry {
    pub id: Uuid,
    #[serde(skip)]
    pub org_id: OrgId,
    pub seq: i64,
    pub timestamp: Timestamp,
    pub received_at: Timestamp,
    pub actor: Actor,
    pub event: String,
    pub resource: Resource,
    pub details: serde_json::Map<String, serde_json::Value>,
    /// IPv4 or IPv6.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub ip_address: Option<IpAddr>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    /// Who submitted it; absent on entries recorded before auditlog kept it
    /// (canonical version 1).
    #[serde(default)]
    pub submitted_by: Option<SubmittedBy>,
    /// The version of the canonical form its Merkle leaf commits to (see
    /// `canonical`); 1 when an export leaves it out.
    #[serde(default = "first_version")]
    pub canonical_version: u8,
    /// Version 3: how each personal value is disclosed, by path (see
    /// `personal::disclosure`): opened with its salt, or erased with only
    /// its commitment left.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub personal: BTreeMap<String, Disclosure>,
}

fn first_version() -> u8 {
    1
}

impl Entry {
    /// The details as compact JSON, the form stored and exported.
    pub fn details_json(&self) -> String {
        serde_json::to_string(&self.details).unwrap_or_else(|_| "{}".into())
    }
}

impl NewEntry {
    /// The entry as a store records it: these fields, with what the store
    /// assigns.
    pub fn to_entry(&self, org_id: OrgId, id: Uuid, seq: i64, received_at: Timestamp) -> Entry {
        Entry {
            id,
            org_id,
            seq,
            timestamp: self.timestamp,
            received_at,
            actor: self.actor.clone(),
            event: self.event.clone(),
            resource: self.resource.clone(),
            details: self.details.clone(),
            ip_address: self.ip_address,
            user_agent: self.user_agent.clone(),
            request_id: self.request_id.clone(),
            idempotency_key: self.idempotency_key.clone(),
            submitted_by: Some(self.submitted_by.clone()),
            canonical_version: CURRENT_VERSION,
            personal: BTreeMap::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn infers_actor_types_from_their_ids() {
        assert_eq!(ActorType::infer("alice@acme.com"), ActorType::User);
        assert_eq!(ActorType::infer("lqt_ab12cd34"), ActorType::ApiKey);
        assert_eq!(ActorType::infer("system"), ActorType::System);
        assert_eq!(ActorType::infer("billing-service"), ActorType::Service);
    }

    #[test]
    fn actor_types_round_trip_through_text() {
        for t in [
            ActorType::User,
            ActorType::ApiKey,
            ActorType::System,
            ActorType::Service,
        ] {
            assert_eq!(ActorType::parse(t.as_str()), Some(t));
        }
        assert_eq!(ActorType::parse("robot"), None);
    }

    #[test]
    fn entry_json_has_the_documented_shape() {
        let e = Entry {
            id: Uuid::nil(),
            org_id: OrgId(1),
            seq: 7,
            timestamp: Timestamp(0),
            received_at: Timestamp(5),
            actor: Actor::api_key("lqt_ab12cd34"),
            event: "project.created".into(),
            resource: Resource {
                kind: "project".into(),
                id: "p_1".into(),
                name: Some("Prod".into()),
            },
            details: serde_json::from_str(r#"{"name":"Prod"}"#).unwrap(),
            ip_address: Some("203.0.113.7".parse().unwrap()),
            user_agent: None,
            request_id: Some("r-1".into()),
            idempotency_key: None,
            submitted_by: None,
            canonical_version: 1,
            personal: Default::default(),
        };
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["seq"], 7);
        assert_eq!(v["timestamp"], "1970-01-01T00:00:00.000Z");
        assert_eq!(v["actor"]["type"], "api_key");
        assert_eq!(v["resource"]["name"], "Prod");
        assert_eq!(v["ip_address"], "203.0.113.7");
        assert!(v.get("org_id").is_none(), "the internal org id is never shown");
        assert!(v.get("idempotency_key").is_none());
        assert_eq!(e.details_json(), r#"{"name":"Prod"}"#);
    }
}

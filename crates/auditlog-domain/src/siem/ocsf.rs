//! The OCSF format: each entry as one OCSF 1.8.0 event, the MSG of an
//! RFC 5424 message as compact JSON.
//!
//! The class and activity come from [`super::ocsf_mapping`]; this module
//! fills in the attributes. Every event has the classification
//! (`class_uid`, `class_name`, `category_uid`, `category_name`,
//! `activity_id`, `activity_name`, `type_uid`, `type_name`), `severity_id`
//! and `severity`, `status_id` and `status` (with `status_detail`, the
//! entry's `reason`, on a failure), `time` (the entry's timestamp in
//! milliseconds), `timezone_offset` 0, `message`, `actor`, `metadata` and
//! `unmapped`. Then:
//!
//! - `actor`: a person is `actor.user` with `uid`, `name` and `email_addr`
//!   (when the id is an address OCSF accepts) and type User; an API key is
//!   `actor.user` with the key's prefix and type "API key" (Other); a
//!   service is `actor.app_name` plus `actor.user` of type Service; auditlog
//!   itself is `actor.app_name` "auditlog" plus `actor.user` "system" of
//!   type System.
//! - `src_endpoint.ip` when the entry has an address. Datastore Activity
//!   requires a source; an entry without an address was recorded by
//!   auditlog itself (retention, the command line), so its source is
//!   `src_endpoint.svc_name` "auditlog".
//! - `http_request.user_agent` and `http_request.uid` (the request id),
//!   where the entry has them.
//! - The resource, in the class's own attribute: `entity` (a
//!   managed_entity) for Entity Management; `user` for Account Change,
//!   Authentication, User Access Management and Group Management, whose
//!   resource is the member (Group Management adds the organization as
//!   `group`, User Access Management the new role as `privileges`,
//!   Authentication auditlog as `service`); for Datastore Activity the data
//!   is the `table` "audit_log" and the resource goes to `unmapped`.
//! - `metadata`: the product, the schema version, `uid` (the entry id),
//!   `event_code` (the event name), `sequence` (seq), `logged_time`
//!   (received_at), `original_time` (the timestamp as RFC 3339) and
//!   `tenant_uid` (the organization).
//! - `unmapped`: what has no OCSF attribute: `details` (all of them),
//!   `submitted_by` (`kind:id`), `canonical_version`, `idempotency_key`, and
//!   `resource` where the class has no place for it.

use serde_json::{Map, Value, json};

use super::ocsf_mapping::{Class, Mapping, class_of};
use super::{rfc5424, severity};
use crate::Entry;
use crate::entry::{ActorType, Resource};

/// The OCSF schema version the events follow.
pub const SCHEMA_VERSION: &str = "1.8.0";

/// The OCSF event for `entry` of organization `org`.
pub fn event(entry: &Entry, org: &str) -> Value {
    let mapping = class_of(&entry.event);
    let mut ev = classification(&mapping, &entry.event);
    let severity = severity::of_event(&entry.event);
    ev.insert("severity_id".into(), json!(severity.ocsf_id()));
    ev.insert("severity".into(), json!(severity.ocsf_name()));
    status(&mut ev, &mapping, entry);
    ev.insert("time".into(), json!(entry.timestamp.millis()));
    ev.insert("timezone_offset".into(), json!(0));
    ev.insert("message".into(), json!(rfc5424::summary(entry)));
    ev.insert("actor".into(), actor(entry));
    if let Some(src) = src_endpoint(entry, mapping.class) {
        ev.insert("src_endpoint".into(), src);
    }
    if let Some(http) = http_request(entry) {
        ev.insert("http_request".into(), http);
    }
    ev.extend(primary(&mapping, entry, org));
    ev.insert("metadata".into(), metadata(entry, org));
    ev.insert("unmapped".into(), unmapped(entry, mapping.class));
    Value::Object(ev)
}

fn classification(m: &Mapping, event: &str) -> Map<String, Value> {
    // OCSF's Other carries the source's own name for the activity.
    let activity_name = if m.activity_id == super::ocsf_mapping::OTHER {
        event
    } else {
        m.activity_caption()
    };
    let v = json!({
        "class_uid": m.class.uid(),
        "class_name": m.class.name(),
        "category_uid": m.class.category_uid(),
        "category_name": m.class.category_name(),
        "activity_id": m.activity_id,
        "activity_name": activity_name,
        "type_uid": m.type_uid(),
        "type_name": m.type_name(),
    });
    match v {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

fn status(ev: &mut Map<String, Value>, m: &Mapping, entry: &Entry) {
    if m.failure {
        ev.insert("status_id".into(), json!(2));
        ev.insert("status".into(), json!("Failure"));
        if let Some(reason) = entry.details.get("reason").and_then(Value::as_str) {
            ev.insert("status_detail".into(), json!(reason));
        }
    } else {
        ev.insert("status_id".into(), json!(1));
        ev.insert("status".into(), json!("Success"));
    }
}

/// An OCSF `user` of type `type_id`/`type_name`, named by `id`.
fn user(id: &str, type_id: u8, type_name: &str) -> Map<String, Value> {
    let mut u = Map::new();
    u.insert("uid".into(), json!(id));
    u.insert("name".into(), json!(id));
    if is_ocsf_email(id) {
        u.insert("email_addr".into(), json!(id));
    }
    u.insert("type_id".into(), json!(type_id));
    u.insert("type".into(), json!(type_name));
    u
}

fn actor(entry: &Entry) -> Value {
    let id = entry.actor.id.as_str();
    match entry.actor.kind {
        ActorType::User => json!({ "user": user(id, 1, "User") }),
        ActorType::ApiKey => json!({ "user": user(id, 99, "API key") }),
        ActorType::Service => json!({ "app_name": id, "user": user(id, 4, "Service") }),
        ActorType::System => json!({ "app_name": "auditlog", "user": user(id, 3, "System") }),
    }
}

fn src_endpoint(entry: &Entry, class: Class) -> Option<Value> {
    match entry.ip_address {
        Some(ip) => Some(json!({ "ip": ip.to_string() })),
        None if class == Class::DatastoreActivity => Some(json!({ "svc_name": "auditlog" })),
        None => None,
    }
}

fn http_request(entry: &Entry) -> Option<Value> {
    let mut h = Map::new();
    if let Some(ua) = &entry.user_agent {
        h.insert("user_agent".into(), json!(ua));
    }
    if let Some(id) = &entry.request_id {
        h.insert("uid".into(), json!(id));
    }
    (!h.is_empty()).then_some(Value::Object(h))
}

/// The class's own attributes: where the resource goes.
fn primary(m: &Mapping, entry: &Entry, org: &str) -> Map<String, Value> {
    let r = &entry.resource;
    let v = match m.class {
        Class::EntityManagement => json!({ "entity": managed_entity(r) }),
        Class::AccountChange => json!({ "user": member(r) }),
        Class::Authentication => json!({ "user": member(r), "service": { "name": "auditlog" } }),
        Class::UserAccessManagement => {
            let role = entry.details.get("new_role").and_then(Value::as_str);
            json!({ "user": member(r), "privileges": role.into_iter().collect::<Vec<_>>() })
        }
        Class::GroupManagement => json!({
            "group": { "uid": org, "name": org, "type": "Organization" },
            "user": member(r),
        }),
        Class::DatastoreActivity => json!({
            "table": { "name": "audit_log" },
            "type_id": 3,
            "type": "Table",
        }),
    };
    match v {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// The member an IAM event is about: its resource is `member`/email.
fn member(r: &Resource) -> Value {
    let mut u = user(&r.id, 1, "User");
    if let Some(name) = &r.name {
        u.insert("full_name".into(), json!(name));
    }
    Value::Object(u)
}

/// The resource as a `managed_entity`, typed where OCSF has the type.
fn managed_entity(r: &Resource) -> Value {
    let (type_id, type_name) = match r.kind.as_str() {
        "organization" => (4, "Organization"),
        "member" => (2, "User"),
        other => (99, other),
    };
    let mut e = Map::new();
    e.insert("uid".into(), json!(r.id));
    if let Some(name) = &r.name {
        e.insert("name".into(), json!(name));
    }
    e.insert("type_id".into(), json!(type_id));
    e.insert("type".into(), json!(type_name));
    Value::Object(e)
}

fn metadata(entry: &Entry, org: &str) -> Value {
    json!({
        "version": SCHEMA_VERSION,
        "product": {
            "name": "auditlog",
            "vendor_name": "auditlog",
            "version": super::cef::VERSION,
        },
        "uid": entry.id.to_string(),
        "event_code": entry.event,
        "sequence": entry.seq,
        "logged_time": entry.received_at.millis(),
        "original_time": entry.timestamp.to_rfc3339(),
        "tenant_uid": org,
    })
}

fn unmapped(entry: &Entry, class: Class) -> Value {
    let mut u = Map::new();
    u.insert("details".into(), Value::Object(entry.details.clone()));
    if let Some(by) = &entry.submitted_by {
        u.insert("submitted_by".into(), json!(by.to_text()));
    }
    u.insert("canonical_version".into(), json!(entry.canonical_version));
    if let Some(key) = &entry.idempotency_key {
        u.insert("idempotency_key".into(), json!(key));
    }
    if class == Class::DatastoreActivity {
        u.insert("resource".into(), json!(entry.resource));
    }
    Value::Object(u)
}

/// Does `s` match OCSF's `email_t` pattern,
/// `^[a-zA-Z0-9!#$%&'*+-/=?^_`{|}~.]+@[a-zA-Z0-9-]+\.[a-zA-Z0-9-.]+$`?
/// An actor id that does not stays in `uid` and `name` only, so the event
/// still validates.
pub fn is_ocsf_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    let local_ok = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+,-./=?^_`{|}~".contains(c);
    let label_ok = |c: char| c.is_ascii_alphanumeric() || c == '-';
    let Some((first, rest)) = domain.split_once('.') else {
        return false;
    };
    !local.is_empty()
        && local.chars().all(local_ok)
        && !first.is_empty()
        && first.chars().all(label_ok)
        && !rest.is_empty()
        && rest.chars().all(|c| label_ok(c) || c == '.')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Catalog;
    use crate::entry::Actor;
    use crate::siem::test_entries::{entry, nasty};

    #[test]
    fn every_event_has_the_common_attributes() {
        let mut events: Vec<String> = Catalog::builtin().events().map(|e| e.name.clone()).collect();
        events.push("dataset.exported".into());
        for name in events {
            let v = event(&entry(&name), "acme");
            for key in [
                "class_uid",
                "class_name",
                "category_uid",
                "category_name",
                "activity_id",
                "activity_name",
                "type_uid",
                "type_name",
                "severity_id",
                "severity",
                "status_id",
                "status",
                "time",
                "actor",
                "metadata",
                "unmapped",
            ] {
                assert!(v.get(key).is_some(), "{name} lacks {key}");
            }
            let (class, activity) = (v["class_uid"].as_u64().unwrap(), v["activity_id"].as_u64().unwrap());
            assert_eq!(v["type_uid"].as_u64().unwrap(), class * 100 + activity, "{name}");
        }
    }

    #[test]
    fn a_project_creation_is_an_entity_created() {
        let v = event(&entry("project.created"), "acme");
        assert_eq!(v["type_uid"], 300401);
        assert_eq!(v["type_name"], "Entity Management: Create");
        assert_eq!(v["category_name"], "Identity & Access Management");
        assert_eq!(v["time"], crate::siem::test_entries::T);
        assert_eq!(
            v["entity"],
            json!({"uid": "p_1", "name": "Prod", "type_id": 99, "type": "project"})
        );
        assert_eq!(v["actor"]["user"]["email_addr"], "alice@acme.com");
        assert_eq!(v["src_endpoint"], json!({"ip": "203.0.113.7"}));
        assert_eq!(v["http_request"], json!({"user_agent": "curl/8.5", "uid": "r-1"}));
        assert_eq!(v["metadata"]["sequence"], 42);
        assert_eq!(v["metadata"]["tenant_uid"], "acme");
        assert_eq!(v["metadata"]["original_time"], "2026-01-31T12:34:56.789Z");
        assert_eq!(v["unmapped"]["details"], json!({"name": "Prod"}));
        assert_eq!(v["unmapped"]["submitted_by"], "session:alice@acme.com");
    }

    #[test]
    fn a_failed_sign_in_says_why() {
        let mut e = entry("session.sign_in_failed");
        e.details = serde_json::from_str(r#"{"method":"password","reason":"wrong_password"}"#).unwrap();
        let v = event(&e, "acme");
        assert_eq!(
            (v["status_id"].clone(), v["status"].clone()),
            (json!(2), json!("Failure"))
        );
        assert_eq!(v["status_detail"], "wrong_password");
        assert_eq!(v["service"]["name"], "auditlog");
        assert_eq!(v["activity_name"], "Logon");
    }

    #[test]
    fn a_role_change_assigns_the_new_role() {
        let mut e = entry("organization.member_role_changed");
        e.details = serde_json::from_str(r#"{"member":"b@x.io","old_role":"viewer","new_role":"admin"}"#).unwrap();
        let v = event(&e, "acme");
        assert_eq!(v["class_uid"], 3005);
        assert_eq!(v["privileges"], json!(["admin"]));
        assert_eq!(v["user"]["uid"], "p_1");
    }

    #[test]
    fn a_purge_by_auditlog_has_a_source_all_the_same() {
        let mut e = entry("audit_log.retention_purged");
        e.actor = Actor::system();
        e.ip_address = None;
        let v = event(&e, "acme");
        assert_eq!(v["class_uid"], 6005);
        assert_eq!(v["src_endpoint"], json!({"svc_name": "auditlog"}));
        assert_eq!(v["actor"]["app_name"], "auditlog");
        assert_eq!(v["actor"]["user"]["type_id"], 3);
        assert_eq!(v["unmapped"]["resource"]["id"], "p_1");
    }

    #[test]
    fn an_operator_event_names_its_own_activity() {
        let v = event(&entry("dataset.exported"), "acme");
        assert_eq!(v["activity_id"], 99);
        assert_eq!(v["activity_name"], "dataset.exported");
        assert_eq!(v["severity_id"], 1);
    }

    #[test]
    fn actors_that_are_not_addresses_carry_no_email() {
        assert!(is_ocsf_email("alice+x@mail.acme.com"));
        for bad in [
            "unknown", "a@b", "a@@b.c", "é@x.io", "a b@x.io", "@x.io", "a@.io", "a@x.",
        ] {
            assert!(!is_ocsf_email(bad), "{bad}");
        }
        let v = event(&nasty(), "acme");
        assert!(v["actor"]["user"].get("email_addr").is_none());
        assert_eq!(v["actor"]["user"]["uid"], "eve\"]\\|=\r\nx@acme.com");
    }

    #[test]
    fn compact_json_is_one_line() {
        let text = event(&nasty(), "acme").to_string();
        assert!(!text.contains(['\r', '\n']));
    }
}

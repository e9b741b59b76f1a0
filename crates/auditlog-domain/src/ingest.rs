//! Turning an ingest request's untrusted JSON into validated [`NewEntry`]s.
//!
//! Every problem in a batch is collected, each with the index of its event
//! and the field at fault, so a caller fixes everything in one round trip.
//! A batch with any problem is refused whole: the writer never sees it.

use std::net::IpAddr;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::catalog::{EventSpec, RecordedBy};
use crate::entry::{Actor, ActorType, NewEntry, Resource, SubmittedBy};
use crate::{Catalog, Timestamp};

pub const MAX_BATCH: usize = 1000;
pub const MAX_DETAILS_BYTES: usize = 16 * 1024;
/// How far in the future a timestamp may lie, for clock skew between hosts.
pub const MAX_FUTURE_SKEW_MS: i64 = 5 * 60 * 1000;

const MAX_ACTOR: usize = 320;
const MAX_RESOURCE_TYPE: usize = 64;
const MAX_RESOURCE_ID: usize = 256;
const MAX_RESOURCE_NAME: usize = 256;
const MAX_USER_AGENT: usize = 512;
const MAX_REQUEST_ID: usize = 128;
const MAX_IDEMPOTENCY_KEY: usize = 128;

const FIELDS: &[&str] = &[
    "event",
    "timestamp",
    "occurred_at",
    "actor",
    "actor_type",
    "resource",
    "details",
    "ip_address",
    "ip",
    "user_agent",
    "request_id",
    "idempotency_key",
];

/// One thing wrong with one event of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Problem {
    /// The event's position in the batch (0 for a single event); absent for
    /// problems with the request as a whole.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<usize>,
    pub field: String,
    pub code: &'static str,
    pub message: String,
    /// Where in the field's text the problem lies, in characters from 0,
    /// with the length of the offending run: set for a query-language
    /// error, so a search box can underline it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub position: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub length: Option<usize>,
}

impl Problem {
    fn at(index: usize, field: &str, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            index: Some(index),
            field: field.to_owned(),
            code,
            message: message.into(),
            position: None,
            length: None,
        }
    }

    /// A problem of the whole request (no event index), at `field`.
    pub fn whole(field: &str, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            index: None,
            field: field.to_owned(),
            code,
            message: message.into(),
            position: None,
            length: None,
        }
    }
}

/// What the request itself supplies when an event leaves a field out.
#[derive(Debug, Clone)]
pub struct IngestContext<'a> {
    pub catalog: &'a Catalog,
    pub now: Timestamp,
    /// Entries older than this many days are outside the plan's window.
    pub retention_days: u32,
    pub default_actor: Actor,
    pub default_ip: Option<IpAddr>,
    pub default_request_id: Option<String>,
    /// The credential submitting the request, recorded on every entry.
    pub submitted_by: SubmittedBy,
}

/// Validates a request body: one event object, or `{"events": [...]}`.
pub fn validate_body(body: &Value, ctx: &IngestContext<'_>) -> Result<Vec<NewEntry>, Vec<Problem>> {
    let Some(obj) = body.as_object() else {
        return Err(vec![Problem::whole(
            "",
            "invalid_type",
            "the body must be a JSON object: one event, or {\"events\": [...]}",
        )]);
    };
    let events: Vec<&Value> = match obj.get("events") {
        Some(Value::Array(list)) => {
            let mut problems = Vec::new();
            for key in obj.keys().filter(|k| *k != "events") {
                problems.push(Problem::whole(
                    key,
                    "unknown_field",
                    format!("unknown field {key:?} beside \"events\" in a batch"),
                ));
            }
            if list.is_empty() {
                problems.push(Problem::whole(
                    "events",
                    "empty_batch",
                    "a batch must hold at least one event",
                ));
            }
            if list.len() > MAX_BATCH {
                problems.push(Problem::whole(
                    "events",
                    "batch_too_large",
                    format!("a batch holds at most {MAX_BATCH} events; this one has {}", list.len()),
                ));
            }
            if !problems.is_empty() {
                return Err(problems);
            }
            list.iter().collect()
        }
        Some(_) => {
            return Err(vec![Problem::whole(
                "events",
                "invalid_type",
                "\"events\" must be an array of event objects",
            )]);
        }
        None => vec![body],
    };

    let mut problems = Vec::new();
    let mut entries = Vec::with_capacity(events.len());
    for (i, ev) in events.into_iter().enumerate() {
        match validate_event(i, ev, ctx) {
            Ok(e) => entries.push(e),
            Err(mut p) => problems.append(&mut p),
        }
    }
    if problems.is_empty() {
        Ok(entries)
    } else {
        Err(problems)
    }
}

fn opt_string(
    i: usize,
    obj: &Map<String, Value>,
    field: &str,
    max: usize,
    problems: &mut Vec<Problem>,
) -> Option<String> {
    match obj.get(field) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() => {
            problems.push(Problem::at(
                i,
                field,
                "empty",
                format!("{field} must not be empty when given"),
            ));
            None
        }
        Some(Value::String(s)) if s.chars().count() > max => {
            problems.push(Problem::at(
                i,
                field,
                "too_long",
                format!("{field} is longer than {max} characters"),
            ));
            None
        }
        Some(Value::String(s)) if s.chars().any(char::is_control) => {
            problems.push(Problem::at(
                i,
                field,
                "control_character",
                format!("{field} must not hold control characters"),
            ));
            None
        }
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            problems.push(Problem::at(
                i,
                field,
                "invalid_type",
                format!("{field} must be a string"),
            ));
            None
        }
    }
}

/// Picks the one of two accepted spellings that is present.
fn one_of<'v>(
    i: usize,
    obj: &'v Map<String, Value>,
    name: &str,
    alias: &str,
    problems: &mut Vec<Problem>,
) -> Option<(&'v Value, String)> {
    match (obj.get(name), obj.get(alias)) {
        (Some(_), Some(_)) => {
            problems.push(Problem::at(
                i,
                alias,
                "conflicting_fields",
                format!("give {name} or {alias}, not both"),
            ));
            None
        }
        (Some(v), None) => Some((v, name.to_owned())),
        (None, Some(v)) => Some((v, alias.to_owned())),
        (None, None) => None,
    }
}

/// Actor types only the service itself records under.
const RESERVED_ACTOR_TYPES: &[ActorType] = &[ActorType::System];

fn reserved_event(i: usize, name: &str) -> Problem {
    Problem::at(
        i,
        "event",
        "reserved_event",
        format!(
            "event {name:?} is recorded by auditlog itself and cannot be ingested (see recorded_by in GET /v1/audit/catalog)"
        ),
    )
}

/// The actor in the object form reads return, `{"type": ..., "id": ...}`,
/// so what a client reads it can write back.
fn actor_object(i: usize, a: &Map<String, Value>, with_actor_type: bool, problems: &mut Vec<Problem>) -> Option<Actor> {
    let before = problems.len();
    if with_actor_type {
        problems.push(Problem::at(
            i,
            "actor_type",
            "conflicting_fields",
            "give the actor's type inside the actor object or as actor_type, not both",
        ));
    }
    for key in a.keys().filter(|k| !["type", "id"].contains(&k.as_str())) {
        problems.push(Problem::at(
            i,
            &format!("actor.{key}"),
            "unknown_field",
            format!("unknown field {key:?} in actor; expected type, id"),
        ));
    }
    let id = opt_string(i, a, "id", MAX_ACTOR, problems);
    let kind = match a.get("type") {
        Some(Value::String(t)) => ActorType::parse(t),
        _ => None,
    };
    if kind.is_none() {
        problems.push(Problem::at(
            i,
            "actor.type",
            "invalid_value",
            "actor.type must be one of user, api_key, system, service",
        ));
    }
    if id.is_none() && !a.contains_key("id") {
        problems.push(Problem::at(i, "actor.id", "required", "actor.id is required"));
    }
    for p in &mut problems[before..] {
        if !p.field.starts_with("actor") {
            p.field = format!("actor.{}", p.field);
        }
    }
    Some(Actor { kind: kind?, id: id? })
}

/// The actor as a string (its type given or inferred), or the caller when
/// absent.
fn string_actor(
    i: usize,
    obj: &Map<String, Value>,
    actor_type: Option<ActorType>,
    ctx: &IngestContext<'_>,
    problems: &mut Vec<Problem>,
) -> Option<Actor> {
    match opt_string(i, obj, "actor", MAX_ACTOR, problems) {
        Some(id) => Some(Actor {
            kind: actor_type.unwrap_or_else(|| ActorType::infer(&id)),
            id,
        }),
        None if obj.get("actor").is_some_and(|v| !v.is_null()) => None,
        None => {
            let mut a = ctx.default_actor.clone();
            if let Some(t) = actor_type {
                a.kind = t;
            }
            Some(a)
        }
    }
}

fn validate_event(i: usize, v: &Value, ctx: &IngestContext<'_>) -> Result<NewEntry, Vec<Problem>> {
    let Some(obj) = v.as_object() else {
        return Err(vec![Problem::at(
            i,
            "",
            "invalid_type",
            "each event must be a JSON object",
        )]);
    };
    let mut c = Check {
        i,
        obj,
        ctx,
        problems: Vec::new(),
    };
    c.unknown_fields();
    let spec = c.event();
    let timestamp = c.timestamp();
    let actor = c.actor();
    let resource = c.resource();
    let details = c.details();
    if let (Some(spec), Some(d)) = (spec, &details) {
        c.required_details(spec, d);
    }
    let ip_address = c.ip_address();
    let user_agent = c.string("user_agent", MAX_USER_AGENT);
    let request_id = c
        .string("request_id", MAX_REQUEST_ID)
        .or_else(|| ctx.default_request_id.clone());
    let idempotency_key = c.string("idempotency_key", MAX_IDEMPOTENCY_KEY);

    if !c.problems.is_empty() {
        return Err(c.problems);
    }
    match (spec, timestamp, actor, resource, details) {
        (Some(spec), Some(timestamp), Some(actor), Some(resource), Some(details)) => Ok(NewEntry {
            timestamp,
            actor,
            event: spec.name.clone(),
            resource,
            details,
            ip_address,
            user_agent,
            request_id,
            idempotency_key,
            submitted_by: ctx.submitted_by.clone(),
        }),
        // Every `None` above pushed a problem, so this arm is unreachable in
        // practice; it still answers with an error rather than a panic.
        _ => Err(vec![Problem::at(i, "", "invalid", "the event is invalid")]),
    }
}

/// One event under validation: each field's check reads it and adds what
/// is wrong to `problems`, so a client learns every problem at once.
struct Check<'a> {
    i: usize,
    obj: &'a Map<String, Value>,
    ctx: &'a IngestContext<'a>,
    problems: Vec<Problem>,
}

impl<'a> Check<'a> {
    fn problem(&mut self, field: &str, code: &'static str, message: impl Into<String>) {
        self.problems.push(Problem::at(self.i, field, code, message));
    }

    fn string(&mut self, key: &str, max: usize) -> Option<String> {
        opt_string(self.i, self.obj, key, max, &mut self.problems)
    }

    fn unknown_fields(&mut self) {
        for key in self.obj.keys() {
            if !FIELDS.contains(&key.as_str()) {
                let message = format!("unknown field {key:?}; expected one of: {}", FIELDS.join(", "));
                self.problem(key, "unknown_field", message);
            }
        }
    }

    /// The event's catalog entry; events only the service records are
    /// refused.
    fn event(&mut self) -> Option<&'a EventSpec> {
        match self.obj.get("event") {
            None | Some(Value::Null) => {
                self.problem("event", "required", "event is required, e.g. \"api_key.created\"");
                None
            }
            Some(Value::String(name)) => match self.ctx.catalog.get(name) {
                Some(spec) if spec.recorded_by == RecordedBy::Service => {
                    self.problems.push(reserved_event(self.i, name));
                    None
                }
                Some(spec) => Some(spec),
                None => {
                    let message = format!("unknown event {name:?}: it is not in the catalog (GET /v1/audit/catalog)");
                    self.problem("event", "unknown_event", message);
                    None
                }
            },
            Some(_) => {
                self.problem("event", "invalid_type", "event must be a string");
                None
            }
        }
    }

    /// When it happened: given, or now; neither far in the future nor
    /// past the plan's retention.
    fn timestamp(&mut self) -> Option<Timestamp> {
        let (now, days) = (self.ctx.now, self.ctx.retention_days);
        match one_of(self.i, self.obj, "timestamp", "occurred_at", &mut self.problems) {
            None | Some((Value::Null, _)) => Some(now),
            Some((Value::String(s), field)) => match Timestamp::parse(s) {
                Ok(t) if t > now.plus_millis(MAX_FUTURE_SKEW_MS) => {
                    let message = format!("{field} {s} is more than 5 minutes in the future (server time {now})");
                    self.problem(&field, "in_future", message);
                    None
                }
                Ok(t) if t < now.minus_days(days) => {
                    let message = format!("{field} {s} is older than the plan's retention window of {days} days");
                    self.problem(&field, "outside_retention", message);
                    None
                }
                Ok(t) => Some(t),
                Err(e) => {
                    self.problem(&field, "invalid_timestamp", e.to_string());
                    None
                }
            },
            Some((_, field)) => {
                self.problem(&field, "invalid_type", format!("{field} must be an RFC 3339 string"));
                None
            }
        }
    }

    /// Who did it, as an object or a string with an optional type; the
    /// service's own actor types are refused.
    fn actor(&mut self) -> Option<Actor> {
        let object_actor = match self.obj.get("actor") {
            Some(Value::Object(a)) => Some(actor_object(
                self.i,
                a,
                self.obj.contains_key("actor_type"),
                &mut self.problems,
            )),
            _ => None,
        };
        let actor_type = self.actor_type();
        let actor = match object_actor {
            Some(a) => a,
            None => string_actor(self.i, self.obj, actor_type, self.ctx, &mut self.problems),
        };
        if let Some(a) = &actor
            && RESERVED_ACTOR_TYPES.contains(&a.kind)
        {
            let message = format!(
                "actor type {:?} is reserved: only auditlog records what it does itself",
                a.kind.as_str()
            );
            self.problem("actor_type", "reserved_event", message);
        }
        actor
    }

    fn actor_type(&mut self) -> Option<ActorType> {
        match self.obj.get("actor_type") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => {
                let t = ActorType::parse(s);
                if t.is_none() {
                    self.problem(
                        "actor_type",
                        "invalid_value",
                        "actor_type must be one of user, api_key, system, service",
                    );
                }
                t
            }
            Some(_) => {
                self.problem("actor_type", "invalid_type", "actor_type must be a string");
                None
            }
        }
    }

    fn resource(&mut self) -> Option<Resource> {
        match self.obj.get("resource") {
            None | Some(Value::Null) => {
                self.problem(
                    "resource",
                    "required",
                    "resource is required: {\"type\": ..., \"id\": ..., \"name\": optional}",
                );
                None
            }
            Some(Value::Object(r)) => self.resource_object(r),
            Some(_) => {
                self.problem("resource", "invalid_type", "resource must be an object");
                None
            }
        }
    }

    fn resource_object(&mut self, r: &Map<String, Value>) -> Option<Resource> {
        let before = self.problems.len();
        for key in r.keys().filter(|k| !["type", "id", "name"].contains(&k.as_str())) {
            let message = format!("unknown field {key:?} in resource; expected type, id, name");
            self.problem(&format!("resource.{key}"), "unknown_field", message);
        }
        let kind = opt_string(self.i, r, "type", MAX_RESOURCE_TYPE, &mut self.problems);
        let id = opt_string(self.i, r, "id", MAX_RESOURCE_ID, &mut self.problems);
        let name = opt_string(self.i, r, "name", MAX_RESOURCE_NAME, &mut self.problems);
        // Re-label nested problems with their full path.
        for p in &mut self.problems[before..] {
            if !p.field.starts_with("resource.") {
                p.field = format!("resource.{}", p.field);
            }
        }
        if kind.is_none() && !r.contains_key("type") {
            self.problem("resource.type", "required", "resource.type is required");
        }
        if id.is_none() && !r.contains_key("id") {
            self.problem("resource.id", "required", "resource.id is required");
        }
        Some(Resource {
            kind: kind?,
            id: id?,
            name,
        })
    }

    fn details(&mut self) -> Option<Map<String, Value>> {
        match self.obj.get("details") {
            None | Some(Value::Null) => Some(Map::new()),
            Some(Value::Object(d)) => {
                let size = serde_json::to_string(d).map(|s| s.len()).unwrap_or(usize::MAX);
                if size > MAX_DETAILS_BYTES {
                    let message = format!("details are {size} bytes as compact JSON; the limit is {MAX_DETAILS_BYTES}");
                    self.problem("details", "too_large", message);
                    None
                } else {
                    Some(d.clone())
                }
            }
            Some(_) => {
                self.problem("details", "invalid_type", "details must be a JSON object");
                None
            }
        }
    }

    fn required_details(&mut self, spec: &EventSpec, details: &Map<String, Value>) {
        for key in &spec.required_details {
            if details.get(key).is_none_or(Value::is_null) {
                let message = format!("event {} requires the detail key {key:?}", spec.name);
                self.problem(&format!("details.{key}"), "missing_detail", message);
            }
        }
    }

    /// Where from: given, or the request's own address.
    fn ip_address(&mut self) -> Option<IpAddr> {
        match one_of(self.i, self.obj, "ip_address", "ip", &mut self.problems) {
            None | Some((Value::Null, _)) => self.ctx.default_ip,
            Some((Value::String(s), field)) => {
                let ip = s.parse::<IpAddr>().ok();
                if ip.is_none() {
                    let message = format!("{field} {s:?} is not an IPv4 or IPv6 address");
                    self.problem(&field, "invalid_ip", message);
                }
                ip
            }
            Some((_, field)) => {
                self.problem(&field, "invalid_type", format!("{field} must be a string"));
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: i64 = 1_790_000_000_000;

    fn ctx(catalog: &Catalog) -> IngestContext<'_> {
        IngestContext {
            catalog,
            now: Timestamp(NOW),
            retention_days: 90,
            default_actor: Actor::api_key("lqt_ab12cd34"),
            default_ip: Some("198.51.100.1".parse().unwrap()),
            default_request_id: Some("req-1".into()),
            submitted_by: SubmittedBy::new(crate::SubmitterKind::ApiKey, "lqt_ab12cd34"),
        }
    }

    fn good() -> Value {
        json!({
            "event": "alert.triggered",
            "actor": "alice@acme.com",
            "resource": {"type": "alert", "id": "al_1"},
            "details": {"name": "Latency", "value": 812, "threshold": 500}
        })
    }

    fn problems(body: Value) -> Vec<Problem> {
        let c = Catalog::builtin();
        validate_body(&body, &ctx(&c)).unwrap_err()
    }

    #[test]
    fn accepts_a_single_event_and_fills_defaults() {
        let c = Catalog::builtin();
        let got = validate_body(&good(), &ctx(&c)).unwrap();
        assert_eq!(got.len(), 1);
        let e = &got[0];
        assert_eq!(e.timestamp, Timestamp(NOW));
        assert_eq!(e.actor.kind, ActorType::User);
        assert_eq!(e.ip_address, Some("198.51.100.1".parse().unwrap()));
        assert_eq!(e.request_id.as_deref(), Some("req-1"));
    }

    #[test]
    fn actor_defaults_to_the_calling_key() {
        let c = Catalog::builtin();
        let mut body = good();
        body.as_object_mut().unwrap().remove("actor");
        let got = validate_body(&body, &ctx(&c)).unwrap();
        assert_eq!(got[0].actor, Actor::api_key("lqt_ab12cd34"));
    }

    #[test]
    fn accepts_a_batch_and_both_spellings_of_timestamp_and_ip() {
        let c = Catalog::builtin();
        let mut a = good();
        a["occurred_at"] = json!("2026-09-21T10:00:00Z");
        a["ip"] = json!("2001:db8::1");
        let mut b = good();
        b["timestamp"] = json!("2026-09-21T10:00:00.5+02:00");
        b["ip_address"] = json!("203.0.113.9");
        let got = validate_body(&json!({"events": [a, b]}), &ctx(&c)).unwrap();
        assert_eq!(got[0].timestamp, Timestamp::parse("2026-09-21T10:00:00Z").unwrap());
        assert_eq!(got[1].timestamp, Timestamp::parse("2026-09-21T08:00:00.500Z").unwrap());
        assert_eq!(got[0].ip_address.unwrap().to_string(), "2001:db8::1");
    }

    #[test]
    fn lists_every_problem_with_index_and_field() {
        let mut bad_ip = good();
        bad_ip["ip_address"] = json!("999.1.1.1");
        let unknown = json!({"event": "api_key.exploded", "resource": {"type": "k", "id": "1"}});
        let mut missing = good();
        missing["details"] = json!({"name": "Latency"});
        let mut extra = good();
        extra["colour"] = json!("red");
        let p = problems(json!({"events": [good(), bad_ip, unknown, missing, extra]}));
        let got: Vec<_> = p.iter().map(|p| (p.index.unwrap(), p.field.as_str(), p.code)).collect();
        assert_eq!(
            got,
            [
                (1, "ip_address", "invalid_ip"),
                (2, "event", "unknown_event"),
                (3, "details.value", "missing_detail"),
                (3, "details.threshold", "missing_detail"),
                (4, "colour", "unknown_field"),
            ]
        );
        assert!(
            p[1].message.contains("api_key.exploded"),
            "the error names the unknown event"
        );
    }

    #[test]
    fn refuses_timestamps_too_far_ahead_or_behind() {
        let mut future = good();
        future["timestamp"] = json!(Timestamp(NOW + 6 * 60 * 1000).to_rfc3339());
        let mut skewed_ok = good();
        skewed_ok["timestamp"] = json!(Timestamp(NOW + 4 * 60 * 1000).to_rfc3339());
        let mut old = good();
        old["timestamp"] = json!(Timestamp(NOW).minus_days(91).to_rfc3339());
        let mut garbled = good();
        garbled["timestamp"] = json!("last tuesday");
        let p = problems(json!({"events": [future, skewed_ok, old, garbled]}));
        let codes: Vec<_> = p.iter().map(|p| (p.index.unwrap(), p.code)).collect();
        assert_eq!(
            codes,
            [(0, "in_future"), (2, "outside_retention"), (3, "invalid_timestamp")]
        );
    }

    #[test]
    fn refuses_details_over_16_kib() {
        let mut big = good();
        big["details"]["padding"] = json!("x".repeat(MAX_DETAILS_BYTES));
        let p = problems(big);
        assert_eq!(p[0].code, "too_large");
        assert_eq!(p[0].field, "details");
    }

    #[test]
    fn refuses_bad_resources_with_their_full_path() {
        let mut r = good();
        r["resource"] = json!({"type": "", "kind": "x"});
        let p = problems(r);
        let fields: Vec<_> = p.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(fields, ["resource.kind", "resource.type", "resource.id"]);
    }

    #[test]
    fn refuses_malformed_envelopes() {
        assert_eq!(problems(json!([1, 2]))[0].code, "invalid_type");
        assert_eq!(problems(json!({"events": []}))[0].code, "empty_batch");
        assert_eq!(problems(json!({"events": "x"}))[0].code, "invalid_type");
        let many: Vec<_> = (0..=MAX_BATCH).map(|_| good()).collect();
        assert_eq!(problems(json!({"events": many}))[0].code, "batch_too_large");
        let p = problems(json!({"events": [good()], "extra": 1}));
        assert_eq!((p[0].index, p[0].code), (None, "unknown_field"));
    }

    #[test]
    fn refuses_conflicting_spellings_and_control_characters() {
        let mut both = good();
        both["timestamp"] = json!("2026-09-21T10:00:00Z");
        both["occurred_at"] = json!("2026-09-21T10:00:00Z");
        assert_eq!(problems(both)[0].code, "conflicting_fields");
        let mut ctl = good();
        ctl["actor"] = json!("alice\n@acme.com");
        assert_eq!(problems(ctl)[0].code, "control_character");
    }

    #[test]
    fn the_services_own_events_and_actor_types_are_reserved() {
        let c = Catalog::builtin();
        for spec in c.events().filter(|e| e.recorded_by == RecordedBy::Service) {
            let mut forged = good();
            forged["event"] = json!(spec.name);
            let p = problems(json!({"events": [good(), forged]}));
            assert_eq!(
                p.iter()
                    .map(|p| (p.index, p.field.as_str(), p.code))
                    .collect::<Vec<_>>(),
                [(Some(1), "event", "reserved_event")],
                "{}",
                spec.name
            );
            assert!(p[0].message.contains(&spec.name));
        }
        let mut system = good();
        system["actor_type"] = json!("system");
        assert_eq!(problems(system)[0].code, "reserved_event");
        let mut inferred = good();
        inferred["actor"] = json!("system");
        assert_eq!(problems(inferred)[0].code, "reserved_event");
        let mut object = good();
        object["actor"] = json!({"type": "system", "id": "retention"});
        assert_eq!(problems(object)[0].code, "reserved_event");
    }

    #[test]
    fn the_actor_may_be_written_back_as_read() {
        let c = Catalog::builtin();
        let mut e = good();
        e["actor"] = json!({"type": "service", "id": "billing-service"});
        let got = validate_body(&e, &ctx(&c)).unwrap();
        assert_eq!(
            got[0].actor,
            Actor {
                kind: ActorType::Service,
                id: "billing-service".into()
            }
        );
        let mut both = good();
        both["actor"] = json!({"type": "user", "id": "a@b.co"});
        both["actor_type"] = json!("user");
        assert_eq!(problems(both)[0].code, "conflicting_fields");
        let mut bad = good();
        bad["actor"] = json!({"type": "robot", "name": "x"});
        let p = problems(bad);
        let fields: Vec<_> = p.iter().map(|p| (p.field.as_str(), p.code)).collect();
        assert_eq!(
            fields,
            [
                ("actor.name", "unknown_field"),
                ("actor.type", "invalid_value"),
                ("actor.id", "required")
            ]
        );
    }
}

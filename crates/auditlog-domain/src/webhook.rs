//! Webhook endpoints and their signatures, per the Standard Webhooks
//! specification: `webhook-id`, `webhook-timestamp`, and
//! `webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`,
//! with secrets written `whsec_<base64>`.
//!
//! During a rotation's overlap window a delivery carries one signature per
//! live secret, space-separated, so receivers can switch secrets without
//! dropping a message.
//!
//! An endpoint chooses what a delivery's `data` holds ([`PayloadFormat`]):
//! the entry as the query API shows it, or the entry as an OCSF event. The
//! envelope (`type`, `timestamp`, `data`) and the signature are the same
//! either way, so a receiver verifies both with the same library.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use std::str::FromStr;

use rand::Rng;
use ring::hmac;
use serde::Serialize;

use crate::pattern::EventPattern;
use crate::{Entry, Timestamp};

pub const SECRET_PREFIX: &str = "whsec_";
/// How long the previous secret keeps signing after a rotation.
pub const ROTATION_OVERLAP_MS: i64 = 24 * 60 * 60 * 1000;

/// A signing secret (the raw bytes; shown to people as `whsec_<base64>`).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(…)")
    }
}

impl Secret {
    /// 32 random bytes from the OS.
    pub fn generate() -> Self {
        let mut b = vec![0u8; 32];
        rand::rng().fill_bytes(&mut b);
        Self(b)
    }

    pub fn to_whsec(&self) -> String {
        format!("{SECRET_PREFIX}{}", STANDARD.encode(&self.0))
    }

    pub fn from_whsec(s: &str) -> Option<Self> {
        let b = STANDARD.decode(s.strip_prefix(SECRET_PREFIX)?).ok()?;
        (b.len() >= 24 && b.len() <= 64).then_some(Self(b))
    }

    /// `v1,<base64 signature>` of one message.
    pub fn sign(&self, msg_id: &str, timestamp_secs: i64, body: &[u8]) -> String {
        // ring's HMAC: its SHA-256 is assembly where sha2's is portable
        // code on CPUs without SHA extensions, and every delivery is signed.
        let key = hmac::Key::new(hmac::HMAC_SHA256, &self.0);
        let mut mac = hmac::Context::with_key(&key);
        mac.update(msg_id.as_bytes());
        mac.update(b".");
        mac.update(timestamp_secs.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", STANDARD.encode(mac.sign().as_ref()))
    }
}

/// The `webhook-signature` header: one signature per live secret.
pub fn signature_header(secrets: &[&Secret], msg_id: &str, timestamp_secs: i64, body: &[u8]) -> String {
    secrets
        .iter()
        .map(|s| s.sign(msg_id, timestamp_secs, body))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A registered endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub id: String,
    pub url: String,
    pub description: String,
    /// Empty: every event.
    pub events: Vec<EventPattern>,
    pub enabled: bool,
    pub secret: Secret,
    /// The secret before the last rotation, and until when it still signs.
    pub previous_secret: Option<(Secret, Timestamp)>,
    pub created_at: Timestamp,
    /// Since when every attempt has failed; cleared by a success.
    pub failing_since: Option<Timestamp>,
    pub disabled_reason: Option<String>,
    /// What its deliveries' `data` holds.
    pub payload_format: PayloadFormat,
}

/// What a delivery's `data` holds. Opt-in: endpoints made before there was
/// a choice, and those that do not choose, get the entry itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum PayloadFormat {
    /// The entry exactly as the query API returns it.
    #[default]
    Auditlog,
    /// The entry as one OCSF 1.8.0 event ([`crate::siem::ocsf::event`]),
    /// for receivers that take OCSF.
    Ocsf,
}

impl PayloadFormat {
    pub const ALL: [PayloadFormat; 2] = [PayloadFormat::Auditlog, PayloadFormat::Ocsf];

    /// The name in the API, the console and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            PayloadFormat::Auditlog => "auditlog",
            PayloadFormat::Ocsf => "ocsf",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown payload format {0:?}: expected auditlog or ocsf")]
pub struct UnknownPayloadFormat(pub String);

impl FromStr for PayloadFormat {
    type Err = UnknownPayloadFormat;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PayloadFormat::ALL
            .into_iter()
            .find(|f| f.as_str() == s)
            .ok_or_else(|| UnknownPayloadFormat(s.to_owned()))
    }
}

impl Endpoint {
    pub fn wants(&self, event: &str) -> bool {
        self.enabled && crate::pattern::selects(&self.events, event)
    }

    /// The secrets that sign at `now`: the current one, and the previous one
    /// during its overlap window.
    pub fn signing_secrets(&self, now: Timestamp) -> Vec<&Secret> {
        let mut out = vec![&self.secret];
        if let Some((old, until)) = &self.previous_secret
            && now < *until
        {
            out.push(old);
        }
        out
    }
}

/// What a receiver gets, in the specification's `type`/`timestamp`/`data`
/// shape: the entry's event type and time, and the entry itself or its
/// OCSF event.
#[derive(Debug, Serialize)]
pub struct Payload<'a, T: Serialize + ?Sized = Entry> {
    #[serde(rename = "type")]
    pub event_type: &'a str,
    pub timestamp: Timestamp,
    pub data: &'a T,
}

/// The message id: stable per entry and endpoint, so a receiver can
/// de-duplicate retries (and replays after a crash).
pub fn message_id(endpoint_id: &str, entry: &Entry) -> String {
    format!("msg_{}_{}", entry.id.simple(), endpoint_id)
}

/// The body delivering `entry` of organization `org` (the slug, which an
/// OCSF event names as its tenant) as `format` says.
pub fn payload_body(entry: &Entry, format: PayloadFormat, org: &str) -> Vec<u8> {
    match format {
        PayloadFormat::Auditlog => envelope(entry, entry),
        PayloadFormat::Ocsf => envelope(entry, &crate::siem::ocsf::event(entry, org)),
    }
}

fn envelope<T: Serialize + ?Sized>(entry: &Entry, data: &T) -> Vec<u8> {
    // Serialising cannot fail: every field is plain data.
    serde_json::to_vec(&Payload {
        event_type: &entry.event,
        timestamp: entry.timestamp,
        data,
    })
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_specifications_published_example() {
        // From the Standard Webhooks specification's test vectors.
        let secret = Secret::from_whsec("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let sig = secret.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, br#"{"test": 2432232314}"#);
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn secrets_round_trip_and_are_random() {
        let a = Secret::generate();
        assert!(a.to_whsec().starts_with("whsec_"));
        assert_eq!(Secret::from_whsec(&a.to_whsec()), Some(a.clone()));
        assert_ne!(a, Secret::generate());
        assert!(Secret::from_whsec("nope").is_none());
        assert!(Secret::from_whsec("whsec_short").is_none());
        assert!(!format!("{a:?}").contains(&a.to_whsec()[6..]));
    }

    fn entry() -> Entry {
        Entry {
            id: uuid::Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0007),
            org_id: crate::OrgId(1),
            seq: 7,
            timestamp: Timestamp(1_769_862_896_789),
            received_at: Timestamp(1_769_862_896_800),
            actor: crate::Actor {
                kind: crate::ActorType::User,
                id: "ada@acme.com".into(),
            },
            event: "api_key.created".into(),
            resource: crate::Resource {
                kind: "api_key".into(),
                id: "lqt_ab12".into(),
                name: None,
            },
            details: serde_json::Map::new(),
            ip_address: None,
            user_agent: None,
            request_id: None,
            idempotency_key: None,
            submitted_by: None,
            canonical_version: 2,
            personal: Default::default(),
        }
    }

    #[test]
    fn the_default_body_is_the_entry_in_its_envelope_as_before() {
        let e = entry();
        // Spelled out, so a change to the default body's bytes fails here:
        // receivers of the default format must see nothing new.
        let want = format!(
            r#"{{"type":"api_key.created","timestamp":{},"data":{}}}"#,
            serde_json::to_string(&e.timestamp).unwrap(),
            serde_json::to_string(&e).unwrap()
        );
        let body = payload_body(&e, PayloadFormat::default(), "acme");
        assert_eq!(String::from_utf8(body).unwrap(), want);
    }

    #[test]
    fn an_ocsf_body_keeps_the_envelope_around_the_ocsf_event() {
        let e = entry();
        let body: serde_json::Value = serde_json::from_slice(&payload_body(&e, PayloadFormat::Ocsf, "acme")).unwrap();
        let plain: serde_json::Value =
            serde_json::from_slice(&payload_body(&e, PayloadFormat::Auditlog, "acme")).unwrap();
        assert_eq!(body["type"], plain["type"]);
        assert_eq!(body["timestamp"], plain["timestamp"]);
        assert_eq!(body["data"], crate::siem::ocsf::event(&e, "acme"));
        assert_eq!(body["data"]["metadata"]["tenant_uid"], "acme");
    }

    #[test]
    fn payload_formats_parse_their_names_only() {
        for f in PayloadFormat::ALL {
            assert_eq!(f.as_str().parse::<PayloadFormat>(), Ok(f));
            assert_eq!(serde_json::to_value(f).unwrap(), f.as_str());
        }
        assert_eq!(PayloadFormat::default(), PayloadFormat::Auditlog);
        let err = "OCSF".parse::<PayloadFormat>().unwrap_err().to_string();
        assert!(err.contains("auditlog or ocsf"), "{err}");
    }

    #[test]
    fn both_secrets_sign_during_the_overlap_only() {
        let mut e = Endpoint {
            id: "wh_1".into(),
            url: "https://x.example/hook".into(),
            description: String::new(),
            events: vec![EventPattern::parse("api_key.*").unwrap()],
            enabled: true,
            secret: Secret::generate(),
            previous_secret: Some((Secret::generate(), Timestamp(1000))),
            created_at: Timestamp(0),
            failing_since: None,
            disabled_reason: None,
            payload_format: PayloadFormat::default(),
        };
        assert_eq!(e.signing_secrets(Timestamp(999)).len(), 2);
        assert_eq!(e.signing_secrets(Timestamp(1000)).len(), 1);
        let header = signature_header(&e.signing_secrets(Timestamp(5)), "m", 5, b"{}");
        assert_eq!(header.split(' ').count(), 2);
        assert!(e.wants("api_key.created"));
        assert!(!e.wants("project.created"));
        e.events.clear();
        assert!(e.wants("project.created"), "no patterns: everything");
        e.enabled = false;
        assert!(!e.wants("project.created"));
    }
}

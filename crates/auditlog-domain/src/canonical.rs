//! The canonical bytes of an entry: what its Merkle leaf commits to.
//!
//! A verifier holding only an export must rebuild exactly these bytes, so the
//! form is fixed here, independent of how the API or storage happen to
//! serialize an entry:
//!
//! - One JSON object with every recorded field: `actor` (`id`, `type`),
//!   `details`, `event`, `id`, `ip_address`, `received_at`, `request_id`,
//!   `resource` (`id`, `name`, `type`), `seq`, `timestamp`, `user_agent`.
//!   An absent optional is an explicit `null`, so leaving a field out is a
//!   change like any other.
//! - Timestamps are strings as the API shows them (`2026-01-31T12:00:00.000Z`),
//!   the id is the lowercase hyphenated UUID, the IP address is its standard
//!   text form (RFC 5952 for IPv6), `seq` an integer.
//! - Left out: the internal organization id (never shown to anyone; the
//!   checkpoint's origin line names the organization instead) and the
//!   idempotency key (the caller's retry token, which says nothing about what
//!   happened and is not part of every export).
//!
//! # Versions
//!
//! The form is versioned, so a leaf written by any earlier release keeps
//! verifying byte for byte while new fields are committed to. Each entry
//! carries the version its leaf was made with (`canonical_version`, 1 when
//! absent):
//!
//! - **1**: the fields above.
//! - **2**: also `submitted_by` (`id`, `kind`), the credential that
//!   submitted the entry, and `canonical_version: 2` itself, so neither can
//!   be stripped from an export without the leaf failing.
//!
//! - **3** (made by [`Fields::with_commitments`]; no entry is written with
//!   it yet): version 2 where each personal value (see [`crate::personal`])
//!   is replaced by the lowercase hex of its salted commitment, and
//!   `personal`, the sorted list of those values' paths (`actor.id`,
//!   `details.member`, ...), says which they are. An export that opens a
//!   value, or one whose subject was erased and gives the commitment alone,
//!   rebuilds the same bytes.
//!
//! A later version adds its fields the same way: a new number, its keys in
//! the same sorted object.
//!
//! The JSON follows RFC 8785 (JCS): no insignificant whitespace; object keys
//! sorted by their UTF-16 code units, at every depth, `details` included;
//! strings escaped as JCS (and serde_json) do: `\"`, `\\`, `\b`, `\f`, `\n`,
//! `\r`, `\t`, other controls as `\u00xx`, everything else as UTF-8; numbers
//! with a fraction or exponent in ECMAScript form (`1e+21`, `0.000001`, `-0`
//! as `0`). One deviation: a JSON integer beyond ±2^53 is written as its exact
//! digits, where JCS would first round it to the nearest double; a verifier
//! that implements JCS to the letter disagrees only on such integers.
//!
//! The bytes are stable across a JSON round trip of the entry (the export,
//! storage), which the tests check: that is why this crate builds serde_json
//! with `float_roundtrip`.

use std::fmt::Write;
use std::net::IpAddr;

use serde_json::{Map, Number, Value};
use uuid::Uuid;

use crate::entry::SubmittedBy;
use crate::merkle::{Hash, leaf_hash};
use crate::personal::{Commitment, FieldPath, commitments_from};
use crate::{Actor, Entry, NewEntry, Resource, Timestamp};

/// The version new entries are written with; it lives beside [`Entry`],
/// which records it, so the entry module needs nothing from this one.
pub use crate::entry::CURRENT_VERSION;

/// Why an entry's canonical bytes cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VersionError {
    #[error("canonical version {0} is not one this build knows (1 to {CURRENT_VERSION})")]
    Unknown(u8),
    #[error("canonical versions 2 and later need submitted_by, which the entry lacks")]
    MissingSubmitter,
}

/// Every field the canonical bytes commit to, borrowed: from a stored
/// [`Entry`], or from a [`NewEntry`] and what the writer assigns it, so the
/// writer can hash an entry without first building (and cloning into) one.
#[derive(Debug, Clone, Copy)]
pub struct Fields<'a> {
    pub id: Uuid,
    pub seq: i64,
    pub timestamp: Timestamp,
    pub received_at: Timestamp,
    pub actor: &'a Actor,
    pub event: &'a str,
    pub resource: &'a Resource,
    pub details: &'a Map<String, Value>,
    pub ip_address: Option<IpAddr>,
    pub user_agent: Option<&'a str>,
    pub request_id: Option<&'a str>,
    /// What version 2 and later commit to as well; `None` for version 1.
    pub submitted_by: Option<&'a SubmittedBy>,
    /// Version 3: what stands in the leaf for each personal value.
    pub commitments: Option<&'a [(FieldPath, Commitment)]>,
}

impl<'a> Fields<'a> {
    pub fn of(entry: &'a Entry) -> Self {
        Self {
            id: entry.id,
            seq: entry.seq,
            timestamp: entry.timestamp,
            received_at: entry.received_at,
            actor: &entry.actor,
            event: &entry.event,
            resource: &entry.resource,
            details: &entry.details,
            ip_address: entry.ip_address,
            user_agent: entry.user_agent.as_deref(),
            request_id: entry.request_id.as_deref(),
            submitted_by: match entry.canonical_version {
                1 => None,
                _ => entry.submitted_by.as_ref(),
            },
            commitments: None,
        }
    }

    /// The fields of a stored or exported entry, checked against the
    /// version it claims.
    pub fn checked(entry: &'a Entry) -> Result<Self, VersionError> {
        match (entry.canonical_version, &entry.submitted_by) {
            (1, _) => Ok(Self::of(entry)),
            (2 | 3, Some(_)) => Ok(Self::of(entry)),
            (2 | 3, None) => Err(VersionError::MissingSubmitter),
            (v, _) => Err(VersionError::Unknown(v)),
        }
    }

    /// A new entry as it will be stored with this id, seq and receipt time.
    pub fn of_new(new: &'a NewEntry, id: Uuid, seq: i64, received_at: Timestamp) -> Self {
        Self {
            id,
            seq,
            timestamp: new.timestamp,
            received_at,
            actor: &new.actor,
            event: &new.event,
            resource: &new.resource,
            details: &new.details,
            ip_address: new.ip_address,
            user_agent: new.user_agent.as_deref(),
            request_id: new.request_id.as_deref(),
            submitted_by: Some(&new.submitted_by),
            commitments: None,
        }
    }

    /// These fields in version 3: each value at a path of `commitments`
    /// is committed to through its commitment alone. Version 3 commits to
    /// the submitter as version 2 does.
    pub fn with_commitments(self, commitments: &'a [(FieldPath, Commitment)]) -> Self {
        Self {
            commitments: Some(commitments),
            ..self
        }
    }

    /// The commitment's hex that stands for the value at `path`, in
    /// version 3 when that value is personal. It stands even where the
    /// value is gone (an erased IP address is `None`).
    fn committed(&self, path: &FieldPath) -> Option<String> {
        let (_, c) = self.commitments?.iter().find(|(p, _)| p == path)?;
        Some(c.to_hex())
    }

    /// The text the leaf holds for a value that is always there.
    fn text<'v>(&self, path: &FieldPath, value: &'v str) -> std::borrow::Cow<'v, str> {
        self.committed(path).map_or(value.into(), Into::into)
    }

    /// The text the leaf holds for an optional value.
    fn optional<'v>(&self, path: &FieldPath, value: Option<&'v str>) -> Option<std::borrow::Cow<'v, str>> {
        self.committed(path).map(Into::into).or(value.map(Into::into))
    }

    /// The details as the leaf holds them.
    fn details(&self) -> std::borrow::Cow<'a, Map<String, Value>> {
        let mut personal = self.commitments.into_iter().flatten().filter_map(|(p, c)| match p {
            FieldPath::Detail(key) => Some((key, c)),
            _ => None,
        });
        let Some(first) = personal.next() else {
            return std::borrow::Cow::Borrowed(self.details);
        };
        let mut details = self.details.clone();
        for (key, c) in std::iter::once(first).chain(personal) {
            details.insert(key.clone(), Value::String(c.to_hex()));
        }
        std::borrow::Cow::Owned(details)
    }

    /// The canonical bytes (see the module documentation): version 1
    /// without a submitter, version 2 with one.
    pub fn bytes(&self) -> Vec<u8> {
        let mut out = String::with_capacity(512);
        // Keys in UTF-16 order, which for these ASCII names is byte order; a
        // test checks the result against the general canonicalizer.
        out.push_str("{\"actor\":{\"id\":");
        write_string(&mut out, &self.text(&FieldPath::ActorId, &self.actor.id));
        out.push_str(",\"type\":");
        write_string(&mut out, self.actor.kind.as_str());
        out.push('}');
        match (self.commitments, self.submitted_by) {
            (Some(_), _) => out.push_str(",\"canonical_version\":3"),
            (None, Some(_)) => out.push_str(",\"canonical_version\":2"),
            (None, None) => {}
        }
        out.push_str(",\"details\":");
        write_object(&mut out, &self.details());
        out.push_str(",\"event\":");
        write_string(&mut out, self.event);
        out.push_str(",\"id\":");
        let mut id = uuid::Uuid::encode_buffer();
        write_string(&mut out, self.id.hyphenated().encode_lower(&mut id));
        out.push_str(",\"ip_address\":");
        let ip = self.ip_address.map(|ip| ip.to_string());
        write_optional(&mut out, self.optional(&FieldPath::IpAddress, ip.as_deref()).as_deref());
        if let Some(commitments) = self.commitments {
            self.write_personal(&mut out, commitments);
        }
        out.push_str(",\"received_at\":");
        write_string(&mut out, &self.received_at.to_rfc3339());
        out.push_str(",\"request_id\":");
        write_optional(&mut out, self.request_id);
        out.push_str(",\"resource\":{\"id\":");
        write_string(&mut out, &self.text(&FieldPath::ResourceId, &self.resource.id));
        out.push_str(",\"name\":");
        let name = self.optional(&FieldPath::ResourceName, self.resource.name.as_deref());
        write_optional(&mut out, name.as_deref());
        out.push_str(",\"type\":");
        write_string(&mut out, &self.resource.kind);
        out.push_str("},\"seq\":");
        let _ = write!(out, "{}", self.seq);
        if let Some(by) = self.submitted_by {
            out.push_str(",\"submitted_by\":{\"id\":");
            write_string(&mut out, &self.text(&FieldPath::SubmittedById, &by.id));
            out.push_str(",\"kind\":");
            write_string(&mut out, by.kind.as_str());
            out.push('}');
        }
        out.push_str(",\"timestamp\":");
        write_string(&mut out, &self.timestamp.to_rfc3339());
        out.push_str(",\"user_agent\":");
        let ua = self.optional(&FieldPath::UserAgent, self.user_agent);
        write_optional(&mut out, ua.as_deref());
        out.push('}');
        out.into_bytes()
    }

    /// `,"personal":[…]`: the paths of the committed values, sorted, so a
    /// commitment cannot be passed off as a plain value or moved to
    /// another field.
    fn write_personal(&self, out: &mut String, commitments: &[(FieldPath, Commitment)]) {
        let mut paths: Vec<_> = commitments.iter().map(|(p, _)| p.as_str()).collect();
        paths.sort_by(|a, b| a.encode_utf16().cmp(b.encode_utf16()));
        out.push_str(",\"personal\":[");
        for (i, path) in paths.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            write_string(out, path);
        }
        out.push(']');
    }

    /// The Merkle leaf hash: `SHA-256(0x00 || canonical bytes)`.
    pub fn leaf_hash(&self) -> Hash {
        leaf_hash(&self.bytes())
    }
}

/// The canonical bytes of an entry (see the module documentation).
pub fn canonical_bytes(entry: &Entry) -> Vec<u8> {
    Fields::of(entry).bytes()
}

/// The entry's Merkle leaf hash: `SHA-256(0x00 || canonical bytes)`. A
/// version-3 entry's commitments are rebuilt from its disclosures (see
/// [`crate::personal::disclosure`]); disclosures that do not parse stand
/// for none, so the leaf differs and every proof of it fails, as it
/// should for an entry that was altered.
pub fn entry_leaf_hash(entry: &Entry) -> Hash {
    let fields = Fields::of(entry);
    if entry.canonical_version < 3 {
        return fields.leaf_hash();
    }
    let commitments = commitments_from(&fields, &entry.personal).unwrap_or_default();
    fields.with_commitments(&commitments).leaf_hash()
}

/// Any JSON value in the canonical form described above.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, value);
    out
}

fn write_value(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => write_number(out, n),
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => write_object(out, map),
    }
}

fn write_object(out: &mut String, map: &Map<String, Value>) {
    // serde_json keeps insertion order here (the workspace enables
    // preserve_order), so the order has to be imposed.
    let mut fields: Vec<(&String, &Value)> = map.iter().collect();
    fields.sort_by(|a, b| {
        // Byte order is UTF-16 order for ASCII, which almost every key is.
        if a.0.is_ascii() && b.0.is_ascii() {
            a.0.cmp(b.0)
        } else {
            a.0.encode_utf16().cmp(b.0.encode_utf16())
        }
    });
    out.push('{');
    for (i, (key, value)) in fields.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_string(out, key);
        out.push(':');
        write_value(out, value);
    }
    out.push('}');
}

fn write_optional(out: &mut String, s: Option<&str>) {
    match s {
        Some(s) => write_string(out, s),
        None => out.push_str("null"),
    }
}

fn write_string(out: &mut String, s: &str) {
    out.push('"');
    // Runs of characters that need no escape are copied whole.
    let mut run = 0;
    for (i, c) in s.char_indices() {
        let escaped = match c {
            '"' => "\\\"",
            '\\' => "\\\\",
            '\u{8}' => "\\b",
            '\u{c}' => "\\f",
            '\n' => "\\n",
            '\r' => "\\r",
            '\t' => "\\t",
            c if c < ' ' => "",
            _ => continue,
        };
        out.push_str(&s[run..i]);
        if escaped.is_empty() {
            let _ = write!(out, "\\u{:04x}", c as u32);
        } else {
            out.push_str(escaped);
        }
        run = i + c.len_utf8();
    }
    out.push_str(&s[run..]);
    out.push('"');
}

fn write_number(out: &mut String, n: &Number) {
    if let Some(u) = n.as_u64() {
        let _ = write!(out, "{u}");
    } else if let Some(i) = n.as_i64() {
        let _ = write!(out, "{i}");
    } else if let Some(f) = n.as_f64() {
        write_ecmascript_number(out, f);
    }
}

/// ECMAScript's Number::toString (ECMA-262, 7.1.12.1), which RFC 8785 §3.2.2.3
/// prescribes: the shortest digits that read back as the same double, placed
/// as plain digits for exponents from -7 to 20 and as `d.ddde±x` outside.
/// serde_json numbers are always finite, so NaN and infinities cannot occur.
fn write_ecmascript_number(out: &mut String, f: f64) {
    if f == 0.0 {
        out.push('0'); // -0 included
        return;
    }
    if f < 0.0 {
        out.push('-');
    }
    let f = f.abs();
    // Rust's `{:e}` gives the fewest digits that read back as `f`, but breaks
    // an exact tie between two such candidates upwards where ECMAScript takes
    // the even one. Formatting to that many digits rounds the exact value
    // half-to-even, which is the ECMAScript choice whenever it reads back.
    let shortest = format!("{f:e}");
    let digit_count = shortest
        .split_once('e')
        .map_or(1, |(m, _)| m.len() - usize::from(m.contains('.')));
    let rounded = format!("{f:.*e}", digit_count - 1);
    let sci = if rounded.parse::<f64>() == Ok(f) {
        rounded
    } else {
        shortest
    };
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let exp: i32 = exp.parse().unwrap_or(0);
    let k = digits.len() as i32;
    // The value is 0.d1d2…dk × 10^n.
    let n = exp + 1;
    if k <= n && n <= 21 {
        out.push_str(&digits);
        out.extend(std::iter::repeat_n('0', (n - k) as usize));
    } else if 0 < n && n <= 21 {
        out.push_str(&digits[..n as usize]);
        out.push('.');
        out.push_str(&digits[n as usize..]);
    } else if -6 < n && n <= 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', (-n) as usize));
        out.push_str(&digits);
    } else {
        out.push_str(&digits[..1]);
        if k > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let e = n - 1;
        let _ = write!(out, "e{}{}", if e < 0 { '-' } else { '+' }, e.abs());
    }
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;
    use crate::merkle::hash_to_hex;
    use crate::{Actor, ActorType, OrgId, Resource, Timestamp};

    fn sample() -> Entry {
        Entry {
            id: Uuid::parse_str("0192f3a4-5b6c-7d8e-9f01-23456789abcd").unwrap(),
            org_id: OrgId(1),
            seq: 42,
            timestamp: Timestamp::parse("2026-01-31T12:00:00.123Z").unwrap(),
            received_at: Timestamp::parse("2026-01-31T12:00:00.456Z").unwrap(),
            actor: Actor {
                kind: ActorType::User,
                id: "alice@acme.com".into(),
            },
            event: "organization.member_role_changed".into(),
            resource: Resource {
                kind: "member".into(),
                id: "bob@acme.com".into(),
                name: Some("Bob".into()),
            },
            details: serde_json::from_str(r#"{"old_role":"member","new_role":"admin","by":{"z":1,"a":[true,null]}}"#)
                .unwrap(),
            ip_address: Some("203.0.113.7".parse().unwrap()),
            user_agent: Some("Mozilla/5.0".into()),
            request_id: Some("req-1".into()),
            idempotency_key: Some("k-1".into()),
            submitted_by: None,
            canonical_version: 1,
            personal: Default::default(),
        }
    }

    const SAMPLE_CANONICAL: &str = concat!(
        r#"{"actor":{"id":"alice@acme.com","type":"user"},"#,
        r#""details":{"by":{"a":[true,null],"z":1},"new_role":"admin","old_role":"member"},"#,
        r#""event":"organization.member_role_changed","id":"0192f3a4-5b6c-7d8e-9f01-23456789abcd","#,
        r#""ip_address":"203.0.113.7","received_at":"2026-01-31T12:00:00.456Z","request_id":"req-1","#,
        r#""resource":{"id":"bob@acme.com","name":"Bob","type":"member"},"seq":42,"#,
        r#""timestamp":"2026-01-31T12:00:00.123Z","user_agent":"Mozilla/5.0"}"#
    );

    /// The format is a contract with every verifier ever run on an export: a
    /// change to it must be deliberate, so the bytes and the hash are pinned.
    /// (The hash was computed independently, with Python's hashlib, from the
    /// pinned text.)
    #[test]
    fn the_format_is_pinned() {
        let e = sample();
        assert_eq!(String::from_utf8(canonical_bytes(&e)).unwrap(), SAMPLE_CANONICAL);
        assert_eq!(
            hash_to_hex(&entry_leaf_hash(&e)),
            "4b70fdd60bb079203a684ed04a70b54f582b8e659b74d3d97325ac56ce322ab8"
        );
    }

    const SAMPLE_V2_CANONICAL: &str = concat!(
        r#"{"actor":{"id":"alice@acme.com","type":"user"},"canonical_version":2,"#,
        r#""details":{"by":{"a":[true,null],"z":1},"new_role":"admin","old_role":"member"},"#,
        r#""event":"organization.member_role_changed","id":"0192f3a4-5b6c-7d8e-9f01-23456789abcd","#,
        r#""ip_address":"203.0.113.7","received_at":"2026-01-31T12:00:00.456Z","request_id":"req-1","#,
        r#""resource":{"id":"bob@acme.com","name":"Bob","type":"member"},"seq":42,"#,
        r#""submitted_by":{"id":"alice@acme.com","kind":"session"},"#,
        r#""timestamp":"2026-01-31T12:00:00.123Z","user_agent":"Mozilla/5.0"}"#
    );

    fn sample_v2() -> Entry {
        Entry {
            submitted_by: Some(SubmittedBy::new(crate::SubmitterKind::Session, "alice@acme.com")),
            canonical_version: 2,
            personal: Default::default(),
            ..sample()
        }
    }

    /// Version 2 adds the submitter and its own number; version 1 leaves
    /// keep their bytes (the pinned test above), so both verify in one log.
    #[test]
    fn version_2_is_pinned_and_commits_to_the_submitter() {
        let e = sample_v2();
        let text = String::from_utf8(canonical_bytes(&e)).unwrap();
        assert_eq!(text, SAMPLE_V2_CANONICAL);
        let value: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(canonical_json(&value), text, "keys in canonical order");
        let mut other = e.clone();
        other.submitted_by = Some(SubmittedBy::new(crate::SubmitterKind::ApiKey, "lqt_ab12cd34"));
        assert_ne!(entry_leaf_hash(&e), entry_leaf_hash(&other));
        // Claiming version 1 (stripping the submitter) changes the leaf.
        let mut stripped = e.clone();
        stripped.canonical_version = 1;
        assert_ne!(entry_leaf_hash(&e), entry_leaf_hash(&stripped));
        // An export line round-trips to the same bytes.
        let back: Entry = serde_json::from_str(&serde_json::to_string(&e).unwrap()).unwrap();
        assert_eq!(canonical_bytes(&back), canonical_bytes(&e));
        // A version-1 line (no field at all) reads as version 1.
        let mut line = serde_json::to_value(sample()).unwrap();
        line.as_object_mut().unwrap().remove("canonical_version");
        line.as_object_mut().unwrap().remove("submitted_by");
        let old: Entry = serde_json::from_value(line).unwrap();
        assert_eq!(String::from_utf8(canonical_bytes(&old)).unwrap(), SAMPLE_CANONICAL);
    }

    /// Version 3 as an independent verifier computes it (Python's hmac and
    /// hashlib, from the definitions in `personal`): alice's key is 32
    /// bytes of 1, bob's of 2.
    const SAMPLE_V3_CANONICAL: &str = concat!(
        r#"{"actor":{"id":"021765443bdfc2c285bf02e0971842418301d3d6d6384774aeccf0d76fe4348f","type":"user"},"#,
        r#""canonical_version":3,"details":{"by":{"a":[true,null],"z":1},"#,
        r#""member":"ad87b63dd5ad606bd10aecb6533751e1903f5d1a6c37a91c5f73c8c01109971e","#,
        r#""new_role":"admin","old_role":"member"},"event":"organization.member_role_changed","#,
        r#""id":"0192f3a4-5b6c-7d8e-9f01-23456789abcd","#,
        r#""ip_address":"e006b59556aad4ea16300eadd8123691705386e4fc3d98f0f92f7f8980a83805","#,
        r#""personal":["actor.id","details.member","ip_address","resource.id","resource.name","#,
        r#""submitted_by.id","user_agent"],"received_at":"2026-01-31T12:00:00.456Z","request_id":"req-1","#,
        r#""resource":{"id":"4d8e30c1442b4a4739d1138265b7d52b538c81ca1c4408e9dd1a8513d0ed13b8","#,
        r#""name":"2e056de2cd09a7261aaefb35ea4ced287290234b3621d37901e7ed9c7bb0ca1d","type":"member"},"#,
        r#""seq":42,"submitted_by":{"id":"0edb00446de3ae35c6b547fb8c562f31e7f8348fb458ecf70822cabb800fe755","#,
        r#""kind":"session"},"timestamp":"2026-01-31T12:00:00.123Z","#,
        r#""user_agent":"26e8e5186fd1529fb02d9bc5ea1e5be9ecb61a96497fc88643c7de1cd864bfd8"}"#
    );

    fn sample_v3() -> Entry {
        let mut e = sample_v2();
        e.details.insert("member".into(), "bob@acme.com".into());
        e
    }

    /// Each personal value's commitment under its subject's key (alice 1s,
    /// bob 2s), as the writer will make them.
    fn commitments_of(e: &Entry) -> Vec<(FieldPath, Commitment)> {
        use crate::personal::{SubjectKey, commit, personal_values};
        personal_values(&Fields::of(e), &crate::Catalog::builtin())
            .into_iter()
            .map(|v| {
                let key = SubjectKey::from_bytes([if v.subject.as_str() == "alice@acme.com" { 1 } else { 2 }; 32]);
                let c = commit(&key.salt(e.id), &v.path.as_str(), &v.value);
                (v.path, c)
            })
            .collect()
    }

    #[test]
    fn version_3_is_pinned_and_holds_commitments_in_place_of_personal_values() {
        let e = sample_v3();
        let c = commitments_of(&e);
        let fields = Fields::of(&e).with_commitments(&c);
        let text = String::from_utf8(fields.bytes()).unwrap();
        assert_eq!(text, SAMPLE_V3_CANONICAL);
        let value: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(canonical_json(&value), text, "keys in canonical order");
        assert_eq!(
            hash_to_hex(&fields.leaf_hash()),
            "e8ac985637aa39f9c6307f5ad405a7dd4330060bdfb01beb87c2068cba524b33"
        );
        for personal in ["alice@acme.com", "bob@acme.com", "203.0.113.7", "Mozilla", "Bob"] {
            assert!(!text.contains(personal), "{personal} is in the leaf's bytes");
        }
    }

    #[test]
    fn an_erased_entry_keeps_its_leaf_and_a_forged_one_does_not() {
        let e = sample_v3();
        let c = commitments_of(&e);
        let leaf = Fields::of(&e).with_commitments(&c).leaf_hash();
        // Erased: the values are gone, the commitments stay.
        let mut erased = e.clone();
        erased.actor.id = "(erased)".into();
        erased.ip_address = None;
        erased.user_agent = None;
        erased.resource.id = "(erased)".into();
        erased.resource.name = None;
        erased.details.insert("member".into(), "(erased)".into());
        if let Some(by) = erased.submitted_by.as_mut() {
            by.id = "(erased)".into();
        }
        assert_eq!(Fields::of(&erased).with_commitments(&c).leaf_hash(), leaf);
        // A forged value comes with a commitment that is not the leaf's.
        let mut forged = e.clone();
        forged.actor.id = "mallory@acme.com".into();
        assert_ne!(
            Fields::of(&forged)
                .with_commitments(&commitments_of(&forged))
                .leaf_hash(),
            leaf
        );
        // A commitment moved to another field, or dropped so the plain
        // value stands, changes the leaf.
        let mut moved = c.clone();
        let first = moved[0].1;
        moved[0].1 = moved[1].1;
        moved[1].1 = first;
        assert_ne!(Fields::of(&e).with_commitments(&moved).leaf_hash(), leaf);
        assert_ne!(Fields::of(&e).with_commitments(&c[1..]).leaf_hash(), leaf);
        assert_ne!(Fields::of(&e).leaf_hash(), leaf, "version 2 of the same entry");
    }

    #[test]
    fn versions_are_checked() {
        let mut e = sample_v2();
        assert!(Fields::checked(&e).is_ok());
        e.submitted_by = None;
        assert_eq!(Fields::checked(&e).unwrap_err(), VersionError::MissingSubmitter);
        e.canonical_version = 3;
        assert_eq!(Fields::checked(&e).unwrap_err(), VersionError::MissingSubmitter);
        e.canonical_version = 4;
        assert_eq!(Fields::checked(&e).unwrap_err(), VersionError::Unknown(4));
    }

    #[test]
    fn the_hand_written_entry_form_is_canonical_json() {
        let mut e = sample();
        for _ in 0..2 {
            let bytes = canonical_bytes(&e);
            let reparsed: Value = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(canonical_json(&reparsed).as_bytes(), bytes.as_slice());
            // Absent optionals are written as null, not left out.
            e.ip_address = None;
            e.user_agent = None;
            e.request_id = None;
            e.resource.name = None;
        }
        let bytes = String::from_utf8(canonical_bytes(&e)).unwrap();
        assert!(bytes.contains(r#""ip_address":null"#));
        assert!(bytes.contains(r#""name":null"#));
        assert!(bytes.contains(r#""request_id":null"#));
        assert!(bytes.contains(r#""user_agent":null"#));
    }

    #[test]
    fn key_order_and_whitespace_of_the_input_do_not_matter() {
        let one = r#"{"id":"0192f3a4-5b6c-7d8e-9f01-23456789abcd","seq":42,
            "timestamp":"2026-01-31T12:00:00.123Z","received_at":"2026-01-31T12:00:00.456Z",
            "actor":{"type":"user","id":"alice@acme.com"},"event":"organization.member_role_changed",
            "resource":{"type":"member","id":"bob@acme.com","name":"Bob"},
            "details":{"old_role":"member","new_role":"admin","by":{"z":1,"a":[true,null]}},
            "ip_address":"203.0.113.7","user_agent":"Mozilla/5.0","request_id":"req-1"}"#;
        let other = r#"{ "user_agent" : "Mozilla/5.0", "request_id" : "req-1",
            "details" : { "by" : { "a" : [ true , null ] , "z" : 1.0 } , "new_role" : "admin",
                          "old_role" : "member" },
            "resource" : { "name" : "Bob", "id" : "bob@acme.com", "type" : "member" },
            "ip_address" : "203.0.113.7", "event" : "organization.member_role_changed",
            "actor" : { "id" : "alice@acme.com", "type" : "user" },
            "received_at" : "2026-01-31T14:00:00.456+02:00", "timestamp" : "2026-01-31T12:00:00.123Z",
            "seq" : 42, "id" : "0192F3A4-5B6C-7D8E-9F01-23456789ABCD" }"#;
        let a: Entry = serde_json::from_str(one).unwrap();
        let b: Entry = serde_json::from_str(other).unwrap();
        assert_eq!(canonical_bytes(&a), canonical_bytes(&b));
        assert_eq!(String::from_utf8(canonical_bytes(&a)).unwrap(), SAMPLE_CANONICAL);
    }

    #[test]
    fn any_change_to_a_recorded_field_changes_the_bytes() {
        let base = canonical_bytes(&sample());
        type Change = (&'static str, fn(&mut Entry));
        let changes: Vec<Change> = vec![
            ("id", |e| e.id = Uuid::nil()),
            ("seq", |e| e.seq += 1),
            ("timestamp", |e| e.timestamp = e.timestamp.plus_millis(1)),
            ("received_at", |e| e.received_at = e.received_at.plus_millis(1)),
            ("actor type", |e| e.actor.kind = ActorType::Service),
            ("actor id", |e| e.actor.id = "mallory@acme.com".into()),
            ("event", |e| e.event = "organization.member_removed".into()),
            ("resource type", |e| e.resource.kind = "project".into()),
            ("resource id", |e| e.resource.id = "carol@acme.com".into()),
            ("resource name", |e| e.resource.name = Some("Bobby".into())),
            ("resource name removed", |e| e.resource.name = None),
            ("resource name emptied", |e| e.resource.name = Some(String::new())),
            ("details value", |e| {
                e.details.insert("new_role".into(), "owner".into());
            }),
            ("details nested value", |e| {
                e.details["by"]["z"] = 2.into();
            }),
            ("details key added", |e| {
                e.details.insert("reason".into(), Value::Null);
            }),
            ("details key removed", |e| {
                e.details.remove("old_role");
            }),
            ("details number type", |e| {
                e.details["by"]["z"] = "1".into();
            }),
            ("ip address", |e| e.ip_address = Some("203.0.113.8".parse().unwrap())),
            ("ip address removed", |e| e.ip_address = None),
            ("user agent", |e| e.user_agent = Some("curl/8".into())),
            ("user agent removed", |e| e.user_agent = None),
            ("request id", |e| e.request_id = Some("req-2".into())),
            ("request id removed", |e| e.request_id = None),
        ];
        for (what, change) in changes {
            let mut e = sample();
            change(&mut e);
            assert_ne!(canonical_bytes(&e), base, "{what} did not change the bytes");
            assert_ne!(entry_leaf_hash(&e), entry_leaf_hash(&sample()), "{what}");
        }
        // What the leaf deliberately leaves out.
        let mut e = sample();
        e.org_id = OrgId(2);
        e.idempotency_key = None;
        assert_eq!(canonical_bytes(&e), base);
    }

    #[test]
    fn the_bytes_survive_a_json_round_trip_of_the_entry() {
        let mut e = sample();
        e.details = serde_json::from_str(
            r#"{"sum":0.30000000000000004,"tiny":5e-324,"huge":1.7976931348623157e308,"third":333333333.33333329,
                "neg_zero":-0.0,"big":18446744073709551615,"neg":-9223372036854775808,"beyond_2_53":9007199254740993,
                "exp":1e21,"small":1e-7,"float_int":100.0,"text":"line\nbreak \u0007 \"quoted\" \\ / é 😀",
                "\ud800\udc00":"astral","\uffff":"bmp","":"empty key"}"#,
        )
        .unwrap();
        e.ip_address = Some("2001:db8::1".parse().unwrap());
        e.resource.name = None;
        let before = canonical_bytes(&e);
        let exported = serde_json::to_string(&e).unwrap();
        let mut back: Entry = serde_json::from_str(&exported).unwrap();
        assert_eq!(canonical_bytes(&back), before);
        // Storage keeps details as their compact JSON text.
        back.details = serde_json::from_str(&e.details_json()).unwrap();
        assert_eq!(canonical_bytes(&back), before);
    }

    /// Leaves are hashed from the entry as received; verifiers rebuild it
    /// from exported text. Every double must survive that trip, which
    /// serde_json guarantees only with its float_roundtrip feature.
    #[test]
    fn every_double_reads_back_as_itself_from_its_json_text() {
        let mut state = 0x1234_5678_9abc_def0u64;
        for _ in 0..200_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let f = f64::from_bits(state);
            if !f.is_finite() {
                continue;
            }
            let text = serde_json::to_string(&f).unwrap();
            let back: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(back.as_f64().map(f64::to_bits), Some(f.to_bits()), "{text}");
            let canonical = canonical_json(&Value::from(f));
            assert_eq!(
                canonical.parse::<f64>().ok(),
                Some(if f == 0.0 { 0.0 } else { f }),
                "{canonical}"
            );
        }
    }

    #[test]
    fn object_keys_sort_by_utf16_code_units_at_every_depth() {
        // U+10000 sorts after U+FFFF by code point (and in UTF-8) but before
        // it in UTF-16, where it is the surrogate pair D800 DC00.
        let v: Value =
            serde_json::from_str(r#"{"b":{"y":1,"x":2},"\ud800\udc00":1,"\uffff":2,"a":[{"d":1,"c":2}],"":0}"#)
                .unwrap();
        assert_eq!(
            canonical_json(&v),
            "{\"\":0,\"a\":[{\"c\":2,\"d\":1}],\"b\":{\"x\":2,\"y\":1},\"\u{10000}\":1,\"\u{ffff}\":2}"
        );
    }

    #[test]
    fn strings_are_escaped_as_serde_json_and_jcs_do() {
        let mut all: String = (0u32..0x80).filter_map(char::from_u32).collect();
        all.push_str("é€😀\u{7f}\u{2028}/");
        let mut out = String::new();
        write_string(&mut out, &all);
        assert_eq!(out, serde_json::to_string(&all).unwrap());
        assert!(out.contains("\\u001f") && out.contains("\\b") && !out.contains("\\/"));
    }

    /// RFC 8785 §3.2.4: the whole transformation on the RFC's own input.
    #[test]
    fn the_rfc_8785_example_canonicalizes_as_the_rfc_says() {
        let input = r#"{
            "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
            "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
            "literals": [null, true, false]
        }"#;
        let v: Value = serde_json::from_str(input).unwrap();
        assert_eq!(
            canonical_json(&v),
            r#"{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}"#
        );
    }

    /// RFC 8785 Appendix B: IEEE 754 doubles and their canonical text.
    #[test]
    fn numbers_follow_rfc_8785_appendix_b() {
        let cases: [(u64, &str); 24] = [
            (0x0000000000000000, "0"),
            (0x8000000000000000, "0"),
            (0x0000000000000001, "5e-324"),
            (0x8000000000000001, "-5e-324"),
            (0x7fefffffffffffff, "1.7976931348623157e+308"),
            (0xffefffffffffffff, "-1.7976931348623157e+308"),
            (0x4340000000000000, "9007199254740992"),
            (0xc340000000000000, "-9007199254740992"),
            (0x4430000000000000, "295147905179352830000"),
            (0x44b52d02c7e14af5, "9.999999999999997e+22"),
            (0x44b52d02c7e14af6, "1e+23"),
            (0x44b52d02c7e14af7, "1.0000000000000001e+23"),
            (0x444b1ae4d6e2ef4e, "999999999999999700000"),
            (0x444b1ae4d6e2ef4f, "999999999999999900000"),
            (0x444b1ae4d6e2ef50, "1e+21"),
            (0x3eb0c6f7a0b5ed8c, "9.999999999999997e-7"),
            (0x3eb0c6f7a0b5ed8d, "0.000001"),
            (0x41b3de4355555553, "333333333.3333332"),
            (0x41b3de4355555554, "333333333.33333325"),
            (0x41b3de4355555555, "333333333.3333333"),
            (0x41b3de4355555556, "333333333.3333334"),
            (0x41b3de4355555557, "333333333.33333343"),
            (0xbecbf647612f3696, "-0.0000033333333333333333"),
            (0x43143ff3c1cb0959, "1424953923781206.2"),
        ];
        for (bits, want) in cases {
            let n = Number::from_f64(f64::from_bits(bits)).unwrap();
            assert_eq!(canonical_json(&Value::Number(n)), want, "{bits:016x}");
        }
        // Integral doubles print as integers, like the integers they equal.
        assert_eq!(
            canonical_json(&serde_json::json!([1.0, 100.0, -2.0, 1e20])),
            "[1,100,-2,100000000000000000000]"
        );
        // The documented deviation: integers beyond 2^53 keep every digit.
        let v: Value = serde_json::from_str("[9007199254740993, -9223372036854775808, 18446744073709551615]").unwrap();
        assert_eq!(
            canonical_json(&v),
            "[9007199254740993,-9223372036854775808,18446744073709551615]"
        );
    }
}

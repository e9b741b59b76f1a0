//! The RFC 5424 parts of a stream's messages: the header every format
//! shares, and the `rfc5424` format's structured data and summary line.
//!
//! `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD MSG`, where PRI is
//! facility × 8 + the event's severity, TIMESTAMP the entry's own time (when
//! it happened, not when it was sent), PROCID always NILVALUE (a process id
//! means nothing to a receiver of audit events) and MSGID the event name
//! where RFC 5424 allows it (1 to 32 printable ASCII characters).
//!
//! The structured data is one SD-ELEMENT whose SD-ID is `auditlog@32473`.
//! An SD-ID of our own must carry an IANA private enterprise number; auditlog
//! has none, and 32473 is the number RFC 5612 reserves for documentation
//! and examples, so no real organisation's namespace is squatted. It
//! carries every field of the entry, absent ones left out:
//!
//! `id seq org timestamp received_at actor_type actor event resource_type
//! resource_id resource_name ip user_agent request_id idempotency_key
//! submitted_by canonical_version details`
//!
//! with `submitted_by` as `kind:id` and `details` as compact JSON (exact,
//! as JSON escapes its own control characters). PARAM-VALUEs are escaped per
//! RFC 5424 §6.3.3 (`"`, `\` and `]` after a backslash); RFC 5424 has no
//! escape for control characters, so those become spaces, which keeps the
//! message on one line. MSG has no BOM: it is sent as MSG-ANY, which every
//! receiver reads as UTF-8 anyway.

use std::fmt::Write;

use super::{Header, is_print_ascii, one_line, severity};
use crate::Entry;

/// The SD-ID of the entry's structured data (see the module comment).
pub const SD_ID: &str = "auditlog@32473";

/// RFC 5424's limit on HOSTNAME.
const MAX_HOSTNAME: usize = 255;
/// RFC 5424's limit on APP-NAME.
const MAX_APP_NAME: usize = 48;
/// RFC 5424's limit on MSGID.
const MAX_MSGID: usize = 32;

/// `<PRI>1 TIMESTAMP HOSTNAME APP-NAME - MSGID`, the header every format
/// shares (without the structured data, which the formats differ in).
pub fn header(entry: &Entry, header: &Header) -> String {
    let mut out = String::new();
    write_header(entry, header, &mut out);
    out
}

/// [`header`], appended to `out`.
pub fn write_header(entry: &Entry, header: &Header, out: &mut String) {
    let severity = severity::of_event(&entry.event);
    let pri = u16::from(header.facility.min(23)) * 8 + u16::from(severity.syslog());
    // Writing into a String cannot fail.
    let _ = write!(out, "<{pri}>1 ");
    let ts = entry.timestamp.to_rfc3339();
    // NILVALUE for a year before 0000, which RFC 5424's four-digit
    // FULL-DATE cannot write.
    out.push_str(if ts.starts_with(|c: char| c.is_ascii_digit()) {
        &ts
    } else {
        "-"
    });
    out.push(' ');
    push_printable(out, header.hostname, MAX_HOSTNAME);
    out.push(' ');
    push_printable(out, header.app_name, MAX_APP_NAME);
    out.push_str(" - ");
    out.push_str(msgid(&entry.event));
}

/// The event name when RFC 5424 allows it as MSGID, else NILVALUE.
pub fn msgid(event: &str) -> &str {
    if (1..=MAX_MSGID).contains(&event.len()) && event.bytes().all(is_print_ascii) {
        event
    } else {
        "-"
    }
}

/// Appends `s` as a header field: characters outside printable ASCII
/// become `_`, cut to `max` bytes; NILVALUE when nothing is left.
fn push_printable(out: &mut String, s: &str, max: usize) {
    if s.is_empty() {
        out.push('-');
        return;
    }
    out.extend(s.chars().take(max).map(|c| {
        if c.is_ascii() && is_print_ascii(c as u8) {
            c
        } else {
            '_'
        }
    }));
}

/// `[auditlog@32473 id="…" …]`.
pub fn structured_data(entry: &Entry, org: &str) -> String {
    let mut out = String::new();
    write_structured_data(entry, org, &mut out);
    out
}

/// [`structured_data`], appended to `out`: every field of the entry, absent
/// ones left out, each value escaped as it is written.
pub fn write_structured_data(entry: &Entry, org: &str, out: &mut String) {
    out.push('[');
    out.push_str(SD_ID);
    let mut sd = Params {
        out,
        scratch: String::new(),
    };
    sd.shown("id", entry.id);
    sd.shown("seq", entry.seq);
    sd.text("org", org);
    sd.shown("timestamp", entry.timestamp);
    sd.shown("received_at", entry.received_at);
    sd.text("actor_type", entry.actor.kind.as_str());
    sd.text("actor", &entry.actor.id);
    sd.text("event", &entry.event);
    sd.text("resource_type", &entry.resource.kind);
    sd.text("resource_id", &entry.resource.id);
    if let Some(name) = &entry.resource.name {
        sd.text("resource_name", name);
    }
    if let Some(ip) = entry.ip_address {
        sd.shown("ip", ip);
    }
    let optional = [
        ("user_agent", &entry.user_agent),
        ("request_id", &entry.request_id),
        ("idempotency_key", &entry.idempotency_key),
    ];
    for (name, value) in optional {
        if let Some(value) = value {
            sd.text(name, value);
        }
    }
    if let Some(by) = &entry.submitted_by {
        sd.text("submitted_by", &by.to_text());
    }
    sd.shown("canonical_version", entry.canonical_version);
    sd.text("details", &entry.details_json());
    sd.out.push(']');
}

/// Writes PARAMs into a message, reusing one scratch buffer for values
/// that are not text already: a stream formats every entry it sends, so
/// each allocation here is paid tens of thousands of times a second.
struct Params<'a> {
    out: &'a mut String,
    scratch: String,
}

impl Params<'_> {
    fn text(&mut self, name: &str, value: &str) {
        push_param(self.out, name, value);
    }

    fn shown(&mut self, name: &str, value: impl std::fmt::Display) {
        self.scratch.clear();
        let _ = write!(self.scratch, "{value}");
        push_param(self.out, name, &self.scratch);
    }
}

/// ` name="value"`, the value escaped.
fn push_param(out: &mut String, name: &str, value: &str) {
    out.push(' ');
    out.push_str(name);
    out.push_str("=\"");
    push_escaped(out, value);
    out.push('"');
}

/// A PARAM-VALUE: `"`, `\` and `]` escaped, control characters as spaces.
pub fn escape_param(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    push_escaped(&mut out, value);
    out
}

/// [`escape_param`], appended to `out`; most values need no escape and are
/// copied whole.
fn push_escaped(out: &mut String, value: &str) {
    // 0xC2 leads the UTF-8 of U+0080..=U+00BF, the C1 controls among them.
    let plain = !value
        .bytes()
        .any(|b| b < 0x20 || matches!(b, 0x7f | 0xc2 | b'"' | b'\\' | b']'));
    if plain {
        out.push_str(value);
        return;
    }
    for c in one_line(value).chars() {
        if matches!(c, '"' | '\\' | ']') {
            out.push('\\');
        }
        out.push(c);
    }
}

/// The `rfc5424` format's MSG: `{actor} {event} {resource_type}/{resource_id}`,
/// on one line.
pub fn summary(entry: &Entry) -> String {
    let mut out = String::new();
    write_summary(entry, &mut out);
    out
}

/// [`summary`], appended to `out`.
pub fn write_summary(entry: &Entry, out: &mut String) {
    let parts = [
        entry.actor.id.as_str(),
        " ",
        &entry.event,
        " ",
        &entry.resource.kind,
        "/",
        &entry.resource.id,
    ];
    for part in parts {
        out.push_str(&one_line(part));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Timestamp;
    use crate::siem::test_entries::{entry, nasty};
    use crate::siem::{Format, message};

    fn hdr(facility: u8) -> Header<'static> {
        Header {
            facility,
            hostname: "host",
            app_name: "auditlog",
        }
    }

    #[test]
    fn pri_is_facility_times_eight_plus_severity() {
        let e = entry("organization.member_role_changed"); // High: 3
        assert!(header(&e, &hdr(0)).starts_with("<3>1 "));
        assert!(header(&e, &hdr(16)).starts_with("<131>1 "));
        assert!(header(&e, &hdr(23)).starts_with("<187>1 "));
        assert!(header(&e, &hdr(200)).starts_with("<187>1 "), "clamped to local7");
        let e = entry("session.signed_in"); // Informational: 6
        assert!(header(&e, &hdr(1)).starts_with("<14>1 "));
        let e = entry("dataset.created"); // unknown: Informational
        assert!(header(&e, &hdr(4)).starts_with("<38>1 "));
    }

    #[test]
    fn header_has_the_entry_time_and_nil_procid() {
        let e = entry("project.created");
        assert_eq!(
            header(&e, &hdr(1)),
            "<13>1 2026-01-31T12:34:56.789Z host auditlog - project.created"
        );
        let mut far = entry("project.created");
        far.timestamp = Timestamp(-70_000_000_000_000);
        assert!(header(&far, &hdr(1)).starts_with("<13>1 - host "));
    }

    #[test]
    fn msgid_falls_back_to_nil_when_rfc5424_forbids_the_name() {
        assert_eq!(msgid("api_key.created"), "api_key.created");
        assert_eq!(msgid(&"a".repeat(32)), "a".repeat(32));
        assert_eq!(msgid(&"a".repeat(33)), "-");
        assert_eq!(msgid("organization.member_password_changed"), "-");
        assert_eq!(msgid(""), "-");
        assert_eq!(msgid("a b"), "-");
        assert_eq!(msgid("café.x"), "-");
    }

    #[test]
    fn hostname_and_app_name_are_sanitized() {
        let e = entry("project.created");
        let h = Header {
            facility: 1,
            hostname: "",
            app_name: "audit log\n",
        };
        assert!(header(&e, &h).starts_with("<13>1 2026-01-31T12:34:56.789Z - audit_log_ - "));
        let long = "h".repeat(300);
        let h = Header {
            facility: 1,
            hostname: &long,
            app_name: "é",
        };
        let text = header(&e, &h);
        assert!(text.contains(&format!(" {} _ - ", "h".repeat(255))), "{text}");
    }

    #[test]
    fn param_values_escape_quote_backslash_and_bracket() {
        assert_eq!(escape_param(r#"a"b\c]d"#), r#"a\"b\\c\]d"#);
        assert_eq!(escape_param("x=y|z [w] é"), r"x=y|z [w\] é");
        assert_eq!(escape_param("a\r\nb"), "a  b");
        // C1 controls and DEL, which the copy-whole shortcut must not miss.
        assert_eq!(escape_param("a\u{85}b\u{7f}c\u{9f}d"), "a b c d");
        assert_eq!(escape_param("¢ ÿ é"), "¢ ÿ é");
    }

    #[test]
    fn structured_data_carries_every_field() {
        let mut e = entry("project.created");
        e.idempotency_key = Some("k-1".into());
        let sd = structured_data(&e, "acme");
        assert_eq!(
            sd,
            concat!(
                r#"[auditlog@32473 id="01900000-0000-7000-8000-000000000001" seq="42" org="acme""#,
                r#" timestamp="2026-01-31T12:34:56.789Z" received_at="2026-01-31T12:34:56.794Z""#,
                r#" actor_type="user" actor="alice@acme.com" event="project.created""#,
                r#" resource_type="project" resource_id="p_1" resource_name="Prod" ip="203.0.113.7""#,
                r#" user_agent="curl/8.5" request_id="r-1" idempotency_key="k-1""#,
                r#" submitted_by="session:alice@acme.com" canonical_version="2" details="{\"name\":\"Prod\"}"]"#,
            )
        );
    }

    #[test]
    fn absent_fields_are_left_out() {
        let mut e = entry("project.created");
        e.resource.name = None;
        e.ip_address = None;
        e.user_agent = None;
        e.request_id = None;
        e.submitted_by = None;
        let sd = structured_data(&e, "acme");
        let names: Vec<_> = unescape_sd(&sd).into_iter().map(|(n, _)| n).collect();
        assert_eq!(
            names,
            [
                "id",
                "seq",
                "org",
                "timestamp",
                "received_at",
                "actor_type",
                "actor",
                "event",
                "resource_type",
                "resource_id",
                "canonical_version",
                "details"
            ]
        );
    }

    #[test]
    fn nasty_values_stay_inside_their_param() {
        let m = message(Format::Rfc5424, &nasty(), "acme", &hdr(1));
        let sd_start = m.find('[').unwrap();
        let sd = unescape_sd(&m[sd_start..]);
        let by_name: std::collections::HashMap<_, _> = sd.into_iter().collect();
        assert_eq!(by_name["actor"], "eve\"]\\|=  x@acme.com");
        assert_eq!(by_name["resource_id"], "a=b\\c]d\"e");
        assert_eq!(by_name["resource_name"], "Prod line two\u{2028}é😀");
        let details: serde_json::Value = serde_json::from_str(&by_name["details"]).unwrap();
        assert_eq!(details["note"], "a\nb=c\\d|e]f\"g ü");
        assert!(!m.contains('\n'));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// Whatever text a field holds (control characters, C1 controls,
        /// quotes, brackets, backslashes, any Unicode), a reader that follows
        /// RFC 5424 gets it back, control characters as spaces, inside its
        /// own PARAM: the copy-whole shortcut in `push_escaped` must take
        /// only text that needs no escape.
        #[test]
        fn any_text_reads_back_from_its_param(
            actor in "(\\PC|[\"\\\\\\]\\x00-\\x1f\\x7f\\u{80}-\\u{9f}])*",
            user_agent in "\\PC*|[\\x00-\\u{ff}]*",
        ) {
            let mut e = crate::siem::test_entries::entry("project.created");
            e.actor.id = actor.clone();
            e.user_agent = Some(user_agent.clone());
            let by_name: std::collections::HashMap<_, _> =
                unescape_sd(&structured_data(&e, "acme")).into_iter().collect();
            let blank = |s: &str| s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect::<String>();
            proptest::prop_assert_eq!(&by_name["actor"], &blank(&actor));
            proptest::prop_assert_eq!(&by_name["user_agent"], &blank(&user_agent));
        }
    }

    /// A reader of one SD-ELEMENT that follows RFC 5424's grammar, to check
    /// the writer against.
    fn unescape_sd(sd: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let body = sd.strip_prefix("[auditlog@32473").unwrap();
        let mut chars = body.chars().peekable();
        loop {
            match chars.next() {
                Some(']') => return out,
                Some(' ') => {}
                other => panic!("unexpected {other:?}"),
            }
            let name: String = chars.by_ref().take_while(|&c| c != '=').collect();
            assert_eq!(chars.next(), Some('"'));
            let mut value = String::new();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => {
                        let next = chars.next().unwrap();
                        assert!(matches!(next, '"' | '\\' | ']'), "stray backslash in {name}");
                        value.push(next);
                    }
                    '"' => break,
                    ']' => panic!("unescaped ] in {name}"),
                    c => value.push(c),
                }
            }
            out.push((name, value));
        }
    }

    #[test]
    fn summary_is_one_readable_line() {
        assert_eq!(
            summary(&entry("project.created")),
            "alice@acme.com project.created project/p_1"
        );
        assert!(!summary(&nasty()).contains(['\r', '\n']));
    }
}

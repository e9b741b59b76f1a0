//! The messages a SIEM stream carries: one syslog message per audit entry,
//! in one of three formats, and the octet-counting frame around it.
//!
//! Every format shares the RFC 5424 header ([`rfc5424`]); they differ in
//! what follows it:
//!
//! - [`Format::Rfc5424`]: the entry as structured data (every field, one
//!   SD-ELEMENT) and a short human-readable MSG.
//! - [`Format::Cef`]: NILVALUE structured data and an ArcSight CEF line as
//!   MSG ([`cef`]).
//! - [`Format::Ocsf`]: NILVALUE structured data and one OCSF 1.8.0 event as
//!   compact JSON as MSG ([`ocsf`], with the class and activity of each
//!   event in [`ocsf_mapping`]).
//!
//! How much each event matters is one [`Severity`] per event
//! ([`severity`]), written on each format's own scale.
//!
//! Whatever the entry holds, a message is one line of valid UTF-8: the
//! receivers we target write one message per line, so a line break inside
//! one would split it in two. Framing is RFC 6587 octet counting, the
//! framing RFC 5425 (syslog over TLS) requires, so a receiver never has to
//! guess where a message ends.
//!
//! Nothing here does I/O; the stream worker that sends these lives in the
//! server.

pub mod cef;
pub mod ocsf;
pub mod ocsf_mapping;
pub mod rfc5424;
pub mod severity;

pub use ocsf_mapping::{Class, Mapping, class_of};
pub use severity::Severity;

use std::io::Write;

use crate::Entry;

/// How a stream carries each entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    Rfc5424,
    Cef,
    Ocsf,
}

impl Format {
    pub const ALL: [Format; 3] = [Format::Rfc5424, Format::Cef, Format::Ocsf];

    pub fn as_str(self) -> &'static str {
        match self {
            Format::Rfc5424 => "rfc5424",
            Format::Cef => "cef",
            Format::Ocsf => "ocsf",
        }
    }

    pub fn parse(s: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|f| f.as_str() == s)
    }
}

/// What the RFC 5424 header says about the sender, the same for every
/// message of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header<'a> {
    /// The syslog facility, 0..=23; larger values are sent as 23 (local7),
    /// so a misconfigured stream still yields a valid PRI.
    pub facility: u8,
    /// HOSTNAME; "-" when empty.
    pub hostname: &'a str,
    /// APP-NAME; see [`valid_app_name`].
    pub app_name: &'a str,
}

/// The full syslog message for `entry` of organization `org`, without
/// framing.
pub fn message(format: Format, entry: &Entry, org: &str, header: &Header) -> String {
    let mut out = String::new();
    write_message(format, entry, org, header, &mut out);
    out
}

/// [`message`], appended to `out`, so a sender can reuse one buffer for
/// every message it formats.
pub fn write_message(format: Format, entry: &Entry, org: &str, header: &Header, out: &mut String) {
    rfc5424::write_header(entry, header, out);
    out.push(' ');
    match format {
        Format::Rfc5424 => {
            rfc5424::write_structured_data(entry, org, out);
            out.push(' ');
            rfc5424::write_summary(entry, out);
        }
        Format::Cef => {
            out.push_str("- ");
            out.push_str(&cef::line(entry, org));
        }
        Format::Ocsf => {
            // Writing into a String cannot fail.
            let _ = std::fmt::Write::write_fmt(out, format_args!("- {}", ocsf::event(entry, org)));
        }
    }
}

/// Appends `message` with RFC 6587 octet-counting framing: its length in
/// bytes, a space, the message.
pub fn frame(message: &str, out: &mut Vec<u8>) {
    // Writing into a Vec cannot fail.
    let _ = write!(out, "{}", message.len());
    out.push(b' ');
    out.extend_from_slice(message.as_bytes());
}

/// Is `s` a valid RFC 5424 APP-NAME: 1 to 48 printable US-ASCII
/// characters (33..=126)?
pub fn valid_app_name(s: &str) -> bool {
    (1..=48).contains(&s.len()) && s.bytes().all(is_print_ascii)
}

fn is_print_ascii(b: u8) -> bool {
    (33..=126).contains(&b)
}

/// `s` with every control character (CR, LF, tab, NEL, ...) as a space:
/// the message stays on one line, and no receiver meets a raw control
/// byte.
pub(crate) fn one_line(s: &str) -> std::borrow::Cow<'_, str> {
    if s.chars().any(char::is_control) {
        s.chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect::<String>()
            .into()
    } else {
        s.into()
    }
}

#[cfg(test)]
pub(crate) mod test_entries {
    //! Entries shared by the unit tests of the formats.

    use crate::entry::{Actor, ActorType, Resource, SubmittedBy, SubmitterKind};
    use crate::{Entry, OrgId, Timestamp};

    /// 2026-01-31T12:34:56.789Z
    pub const T: i64 = 1_769_862_896_789;

    pub fn entry(event: &str) -> Entry {
        Entry {
            id: uuid::Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0001),
            org_id: OrgId(1),
            seq: 42,
            timestamp: Timestamp(T),
            received_at: Timestamp(T + 5),
            actor: Actor {
                kind: ActorType::User,
                id: "alice@acme.com".into(),
            },
            event: event.into(),
            resource: Resource {
                kind: "project".into(),
                id: "p_1".into(),
                name: Some("Prod".into()),
            },
            details: serde_json::from_str(r#"{"name":"Prod"}"#).unwrap(),
            ip_address: Some("203.0.113.7".parse().unwrap()),
            user_agent: Some("curl/8.5".into()),
            request_id: Some("r-1".into()),
            idempotency_key: None,
            submitted_by: Some(SubmittedBy::new(SubmitterKind::Session, "alice@acme.com")),
            canonical_version: 2,
            personal: Default::default(),
        }
    }

    /// An entry whose every text field carries what needs escaping.
    pub fn nasty() -> Entry {
        let mut e = entry("project.created");
        e.actor.id = "eve\"]\\|=\r\nx@acme.com".into();
        e.resource.kind = "pro|ject".into();
        e.resource.id = "a=b\\c]d\"e".into();
        e.resource.name = Some("Prod\nline two\u{2028}é😀".into());
        e.user_agent = Some("Mozilla/5.0 (X11; \\ | = ] \")\r\n".into());
        e.request_id = Some("r=1\\2".into());
        e.details = serde_json::from_str(r#"{"note":"a\nb=c\\d|e]f\"g ü"}"#).unwrap();
        e
    }
}

#[cfg(test)]
mod tests {
    use super::test_entries::{entry, nasty};
    use super::*;

    const HEADER: Header = Header {
        facility: 13,
        hostname: "auditlog-1",
        app_name: "auditlog",
    };

    #[test]
    fn formats_round_trip_through_text() {
        for f in Format::ALL {
            assert_eq!(Format::parse(f.as_str()), Some(f));
        }
        assert_eq!(Format::parse("json"), None);
        assert_eq!(Format::parse("CEF"), None);
    }

    #[test]
    fn every_format_is_one_line_whatever_the_entry_holds() {
        for e in [entry("project.created"), nasty()] {
            for f in Format::ALL {
                let m = message(f, &e, "ac\nme", &HEADER);
                assert!(!m.contains(['\r', '\n']), "{} message spans lines: {m:?}", f.as_str());
                assert!(!m.starts_with('\u{feff}'));
                assert!(
                    m.starts_with("<109>1 2026-01-31T12:34:56.789Z auditlog-1 auditlog - "),
                    "{m}"
                );
            }
        }
    }

    #[test]
    fn cef_and_ocsf_messages_carry_no_structured_data() {
        let e = entry("project.created");
        let cef = message(Format::Cef, &e, "acme", &HEADER);
        assert!(cef.contains(" project.created - CEF:0|auditlog|auditlog|"), "{cef}");
        let ocsf = message(Format::Ocsf, &e, "acme", &HEADER);
        let json = ocsf.split_once(" project.created - ").unwrap().1;
        let v: serde_json::Value = serde_json::from_str(json).unwrap();
        assert_eq!(v["class_uid"], 3004);
    }

    #[test]
    fn frames_count_bytes_not_characters() {
        let mut out = b"prev".to_vec();
        frame("é x", &mut out);
        assert_eq!(out, "prev4 é x".as_bytes());
        let mut out = Vec::new();
        frame("", &mut out);
        assert_eq!(out, b"0 ");
    }

    #[test]
    fn app_names_are_short_printable_ascii() {
        assert!(valid_app_name("auditlog"));
        assert!(valid_app_name(&"a".repeat(48)));
        for bad in ["", "audit log", "auditlög", "a\tb", &"a".repeat(49)] {
            assert!(!valid_app_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn one_line_blanks_control_characters_only() {
        assert_eq!(one_line("a\r\nb\tc\u{85}d é"), "a  b c d é");
        assert!(matches!(one_line("plain"), std::borrow::Cow::Borrowed(_)));
    }
}

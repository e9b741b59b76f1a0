//! The CEF format: one ArcSight Common Event Format line per entry, as the
//! MSG of an RFC 5424 message.
//!
//! `CEF:0|auditlog|auditlog|{version}|{event}|{name}|{severity}|{extension}`
//!
//! where the Device Event Class ID is the event name, Name its readable form
//! (`organization.member_role_changed` reads "Organization member role
//! changed"), and Severity is on CEF's 0..=10 scale
//! ([`super::Severity::cef`]).
//!
//! Escaping follows the CEF standard and differs between the two parts. In
//! the header, `\` and `|` are escaped with a backslash and a line break is
//! not allowed at all, so CR and LF become spaces. In the extension, `\` and
//! `=` are escaped, LF is written `\n` and CR `\r`; a pipe needs no escape
//! there, and escaping one would be read back as a backslash and a pipe by
//! strict parsers. A value may hold spaces: the next key starts after the
//! last space before an unescaped `=`.
//!
//! The extension uses the standard dictionary's keys where one means the
//! same thing, and labelled custom fields for the rest:
//!
//! | key | value |
//! | --- | --- |
//! | `rt` | received_at, milliseconds since the epoch |
//! | `start` | timestamp (when it happened), milliseconds since the epoch |
//! | `externalId` | id |
//! | `act` | event |
//! | `suser` | actor |
//! | `src` | ip, when it is IPv4 |
//! | `c6a2`, label `Source IPv6 Address` | ip, when it is IPv6 |
//! | `requestClientApplication` | user_agent |
//! | `cn1`, label `seq` | seq |
//! | `cn2`, label `canonical_version` | canonical_version |
//! | `cs1`, label `org` | the organization |
//! | `cs2`, label `actor_type` | actor_type |
//! | `cs3`, label `resource_type` | resource_type |
//! | `cs4`, label `resource_id` | resource_id |
//! | `cs5`, label `resource_name` | resource_name |
//! | `cs6`, label `details` | details, compact JSON |
//! | `flexString1`, label `request_id` | request_id |
//! | `flexString2`, label `submitted_by` | submitted_by, `kind:id` |
//!
//! Absent and empty values are left out with their labels. The
//! idempotency key has no field left (CEF has six custom strings and two
//! flex strings); the `rfc5424` and `ocsf` formats carry it.

use std::net::IpAddr;

use super::severity;
use crate::Entry;

/// The product's version, which CEF's header carries.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The CEF line for `entry` of organization `org`.
pub fn line(entry: &Entry, org: &str) -> String {
    let mut out = String::from("CEF:0|auditlog|auditlog|");
    for field in [
        VERSION,
        &entry.event,
        &readable_name(&entry.event),
        &severity::of_event(&entry.event).cef().to_string(),
    ] {
        out.push_str(&escape_header(field));
        out.push('|');
    }
    let pairs = extension(entry, org);
    for (i, (key, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(key);
        out.push('=');
        out.push_str(&escape_extension(value));
    }
    out
}

/// The extension's `(key, value)` pairs in the order written, unescaped.
pub fn extension(entry: &Entry, org: &str) -> Vec<(&'static str, String)> {
    let mut ext = vec![
        ("rt", entry.received_at.millis().to_string()),
        ("start", entry.timestamp.millis().to_string()),
        ("externalId", entry.id.to_string()),
        ("act", entry.event.clone()),
        ("suser", entry.actor.id.clone()),
    ];
    match entry.ip_address {
        Some(IpAddr::V4(ip)) => ext.push(("src", ip.to_string())),
        Some(IpAddr::V6(ip)) => {
            ext.push(("c6a2", ip.to_string()));
            ext.push(("c6a2Label", "Source IPv6 Address".into()));
        }
        None => {}
    }
    if let Some(ua) = &entry.user_agent {
        ext.push(("requestClientApplication", ua.clone()));
    }
    for ((key, label_key, label), value) in CUSTOM.into_iter().zip(custom_values(entry, org)) {
        if let Some(value) = value {
            ext.push((key, value));
            ext.push((label_key, label.to_owned()));
        }
    }
    ext.retain(|(_, v)| !v.is_empty());
    ext
}

/// The labelled custom fields: the key, the key of its label, the label.
const CUSTOM: [(&str, &str, &str); 10] = [
    ("cn1", "cn1Label", "seq"),
    ("cn2", "cn2Label", "canonical_version"),
    ("cs1", "cs1Label", "org"),
    ("cs2", "cs2Label", "actor_type"),
    ("cs3", "cs3Label", "resource_type"),
    ("cs4", "cs4Label", "resource_id"),
    ("cs5", "cs5Label", "resource_name"),
    ("cs6", "cs6Label", "details"),
    ("flexString1", "flexString1Label", "request_id"),
    ("flexString2", "flexString2Label", "submitted_by"),
];

/// The values of [`CUSTOM`]'s fields, in its order; `None` for absent and
/// empty ones.
fn custom_values(entry: &Entry, org: &str) -> [Option<String>; 10] {
    [
        Some(entry.seq.to_string()),
        Some(entry.canonical_version.to_string()),
        Some(org.to_owned()),
        Some(entry.actor.kind.as_str().to_owned()),
        Some(entry.resource.kind.clone()),
        Some(entry.resource.id.clone()),
        entry.resource.name.clone(),
        Some(entry.details_json()),
        entry.request_id.clone(),
        entry.submitted_by.as_ref().map(|s| s.to_text()),
    ]
    .map(|v| v.filter(|v| !v.is_empty()))
}

/// `api_key.created` as "API key created": the name's words, the first
/// capitalised, the usual acronyms in capitals.
pub fn readable_name(event: &str) -> String {
    let words: Vec<String> = event
        .split(['.', '_'])
        .filter(|w| !w.is_empty())
        .map(|w| match w {
            "api" | "sso" | "ip" => w.to_ascii_uppercase(),
            _ => w.to_owned(),
        })
        .collect();
    let joined = words.join(" ");
    let mut chars = joined.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => joined,
    }
}

/// A header field: `\` and `|` escaped, CR and LF (not allowed in the
/// header) as spaces.
pub fn escape_header(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' | '|' => {
                out.push('\\');
                out.push(c);
            }
            '\r' | '\n' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// An extension value: `\` and `=` escaped, LF as `\n`, CR as `\r`.
pub fn escape_extension(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '=' => out.push_str("\\="),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::siem::test_entries::{entry, nasty};

    #[test]
    fn a_plain_entry_reads_as_expected() {
        let line = line(&entry("project.created"), "acme");
        assert_eq!(
            line,
            format!(
                concat!(
                    "CEF:0|auditlog|auditlog|{}|project.created|Project created|3|",
                    "rt=1769862896794 start=1769862896789 externalId=01900000-0000-7000-8000-000000000001",
                    " act=project.created suser=alice@acme.com src=203.0.113.7 requestClientApplication=curl/8.5",
                    " cn1=42 cn1Label=seq cn2=2 cn2Label=canonical_version cs1=acme cs1Label=org",
                    " cs2=user cs2Label=actor_type cs3=project cs3Label=resource_type cs4=p_1 cs4Label=resource_id",
                    " cs5=Prod cs5Label=resource_name cs6={{\"name\":\"Prod\"}} cs6Label=details",
                    " flexString1=r-1 flexString1Label=request_id",
                    " flexString2=session:alice@acme.com flexString2Label=submitted_by"
                ),
                VERSION
            )
        );
    }

    #[test]
    fn header_escapes_backslash_and_pipe_and_drops_line_breaks() {
        assert_eq!(escape_header(r"a|b\c"), r"a\|b\\c");
        assert_eq!(escape_header("a\r\nb=c"), "a  b=c");
        let mut e = entry("we|ird\\name\nx");
        e.event = "we|ird\\name\nx".into();
        let line = line(&e, "acme");
        assert!(line.contains(r"|we\|ird\\name x|We\|ird\\name x|1|"), "{line}");
    }

    #[test]
    fn extension_escapes_backslash_equals_and_line_breaks_but_not_pipes() {
        assert_eq!(escape_extension("a=b\\c|d\r\ne"), r"a\=b\\c|d\r\ne");
        assert_eq!(escape_extension("é 😀 \"]"), "é 😀 \"]");
    }

    #[test]
    fn ipv6_goes_to_a_labelled_custom_address() {
        let mut e = entry("project.created");
        e.ip_address = Some("2001:db8::1".parse().unwrap());
        let ext = extension(&e, "acme");
        assert!(ext.contains(&("c6a2", "2001:db8::1".into())));
        assert!(ext.contains(&("c6a2Label", "Source IPv6 Address".into())));
        assert!(!ext.iter().any(|(k, _)| *k == "src"));
    }

    #[test]
    fn absent_values_leave_out_their_labels_too() {
        let mut e = entry("project.created");
        e.resource.name = None;
        e.request_id = Some(String::new());
        e.submitted_by = None;
        e.ip_address = None;
        e.user_agent = None;
        let keys: Vec<_> = extension(&e, "acme").into_iter().map(|(k, _)| k).collect();
        for gone in [
            "cs5",
            "cs5Label",
            "flexString1",
            "flexString1Label",
            "flexString2",
            "src",
            "requestClientApplication",
        ] {
            assert!(!keys.contains(&gone), "{gone} in {keys:?}");
        }
        assert!(keys.contains(&"cs6Label"));
    }

    #[test]
    fn names_read_as_words() {
        assert_eq!(readable_name("api_key.created"), "API key created");
        assert_eq!(
            readable_name("organization.member_role_changed"),
            "Organization member role changed"
        );
        assert_eq!(
            readable_name("organization.sso_configured"),
            "Organization SSO configured"
        );
        assert_eq!(readable_name("évènement.x"), "Évènement x");
        assert_eq!(readable_name(""), "");
    }

    #[test]
    fn nasty_entries_stay_on_one_line() {
        let line = line(&nasty(), "ac\nme");
        assert!(!line.contains(['\r', '\n']), "{line}");
        assert!(line.contains(r"cs1=ac\nme "), "{line}");
    }
}

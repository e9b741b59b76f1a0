//! The CSV export's rows: the columns of the API contract, RFC 4180 quoting,
//! and a defence against spreadsheet formula injection.
//!
//! A cell that a spreadsheet would evaluate (`=`, `+`, `-`, `@`, tab or
//! carriage return first) gets a single quote prepended, which spreadsheets
//! show as text. Cells that already begin with a quote get one too, so the
//! rule is reversible: remove one leading `'` from any cell that has one and
//! you have the recorded value exactly. The JSON Lines export is unaltered.

use csv::{QuoteStyle, Terminator, WriterBuilder};

use crate::Entry;

/// The contract's columns, then `submitted_by` (`kind:id`, empty for
/// entries recorded before it was kept), appended so that readers of the
/// first twelve are unaffected.
pub const COLUMNS: [&str; 13] = [
    "id",
    "seq",
    "timestamp",
    "actor_type",
    "actor",
    "event",
    "resource_type",
    "resource_id",
    "resource_name",
    "details",
    "ip_address",
    "user_agent",
    "submitted_by",
];

/// Returns the cell as written to the file.
pub fn neutralise(cell: &str) -> std::borrow::Cow<'_, str> {
    match cell.as_bytes().first() {
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r' | b'\'') => format!("'{cell}").into(),
        _ => cell.into(),
    }
}

/// Writes rows into an in-memory buffer the caller drains as it goes, so an
/// export of any length holds one chunk at a time.
pub struct CsvEncoder {
    writer: csv::Writer<Vec<u8>>,
}

impl std::fmt::Debug for CsvEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CsvEncoder")
    }
}

impl Default for CsvEncoder {
    fn default() -> Self {
        Self::new()
    }
}

impl CsvEncoder {
    pub fn new() -> Self {
        Self { writer: Self::writer() }
    }

    fn writer() -> csv::Writer<Vec<u8>> {
        WriterBuilder::new()
            .terminator(Terminator::CRLF)
            .quote_style(QuoteStyle::Necessary)
            .from_writer(Vec::with_capacity(64 * 1024))
    }

    pub fn header(&mut self) {
        // Writing into a Vec cannot fail.
        let _ = self.writer.write_record(COLUMNS);
    }

    pub fn row(&mut self, e: &Entry) {
        let id = e.id.to_string();
        let seq = e.seq.to_string();
        let ts = e.timestamp.to_rfc3339();
        let details = e.details_json();
        let ip = e.ip_address.map(|ip| ip.to_string()).unwrap_or_default();
        let by = e.submitted_by.as_ref().map(|b| b.to_text()).unwrap_or_default();
        let cells: [&str; COLUMNS.len()] = [
            &id,
            &seq,
            &ts,
            e.actor.kind.as_str(),
            &e.actor.id,
            &e.event,
            &e.resource.kind,
            &e.resource.id,
            e.resource.name.as_deref().unwrap_or(""),
            &details,
            &ip,
            e.user_agent.as_deref().unwrap_or(""),
            &by,
        ];
        // Borrowed unless a cell needs neutralising: no copy per cell.
        let cells = cells.map(neutralise);
        let _ = self.writer.write_record(cells.iter().map(|c| c.as_bytes()));
    }

    /// Bytes written since the last call.
    pub fn take(&mut self) -> Vec<u8> {
        let full = std::mem::replace(&mut self.writer, Self::writer());
        full.into_inner().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::{Actor, ActorType, Resource};
    use crate::{OrgId, Timestamp};

    fn entry(actor: &str, name: Option<&str>, details: serde_json::Value) -> Entry {
        Entry {
            id: uuid::Uuid::nil(),
            org_id: OrgId(1),
            seq: 3,
            timestamp: Timestamp::parse("2026-03-01T08:09:10.011Z").unwrap(),
            received_at: Timestamp(0),
            actor: Actor {
                kind: ActorType::infer(actor),
                id: actor.into(),
            },
            event: "project.renamed".into(),
            resource: Resource {
                kind: "project".into(),
                id: "p_1".into(),
                name: name.map(str::to_owned),
            },
            details: details.as_object().unwrap().clone(),
            ip_address: Some("203.0.113.7".parse().unwrap()),
            user_agent: Some("curl/8.5".into()),
            request_id: None,
            idempotency_key: None,
            submitted_by: None,
            canonical_version: 1,
            personal: Default::default(),
        }
    }

    fn encode(rows: &[Entry]) -> String {
        let mut enc = CsvEncoder::new();
        enc.header();
        for r in rows {
            enc.row(r);
        }
        String::from_utf8(enc.take()).unwrap()
    }

    fn parse(csv_text: &str) -> Vec<Vec<String>> {
        csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(csv_text.as_bytes())
            .records()
            .map(|r| r.unwrap().iter().map(str::to_owned).collect())
            .collect()
    }

    #[test]
    fn header_and_row_follow_the_contract() {
        let out = encode(&[entry("alice@acme.com", Some("Prod"), serde_json::json!({"a": 1}))]);
        let mut lines = out.split("\r\n");
        assert_eq!(
            lines.next().unwrap(),
            "id,seq,timestamp,actor_type,actor,event,resource_type,resource_id,resource_name,details,ip_address,user_agent,submitted_by"
        );
        assert_eq!(
            lines.next().unwrap(),
            "00000000-0000-0000-0000-000000000000,3,2026-03-01T08:09:10.011Z,user,alice@acme.com,project.renamed,project,p_1,Prod,\"{\"\"a\"\":1}\",203.0.113.7,curl/8.5,"
        );
        assert_eq!(lines.next(), Some(""), "every record ends with CRLF");
        let mut by = entry("alice@acme.com", None, serde_json::json!({}));
        by.submitted_by = Some(crate::SubmittedBy::new(crate::SubmitterKind::ApiKey, "lqt_ab12cd34"));
        assert_eq!(parse(&encode(&[by]))[1][12], "api_key:lqt_ab12cd34", "the last column");
    }

    #[test]
    fn quotes_commas_quotes_and_newlines_per_rfc4180() {
        let name = "Prod, \"main\"\nline two";
        let out = encode(&[entry("alice@acme.com", Some(name), serde_json::json!({}))]);
        assert!(out.contains("\"Prod, \"\"main\"\"\nline two\""));
        assert_eq!(parse(&out)[1][8], name, "a reader gets the value back");
    }

    #[test]
    fn keeps_non_ascii_as_utf8() {
        let out = encode(&[entry(
            "zoë@例え.jp",
            Some("Prüfung ✓"),
            serde_json::json!({"note": "naïve"}),
        )]);
        let rows = parse(&out);
        assert_eq!(rows[1][4], "zoë@例え.jp");
        assert_eq!(rows[1][8], "Prüfung ✓");
        assert_eq!(rows[1][9], r#"{"note":"naïve"}"#);
    }

    #[test]
    fn neutralises_formula_triggers() {
        for (raw, want) in [
            ("=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"),
            ("+1+1", "'+1+1"),
            ("-2+3", "'-2+3"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\tcmd", "'\tcmd"),
            ("\rcmd", "'\rcmd"),
            ("'already", "''already"),
            ("plain", "plain"),
            ("a=b", "a=b"),
            ("", ""),
        ] {
            assert_eq!(neutralise(raw), want, "{raw:?}");
        }
        let out = encode(&[entry("=cmd|'/C calc'!A0", Some("@evil"), serde_json::json!({}))]);
        let rows = parse(&out);
        assert_eq!(rows[1][4], "'=cmd|'/C calc'!A0");
        assert_eq!(rows[1][8], "'@evil");
    }

    #[test]
    fn take_drains_so_memory_stays_bounded() {
        let mut enc = CsvEncoder::new();
        enc.header();
        let first = enc.take();
        assert!(!first.is_empty());
        assert!(enc.take().is_empty());
        enc.row(&entry("a@b.c", None, serde_json::json!({})));
        assert!(enc.take().ends_with(b"\r\n"));
    }
}

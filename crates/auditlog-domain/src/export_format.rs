//! The export's file formats, CSV (see [`crate::csv_row`]), JSON Lines of
//! entries, and JSON Lines of OCSF events (one [`crate::siem::ocsf::event`]
//! per entry, for a SIEM that takes OCSF), written a page of entries at a
//! time, so an export of any size holds one page in memory wherever it is
//! produced (the API, the command line).
//!
//! A JSON Lines export made with proofs ends with one more line, the signed
//! checkpoint its proofs are for: `{"kind":"checkpoint","note":"…"}`, the
//! note exactly as signed. The file then verifies with nothing but the
//! service's public key. Entries have no top-level `kind`, so the field
//! tells the two kinds of line apart.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use crate::Entry;
use crate::csv_row::CsvEncoder;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Csv,
    Jsonl,
    /// One OCSF 1.8.0 event per line.
    Ocsf,
}

impl ExportFormat {
    /// The name in `format=` and in file names.
    pub fn name(self) -> &'static str {
        match self {
            ExportFormat::Csv => "csv",
            ExportFormat::Jsonl => "jsonl",
            ExportFormat::Ocsf => "ocsf",
        }
    }

    /// How a file of this format ends: OCSF events are JSON Lines too, and
    /// a tool that goes by the extension should read them as such.
    pub fn extension(self) -> &'static str {
        match self {
            ExportFormat::Csv => "csv",
            ExportFormat::Jsonl => "jsonl",
            ExportFormat::Ocsf => "ocsf.jsonl",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            ExportFormat::Csv => "text/csv; charset=utf-8",
            ExportFormat::Jsonl | ExportFormat::Ocsf => "application/jsonl; charset=utf-8",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown export format {0:?}: expected csv, jsonl or ocsf")]
pub struct UnknownFormat(pub String);

impl FromStr for ExportFormat {
    type Err = UnknownFormat;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "csv" => Ok(ExportFormat::Csv),
            "jsonl" => Ok(ExportFormat::Jsonl),
            "ocsf" => Ok(ExportFormat::Ocsf),
            other => Err(UnknownFormat(other.to_owned())),
        }
    }
}

impl fmt::Display for ExportFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The `kind` of a JSON Lines export's checkpoint line.
pub const CHECKPOINT_KIND: &str = "checkpoint";

/// The final line of an export with proofs: the signed note its proofs
/// are checked against.
pub fn checkpoint_line(note: &str) -> Vec<u8> {
    let mut line = serde_json::json!({"kind": CHECKPOINT_KIND, "note": note})
        .to_string()
        .into_bytes();
    line.push(b'\n');
    line
}

/// The signed note of a checkpoint line, or `None` for any other line;
/// `Some(Err)` for a checkpoint line without its note.
pub fn checkpoint_note(line: &serde_json::Value) -> Option<Result<&str, &'static str>> {
    (line.get("kind")?.as_str()? == CHECKPOINT_KIND).then(|| {
        line.get("note")
            .and_then(serde_json::Value::as_str)
            .ok_or("a checkpoint line without its note")
    })
}

/// Turns pages of entries into the bytes of one export file.
#[derive(Debug)]
pub struct PageWriter {
    format: ExportFormat,
    /// The organization's slug, which each OCSF event names as its tenant.
    org: String,
    csv: CsvEncoder,
    started: bool,
}

impl PageWriter {
    /// A writer for an export of organization `org` (its slug).
    pub fn new(format: ExportFormat, org: &str) -> Self {
        Self {
            format,
            org: org.to_owned(),
            csv: CsvEncoder::new(),
            started: false,
        }
    }

    /// The bytes for these entries; a CSV file's header comes with the
    /// first page, even an empty one.
    pub fn page(&mut self, entries: &[Entry]) -> Vec<u8> {
        let first = !std::mem::replace(&mut self.started, true);
        match self.format {
            ExportFormat::Csv => {
                if first {
                    self.csv.header();
                }
                for e in entries {
                    self.csv.row(e);
                }
                self.csv.take()
            }
            ExportFormat::Jsonl => json_lines(entries.iter()),
            ExportFormat::Ocsf => json_lines(entries.iter().map(|e| crate::siem::ocsf::event(e, &self.org))),
        }
    }
}

/// Each value as compact JSON on a line of its own.
fn json_lines<T: Serialize>(values: impl Iterator<Item = T>) -> Vec<u8> {
    let mut out = Vec::new();
    for v in values {
        // Serialising cannot fail: every field is plain data.
        let _ = serde_json::to_writer(&mut out, &v);
        out.push(b'\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_line_carries_its_note_byte_for_byte() {
        let note = "auditlog.example/acme\n3\nq80=\n\n\u{2014} auditlog.example abc=\n";
        let line = checkpoint_line(note);
        assert_eq!(line.iter().filter(|b| **b == b'\n').count(), 1, "one line");
        let value: serde_json::Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(checkpoint_note(&value), Some(Ok(note)));
    }

    #[test]
    fn formats_parse_their_names_and_name_their_files() {
        for (name, format, ext) in [
            ("csv", ExportFormat::Csv, "csv"),
            ("jsonl", ExportFormat::Jsonl, "jsonl"),
            ("ocsf", ExportFormat::Ocsf, "ocsf.jsonl"),
        ] {
            assert_eq!(name.parse::<ExportFormat>(), Ok(format));
            assert_eq!((format.name(), format.extension()), (name, ext));
        }
        let err = "xlsx".parse::<ExportFormat>().unwrap_err().to_string();
        assert!(err.contains("csv, jsonl or ocsf"), "{err}");
    }

    #[test]
    fn entries_and_broken_checkpoint_lines_are_told_apart() {
        let entry = serde_json::json!({"seq": 1, "event": "project.created", "submitted_by": {"kind": "cli"}});
        assert_eq!(checkpoint_note(&entry), None);
        assert!(
            checkpoint_note(&serde_json::json!({"kind": "checkpoint"}))
                .unwrap()
                .is_err()
        );
    }
}

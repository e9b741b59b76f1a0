//! The export's two file formats, CSV (see [`crate::csv_row`]) and JSON
//! Lines, written a page of entries at a time, so an export of any size
//! holds one page in memory wherever it is produced (the API, the command
//! line).

use std::fmt;
use std::str::FromStr;

use crate::Entry;
use crate::csv_row::CsvEncoder;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Csv,
    Jsonl,
}

impl ExportFormat {
    /// The name in `format=` and in file names.
    pub fn name(self) -> &'static str {
        match self {
            ExportFormat::Csv => "csv",
            ExportFormat::Jsonl => "jsonl",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            ExportFormat::Csv => "text/csv; charset=utf-8",
            ExportFormat::Jsonl => "application/jsonl; charset=utf-8",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown export format {0:?}: expected csv or jsonl")]
pub struct UnknownFormat(pub String);

impl FromStr for ExportFormat {
    type Err = UnknownFormat;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "csv" => Ok(ExportFormat::Csv),
            "jsonl" => Ok(ExportFormat::Jsonl),
            other => Err(UnknownFormat(other.to_owned())),
        }
    }
}

impl fmt::Display for ExportFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Turns pages of entries into the bytes of one export file.
#[derive(Debug)]
pub struct PageWriter {
    format: ExportFormat,
    csv: CsvEncoder,
    started: bool,
}

impl PageWriter {
    pub fn new(format: ExportFormat) -> Self {
        Self {
            format,
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
            ExportFormat::Jsonl => {
                let mut out = Vec::new();
                for e in entries {
                    // Serialising an entry cannot fail: every field is plain data.
                    let _ = serde_json::to_writer(&mut out, e);
                    out.push(b'\n');
                }
                out
            }
        }
    }
}

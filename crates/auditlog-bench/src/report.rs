//! The report's pieces every section uses: Markdown tables, verdicts
//! against targets, numbers as the reports write them, and the facts of a
//! run (command, date, machine).

use std::fmt::Write as _;
use std::time::Duration;

use auditlog_domain::Timestamp;

use crate::harness::{KindFigures, Latencies, ms};

/// A Markdown table.
pub(crate) struct Table {
    columns: &'static [&'static str],
    rows: Vec<Vec<String>>,
}

impl Table {
    pub(crate) fn new(columns: &'static [&'static str]) -> Self {
        Self { columns, rows: vec![] }
    }

    pub(crate) fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// A figure with no target: dashes fill the remaining columns.
    pub(crate) fn info(&mut self, figure: &str, result: String) {
        let mut cells = vec![figure.to_owned(), result];
        cells.resize(self.columns.len(), dash());
        self.rows.push(cells);
    }

    pub(crate) fn render(&self, out: &mut String) -> std::fmt::Result {
        writeln!(out, "| {} |", self.columns.join(" | "))?;
        writeln!(out, "|{}", " --- |".repeat(self.columns.len()))?;
        for r in &self.rows {
            writeln!(out, "| {} |", r.join(" | "))?;
        }
        writeln!(out)
    }
}

/// Verdicts against targets, remembering each miss and by how much.
#[derive(Default)]
pub(crate) struct Verdicts {
    pub(crate) misses: Vec<String>,
}

impl Verdicts {
    /// The report's closing section: every miss, or that there was none.
    pub(crate) fn summary(&self, out: &mut String) -> std::fmt::Result {
        writeln!(out, "## Summary\n")?;
        if self.misses.is_empty() {
            return writeln!(out, "Every target was met.");
        }
        writeln!(out, "Missed targets:\n")?;
        for m in &self.misses {
            writeln!(out, "- {m}")?;
        }
        Ok(())
    }

    pub(crate) fn at_least(&mut self, what: &str, value: f64, target: f64) -> String {
        if value >= target {
            "PASS".into()
        } else {
            let short = (1.0 - value / target) * 100.0;
            self.misses.push(format!("{what}: {short:.1}% below target"));
            format!("MISS ({short:.1}% below)")
        }
    }

    pub(crate) fn at_most(&mut self, what: &str, value: f64, limit: f64) -> String {
        self.upper_bound(what, value, limit, value <= limit)
    }

    pub(crate) fn below(&mut self, what: &str, value: f64, limit: f64) -> String {
        self.upper_bound(what, value, limit, value < limit)
    }

    pub(crate) fn upper_bound(&mut self, what: &str, value: f64, limit: f64, met: bool) -> String {
        if met {
            return "PASS".into();
        }
        let over = (value / limit - 1.0) * 100.0;
        self.misses.push(format!("{what}: {over:.1}% over target"));
        format!("MISS ({over:.1}% over)")
    }
}

/// Each query kind's latencies against the p99 limit, and the `/healthz`
/// baseline.
pub(crate) fn query_table(kinds: &[KindFigures], healthz: Latencies, p99_limit: Duration, v: &mut Verdicts) -> Table {
    let limit = ms(p99_limit);
    let mut t = Table::new(&["Query", "p50", "p99", "max", "Rows/page", "Target", "Verdict"]);
    for k in kinds {
        t.row(vec![
            k.label.into(),
            fmt_ms(k.latency.p50),
            fmt_ms(k.latency.p99),
            fmt_ms(k.latency.max),
            format!("{:.1}", k.mean_rows),
            format!("p99 ≤ {limit:.0} ms"),
            v.at_most(&format!("query {} p99", k.label), ms(k.latency.p99), limit),
        ]);
    }
    t.row(vec![
        "`GET /healthz` (baseline)".into(),
        fmt_ms(healthz.p50),
        fmt_ms(healthz.p99),
        fmt_ms(healthz.max),
        dash(),
        dash(),
        dash(),
    ]);
    t
}

/// 1234567 → "1,234,567".
pub(crate) fn thousands(n: f64) -> String {
    let digits = format!("{:.0}", n.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub(crate) fn mib(kib: Option<u64>) -> String {
    kib.map_or_else(
        || "not measured (no /proc)".into(),
        |k| format!("{:.1} MiB", k as f64 / 1024.0),
    )
}

/// CPU time as cores kept busy over `elapsed`, against the cores there are.
pub(crate) fn cores_busy(cpu: Option<Duration>, elapsed: Duration) -> String {
    let cores = cores();
    cpu.map_or_else(
        || "not measured (no /proc)".into(),
        |c| {
            format!(
                "{:.2} of {cores} cores",
                c.as_secs_f64() / elapsed.as_secs_f64().max(f64::EPSILON)
            )
        },
    )
}

pub(crate) fn latency_triple(l: Latencies) -> String {
    format!("{} / {} / {}", fmt_ms(l.p50), fmt_ms(l.p99), fmt_ms(l.max))
}

pub(crate) fn fmt_ms(d: Duration) -> String {
    format!("{:.2} ms", ms(d))
}

pub(crate) fn dash() -> String {
    "—".into()
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, model)| model.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

/// The first lines of a report: how to reproduce it, when, and where.
pub(crate) fn run_facts(out: &mut String, command: &str, date: Timestamp) -> std::fmt::Result {
    writeln!(out, "- Command: `{command}`")?;
    writeln!(out, "- Date: {date}")?;
    writeln!(out, "- Machine: {} cores, {}", cores(), cpu_model())
}

pub(crate) fn cores() -> usize {
    std::thread::available_parallelism().map_or(0, |n| n.get())
}

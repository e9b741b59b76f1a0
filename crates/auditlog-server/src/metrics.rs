//! Prometheus metrics, served at `GET /metrics` in the text exposition
//! format: ingest rate and latency, commit batch sizes and the writer's
//! queue, webhook outcomes and lag, purges and checkpoints.
//!
//! No metric carries an organization or any other tenant data as a label:
//! the endpoint is meant for the operator's scraper and needs no key, so it
//! must not tell one tenant anything about another.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Registers each of `$m`'s metrics under its name and help text.
macro_rules! register {
    ($registry:expr, $m:expr; $($name:literal, $help:literal => $field:ident;)*) => {
        $( $registry.register($name, $help, $m.$field.clone()); )*
    };
}

/// One label: how something ended.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Outcome {
    pub outcome: &'static str,
}

impl Outcome {
    pub fn of(outcome: &'static str) -> Self {
        Self { outcome }
    }
}

/// Every metric of one server, cheap to clone (each handle is shared).
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    /// Ingest requests by outcome: `created`, `refused` (4xx), `unavailable`
    /// (503) or `failed` (500).
    pub ingest_requests: Family<Outcome, Counter>,
    /// Entries acknowledged to ingest requests.
    pub ingest_entries: Counter,
    /// From the request's arrival to its acknowledgement, commit included.
    pub ingest_seconds: Histogram,
    /// Entries per writer transaction.
    pub commit_entries: Histogram,
    pub commit_seconds: Histogram,
    /// Writer transactions by outcome: `committed`, `unavailable`, `failed`.
    pub commits: Family<Outcome, Counter>,
    /// Requests waiting for the writer.
    pub writer_queue: Gauge,
    /// Webhook attempts by outcome: `delivered`, `retry` or `failed`.
    pub webhook_attempts: Family<Outcome, Counter>,
    /// From an entry's commit to its delivery, for deliveries that arrived.
    pub webhook_lag_seconds: Histogram,
    /// Messages written to SIEM streams' receivers (sent again after a
    /// lost connection counts again).
    pub stream_messages: Counter,
    /// From an entry's commit to its message's write to a stream.
    pub stream_lag_seconds: Histogram,
    /// Connections to streams' receivers that failed or were lost.
    pub stream_failures: Counter,
    /// Entries retention purged before a stream read them (whatever their
    /// event): what a stream down for longer than the plan keeps misses.
    pub stream_purged_unsent: Counter,
    /// Streams held by this process that have been failing for longer
    /// than the operator's limit.
    pub streams_unhealthy: Gauge,
    pub purged_entries: Counter,
    pub checkpoints_signed: Counter,
    /// Reads of the log whose `audit_log.viewed` entry could not be
    /// committed (the read was answered all the same).
    pub read_audit_failures: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Seconds from 1 ms to about 65 s.
fn latency_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("auditlog");
        let m = Self {
            registry: Arc::new(Registry::default()),
            ingest_requests: Family::default(),
            ingest_entries: Counter::default(),
            ingest_seconds: latency_buckets(),
            commit_entries: Histogram::new(exponential_buckets(1.0, 4.0, 8)),
            commit_seconds: latency_buckets(),
            commits: Family::default(),
            writer_queue: Gauge::default(),
            webhook_attempts: Family::default(),
            webhook_lag_seconds: latency_buckets(),
            stream_messages: Counter::default(),
            stream_lag_seconds: latency_buckets(),
            stream_failures: Counter::default(),
            stream_purged_unsent: Counter::default(),
            streams_unhealthy: Gauge::default(),
            purged_entries: Counter::default(),
            checkpoints_signed: Counter::default(),
            read_audit_failures: Counter::default(),
        };
        // One metric a line: name, help, field.
        register!(registry, m;
            "ingest_requests", "Ingest requests by outcome" => ingest_requests;
            "ingest_entries", "Entries acknowledged to ingest requests" => ingest_entries;
            "ingest_request_duration_seconds", "Ingest request latency, commit included" => ingest_seconds;
            "commit_entries", "Entries per writer transaction" => commit_entries;
            "commit_duration_seconds", "Writer transaction latency" => commit_seconds;
            "commits", "Writer transactions by outcome" => commits;
            "writer_queue_depth", "Requests waiting for the writer" => writer_queue;
            "webhook_attempts", "Webhook delivery attempts by outcome" => webhook_attempts;
            "webhook_delivery_lag_seconds", "From an entry's commit to its webhook delivery" => webhook_lag_seconds;
            "stream_messages", "Messages written to SIEM streams" => stream_messages;
            "stream_delivery_lag_seconds", "From an entry's commit to its write to a SIEM stream" => stream_lag_seconds;
            "stream_failures", "Connections to SIEM stream receivers that failed or were lost" => stream_failures;
            "stream_entries_purged_unsent", "Entries retention purged before a SIEM stream read them" => stream_purged_unsent;
            "streams_unhealthy", "SIEM streams held here failing for longer than allowed" => streams_unhealthy;
            "retention_purged_entries", "Entries purged past retention" => purged_entries;
            "checkpoints_signed", "Checkpoints signed" => checkpoints_signed;
            "read_audit_failures", "Reads of the log answered without their audit_log.viewed entry" => read_audit_failures;
        );
        Self {
            registry: Arc::new(registry),
            ..m
        }
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_is_exposed_with_its_prefix_and_counts() {
        let m = Metrics::new();
        m.ingest_requests.get_or_create(&Outcome::of("created")).inc();
        m.ingest_entries.inc_by(5);
        m.commit_entries.observe(5.0);
        m.writer_queue.set(3);
        m.webhook_attempts.get_or_create(&Outcome::of("delivered")).inc();
        let text = m.render();
        for line in [
            "auditlog_ingest_requests_total{outcome=\"created\"} 1",
            "auditlog_ingest_entries_total 5",
            "auditlog_commit_entries_count 1",
            "auditlog_writer_queue_depth 3",
            "auditlog_webhook_attempts_total{outcome=\"delivered\"} 1",
            "# TYPE auditlog_webhook_delivery_lag_seconds histogram",
            "# TYPE auditlog_retention_purged_entries counter",
            "# TYPE auditlog_checkpoints_signed counter",
            "# TYPE auditlog_stream_messages counter",
            "# TYPE auditlog_stream_delivery_lag_seconds histogram",
            "# TYPE auditlog_streams_unhealthy gauge",
            "# TYPE auditlog_stream_entries_purged_unsent counter",
        ] {
            assert!(text.contains(line), "{line} missing from:\n{text}");
        }
    }
}

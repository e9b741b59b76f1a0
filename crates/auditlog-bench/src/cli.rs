//! `auditlog bench <section>`: one subcommand per section, each taking only
//! the options it uses, so none is accepted and then ignored. Options that
//! several sections share are declared once here and flattened into each.

use std::path::PathBuf;

use clap::builder::RangedU64ValueParser;
use clap::{Args, Subcommand};

/// A count that must be at least one.
fn at_least_one() -> RangedU64ValueParser<usize> {
    RangedU64ValueParser::new().range(1..)
}

#[derive(Debug, Subcommand)]
pub enum Section {
    /// Every SQLite section in one report: ingest, query, export, webhooks
    /// and integrity (the report's sections 1 to 7).
    All(AllArgs),
    /// Sections 1 to 3: the SQLite ceiling, then batched and single-event
    /// ingest over HTTP beside it.
    Ingest(IngestArgs),
    /// Section 4: first-page query latency of each filter kind on a large
    /// log, and what recording reads costs a reader (4b).
    Query(QueryArgs),
    /// Section 5: a CSV export of a large log from a separate server, rate
    /// and peak memory, against a raw SQLite scan.
    Export(ExportArgs),
    /// Section 6: webhook commit-to-delivery latency at a sustained rate.
    Webhooks(WebhooksArgs),
    /// Section 7: what tamper evidence costs appends (with and without the
    /// Merkle tree).
    Integrity(IntegrityArgs),
    /// Sustained open-loop ingest against a separate server, with latency
    /// and memory per minute.
    Load(LoadArgs),
    /// Slow 19 MiB sign-ins and trickled ingest bodies against a separate
    /// server, with its memory, `/healthz` latency and ingest during and
    /// after the attack.
    Abuse(AbuseArgs),
    /// `auditlog check` and `auditlog backup` on a large SQLite log, and
    /// what backups running beside paced ingest cost it.
    Ops(OpsArgs),
    /// How long each management page takes with 1,000 members, 1,000 keys
    /// and 100 webhooks with 100,000 deliveries.
    Console(ConsoleArgs),
    /// The PostgreSQL measurements (ingest, queries, export), each beside a
    /// COPY ceiling on the same server.
    Postgres(PostgresArgs),
    /// What a second replica adds, each replica a separate `auditlog serve`
    /// against PostgreSQL, held to a cgroup CPU quota (needs root).
    Replicas(ReplicasArgs),
    /// SIEM streams to a private rsyslog over TLS on loopback: one stream's
    /// and ten streams' commit-to-receipt latency at a sustained rate, and
    /// what 1 and 10 streams cost ingest (needs rsyslog and rsyslog-gnutls;
    /// not part of `all`).
    Streams(StreamsArgs),
    /// What sealing personal values costs ingest, export and a person's
    /// first page (same run, sealed against not), and erasing a person
    /// with a tenth of a large log while ingest goes on.
    Erasure(ErasureArgs),
}

#[derive(Debug, Clone, Args)]
pub struct ErasureArgs {
    #[command(flatten)]
    pub dir: DirArgs,
    /// Entries in each log; a tenth of them are the erased person's.
    #[arg(long, default_value_t = 1_000_000, value_parser = at_least_one())]
    pub entries: usize,
    #[command(flatten)]
    pub samples: QuerySamplesArgs,
}

#[derive(Debug, Clone, Args)]
pub struct DirArgs {
    /// Directory for the benchmark's databases and server logs, kept
    /// afterwards (default: a temporary one, removed).
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct LogArgs {
    /// Entries in the log the query and export measurements run on.
    #[arg(long, default_value_t = 1_000_000, value_parser = at_least_one())]
    pub entries: usize,
}

#[derive(Debug, Clone, Args)]
pub struct QuerySamplesArgs {
    /// Requests per query kind for the latency percentiles.
    #[arg(long, default_value_t = 300, value_parser = at_least_one())]
    pub query_samples: usize,
}

#[derive(Debug, Clone, Args)]
pub struct IngestRowsArgs {
    /// Entries sent by each ingest measurement.
    #[arg(long, default_value_t = 200_000, value_parser = at_least_one())]
    pub ingest_entries: usize,
}

#[derive(Debug, Clone, Args)]
pub struct SingleEventArgs {
    /// Single-event requests sent by the concurrent-client measurement.
    #[arg(long, default_value_t = 60_000, value_parser = at_least_one())]
    pub single_events: usize,
    /// Concurrent clients for single-event ingest.
    #[arg(long, default_value_t = 64, value_parser = at_least_one())]
    pub clients: usize,
}

#[derive(Debug, Clone, Args)]
pub struct WebhookRateArgs {
    /// Entries per second for the webhook measurement.
    #[arg(long, default_value_t = 1000)]
    pub webhook_rate: u32,
    /// Seconds of sustained load for the webhook measurement.
    #[arg(long, default_value_t = 30)]
    pub webhook_seconds: u32,
    /// Endpoints every entry is delivered to.
    #[arg(long, default_value_t = 10)]
    pub webhook_endpoints: u32,
}

/// What every store's whole run takes: where, how many rows, how many
/// single events, how large a log and how many samples.
#[derive(Debug, Clone, Args)]
pub struct SuiteArgs {
    #[command(flatten)]
    pub ingest: IngestArgs,
    #[command(flatten)]
    pub log: LogArgs,
    #[command(flatten)]
    pub samples: QuerySamplesArgs,
}

#[derive(Debug, Clone, Args)]
pub struct AllArgs {
    #[command(flatten)]
    pub suite: SuiteArgs,
    #[command(flatten)]
    pub webhooks: WebhookRateArgs,
}

#[derive(Debug, Clone, Args)]
pub struct IngestArgs {
    #[command(flatten)]
    pub dir: DirArgs,
    #[command(flatten)]
    pub ingest: IngestRowsArgs,
    #[command(flatten)]
    pub single: SingleEventArgs,
}

#[derive(Debug, Clone, Args)]
pub struct QueryArgs {
    #[command(flatten)]
    pub dir: DirArgs,
    #[command(flatten)]
    pub log: LogArgs,
    #[command(flatten)]
    pub samples: QuerySamplesArgs,
}

#[derive(Debug, Clone, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub dir: DirArgs,
    #[command(flatten)]
    pub log: LogArgs,
}

#[derive(Debug, Clone, Args)]
pub struct WebhooksArgs {
    #[command(flatten)]
    pub dir: DirArgs,
    #[command(flatten)]
    pub webhooks: WebhookRateArgs,
}

#[derive(Debug, Clone, Args)]
pub struct IntegrityArgs {
    #[command(flatten)]
    pub dir: DirArgs,
    #[command(flatten)]
    pub ingest: IngestRowsArgs,
}

#[derive(Debug, Clone, Args)]
pub struct LoadArgs {
    #[command(flatten)]
    pub dir: DirArgs,
    /// Entries per second (the single-event target).
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..))]
    pub load_rate: u32,
    /// Events per request.
    #[arg(long, default_value_t = 10,
          value_parser = clap::value_parser!(u32).range(1..=auditlog_domain::ingest::MAX_BATCH as i64))]
    pub load_batch: u32,
    /// Seconds the test lasts.
    #[arg(long, default_value_t = 600, value_parser = clap::value_parser!(u32).range(1..))]
    pub load_seconds: u32,
    /// Send entries with their own times, spread over the past month (a
    /// backfill), instead of letting the server stamp them.
    #[arg(long)]
    pub load_backfill: bool,
}

#[derive(Debug, Clone, Args)]
pub struct AbuseArgs {
    #[command(flatten)]
    pub dir: DirArgs,
    /// Attacking connections of each kind.
    #[arg(long, default_value_t = 300)]
    pub abuse_connections: usize,
    /// Seconds the attack lasts.
    #[arg(long, default_value_t = 30)]
    pub abuse_seconds: u64,
    /// Seconds after the attack at which memory is measured again.
    #[arg(long, default_value_t = 60)]
    pub abuse_settle_seconds: u64,
    /// The `auditlog` binary to attack (another build, e.g. one without a
    /// fix); default: this one.
    #[arg(long)]
    pub abuse_server: Option<PathBuf>,
    /// Server memory (MiB) at which the attack stops early, so that a
    /// server without defences cannot exhaust the machine.
    #[arg(long, default_value_t = 4096)]
    pub abuse_rss_cap_mib: u64,
}

#[derive(Debug, Clone, Args)]
pub struct PostgresUrlArgs {
    /// The PostgreSQL server, as postgres://USER:PASSWORD@HOST:PORT/DATABASE
    /// (the password may be left out) naming an existing database to
    /// administer from: the bench creates, fills and drops databases of its
    /// own there.
    #[arg(value_name = "URL")]
    pub url: String,
}

#[derive(Debug, Clone, Args)]
pub struct OpsArgs {
    #[command(flatten)]
    pub dir: DirArgs,
    /// Entries in the log checked and backed up.
    #[arg(long, default_value_t = 1_000_000, value_parser = at_least_one())]
    pub entries: usize,
    /// Entries per second ingested beside the backups, in batches of ten.
    #[arg(long, default_value_t = 5_000, value_parser = at_least_one())]
    pub ingest_rate: usize,
    /// Windows of each kind (without backups, with), alternating.
    #[arg(long, default_value_t = 3, value_parser = at_least_one())]
    pub windows: usize,
    /// Seconds each window lasts.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=600))]
    pub window_seconds: u64,
}

#[derive(Debug, Clone, Args)]
pub struct ConsoleArgs {
    #[command(flatten)]
    pub dir: DirArgs,
    /// Entries over the last year in the log, for the Audit page and its
    /// chart, besides the 1,000 delivered to every endpoint.
    #[arg(long, default_value_t = 1_000_000)]
    pub entries: usize,
    /// Requests per page for the latency percentiles.
    #[arg(long, default_value_t = 100, value_parser = at_least_one())]
    pub samples: usize,
}

#[derive(Debug, Clone, Args)]
pub struct PostgresArgs {
    #[command(flatten)]
    pub server: PostgresUrlArgs,
    #[command(flatten)]
    pub suite: SuiteArgs,
}

#[derive(Debug, Clone, Args)]
pub struct ReplicasArgs {
    #[command(flatten)]
    pub server: PostgresUrlArgs,
    /// Cores each replica is confined to by its cgroup CPU quota, so that
    /// the replicas rather than the database are the limit.
    #[arg(long, value_name = "CORES")]
    pub replica_cores: f64,
    /// The quota's accounting period in milliseconds (1 to 1000). A replica
    /// runs at full speed until its share of the period is spent, then
    /// stops until the period ends; the shorter the period, the shorter
    /// those stops.
    #[arg(long, value_name = "MS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub replica_quota_period_ms: u64,
    #[command(flatten)]
    pub run: IngestArgs,
}

#[derive(Debug, Clone, Args)]
pub struct StreamsArgs {
    #[command(flatten)]
    pub dir: DirArgs,
    /// Entries per second ingested while one stream carries them.
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u32).range(100..))]
    pub stream_rate: u32,
    /// Streams on the organization in the fan-out measurement, and in the
    /// largest ingest-cost one.
    #[arg(long, default_value_t = 10, value_parser = at_least_one())]
    pub fanout_streams: usize,
    /// Entries per second ingested while the fan-out's streams carry each.
    #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u32).range(100..))]
    pub fanout_rate: u32,
    /// Seconds of paced ingest in each latency measurement.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..))]
    pub stream_seconds: u32,
    /// Seconds of each closed-loop ingest measurement (with 0, 1 and the
    /// fan-out's streams).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    pub ingest_seconds: u32,
    /// Rounds of the three ingest measurements, interleaved.
    #[arg(long, default_value_t = 2, value_parser = at_least_one())]
    pub ingest_rounds: usize,
    /// Messages written straight to rsyslog for the baseline.
    #[arg(long, default_value_t = 10_000, value_parser = at_least_one())]
    pub baseline_messages: usize,
    /// Milliseconds between reads of rsyslog's output files.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub tail_poll_ms: u64,
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[derive(Debug, clap::Parser)]
    #[command(name = "bench", subcommand_required = true)]
    struct Bench {
        #[command(subcommand)]
        section: Section,
    }

    fn parse(args: &[&str]) -> Result<Section, clap::Error> {
        <Bench as clap::Parser>::try_parse_from(std::iter::once(&"bench").chain(args)).map(|b| b.section)
    }

    fn replicas(args: &[&str]) -> Result<ReplicasArgs, clap::Error> {
        let argv = ["replicas", "postgres://localhost/postgres"];
        match parse(&[&argv[..], args].concat())? {
            Section::Replicas(args) => Ok(args),
            other => unreachable!("parsed as {other:?}"),
        }
    }

    /// The replica options with every default and half a core.
    pub(crate) fn replica_defaults() -> ReplicasArgs {
        replicas(&["--replica-cores", "0.5"]).expect("the defaults parse")
    }

    #[test]
    fn the_quota_period_defaults_to_ten_ms_and_the_cores_are_required() {
        assert_eq!(replica_defaults().replica_quota_period_ms, 10);
        let two = replicas(&["--replica-cores", "0.5", "--replica-quota-period-ms", "2"]).unwrap();
        assert_eq!(two.replica_quota_period_ms, 2);
        let alone = replicas(&["--replica-quota-period-ms", "2"]).unwrap_err();
        assert!(alone.to_string().contains("--replica-cores"), "{alone}");
        for outside in ["0", "1001"] {
            let refused = replicas(&["--replica-cores", "0.5", "--replica-quota-period-ms", outside]).unwrap_err();
            assert!(refused.to_string().contains("1..=1000"), "{refused}");
        }
    }

    /// A section refuses the options of the others: a setting it would
    /// ignore is an error, not a silent default.
    #[test]
    fn each_section_takes_only_its_own_options() {
        assert!(parse(&["webhooks", "--entries", "10"]).is_err());
        assert!(parse(&["integrity", "--single-events", "10"]).is_err());
        assert!(parse(&["export", "--query-samples", "10"]).is_err());
        assert!(parse(&["ingest", "--webhook-rate", "10"]).is_err());
        assert!(parse(&["postgres", "postgres://localhost/postgres", "--replica-cores", "1"]).is_err());
        assert!(parse(&["load", "--abuse-seconds", "1"]).is_err());
        let Section::All(all) = parse(&["all", "--entries", "10", "--webhook-rate", "5", "--dir", "d"]).unwrap() else {
            unreachable!("parsed as all")
        };
        assert_eq!((all.suite.log.entries, all.webhooks.webhook_rate), (10, 5));
        assert!(parse(&["ops", "--query-samples", "10"]).is_err());
        let ops = [
            "ops",
            "--entries",
            "7",
            "--ingest-rate",
            "300",
            "--windows",
            "2",
            "--window-seconds",
            "4",
        ];
        let Section::Ops(ops) = parse(&ops).unwrap() else {
            unreachable!("parsed as ops")
        };
        assert_eq!(
            (ops.entries, ops.ingest_rate, ops.windows, ops.window_seconds),
            (7, 300, 2, 4)
        );
        assert!(parse(&["ops", "--window-seconds", "0"]).is_err());
        assert!(parse(&["streams", "--webhook-rate", "10"]).is_err());
        let Section::Streams(streams) = parse(&["streams", "--stream-rate", "5000", "--fanout-streams", "3"]).unwrap()
        else {
            unreachable!("parsed as streams")
        };
        assert_eq!(
            (streams.stream_rate, streams.fanout_streams, streams.fanout_rate),
            (5000, 3, 1000)
        );
        assert!(parse(&["streams", "--fanout-streams", "0"]).is_err());
    }

    #[test]
    fn counts_must_be_at_least_one() {
        for (section, flag) in [
            ("all", "--entries"),
            ("ingest", "--clients"),
            ("query", "--query-samples"),
        ] {
            let refused = parse(&[section, flag, "0"]).unwrap_err();
            assert!(refused.to_string().contains(flag), "{refused}");
        }
        assert!(parse(&["load", "--load-batch", "1001"]).is_err());
        assert!(parse(&["postgres"]).is_err(), "the URL is required");
    }
}

//! The options of `auditlog bench`, parsed by the `auditlog` command.

use std::path::PathBuf;

use clap::Args;

#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// Entries in the database the query and export measurements run on.
    #[arg(long, default_value_t = 1_000_000)]
    pub entries: usize,
    /// Entries sent by each ingest measurement.
    #[arg(long, default_value_t = 200_000)]
    pub ingest_entries: usize,
    /// Single-event requests sent by the concurrent-client measurement.
    #[arg(long, default_value_t = 60_000)]
    pub single_events: usize,
    /// Concurrent clients for single-event ingest.
    #[arg(long, default_value_t = 64)]
    pub clients: usize,
    /// Requests per query kind for the latency percentiles.
    #[arg(long, default_value_t = 300)]
    pub query_samples: usize,
    /// Directory for the benchmark's databases (default: a temporary one).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Run only the webhook commit-to-delivery measurement.
    #[arg(long)]
    pub webhooks: bool,
    /// Run only the tamper-evidence cost measurement (appends with and
    /// without the Merkle tree).
    #[arg(long, conflicts_with = "webhooks")]
    pub integrity: bool,
    /// Run only the PostgreSQL measurements, against this server
    /// (postgres://…): the bench creates, fills and drops databases of its own
    /// there.
    #[arg(long, conflicts_with_all = ["webhooks", "integrity"])]
    pub postgres: Option<String>,
    /// With --postgres, run only the replica measurement, each replica a
    /// separate `auditlog serve` confined to this many cores by a cgroup CPU
    /// quota (needs root), so that the replicas rather than the database are
    /// the limit.
    #[arg(long, requires = "postgres", value_name = "CORES")]
    pub replica_cores: Option<f64>,
    /// With --replica-cores, the quota's accounting period in milliseconds
    /// (1 to 1000). A replica runs at full speed until its share of the
    /// period is spent, then stops until the period ends; the shorter the
    /// period, the shorter those stops.
    #[arg(long, requires = "replica_cores", value_name = "MS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub replica_quota_period_ms: u64,
    /// Run only the sustained-load test: ingest at --load-rate for
    /// --load-seconds against a separate server, with latency and memory
    /// per minute.
    #[arg(long, conflicts_with_all = ["webhooks", "integrity", "postgres"])]
    pub load: bool,
    /// Entries per second for the load test (the single-event target).
    #[arg(long, default_value_t = 10_000)]
    pub load_rate: u32,
    /// Events per request in the load test.
    #[arg(long, default_value_t = 10)]
    pub load_batch: u32,
    /// Seconds the load test lasts.
    #[arg(long, default_value_t = 600)]
    pub load_seconds: u32,
    /// Load test: send entries with their own times, spread over the past
    /// month (a backfill), instead of letting the server stamp them.
    #[arg(long)]
    pub load_backfill: bool,
    /// Run only the abuse measurement: slow 19 MiB sign-ins and trickled
    /// ingest bodies against a separate server, with its memory, `/healthz`
    /// latency and ingest during and after the attack.
    #[arg(long, conflicts_with_all = ["webhooks", "integrity", "postgres", "load"])]
    pub abuse: bool,
    /// Attacking connections of each kind in the abuse measurement.
    #[arg(long, default_value_t = 300)]
    pub abuse_connections: usize,
    /// Seconds the abuse measurement attacks for.
    #[arg(long, default_value_t = 30)]
    pub abuse_seconds: u64,
    /// Seconds after the attack at which memory is measured again.
    #[arg(long, default_value_t = 60)]
    pub abuse_settle_seconds: u64,
    /// The `auditlog` binary to attack (another build, e.g. one without a
    /// fix); default: this one.
    #[arg(long, requires = "abuse")]
    pub abuse_server: Option<PathBuf>,
    /// Server memory (MiB) at which the abuse measurement stops its attack
    /// early, so that a server without defences cannot exhaust the machine.
    #[arg(long, default_value_t = 4096)]
    pub abuse_rss_cap_mib: u64,
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[derive(Debug, clap::Parser)]
    struct Bench {
        #[command(flatten)]
        args: BenchArgs,
    }

    /// The options with every default.
    pub(crate) fn defaults() -> BenchArgs {
        <Bench as clap::Parser>::parse_from(["bench"]).args
    }

    fn bench(args: &[&str]) -> Result<BenchArgs, clap::Error> {
        let argv = ["bench", "--postgres", "postgres://localhost/postgres"];
        <Bench as clap::Parser>::try_parse_from(argv.iter().chain(args)).map(|b| b.args)
    }

    #[test]
    fn the_quota_period_defaults_to_ten_ms_and_needs_replica_cores() {
        assert_eq!(bench(&["--replica-cores", "0.5"]).unwrap().replica_quota_period_ms, 10);
        let two = bench(&["--replica-cores", "0.5", "--replica-quota-period-ms", "2"]).unwrap();
        assert_eq!(two.replica_quota_period_ms, 2);
        let alone = bench(&["--replica-quota-period-ms", "2"]).unwrap_err();
        assert!(alone.to_string().contains("--replica-cores"), "{alone}");
        for outside in ["0", "1001"] {
            let refused = bench(&["--replica-cores", "0.5", "--replica-quota-period-ms", outside]).unwrap_err();
            assert!(refused.to_string().contains("1..=1000"), "{refused}");
        }
    }
}

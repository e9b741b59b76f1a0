//! What recording reads (`audit_log.viewed`) costs a reader: the same
//! first-page queries against three servers in one run, one recording reads
//! and two not, each on its own copy of the same seeded log.
//!
//! Comparing builds across runs could not tell a 0.5 ms change at p99 from
//! the machine's own noise; arms measured side by side in rotating blocks
//! share the machine's disturbances, so their ratio is the cost. The two
//! unrecorded arms do identical work, so how far their p99s differ is the
//! noise of this run, measured rather than assumed: the recorded arm's
//! p99 is within noise when it exceeds the unrecorded one's by no more
//! than the two identical arms differ (or by the fixed target, whichever
//! is wider).
//!
//! The recorder commits in the background, so each block is followed by a
//! pause longer than its gathering window: the recorded arm's commits land
//! in its own block, not in another arm's. Each arm has its own database
//! file because a commit empties the page cache of every reader of that
//! file: one shared file would charge the unrecorded arms for the recorded
//! one's commits.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use auditlog_domain::api_key::Scope;
use auditlog_domain::store::Store;
use auditlog_server::ServerConfig;

use crate::AnyError;
use crate::harness::{
    InProcessServer, KindFigures, Latencies, QueryKind, WARMUP_REQUESTS, fresh_store, http_client, page_rows, progress,
    seed_log, timed_get,
};
use crate::make_key;
use crate::report::{Table, Verdicts, fmt_ms};

/// Queries one arm sends before the other takes a turn: short enough that
/// a disturbance of the machine falls on both arms alike, long enough to
/// hold several of the recorder's commits.
const BLOCK: usize = 50;
/// The pause after each block, for the recorder to commit what the block
/// gathered before the other arm goes.
const SETTLE: Duration = Duration::from_millis(150);
/// The most the recorded arm's p99 may exceed the unrecorded one's when
/// the two identical arms differ by less: the floor of the noise band.
const TARGET_P99_RATIO: f64 = 1.15;

/// One query kind's latencies with reads recorded, without, and without
/// again (the control that measures the run's noise).
pub(crate) struct ReadsFigures {
    pub(crate) recorded: KindFigures,
    pub(crate) unrecorded: KindFigures,
    pub(crate) control: KindFigures,
    /// `audit_log.viewed` entries the recorded arm committed for this kind:
    /// one per new look, each a commit that the arm's readers pay for.
    pub(crate) looks: i64,
}

impl ReadsFigures {
    /// The recorded arm's p99 over the unrecorded one's.
    fn cost(&self) -> f64 {
        p99_ratio(&self.recorded, &self.unrecorded)
    }

    /// How far the two identical arms' p99s differ, as a ratio ≥ 1.
    fn noise(&self) -> f64 {
        let r = p99_ratio(&self.control, &self.unrecorded);
        r.max(1.0 / r.max(f64::EPSILON))
    }
}

fn p99_ratio(a: &KindFigures, b: &KindFigures) -> f64 {
    a.latency.p99.as_secs_f64() / b.latency.p99.as_secs_f64().max(f64::EPSILON)
}

/// Seeds three logs of `entries` alike and times `samples` first-page
/// queries of every kind against each.
pub(crate) async fn measure(dir: &Path, entries: usize, samples: usize) -> Result<Vec<ReadsFigures>, AnyError> {
    progress(format!(
        "4b/7 recorded reads: three logs of {entries} entries, one server recording reads and two not"
    ));
    // Seeded in this order so neither unrecorded arm is the one seeded
    // last (whose pages the OS holds warmest) alone.
    let unrecorded = Arm::start(&dir.join("bench-reads-off.db"), entries, false).await?;
    let recorded = Arm::start(&dir.join("bench-reads-on.db"), entries, true).await?;
    let control = Arm::start(&dir.join("bench-reads-control.db"), entries, false).await?;
    let client = http_client(Some(Duration::from_secs(60)))?;
    let mut figures = Vec::new();
    for kind in QueryKind::ALL {
        let before = recorded.log_size().await?;
        let [on, off, again] = measure_kind(&client, [&recorded, &unrecorded, &control], kind, samples).await?;
        // The recorder commits within its gathering window of the last read.
        tokio::time::sleep(SETTLE).await;
        let f = ReadsFigures {
            recorded: on,
            unrecorded: off,
            control: again,
            looks: recorded.log_size().await? - before,
        };
        progress(format!(
            "    {:<34} p99 recorded {:>6.2} ms  unrecorded {:>6.2} ms  control {:>6.2} ms  looks {}",
            kind.label(),
            crate::harness::ms(f.recorded.latency.p99),
            crate::harness::ms(f.unrecorded.latency.p99),
            crate::harness::ms(f.control.latency.p99),
            f.looks,
        ));
        figures.push(f);
    }
    drop(client);
    for arm in [recorded, unrecorded, control] {
        arm.server.stop().await?;
    }
    Ok(figures)
}

/// A seeded log served in-process, reads recorded or not.
struct Arm {
    server: InProcessServer,
    store: Arc<dyn Store>,
    org: auditlog_domain::OrgId,
    key: String,
    values: crate::harness::QueryValues,
}

impl Arm {
    async fn start(path: &Path, entries: usize, record_reads: bool) -> Result<Self, AnyError> {
        let (store, org) = fresh_store(path).await?;
        let (_, vocabulary) = seed_log(store.as_ref(), org.id, entries).await?;
        let key = make_key(store.as_ref(), &org, "bench reader", vec![Scope::AuditRead]).await?;
        let config = ServerConfig {
            record_reads,
            ..ServerConfig::default()
        };
        let store = store as Arc<dyn Store>;
        let server = InProcessServer::start_with(config, store.clone()).await?;
        Ok(Self {
            server,
            store,
            org: org.id,
            key,
            values: vocabulary.lists(),
        })
    }

    async fn log_size(&self) -> Result<i64, AnyError> {
        Ok(self.store.log_size(self.org).await?)
    }

    async fn get(&self, client: &reqwest::Client, kind: QueryKind, i: usize) -> Result<(Duration, usize), AnyError> {
        let url = format!("{}/v1/orgs/{}/audit/events", self.server.base, crate::harness::ORG_SLUG);
        let params = kind.params(i, &self.values)?;
        let (elapsed, body) = timed_get(client.get(&url).bearer_auth(&self.key).query(&params), kind.label()).await?;
        Ok((elapsed, page_rows(&body)?))
    }
}

/// Every arm's latencies for one kind: blocks of [`BLOCK`] queries taking
/// turns, the arm going first rotating, the same queries on each, a
/// [`SETTLE`] pause after each block.
async fn measure_kind<const N: usize>(
    client: &reqwest::Client,
    arms: [&Arm; N],
    kind: QueryKind,
    samples: usize,
) -> Result<[KindFigures; N], AnyError> {
    for arm in arms {
        for i in 0..WARMUP_REQUESTS.min(samples) {
            arm.get(client, kind, i).await?;
        }
    }
    let mut latencies: [Vec<Duration>; N] = std::array::from_fn(|_| Vec::with_capacity(samples));
    let mut rows = [0usize; N];
    for (b, start) in (0..samples).step_by(BLOCK).enumerate() {
        for turn in 0..N {
            let a = (b + turn) % N;
            for i in start..(start + BLOCK).min(samples) {
                let (elapsed, n) = arms[a].get(client, kind, i).await?;
                latencies[a].push(elapsed);
                rows[a] += n;
            }
            tokio::time::sleep(SETTLE).await;
        }
    }
    let mut latencies = latencies.into_iter();
    Ok(std::array::from_fn(|a| KindFigures {
        label: kind.label(),
        latency: Latencies::of(latencies.next().unwrap_or_default()),
        mean_rows: rows[a] as f64 / samples as f64,
    }))
}

/// The report's table: each kind's p50 and p99 in every arm, the noise
/// between the identical arms, and the cost against the wider of the
/// noise and the fixed target.
pub(crate) fn table(figures: &[ReadsFigures], v: &mut Verdicts) -> Table {
    let mut t = Table::new(&[
        "Query",
        "p50 unrecorded / control / recorded",
        "p99 unrecorded / control",
        "p99 recorded",
        "Looks recorded",
        "Noise (control)",
        "Cost (p99 ratio)",
        "Target",
        "Verdict",
    ]);
    for f in figures {
        let limit = f.noise().max(TARGET_P99_RATIO);
        t.row(vec![
            f.recorded.label.into(),
            format!(
                "{} / {} / {}",
                fmt_ms(f.unrecorded.latency.p50),
                fmt_ms(f.control.latency.p50),
                fmt_ms(f.recorded.latency.p50)
            ),
            format!(
                "{} / {}",
                fmt_ms(f.unrecorded.latency.p99),
                fmt_ms(f.control.latency.p99)
            ),
            fmt_ms(f.recorded.latency.p99),
            f.looks.to_string(),
            format!("{:.2}", f.noise()),
            format!("{:.2}", f.cost()),
            format!("≤ {limit:.2}"),
            v.at_most(
                &format!("recorded reads' p99 ratio, {}", f.recorded.label),
                f.cost(),
                limit,
            ),
        ]);
    }
    t
}

//! What recording reads (`audit_log.viewed`) costs a reader: the same
//! first-page queries against four servers in one run, two recording reads
//! and two not, each on its own copy of the same seeded log.
//!
//! Comparing builds across runs could not tell a 0.5 ms change at p99 from
//! the machine's own noise; arms measured side by side in rotating blocks
//! share the machine's disturbances, so their ratio is the cost. Each kind
//! of arm is doubled: a cost of recording slows both recording arms alike,
//! while a disturbance that falls on one arm's blocks shows as a difference
//! between two identical arms. The larger of the two pairs' differences is
//! the run's noise, measured rather than assumed; the cost is the pooled
//! recording arms' p99 over the pooled others', and it passes when it is
//! within that noise (or within the fixed target, whichever is wider).
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
/// The most the recorded arms' p99 may exceed the unrecorded arms' when
/// identical arms differ by less: the floor of the noise band.
const TARGET_P99_RATIO: f64 = 1.15;

/// One query kind's latencies: two arms recording reads and two not,
/// each pair pooled, and how far each identical pair's arms differ.
pub(crate) struct ReadsFigures {
    pub(crate) recorded: KindFigures,
    pub(crate) unrecorded: KindFigures,
    /// The larger of the two pairs' p99 ratios (≥ 1): the run's noise.
    pub(crate) noise: f64,
    /// `audit_log.viewed` entries the recorded arms committed for this kind
    /// (one per new look, each a commit its arm's readers pay for), per arm.
    pub(crate) looks: i64,
}

impl ReadsFigures {
    /// The recorded arms' pooled p99 over the unrecorded arms'.
    fn cost(&self) -> f64 {
        p99_ratio(&self.recorded, &self.unrecorded)
    }
}

fn p99_ratio(a: &KindFigures, b: &KindFigures) -> f64 {
    a.latency.p99.as_secs_f64() / b.latency.p99.as_secs_f64().max(f64::EPSILON)
}

/// `a` over `b` or `b` over `a`, whichever is at least 1.
fn spread(a: &KindFigures, b: &KindFigures) -> f64 {
    let r = p99_ratio(a, b);
    r.max(1.0 / r.max(f64::EPSILON))
}

/// Seeds four logs of `entries` alike and times `samples` first-page
/// queries of every kind against each.
pub(crate) async fn measure(dir: &Path, entries: usize, samples: usize) -> Result<Vec<ReadsFigures>, AnyError> {
    progress(format!(
        "4b/7 recorded reads: four logs of {entries} entries, two servers recording reads and two not"
    ));
    // Seeded alternately, so neither kind is only the one seeded last
    // (whose pages the OS holds warmest).
    let arms = [
        Arm::start(&dir.join("bench-reads-off-1.db"), entries, false).await?,
        Arm::start(&dir.join("bench-reads-on-1.db"), entries, true).await?,
        Arm::start(&dir.join("bench-reads-off-2.db"), entries, false).await?,
        Arm::start(&dir.join("bench-reads-on-2.db"), entries, true).await?,
    ];
    let client = http_client(Some(Duration::from_secs(60)))?;
    let mut figures = Vec::new();
    for kind in QueryKind::ALL {
        let before = arms[1].log_size().await?;
        let [off1, on1, off2, on2] =
            measure_kind(&client, [&arms[0], &arms[1], &arms[2], &arms[3]], kind, samples).await?;
        // The recorder commits within its gathering window of the last read.
        tokio::time::sleep(SETTLE).await;
        let one = |s: &Sampled| s.figures(kind, &[]);
        let noise = spread(&one(&on1), &one(&on2)).max(spread(&one(&off1), &one(&off2)));
        let f = ReadsFigures {
            recorded: on1.figures(kind, &[&on2]),
            unrecorded: off1.figures(kind, &[&off2]),
            noise,
            looks: arms[1].log_size().await? - before,
        };
        progress(format!(
            "    {:<34} p99 recorded {:>6.2} ms  unrecorded {:>6.2} ms  noise {:.2}  looks {}",
            kind.label(),
            crate::harness::ms(f.recorded.latency.p99),
            crate::harness::ms(f.unrecorded.latency.p99),
            f.noise,
            f.looks,
        ));
        figures.push(f);
    }
    drop(client);
    for arm in arms {
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

/// One arm's latencies for one kind, and the rows its pages held.
struct Sampled {
    latencies: Vec<Duration>,
    rows: usize,
}

impl Sampled {
    /// This arm's figures, pooled with `others`' samples.
    fn figures(&self, kind: QueryKind, others: &[&Sampled]) -> KindFigures {
        let all: Vec<&Sampled> = std::iter::once(self).chain(others.iter().copied()).collect();
        let latencies = all.iter().flat_map(|s| s.latencies.iter().copied()).collect();
        let (rows, count) = all.iter().fold((0, 0), |(r, c), s| (r + s.rows, c + s.latencies.len()));
        KindFigures {
            label: kind.label(),
            latency: Latencies::of(latencies),
            mean_rows: rows as f64 / count.max(1) as f64,
        }
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
) -> Result<[Sampled; N], AnyError> {
    for arm in arms {
        for i in 0..WARMUP_REQUESTS.min(samples) {
            arm.get(client, kind, i).await?;
        }
    }
    let mut sampled: [Sampled; N] = std::array::from_fn(|_| Sampled {
        latencies: Vec::with_capacity(samples),
        rows: 0,
    });
    for (b, start) in (0..samples).step_by(BLOCK).enumerate() {
        for turn in 0..N {
            let a = (b + turn) % N;
            for i in start..(start + BLOCK).min(samples) {
                let (elapsed, n) = arms[a].get(client, kind, i).await?;
                sampled[a].latencies.push(elapsed);
                sampled[a].rows += n;
            }
            tokio::time::sleep(SETTLE).await;
        }
    }
    Ok(sampled)
}

/// The report's table: each kind's pooled p50 and p99 with reads recorded
/// and without, the noise between identical arms, and the cost against the
/// wider of the noise and the fixed target.
pub(crate) fn table(figures: &[ReadsFigures], v: &mut Verdicts) -> Table {
    let mut t = Table::new(&[
        "Query",
        "p50 unrecorded / recorded",
        "p99 unrecorded",
        "p99 recorded",
        "Looks recorded (per arm)",
        "Noise (identical arms)",
        "Cost (p99 ratio)",
        "Target",
        "Verdict",
    ]);
    for f in figures {
        let limit = f.noise.max(TARGET_P99_RATIO);
        t.row(vec![
            f.recorded.label.into(),
            format!(
                "{} / {}",
                fmt_ms(f.unrecorded.latency.p50),
                fmt_ms(f.recorded.latency.p50)
            ),
            fmt_ms(f.unrecorded.latency.p99),
            fmt_ms(f.recorded.latency.p99),
            f.looks.to_string(),
            format!("{:.2}", f.noise),
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

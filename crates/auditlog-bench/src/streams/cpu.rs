//! Who used the CPU during a run, from /proc: the server (this process
//! but for the load generator's and the tail's threads, which are told
//! apart by name), the load generator and the tail, rsyslog, and the rest
//! of the machine.
//!
//! The server runs in this process, on the bench's main runtime; the load
//! generator has a runtime of its own whose threads are named
//! [`super::drive::THREAD_NAME`]. Threads that end during a run take their
//! time with them from the per-thread sums, so the server's share is the
//! process's time less the time of the bench's own threads, which live
//! through the whole run.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::harness::{cpu_time, system_busy};

/// CPU times at one moment.
pub(crate) struct Snapshot {
    at: Instant,
    process: Option<Duration>,
    /// The bench's own threads (load generator, tail), by thread id.
    bench_threads: HashMap<String, Duration>,
    rsyslog: Option<Duration>,
    machine: Option<Duration>,
}

/// Cores busy on average between two snapshots, by whom.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Split {
    pub(crate) elapsed: Duration,
    pub(crate) server: Option<f64>,
    pub(crate) bench: Option<f64>,
    pub(crate) rsyslog: Option<f64>,
    pub(crate) other: Option<f64>,
}

impl Snapshot {
    pub(crate) fn take(rsyslog_pid: u32) -> Self {
        Self {
            at: Instant::now(),
            process: cpu_time("self"),
            bench_threads: bench_threads(),
            rsyslog: cpu_time(&rsyslog_pid.to_string()),
            machine: system_busy(),
        }
    }

    /// What was used from `self` to `later`.
    pub(crate) fn until(&self, later: &Snapshot) -> Split {
        let elapsed = later.at.duration_since(self.at);
        let secs = elapsed.as_secs_f64().max(f64::EPSILON);
        let delta = |a: Option<Duration>, b: Option<Duration>| Some(b?.saturating_sub(a?));
        let process = delta(self.process, later.process);
        let bench: Duration = later
            .bench_threads
            .iter()
            .map(|(tid, t)| t.saturating_sub(self.bench_threads.get(tid).copied().unwrap_or_default()))
            .sum();
        let rsyslog = delta(self.rsyslog, later.rsyslog);
        let machine = delta(self.machine, later.machine);
        let other = match (machine, process, rsyslog) {
            (Some(m), Some(p), Some(r)) => Some(m.saturating_sub(p + r)),
            _ => None,
        };
        Split {
            elapsed,
            server: process.map(|p| p.saturating_sub(bench).as_secs_f64() / secs),
            bench: process.map(|_| bench.as_secs_f64() / secs),
            rsyslog: rsyslog.map(|r| r.as_secs_f64() / secs),
            other: other.map(|o| o.as_secs_f64() / secs),
        }
    }
}

/// CPU time of each of this process's threads named as the bench's own.
fn bench_threads() -> HashMap<String, Duration> {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return HashMap::new();
    };
    tasks
        .flatten()
        .filter_map(|task| {
            let tid = task.file_name().to_string_lossy().into_owned();
            let comm = std::fs::read_to_string(task.path().join("comm")).ok()?;
            let name = comm.trim();
            let ours = name.starts_with(super::drive::THREAD_NAME) || name == super::tail::THREAD_NAME;
            let time = cpu_time(&format!("self/task/{tid}"))?;
            ours.then_some((tid, time))
        })
        .collect()
}

impl Split {
    /// `0.93 server, 0.41 load generator, 0.35 rsyslog, 0.02 other`.
    pub(crate) fn describe(&self) -> String {
        let f = |v: Option<f64>| v.map_or("?".to_owned(), |v| format!("{v:.2}"));
        format!(
            "{} server, {} load generator and tail, {} rsyslog, {} other",
            f(self.server),
            f(self.bench),
            f(self.rsyslog),
            f(self.other)
        )
    }
}

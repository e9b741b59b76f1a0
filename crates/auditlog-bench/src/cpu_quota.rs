//! A share of the CPU for a child process, through a Linux cgroup's CPU
//! quota: how the replica benchmark gives each `auditlog serve` a machine
//! of its own size on one shared host, so that what two replicas add is
//! measured rather than taken back by the other's threads.
//!
//! cgroup v2 (`cpu.max` under /sys/fs/cgroup) is used where its CPU
//! controller is enabled, else cgroup v1 (`cpu.cfs_quota_us` under
//! /sys/fs/cgroup/cpu). Creating a group needs root or a delegated
//! hierarchy; the error says which path could not be written.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// The smallest quota per period the kernel takes (cgroup v1 refuses less;
/// v2 raises it silently).
const MIN_QUOTA_US: u64 = 1_000;

/// A cgroup holding one process; removed when dropped (once the process
/// has exited).
#[derive(Debug)]
pub struct CpuQuota {
    dir: PathBuf,
}

impl CpuQuota {
    /// Moves `pid` into a new cgroup named `name` that may use `cores`
    /// cores' worth of CPU time in every `period`.
    ///
    /// A quota is not a slower machine: the group runs at full speed until
    /// its share of the period is spent, then stops until the period ends.
    /// The shorter the period, the shorter those stops, which a machine of
    /// `cores` cores would not make at all; a stop while a replica holds an
    /// organization's log head stalls every other replica as long.
    pub fn confine(pid: u32, cores: f64, period: Duration, name: &str) -> Result<Self, String> {
        if !(cores.is_finite() && cores >= 0.01) {
            return Err(format!("a CPU quota must be at least 0.01 cores, not {cores}"));
        }
        let period_us = u64::try_from(period.as_micros()).unwrap_or(u64::MAX);
        if !(1_000..=1_000_000).contains(&period_us) {
            return Err(format!(
                "a quota period must be from 1 ms to 1 s, not {} ms",
                period.as_secs_f64() * 1e3
            ));
        }
        let quota_us = (cores * period_us as f64).round() as u64;
        if quota_us < MIN_QUOTA_US {
            return Err(format!(
                "{cores} cores of a {} ms period is {quota_us} µs, less than the kernel's 1 ms minimum: \
                 lengthen the period",
                period.as_secs_f64() * 1e3
            ));
        }
        let v2 = Path::new("/sys/fs/cgroup");
        let v2_cpu = std::fs::read_to_string(v2.join("cgroup.subtree_control"))
            .is_ok_and(|controllers| controllers.split_whitespace().any(|c| c == "cpu"));
        let (dir, settings): (PathBuf, Vec<(&str, String)>) = if v2_cpu {
            (v2.join(name), vec![("cpu.max", format!("{quota_us} {period_us}"))])
        } else {
            (
                Path::new("/sys/fs/cgroup/cpu").join(name),
                vec![
                    ("cpu.cfs_period_us", period_us.to_string()),
                    ("cpu.cfs_quota_us", quota_us.to_string()),
                ],
            )
        };
        std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create the cgroup {}: {e}", dir.display()))?;
        let group = Self { dir };
        for (file, value) in settings {
            group.write(file, &value)?;
        }
        group.write("cgroup.procs", &pid.to_string())?;
        Ok(group)
    }

    /// How often and how long the group has been throttled so far (its
    /// processes stopped until the next period because the quota ran out),
    /// from `cpu.stat`; `None` where it cannot be read.
    pub fn throttling(&self) -> Option<Throttling> {
        Throttling::parse(&std::fs::read_to_string(self.dir.join("cpu.stat")).ok()?)
    }

    fn write(&self, file: &str, value: &str) -> Result<(), String> {
        let path = self.dir.join(file);
        std::fs::write(&path, value).map_err(|e| format!("cannot write {value:?} to {}: {e}", path.display()))
    }
}

/// A cgroup's throttling counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Throttling {
    pub periods: u64,
    pub throttled_periods: u64,
    pub throttled: Duration,
}

impl Throttling {
    /// Reads `cpu.stat`: cgroup v2 (`nr_periods`, `nr_throttled`,
    /// `throttled_usec`) or v1 (`throttled_time`, in nanoseconds).
    fn parse(stat: &str) -> Option<Self> {
        let mut out = Self::default();
        let mut seen = false;
        for line in stat.lines() {
            let Some((key, value)) = line.split_once(' ') else {
                continue;
            };
            let Ok(value) = value.trim().parse::<u64>() else {
                continue;
            };
            match key {
                "nr_periods" => out.periods = value,
                "nr_throttled" => out.throttled_periods = value,
                "throttled_usec" => out.throttled = Duration::from_micros(value),
                "throttled_time" => out.throttled = Duration::from_nanos(value),
                _ => continue,
            }
            seen = true;
        }
        seen.then_some(out)
    }

    /// The share of periods in which the group was stopped, 0 to 1.
    pub fn throttled_share(&self) -> f64 {
        self.throttled_periods as f64 / self.periods.max(1) as f64
    }

    /// What was counted between `before` and `self`.
    pub fn since(&self, before: &Self) -> Self {
        Self {
            periods: self.periods.saturating_sub(before.periods),
            throttled_periods: self.throttled_periods.saturating_sub(before.throttled_periods),
            throttled: self.throttled.saturating_sub(before.throttled),
        }
    }
}

impl Drop for CpuQuota {
    fn drop(&mut self) {
        // Fails while a process is still inside; the group is then left for
        // the next run to reuse (create_dir_all accepts it).
        let _ = std::fs::remove_dir(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_throttling_from_either_cgroup_version() {
        let v1 = "nr_periods 200\nnr_throttled 50\nthrottled_time 125000000\nnr_bursts 0\nburst_time 0\n";
        let v2 = "usage_usec 900\nuser_usec 600\nsystem_usec 300\nnr_periods 200\nnr_throttled 50\n\
                  throttled_usec 125000\n";
        for stat in [v1, v2] {
            assert_eq!(
                Throttling::parse(stat),
                Some(Throttling {
                    periods: 200,
                    throttled_periods: 50,
                    throttled: Duration::from_millis(125),
                })
            );
        }
        assert_eq!(Throttling::parse("usage_usec 9\n"), None);
        let later = Throttling {
            periods: 300,
            throttled_periods: 80,
            throttled: Duration::from_millis(200),
        };
        assert_eq!(
            later.since(&Throttling::parse(v1).unwrap()),
            Throttling {
                periods: 100,
                throttled_periods: 30,
                throttled: Duration::from_millis(75),
            }
        );
    }

    #[test]
    fn refuses_a_quota_too_small_to_run_on() {
        for cores in [0.0, -1.0, f64::NAN, 0.001] {
            let refused = CpuQuota::confine(
                std::process::id(),
                cores,
                Duration::from_millis(2),
                "auditlog-test-never",
            )
            .unwrap_err();
            assert!(refused.contains("at least 0.01 cores"), "{refused}");
        }
    }

    #[test]
    fn refuses_a_period_or_quota_the_kernel_would_not_take() {
        let confine = |cores, period| CpuQuota::confine(std::process::id(), cores, period, "auditlog-test-never");
        for period in [Duration::from_micros(999), Duration::from_millis(1001)] {
            let refused = confine(0.5, period).unwrap_err();
            assert!(refused.contains("from 1 ms to 1 s"), "{refused}");
        }
        let refused = confine(0.25, Duration::from_millis(2)).unwrap_err();
        assert!(
            refused.contains("500 µs, less than the kernel's 1 ms minimum"),
            "{refused}"
        );
    }
}

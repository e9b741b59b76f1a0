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

/// The quota's accounting period. Short, so a replica that has spent its
/// share waits milliseconds rather than the default 100 ms: a transaction
/// that holds an organization's log head while its process is throttled
/// would stall the other replica as long.
const PERIOD_US: u64 = 10_000;

/// A cgroup holding one process; removed when dropped (once the process
/// has exited).
#[derive(Debug)]
pub struct CpuQuota {
    dir: PathBuf,
}

impl CpuQuota {
    /// Moves `pid` into a new cgroup named `name` that may use `cores`
    /// cores' worth of CPU time.
    pub fn confine(pid: u32, cores: f64, name: &str) -> Result<Self, String> {
        if !(cores.is_finite() && cores >= 0.01) {
            return Err(format!("a CPU quota must be at least 0.01 cores, not {cores}"));
        }
        let quota_us = (cores * PERIOD_US as f64).round() as u64;
        let v2 = Path::new("/sys/fs/cgroup");
        let v2_cpu = std::fs::read_to_string(v2.join("cgroup.subtree_control"))
            .is_ok_and(|controllers| controllers.split_whitespace().any(|c| c == "cpu"));
        let (dir, settings): (PathBuf, Vec<(&str, String)>) = if v2_cpu {
            (v2.join(name), vec![("cpu.max", format!("{quota_us} {PERIOD_US}"))])
        } else {
            (
                Path::new("/sys/fs/cgroup/cpu").join(name),
                vec![
                    ("cpu.cfs_period_us", PERIOD_US.to_string()),
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

    fn write(&self, file: &str, value: &str) -> Result<(), String> {
        let path = self.dir.join(file);
        std::fs::write(&path, value).map_err(|e| format!("cannot write {value:?} to {}: {e}", path.display()))
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
    fn refuses_a_quota_too_small_to_run_on() {
        for cores in [0.0, -1.0, f64::NAN, 0.001] {
            let refused = CpuQuota::confine(std::process::id(), cores, "auditlog-test-never").unwrap_err();
            assert!(refused.contains("at least 0.01 cores"), "{refused}");
        }
    }
}

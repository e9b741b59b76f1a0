//! Node.js for the tests that need it (the OpenID provider, axe-core):
//! finding `node` and `npm` (or skipping loudly, failing under `CI=true`),
//! and installing a fixture's packages from its lockfile with `npm ci`.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// `node` and `npm`, or `None` after saying loudly that `what` is skipped;
/// under `CI=true` their absence is a failure.
pub fn tools(what: &str) -> Option<(PathBuf, PathBuf)> {
    match (on_path("node"), npm()) {
        (Some(node), Some(npm)) => Some((node, npm)),
        _ => {
            super::skip_or_fail(&format!("node and npm are needed on PATH for {what}: SKIPPED"));
            None
        }
    }
}

pub fn npm() -> Option<PathBuf> {
    on_path("npm")
}

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
}

/// Runs `npm ci` in `dir` when node_modules is missing or older than the
/// lockfile. Across the test binaries that cargo runs at the same time a
/// lock file serialises it, as `npm ci` first deletes node_modules, which
/// would pull it from under another one's server.
pub fn npm_ci(npm: &Path, dir: &Path) {
    static DONE: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
    let mut done = DONE.lock().unwrap_or_else(|e| e.into_inner());
    if done.iter().any(|d| d == dir) {
        return;
    }
    let _lock = InstallLock::acquire(&dir.join(".npm-ci.lock"));
    if !up_to_date(dir) {
        let output = Command::new(npm)
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(dir)
            .stdin(Stdio::null())
            .output()
            .expect("npm runs");
        assert!(
            output.status.success(),
            "npm ci in {} failed ({}):\n{}\n{}",
            dir.display(),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
        );
    }
    done.push(dir.to_owned());
}

// npm writes node_modules/.package-lock.json last, so it marks an install
// that finished, where the folder's own time would not.
fn up_to_date(dir: &Path) -> bool {
    let modified = |path: PathBuf| std::fs::metadata(path).and_then(|m| m.modified()).ok();
    match (
        modified(dir.join("node_modules/.package-lock.json")),
        modified(dir.join("package-lock.json")),
    ) {
        (Some(installed), Some(locked)) => installed >= locked,
        _ => false,
    }
}

/// A lock file made with create_new (File::lock is newer than the
/// workspace's rust-version). One left by a killed process is taken over once
/// its owner is gone or it is older than any install takes.
struct InstallLock(PathBuf);

impl InstallLock {
    fn acquire(path: &Path) -> InstallLock {
        let started = Instant::now();
        loop {
            match OpenOptions::new().write(true).create_new(true).open(path) {
                Ok(mut file) => {
                    let _ = write!(file, "{}", std::process::id());
                    return InstallLock(path.to_owned());
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    if Self::abandoned(path) {
                        let _ = std::fs::remove_file(path);
                        continue;
                    }
                    assert!(
                        started.elapsed() < Duration::from_secs(900),
                        "{} is still held after 15 minutes; delete it if no npm ci runs",
                        path.display()
                    );
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(e) => panic!("cannot create {}: {e}", path.display()),
            }
        }
    }

    fn abandoned(path: &Path) -> bool {
        let old = std::fs::metadata(path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > Duration::from_secs(600));
        let owner_gone = std::fs::read_to_string(path)
            .ok()
            .and_then(|pid| pid.trim().parse::<u32>().ok())
            .is_some_and(|pid| Path::new("/proc/self").exists() && !Path::new(&format!("/proc/{pid}")).exists());
        old || owner_gone
    }
}

impl Drop for InstallLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

//! The Debian package, end to end: `packaging/deb/check.sh` builds it with
//! cargo-deb, installs it on this machine, starts the service as its
//! systemd unit would and checks `/readyz` and the owners and modes of what
//! it made. It needs root, dpkg and cargo-deb; without them it says so and
//! skips (under `CI=true` it fails: `.ci/run` installs cargo-deb).

use std::process::Command;

#[test]
fn the_debian_package_installs_and_serves() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../packaging/deb/check.sh");
    let out = Command::new("bash").arg(script).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    if stderr.contains("package check SKIPPED") {
        eprintln!("{stderr}");
        return;
    }
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("package check passed"), "{stdout}\n{stderr}");
}

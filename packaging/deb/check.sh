#!/usr/bin/env bash
# Builds the Debian package, installs it on this machine, starts the
# service as the unit would (through systemd where it runs, else the unit's
# own ExecStart as its user) and checks /readyz, the files' owners and
# modes, and the unit's hardening. Then removes the package.
#
# Needs root and cargo-deb (`cargo install cargo-deb`). Without them it
# says so and skips, unless CI=true, where it fails.
set -euo pipefail
cd "$(dirname "$0")/../.."

skip() {
    if [ "${CI:-}" = true ]; then echo "package check: $1 (required under CI=true)" >&2; exit 1; fi
    echo "package check SKIPPED: $1" >&2; exit 0
}
[ "$(id -u)" = 0 ] || skip "it installs a package and needs root"
command -v cargo-deb >/dev/null || skip "cargo-deb is not installed (cargo install cargo-deb)"
command -v dpkg >/dev/null || skip "dpkg is not installed"

# A target folder of its own: this runs inside `cargo test`, whose own
# build folder is locked meanwhile.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target/package}"
deb="$CARGO_TARGET_DIR/debian/auditlog.deb"
cargo deb -p auditlog --output "$deb"
dpkg -i "$deb"
cleanup() {
    [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null || true
    dpkg --purge auditlog >/dev/null || true
    rm -rf /var/lib/auditlog
}
trap cleanup EXIT

fail() { echo "package check FAILED: $*" >&2; exit 1; }
getent passwd auditlog >/dev/null || fail "no auditlog user"
[ "$(stat -c '%U %a' /var/lib/auditlog)" = "auditlog 750" ] || fail "/var/lib/auditlog: $(stat -c '%U %a' /var/lib/auditlog)"
[ "$(stat -c '%U:%G %a' /etc/auditlog/auditlog.toml)" = "root:auditlog 640" ] || fail "auditlog.toml: $(stat -c '%U:%G %a' /etc/auditlog/auditlog.toml)"
unit=/lib/systemd/system/auditlog.service
[ -f "$unit" ] || unit=/usr/lib/systemd/system/auditlog.service
[ -f "$unit" ] || fail "no unit installed"
if command -v systemd-analyze >/dev/null; then systemd-analyze verify "$unit"; fi
for directive in "ProtectSystem=strict" "NoNewPrivileges=yes" "PrivateTmp=yes" "RestrictAddressFamilies=" "ReadWritePaths=/var/lib/auditlog"; do
    grep -q "^$directive" "$unit" || fail "the unit lacks $directive"
done

if [ "$(systemctl is-system-running 2>/dev/null || true)" != offline ] && [ -d /run/systemd/system ]; then
    systemctl start auditlog
else
    # No systemd here: the unit's ExecStart, as its user, with its umask.
    exec_start=$(sed -n 's/^ExecStart=//p' "$unit")
    (cd /var/lib/auditlog && umask 0077 && exec runuser -u auditlog -- $exec_start) &
    pid=$!
fi
for _ in $(seq 1 100); do
    if curl -fsS http://127.0.0.1:8080/readyz >/dev/null 2>&1; then break; fi
    sleep 0.1
done
curl -fsS http://127.0.0.1:8080/readyz || fail "/readyz did not answer"
echo
key=/var/lib/auditlog/audit.db.signing-key
[ "$(stat -c '%U %a' "$key")" = "auditlog 600" ] || fail "signing key: $(stat -c '%U %a' "$key")"
if [ -n "${pid:-}" ]; then kill "$pid"; wait "$pid" || true; pid=; else systemctl stop auditlog; fi
echo "package check passed"

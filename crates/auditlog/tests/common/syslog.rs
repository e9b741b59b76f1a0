//! Real syslog receivers for the stream tests: private rsyslog and syslog-ng
//! daemons on loopback, listening for octet-counted RFC 5424 over plain TCP
//! (RFC 6587) or TLS (RFC 5425), each writing every message it receives, as
//! the raw bytes that came in, one per line to a file the tests read.
//!
//! Both run in the foreground with configurations, pid files, state and
//! logs of their own in a temporary folder; neither reads the system's log
//! sockets nor touches the system's logging. rsyslog is Debian's (`rsyslog`
//! and `rsyslog-gnutls`, installed). syslog-ng cannot be installed beside it
//! (Debian's packages conflict), so it is run from the folder that
//! tests/fixtures/syslog-ng/fetch.sh unpacks it into. A receiver that is
//! missing is skipped loudly, and is a failure under `CI=true`.
//!
//! [`Certs`] makes a throwaway CA, server and client certificates with the
//! `openssl` command, plus a second CA and a server certificate it signed,
//! which a client trusting the first CA must refuse.

#![allow(dead_code)]

use std::ffi::OsString;
use std::fs::OpenOptions;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// How long a daemon may take to listen, or to exit after SIGTERM.
const START_DEADLINE: Duration = Duration::from_secs(60);

/// Where tests/fixtures/syslog-ng/fetch.sh puts syslog-ng unless
/// `AUDITLOG_TEST_SYSLOG_NG` says otherwise.
const DEFAULT_SYSLOG_NG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/syslog-ng");

/// A CA, the server and client certificates it signed, and an unrelated CA
/// with a server certificate of its own; PEM files in `dir`, which is
/// deleted when this is dropped. Keys are P-256, unencrypted PKCS#8.
pub struct Certs {
    pub dir: TempDir,
    /// The CA that signed the server and client certificates.
    pub ca: PathBuf,
    /// For `127.0.0.1` and `localhost` (IP and DNS subject alternative names).
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    /// For TLS client authentication (extended key usage clientAuth).
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    /// A CA that signed nothing the others trust.
    pub other_ca: PathBuf,
    /// For `127.0.0.1` and `localhost` too, but signed by `other_ca`: a
    /// client trusting `ca` must refuse it.
    pub untrusted_server_cert: PathBuf,
    pub untrusted_server_key: PathBuf,
}

const SERVER_EXTENSIONS: &str = "basicConstraints=critical,CA:FALSE\n\
    keyUsage=critical,digitalSignature,keyEncipherment\n\
    extendedKeyUsage=serverAuth\n\
    subjectAltName=IP:127.0.0.1,DNS:localhost\n";

const CLIENT_EXTENSIONS: &str = "basicConstraints=critical,CA:FALSE\n\
    keyUsage=critical,digitalSignature,keyEncipherment\n\
    extendedKeyUsage=clientAuth\n";

impl Certs {
    /// Generates every certificate with the `openssl` command; panics if it
    /// is missing or fails.
    pub fn generate() -> Certs {
        let dir = tempfile::tempdir().expect("a temporary folder for certificates");
        let (ca, ca_key) = make_ca(dir.path(), "ca", "auditlog test CA");
        let (server_cert, server_key) = make_leaf(dir.path(), "server", "localhost", (&ca, &ca_key), SERVER_EXTENSIONS);
        let (client_cert, client_key) = make_leaf(dir.path(), "client", "auditlog", (&ca, &ca_key), CLIENT_EXTENSIONS);
        let (other_ca, other_key) = make_ca(dir.path(), "other-ca", "auditlog untrusted CA");
        let (untrusted_server_cert, untrusted_server_key) = make_leaf(
            dir.path(),
            "untrusted-server",
            "localhost",
            (&other_ca, &other_key),
            SERVER_EXTENSIONS,
        );
        Certs {
            dir,
            ca,
            server_cert,
            server_key,
            client_cert,
            client_key,
            other_ca,
            untrusted_server_cert,
            untrusted_server_key,
        }
    }
}

/// A self-signed CA: `{name}.pem` and `{name}.key` in `dir`.
fn make_ca(dir: &Path, name: &str, common_name: &str) -> (PathBuf, PathBuf) {
    let (cert, key) = (format!("{name}.pem"), format!("{name}.key"));
    make_key(dir, &key);
    let subject = format!("/CN={common_name}");
    openssl(
        dir,
        &["req", "-x509", "-new", "-key", &key, "-subj", &subject, "-days", "7"],
        &[
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
            "-out",
            &cert,
        ],
    );
    (dir.join(cert), dir.join(key))
}

/// A certificate signed by `issuer` (the file names of its certificate and
/// key in `dir`) with the given X.509 v3 extensions: `{name}.pem` and
/// `{name}.key` in `dir`.
fn make_leaf(
    dir: &Path,
    name: &str,
    common_name: &str,
    issuer: (&Path, &Path),
    extensions: &str,
) -> (PathBuf, PathBuf) {
    let (cert, key, csr, ext, serial) = (
        format!("{name}.pem"),
        format!("{name}.key"),
        format!("{name}.csr"),
        format!("{name}.ext"),
        format!("{name}.srl"),
    );
    let file_name = |path: &Path| path.file_name().expect("a file").to_string_lossy().into_owned();
    let (issuer_cert, issuer_key) = (file_name(issuer.0), file_name(issuer.1));
    make_key(dir, &key);
    std::fs::write(dir.join(&ext), extensions).expect("the extensions file is written");
    let subject = format!("/CN={common_name}");
    openssl(
        dir,
        &["req", "-new", "-key", &key, "-subj", &subject, "-out", &csr],
        &[],
    );
    openssl(
        dir,
        &["x509", "-req", "-in", &csr, "-CA", &issuer_cert, "-CAkey", &issuer_key],
        &[
            "-CAcreateserial",
            "-CAserial",
            &serial,
            "-days",
            "7",
            "-extfile",
            &ext,
            "-out",
            &cert,
        ],
    );
    (dir.join(cert), dir.join(key))
}

fn make_key(dir: &Path, key: &str) {
    let curve = ["-pkeyopt", "ec_paramgen_curve:P-256"];
    openssl(dir, &["genpkey", "-algorithm", "EC", "-out", key], &curve);
}

/// Runs `openssl` in `dir` (so file names are relative to it) with `args`
/// then `more`; panics unless it succeeds.
fn openssl(dir: &Path, args: &[&str], more: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .args(more)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| {
            panic!("the openssl command is needed to make test certificates ({e}): apt-get install openssl")
        });
    assert!(
        out.status.success(),
        "openssl {args:?} {more:?} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// What the receiver listens for.
pub enum Tls<'a> {
    /// Plain TCP (RFC 6587).
    Off,
    /// TLS (RFC 5425) with `certs.server_cert`; with `require_client_cert`
    /// a client must present a certificate signed by `certs.ca`, otherwise
    /// none is asked for.
    On {
        certs: &'a Certs,
        require_client_cert: bool,
    },
    /// TLS with `certs.untrusted_server_cert`, signed by `certs.other_ca`,
    /// which a client trusting `certs.ca` must refuse.
    Untrusted { certs: &'a Certs },
}

/// The listener's settings, owned so a receiver can restart without
/// borrowing the certificates.
#[derive(Clone)]
enum Listener {
    Tcp,
    Tls {
        ca: PathBuf,
        cert: PathBuf,
        key: PathBuf,
        require_client_cert: bool,
    },
}

impl Listener {
    fn from(tls: &Tls) -> Listener {
        match tls {
            Tls::Off => Listener::Tcp,
            Tls::On {
                certs,
                require_client_cert,
            } => Listener::Tls {
                ca: certs.ca.clone(),
                cert: certs.server_cert.clone(),
                key: certs.server_key.clone(),
                require_client_cert: *require_client_cert,
            },
            Tls::Untrusted { certs } => Listener::Tls {
                ca: certs.other_ca.clone(),
                cert: certs.untrusted_server_cert.clone(),
                key: certs.untrusted_server_key.clone(),
                require_client_cert: false,
            },
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Rsyslog,
    SyslogNg,
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Kind::Rsyslog => "rsyslog",
            Kind::SyslogNg => "syslog-ng",
        })
    }
}

/// How to run one kind of daemon: the program and its environment.
#[derive(Clone)]
struct Program {
    exe: PathBuf,
    env: Vec<(&'static str, OsString)>,
    /// syslog-ng's module folder and its version (`3.38`), which the
    /// configuration's `@version` must name.
    syslog_ng: Option<(PathBuf, String)>,
}

impl Program {
    /// The program for `kind`, or `None` after a loud skip (a failure under
    /// `CI=true`).
    fn find(kind: Kind, tls: bool) -> Option<Program> {
        let found = match kind {
            Kind::Rsyslog => rsyslogd(tls),
            Kind::SyslogNg => syslog_ng(),
        };
        match found {
            Ok(program) => Some(program),
            Err(why) => {
                super::skip_or_fail(&format!("{why}: the {kind} receiver tests are SKIPPED"));
                None
            }
        }
    }
}

fn rsyslogd(tls: bool) -> Result<Program, String> {
    let missing = "rsyslogd is needed (apt-get install rsyslog rsyslog-gnutls)";
    let search = std::env::var_os("PATH").unwrap_or_default();
    let exe = std::env::split_paths(&search)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|dir| dir.join("rsyslogd"))
        .find(|path| path.is_file())
        .ok_or(missing)?;
    if tls && !rsyslog_has_gtls() {
        return Err("rsyslog's TLS driver lmnsd_gtls.so is needed (apt-get install rsyslog-gnutls)".into());
    }
    Ok(Program {
        exe,
        env: Vec::new(),
        syslog_ng: None,
    })
}

/// Whether rsyslog's GnuTLS netstream driver is installed, in Debian's
/// multiarch folder (/usr/lib/x86_64-linux-gnu/rsyslog) or a plain one.
fn rsyslog_has_gtls() -> bool {
    let multiarch = std::fs::read_dir("/usr/lib")
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path().join("rsyslog"));
    multiarch
        .chain([PathBuf::from("/usr/lib/rsyslog"), PathBuf::from("/usr/lib64/rsyslog")])
        .any(|dir| dir.join("lmnsd_gtls.so").is_file())
}

/// The syslog-ng unpacked by fetch.sh: its binary, with the unpacked
/// libraries first on the library path, and its module folder.
fn syslog_ng() -> Result<Program, String> {
    let dest = std::env::var_os("AUDITLOG_TEST_SYSLOG_NG")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_SYSLOG_NG));
    let root = dest.join("root");
    let exe = root.join("usr/sbin/syslog-ng");
    let fetch = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/syslog-ng/fetch.sh");
    if !exe.is_file() {
        return Err(format!(
            "syslog-ng is needed in {} (run `{fetch} {}`, or set AUDITLOG_TEST_SYSLOG_NG)",
            dest.display(),
            dest.display()
        ));
    }
    // The modules are in usr/lib/syslog-ng/<major.minor>/, beside its own
    // libraries in usr/lib/syslog-ng/.
    let private = root.join("usr/lib/syslog-ng");
    let (modules, version) = std::fs::read_dir(&private)
        .into_iter()
        .flatten()
        .flatten()
        .find_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            let numeric = name.split('.').all(|part| part.parse::<u32>().is_ok());
            (numeric && entry.path().is_dir()).then(|| (entry.path(), name))
        })
        .ok_or_else(|| format!("no module folder in {}: run {fetch} again", private.display()))?;
    let mut libraries = vec![private];
    for lib in [root.join("usr/lib"), root.join("lib")] {
        let multiarch = std::fs::read_dir(&lib).into_iter().flatten().flatten();
        libraries.extend(
            multiarch
                .filter(|e| e.file_name().to_string_lossy().ends_with("-linux-gnu"))
                .map(|e| e.path()),
        );
    }
    let library_path = std::env::join_paths(libraries).expect("library folders join");
    Ok(Program {
        exe,
        env: vec![("LD_LIBRARY_PATH", library_path)],
        syslog_ng: Some((modules, version)),
    })
}

/// rsyslog's configuration: one imtcp listener whose messages go, through
/// a ruleset of their own, to `output` as `%rawmsg%` lines (the message
/// without its octet count). No system input (imuxsock, imklog) is loaded,
/// and nothing else is written: rsyslog's own messages (a failed handshake,
/// say) go to its stderr, which the receiver keeps as its log.
fn rsyslog_conf(dir: &Path, port: u16, listener: &Listener, output: &Path) -> String {
    // Control characters (a tab, say) are written as received, not as #011;
    // 64k so long entries are not cut.
    let mut global = format!(
        "global(workDirectory=\"{}\" maxMessageSize=\"64k\" parser.escapeControlCharactersOnReceive=\"off\"",
        dir.display()
    );
    let mut module = String::from("module(load=\"imtcp\"");
    if let Listener::Tls {
        ca,
        cert,
        key,
        require_client_cert,
    } = listener
    {
        global += &format!(
            " defaultNetstreamDriverCAFile=\"{}\" defaultNetstreamDriverCertFile=\"{}\" \
             defaultNetstreamDriverKeyFile=\"{}\"",
            ca.display(),
            cert.display(),
            key.display()
        );
        // x509/certvalid: a client certificate is required and must chain
        // to the CA (any name); anon asks for none.
        let auth = if *require_client_cert { "x509/certvalid" } else { "anon" };
        module += &format!(" streamDriver.name=\"gtls\" streamDriver.mode=\"1\" streamDriver.authMode=\"{auth}\"");
    }
    format!(
        "{global})\n{module})\n\
         template(name=\"raw\" type=\"string\" string=\"%rawmsg%\\n\")\n\
         input(type=\"imtcp\" address=\"127.0.0.1\" port=\"{port}\" ruleset=\"received\" \
         supportOctetCountedFraming=\"on\")\n\
         # flushOnTXEnd: written at the end of each batch, not when a buffer fills.\n\
         ruleset(name=\"received\") {{\n  action(type=\"omfile\" file=\"{}\" template=\"raw\" \
         flushOnTXEnd=\"on\" asyncWriting=\"off\")\n}}\n",
        output.display()
    )
}

/// syslog-ng's configuration: a `syslog()` source (octet-counted framing,
/// RFC 5424 parsing) that keeps each message's raw text, written to
/// `output` as `${RAWMSG}` lines (the message without its octet count),
/// each flushed at once.
fn syslog_ng_conf(version: &str, port: u16, listener: &Listener, output: &Path) -> String {
    let transport = match listener {
        Listener::Tcp => "transport(\"tcp\")".to_owned(),
        Listener::Tls {
            ca,
            cert,
            key,
            require_client_cert,
        } => {
            // optional-untrusted takes a client with or without a
            // certificate, unchecked; required-trusted refuses a client
            // without one signed by `ca`.
            let verify = if *require_client_cert {
                "required-trusted"
            } else {
                "optional-untrusted"
            };
            format!(
                "transport(\"tls\") tls(key-file(\"{}\") cert-file(\"{}\") ca-file(\"{}\") peer-verify({verify}))",
                key.display(),
                cert.display(),
                ca.display()
            )
        }
    };
    format!(
        "@version: {version}\n\
         options {{ stats-freq(0); mark-freq(0); use-dns(no); dns-cache(no); log-msg-size(65536); }};\n\
         source s_received {{ syslog(ip(\"127.0.0.1\") port({port}) {transport} \
         flags(store-raw-message) log-msg-size(65536)); }};\n\
         destination d_raw {{ file(\"{}\" template(\"${{RAWMSG}}\\n\") template-escape(no) flush-lines(1)); }};\n\
         log {{ source(s_received); destination(d_raw); }};\n",
        output.display()
    )
}

/// Writes the configuration of a `kind` receiver in `dir` on `port`,
/// writing to `output`, and answers the daemon's command line: in the
/// foreground, with its pid file, state and control socket in `dir`.
fn configure(
    kind: Kind,
    program: &Program,
    dir: &Path,
    port: u16,
    listener: &Listener,
    output: &Path,
) -> Vec<OsString> {
    let conf = dir.join(format!("{kind}.conf"));
    let path = |name: &str| dir.join(name).into_os_string();
    let (text, args): (String, Vec<OsString>) = match (kind, &program.syslog_ng) {
        (Kind::Rsyslog, _) => (
            rsyslog_conf(dir, port, listener, output),
            vec![
                "-n".into(),
                "-f".into(),
                conf.clone().into(),
                "-i".into(),
                path("rsyslogd.pid"),
            ],
        ),
        (Kind::SyslogNg, Some((modules, version))) => (
            syslog_ng_conf(version, port, listener, output),
            // -e: its own messages to stderr, the receiver's log; --no-caps:
            // it keeps the user's privileges rather than juggling root's.
            vec![
                "-F".into(),
                "-e".into(),
                "--no-caps".into(),
                "--module-path".into(),
                modules.clone().into(),
                "--cfgfile".into(),
                conf.clone().into(),
                "--pidfile".into(),
                path("syslog-ng.pid"),
                "--persist-file".into(),
                path("syslog-ng.persist"),
                "--control".into(),
                path("syslog-ng.ctl"),
            ],
        ),
        (Kind::SyslogNg, None) => unreachable!("syslog-ng is found with its modules"),
    };
    std::fs::write(&conf, text).expect("the receiver's configuration is written");
    args
}

/// A running receiver; the daemon is killed when this is dropped.
pub struct Receiver {
    pub kind: Kind,
    /// On 127.0.0.1; the same across restarts.
    pub port: u16,
    dir: TempDir,
    program: Program,
    args: Vec<OsString>,
    child: Option<Child>,
    output: PathBuf,
    log: PathBuf,
}

impl Receiver {
    /// Starts a `kind` receiver on a free port of 127.0.0.1, listening for
    /// `tls`; returns once it accepts connections. `None` after a loud
    /// message when the daemon is not installed (a panic under `CI=true`).
    pub fn start(kind: Kind, tls: Tls) -> Option<Receiver> {
        let listener = Listener::from(&tls);
        let program = Program::find(kind, matches!(listener, Listener::Tls { .. }))?;
        let mut failures = Vec::new();
        // The free port is released before the daemon binds it, so another
        // process may take it in between: then try another one.
        for _ in 0..3 {
            let mut receiver = Receiver::prepare(kind, &listener, &program);
            match receiver.spawn() {
                Ok(()) => return Some(receiver),
                Err(failure) => failures.push(failure),
            }
        }
        panic!("the {kind} receiver did not start:\n{}", failures.join("\n---\n"));
    }

    /// A receiver's folder, configuration and command line, not started.
    fn prepare(kind: Kind, listener: &Listener, program: &Program) -> Receiver {
        let dir = tempfile::tempdir().expect("a temporary folder for the receiver");
        let port = super::free_port();
        let (output, log) = (dir.path().join("received.log"), dir.path().join("daemon.log"));
        let args = configure(kind, program, dir.path(), port, listener, &output);
        Receiver {
            kind,
            port,
            dir,
            program: program.clone(),
            args,
            child: None,
            output,
            log,
        }
    }

    /// Starts the daemon and waits until its port accepts connections.
    /// Its stdout and stderr are appended to the log, across restarts.
    fn spawn(&mut self) -> Result<(), String> {
        for stale in ["rsyslogd.pid", "syslog-ng.pid", "syslog-ng.ctl"] {
            let _ = std::fs::remove_file(self.dir.path().join(stale));
        }
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("the receiver's log opens");
        let child = Command::new(&self.program.exe)
            .args(&self.args)
            .envs(self.program.env.iter().map(|(k, v)| (k, v)))
            // Neither may take itself for a systemd service of this machine.
            .env_remove("NOTIFY_SOCKET")
            .env_remove("LISTEN_FDS")
            .env_remove("LISTEN_PID")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("the log's handle is cloned"))
            .stderr(log)
            .spawn()
            .map_err(|e| format!("{} does not run: {e}", self.program.exe.display()))?;
        self.child = Some(child);
        self.wait_listening()
    }

    /// Polls the port until a connection is accepted; fails if the daemon
    /// exits first or the deadline passes (then it is killed).
    fn wait_listening(&mut self) -> Result<(), String> {
        let address = SocketAddr::from(([127, 0, 0, 1], self.port));
        let started = Instant::now();
        loop {
            let child = self.child.as_mut().expect("a daemon was spawned");
            if let Some(status) = child.try_wait().expect("the daemon's status is read") {
                self.child = None;
                return Err(format!(
                    "{} exited ({status}) on port {}; its log:\n{}",
                    self.kind,
                    self.port,
                    self.log()
                ));
            }
            // A probe that connects and closes; the daemon logs at most an
            // empty session or a failed handshake.
            if TcpStream::connect_timeout(&address, Duration::from_secs(1)).is_ok() {
                return Ok(());
            }
            if started.elapsed() > START_DEADLINE {
                self.kill();
                return Err(format!(
                    "{} never listened on port {}; its log:\n{}",
                    self.kind,
                    self.port,
                    self.log()
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// What the daemon has written to stdout and stderr, across restarts.
    pub fn log(&self) -> String {
        std::fs::read(&self.log)
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default()
    }

    /// The messages received so far, in the order written, each as the
    /// exact text that came in (without the octet count). A line still
    /// being written (no newline yet) is left for the next call.
    pub fn lines(&self) -> Vec<String> {
        let bytes = match std::fs::read(&self.output) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
            Err(e) => panic!("cannot read {}: {e}", self.output.display()),
        };
        // Only up to the last newline: the lines that are complete.
        let Some(end) = bytes.iter().rposition(|b| *b == b'\n') else {
            return Vec::new();
        };
        bytes[..end]
            .split(|b| *b == b'\n')
            .map(|line| String::from_utf8_lossy(line).into_owned())
            .collect()
    }

    /// Waits until at least `n` messages have arrived and returns all of
    /// them; panics with what did arrive, and the daemon's log, if that
    /// takes longer than `timeout`.
    pub fn wait_for_lines(&self, n: usize, timeout: Duration) -> Vec<String> {
        let started = Instant::now();
        loop {
            let lines = self.lines();
            if lines.len() >= n {
                return lines;
            }
            if started.elapsed() > timeout {
                let shown: Vec<String> = lines.iter().map(|l| l.chars().take(200).collect()).collect();
                panic!(
                    "{} received {} of {n} messages in {timeout:?}: {shown:#?}\nits log:\n{}",
                    self.kind,
                    lines.len(),
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Stops the daemon gracefully (SIGTERM) and waits for it to exit.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        // The kill command, as std sends only SIGKILL and the workspace
        // forbids the unsafe code of calling libc for it.
        let signal = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("the kill command runs");
        assert!(signal.success(), "kill -TERM {} failed", child.id());
        let started = Instant::now();
        while child.try_wait().expect("the daemon's status is read").is_none() {
            if started.elapsed() > START_DEADLINE {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "{} ignored SIGTERM for {START_DEADLINE:?}; its log:\n{}",
                    self.kind,
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Kills the daemon at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the daemon if it runs, then starts it again on the same port,
    /// appending to the same output; panics if it does not come back.
    pub fn restart(&mut self) {
        self.stop();
        if let Err(failure) = self.spawn() {
            panic!("the {} receiver did not restart: {failure}", self.kind);
        }
    }

    /// Whether the daemon is running (it was started and has not exited).
    pub fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|child| child.try_wait().expect("the daemon's status is read").is_none())
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.kill();
    }
}

//! A private rsyslog for the streams section: Debian's `rsyslogd` with its
//! GnuTLS driver, on loopback, taking RFC 5425 (TLS, octet-counted framing)
//! on several ports and writing each message's raw text, one per line, to a
//! file per port.
//!
//! It runs in the foreground with a configuration, pid file and state of
//! its own in a temporary folder; it loads no system input (imuxsock,
//! imklog) and never touches the machine's logging. The CA and the server
//! certificate (P-256, for `127.0.0.1`) are made with the `openssl`
//! command. The daemon is killed when [`Rsyslog`] is dropped.

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::AnyError;
use crate::harness::free_port;

/// How to get what is missing.
const INSTALL: &str = "install it with `apt-get install rsyslog rsyslog-gnutls` (the bench runs its own \
    rsyslogd on loopback; the system's logger need not run)";

/// How long the daemon may take to listen on every port.
const START_DEADLINE: Duration = Duration::from_secs(30);

/// A running rsyslog and where each port's messages go.
pub(crate) struct Rsyslog {
    child: Child,
    /// The ports on 127.0.0.1, in the order asked for.
    pub(crate) ports: Vec<u16>,
    /// The file each port's messages are written to, one per line.
    pub(crate) outputs: Vec<PathBuf>,
    /// The CA that signed the server's certificate, PEM.
    pub(crate) ca_pem: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

/// `rsyslogd`, or an error saying how to install it; checks for the
/// GnuTLS driver and the `openssl` command too.
pub(crate) fn find() -> Result<PathBuf, AnyError> {
    let search = std::env::var_os("PATH").unwrap_or_default();
    let exe = std::env::split_paths(&search)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|dir| dir.join("rsyslogd"))
        .find(|path| path.is_file())
        .ok_or_else(|| format!("rsyslogd is not installed: {INSTALL}"))?;
    if !has_gtls() {
        return Err(format!("rsyslog's TLS driver (lmnsd_gtls.so) is not installed: {INSTALL}").into());
    }
    if Command::new("openssl").arg("version").output().is_err() {
        return Err(
            "the openssl command is needed to make the receiver's certificates: apt-get install openssl".into(),
        );
    }
    Ok(exe)
}

/// Whether rsyslog's GnuTLS netstream driver is installed, in Debian's
/// multiarch folder (/usr/lib/x86_64-linux-gnu/rsyslog) or a plain one.
fn has_gtls() -> bool {
    let multiarch = std::fs::read_dir("/usr/lib")
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path().join("rsyslog"));
    multiarch
        .chain([PathBuf::from("/usr/lib/rsyslog"), PathBuf::from("/usr/lib64/rsyslog")])
        .any(|dir| dir.join("lmnsd_gtls.so").is_file())
}

impl Rsyslog {
    /// Makes the certificates, then starts `exe` listening for TLS on
    /// `listeners` free ports; returns once every port accepts connections.
    pub(crate) fn start(exe: &Path, listeners: usize) -> Result<Self, AnyError> {
        let dir = tempfile::Builder::new().prefix("auditlog-bench-rsyslog-").tempdir()?;
        let certs = Certs::generate(dir.path())?;
        let ports = (0..listeners).map(|_| free_port()).collect::<Result<Vec<_>, _>>()?;
        let outputs: Vec<PathBuf> = (0..listeners)
            .map(|i| dir.path().join(format!("received-{i}.log")))
            .collect();
        let conf = dir.path().join("rsyslog.conf");
        std::fs::write(&conf, config(dir.path(), &certs, &ports, &outputs))?;
        let log = dir.path().join("rsyslogd.log");
        let out = std::fs::File::create(&log)?;
        let child = Command::new(exe)
            .arg("-n")
            .arg("-f")
            .arg(&conf)
            .arg("-i")
            .arg(dir.path().join("rsyslogd.pid"))
            // It must not take itself for a systemd service of this machine.
            .env_remove("NOTIFY_SOCKET")
            .env_remove("LISTEN_FDS")
            .env_remove("LISTEN_PID")
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .map_err(|e| format!("{} does not run: {e}", exe.display()))?;
        let mut daemon = Self {
            child,
            ports,
            outputs,
            ca_pem: std::fs::read_to_string(&certs.ca)?,
            log,
            _dir: dir,
        };
        daemon.wait_listening()?;
        Ok(daemon)
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Polls every port until it accepts a connection; fails if the daemon
    /// exits first or takes longer than [`START_DEADLINE`].
    fn wait_listening(&mut self) -> Result<(), AnyError> {
        let started = Instant::now();
        for &port in &self.ports {
            let address = SocketAddr::from(([127, 0, 0, 1], port));
            // A probe that connects and closes: rsyslog logs a session
            // that ended before its handshake, nothing more.
            while TcpStream::connect_timeout(&address, Duration::from_secs(1)).is_err() {
                if let Some(status) = self.child.try_wait()? {
                    return Err(format!("rsyslogd exited ({status}); its log:\n{}", self.log()).into());
                }
                if started.elapsed() > START_DEADLINE {
                    return Err(format!("rsyslogd never listened on port {port}; its log:\n{}", self.log()).into());
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        Ok(())
    }

    /// What the daemon wrote to stdout and stderr.
    pub(crate) fn log(&self) -> String {
        std::fs::read(&self.log)
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default()
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// rsyslog's configuration: one imtcp listener per port over TLS (no
/// client certificate asked for), each through a ruleset of its own to its
/// file as `%rawmsg%` lines (the message without its octet count), written
/// at the end of each batch rsyslog dequeues.
fn config(dir: &Path, certs: &Certs, ports: &[u16], outputs: &[PathBuf]) -> String {
    let mut conf = format!(
        "global(workDirectory=\"{}\" maxMessageSize=\"64k\" parser.escapeControlCharactersOnReceive=\"off\" \
         defaultNetstreamDriverCAFile=\"{}\" defaultNetstreamDriverCertFile=\"{}\" \
         defaultNetstreamDriverKeyFile=\"{}\")\n\
         module(load=\"imtcp\" streamDriver.name=\"gtls\" streamDriver.mode=\"1\" streamDriver.authMode=\"anon\")\n\
         template(name=\"raw\" type=\"string\" string=\"%rawmsg%\\n\")\n",
        dir.display(),
        certs.ca.display(),
        certs.cert.display(),
        certs.key.display(),
    );
    for (i, (port, output)) in ports.iter().zip(outputs).enumerate() {
        conf += &format!(
            "input(type=\"imtcp\" address=\"127.0.0.1\" port=\"{port}\" ruleset=\"r{i}\" \
             supportOctetCountedFraming=\"on\")\n\
             ruleset(name=\"r{i}\") {{\n  action(type=\"omfile\" file=\"{}\" template=\"raw\" \
             flushOnTXEnd=\"on\" asyncWriting=\"off\")\n}}\n",
            output.display()
        );
    }
    conf
}

/// A throwaway CA and the server certificate it signed, PEM files.
struct Certs {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

/// The `openssl` commands that make the CA and the server's certificate,
/// each split on spaces (no argument holds one).
const OPENSSL_STEPS: &[&str] = &[
    "genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ca.key",
    "req -x509 -new -key ca.key -subj /CN=auditlog-bench-CA -days 2 \
     -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign -out ca.pem",
    "genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out server.key",
    "req -new -key server.key -subj /CN=127.0.0.1 -out server.csr",
    "x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile server.ext -out server.pem",
];

impl Certs {
    fn generate(dir: &Path) -> Result<Self, AnyError> {
        std::fs::write(
            dir.join("server.ext"),
            "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n\
             extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1\n",
        )?;
        for step in OPENSSL_STEPS {
            openssl(dir, &step.split_whitespace().collect::<Vec<_>>())?;
        }
        Ok(Self {
            ca: dir.join("ca.pem"),
            cert: dir.join("server.pem"),
            key: dir.join("server.key"),
        })
    }
}

/// Runs `openssl` in `dir`, so file names are relative to it.
fn openssl(dir: &Path, args: &[&str]) -> Result<(), AnyError> {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("the openssl command does not run ({e}): apt-get install openssl"))?;
    if !out.status.success() {
        return Err(format!(
            "openssl {args:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(())
}

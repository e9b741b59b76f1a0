//! A throwaway PostgreSQL for tests, in this crate and in others.
//!
//! [`fresh_database_url`] gives each caller a new, empty database. The
//! server behind it is started once per test process from the system's
//! `initdb` and `postgres` (found on `PATH`, else under
//! `/usr/lib/postgresql/*/bin`), in a temporary directory, on a free
//! loopback port, with durability off for speed. A small shell watchdog
//! stops it and removes its directory when the test process is gone, however
//! that happens. PostgreSQL refuses to run as root, so as root the server
//! runs as the `postgres` system user.
//!
//! With `AUDITLOG_TEST_DATABASE_URL` set, that server is used instead (a new
//! database per call there too; they are not dropped). Without either, tests
//! are skipped with a message on stderr, except under `CI=true`, where a
//! missing PostgreSQL is an error.
//!
//! [`tls_server`] starts a second server, on demand, for the TLS tests: it
//! serves TLS with a certificate from a CA made for it by the system's
//! `openssl`, and asks for a password over TCP (SCRAM), so that channel
//! binding is exercised too. It is always started here, never taken from
//! the environment.

use std::io::Write;
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use tokio_postgres::NoTls;

/// The variable naming an existing server to use instead of starting one.
pub const DATABASE_URL_VAR: &str = "AUDITLOG_TEST_DATABASE_URL";

/// How long the server may take to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The server of this test process: a URL to its `postgres` database, or
/// why there is none.
static SERVER: OnceLock<Result<String, Unavailable>> = OnceLock::new();

/// The TLS server of this test process, started on first use.
static TLS_SERVER: OnceLock<Result<TlsServer, Unavailable>> = OnceLock::new();

/// A running PostgreSQL serving TLS; see [`tls_server`].
#[derive(Debug, Clone)]
pub struct TlsServer {
    /// `postgres://postgres:<password>@127.0.0.1:<port>/postgres`, with no
    /// TLS parameters.
    pub admin_url: String,
    /// PEM of the CA that signed the server's certificate, which names
    /// `localhost` and `127.0.0.1`.
    pub ca_file: PathBuf,
    /// PEM of another CA, which signed nothing the server has.
    pub stranger_ca_file: PathBuf,
}

/// What kind of server to start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// No TLS, no passwords: the fast one most tests use.
    Plain,
    /// TLS on, SCRAM passwords over TCP.
    Tls,
}

/// A started server: the URL of its `postgres` database, and its directory.
struct Started {
    url: String,
    root: PathBuf,
}

#[derive(Debug, Clone)]
enum Unavailable {
    /// No PostgreSQL installed: skip (or fail under CI).
    Missing,
    /// Installed but would not start: always a failure.
    Failed(String),
}

/// The URL of a new, empty database, or `None` when no PostgreSQL is
/// available (after saying so on stderr). Panics under `CI=true` instead of
/// returning `None`, and whenever an installed server fails to start.
pub async fn fresh_database_url() -> Option<String> {
    let admin = match std::env::var(DATABASE_URL_VAR) {
        Ok(url) if !url.is_empty() => url,
        _ => {
            let server = tokio::task::spawn_blocking(|| SERVER.get_or_init(start).clone())
                .await
                .expect("starting the test PostgreSQL panicked");
            match server {
                Ok(url) => url,
                Err(Unavailable::Missing) if std::env::var("CI").as_deref() == Ok("true") => {
                    panic!("PostgreSQL (initdb and postgres) is not installed, and CI=true requires the tests to run")
                }
                Err(Unavailable::Missing) => return None,
                Err(Unavailable::Failed(why)) => panic!("the test PostgreSQL did not start: {why}"),
            }
        }
    };
    Some(fresh_database_on(&admin).await)
}

/// Creates a new, empty database on the server `admin` points to, and
/// returns its URL (`admin` with the database's name as its path).
pub async fn fresh_database_on(admin: &str) -> String {
    let name = format!("t_{}", uuid::Uuid::now_v7().simple());
    let (client, connection) = tokio_postgres::connect(admin, NoTls)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to the test PostgreSQL: {e}"));
    let driver = tokio::spawn(connection);
    // The name is generated from hex digits only; DDL takes no parameters.
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap_or_else(|e| panic!("cannot create a test database: {e}"));
    drop(client);
    let _ = driver.await;
    let mut url = url::Url::parse(admin).unwrap_or_else(|e| panic!("{admin:?} must be a URL: {e}"));
    url.set_path(&format!("/{name}"));
    url.to_string()
}

/// The TLS test server, started on first use, or `None` when PostgreSQL or
/// `openssl` is not installed (after saying so on stderr). Panics as
/// [`fresh_database_url`] does under `CI=true` and on a failed start.
pub async fn tls_server() -> Option<TlsServer> {
    let server = tokio::task::spawn_blocking(|| TLS_SERVER.get_or_init(start_tls).clone())
        .await
        .expect("starting the TLS test PostgreSQL panicked");
    match server {
        Ok(server) => Some(server),
        Err(Unavailable::Missing) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("PostgreSQL or openssl is not installed, and CI=true requires the TLS tests to run")
        }
        Err(Unavailable::Missing) => None,
        Err(Unavailable::Failed(why)) => panic!("the TLS test PostgreSQL did not start: {why}"),
    }
}

fn start_tls() -> Result<TlsServer, Unavailable> {
    let has_openssl = Command::new("openssl")
        .arg("version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let bin = binaries().filter(|_| has_openssl);
    let Some(bin) = bin else {
        let _ = writeln!(
            std::io::stderr(),
            "\n*** PostgreSQL or openssl is not installed: the PostgreSQL TLS tests are SKIPPED. ***\n"
        );
        return Err(Unavailable::Missing);
    };
    let started = start_from(&bin, Kind::Tls).map_err(Unavailable::Failed)?;
    Ok(TlsServer {
        admin_url: started.url,
        ca_file: started.root.join("ca.crt"),
        stranger_ca_file: started.root.join("stranger-ca.crt"),
    })
}

/// A client program of the installed PostgreSQL (`pg_dump`, `pg_restore`),
/// from the same installation the test server runs, if there is one.
/// Else the first on `PATH`.
pub fn client_program(name: &str) -> Option<PathBuf> {
    let beside = binaries().map(|bin| bin.join(name)).filter(|p| p.is_file());
    beside.or_else(|| {
        let path = std::env::var_os("PATH")?;
        std::env::split_paths(&path).map(|d| d.join(name)).find(|p| p.is_file())
    })
}

/// Where `initdb` and `postgres` are: on `PATH`, else the newest version
/// under `/usr/lib/postgresql`.
fn binaries() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    if let Some(dir) = on_path
        .into_iter()
        .find(|d| d.join("initdb").is_file() && d.join("postgres").is_file())
    {
        return Some(dir);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, bin): &(u32, PathBuf)| bin.join("initdb").is_file() && bin.join("postgres").is_file())
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

fn start() -> Result<String, Unavailable> {
    let Some(bin) = binaries() else {
        let _ = writeln!(
            std::io::stderr(),
            "\n*** PostgreSQL is not installed (no initdb and postgres on PATH or under /usr/lib/postgresql): \
             the PostgreSQL tests are SKIPPED. Install it, or set {DATABASE_URL_VAR}. ***\n"
        );
        return Err(Unavailable::Missing);
    };
    start_from(&bin, Kind::Plain)
        .map(|s| s.url)
        .map_err(Unavailable::Failed)
}

fn start_from(bin: &Path, kind: Kind) -> Result<Started, String> {
    let cluster = Cluster::new(bin)?;
    let password = cluster.init(kind)?;
    let settings = match kind {
        Kind::Plain => Vec::new(),
        Kind::Tls => vec![
            "ssl=on".to_owned(),
            format!("ssl_cert_file={}", cluster.root.join("server.crt").display()),
            format!("ssl_key_file={}", cluster.root.join("server.key").display()),
        ],
    };
    let (mut server, port) = cluster.spawn(&settings)?;
    watch_over(server.id(), &cluster.data, &cluster.root)?;
    wait_until_ready(&mut server, port, &cluster.data).map_err(|e| format!("{e}\n{}", cluster.log_text()))?;
    let user = match password {
        Some(p) => format!("postgres:{p}"),
        None => "postgres".to_owned(),
    };
    Ok(Started {
        url: format!("postgres://{user}@127.0.0.1:{port}/postgres"),
        root: cluster.root,
    })
}

/// A throwaway cluster's directory, and who runs its programs: as root,
/// the `postgres` user, who must own what the server reads.
struct Cluster {
    bin: PathBuf,
    root: PathBuf,
    data: PathBuf,
    log_path: PathBuf,
    owner: Option<(u32, u32)>,
}

impl Cluster {
    fn new(bin: &Path) -> Result<Self, String> {
        let root = std::env::temp_dir().join(format!(
            "auditlog-pg-{}-{}",
            std::process::id(),
            uuid::Uuid::now_v7().simple()
        ));
        std::fs::create_dir_all(&root).map_err(|e| format!("{}: {e}", root.display()))?;
        // Whoever owns a directory we just made is who we run as.
        let as_root = std::fs::metadata(&root).map_err(|e| e.to_string())?.uid() == 0;
        let owner = if as_root {
            Some((postgres_id("-u")?, postgres_id("-g")?))
        } else {
            None
        };
        let cluster = Self {
            bin: bin.to_path_buf(),
            data: root.join("data"),
            log_path: root.join("postgres.log"),
            root,
            owner,
        };
        cluster.give(&cluster.root)?;
        Ok(cluster)
    }

    /// Files the server reads must be its own: as root, the postgres user's.
    fn give(&self, path: &Path) -> Result<(), String> {
        match self.owner {
            Some((uid, gid)) => {
                std::os::unix::fs::chown(path, Some(uid), Some(gid)).map_err(|e| format!("{}: {e}", path.display()))
            }
            None => Ok(()),
        }
    }

    fn command(&self, program: &str) -> Command {
        let program = self.bin.join(program);
        if self.owner.is_some() {
            let mut c = Command::new("setpriv");
            c.args(["--reuid=postgres", "--regid=postgres", "--init-groups", "--"])
                .arg(program);
            c
        } else {
            Command::new(program)
        }
    }

    fn log(&self) -> Result<std::fs::File, String> {
        std::fs::File::options()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .map_err(|e| e.to_string())
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Runs initdb; with TLS, also the certificates and a password for
    /// connections over TCP, which it answers.
    fn init(&self, kind: Kind) -> Result<Option<String>, String> {
        let mut initdb = self.command("initdb");
        initdb
            .arg("-D")
            .arg(&self.data)
            .args(["-U", "postgres", "-E", "UTF8", "--locale=C", "--no-sync"]);
        let password = match kind {
            Kind::Plain => {
                initdb.args(["-A", "trust"]);
                None
            }
            Kind::Tls => Some(self.tls(&mut initdb)?),
        };
        let status = initdb
            .stdin(Stdio::null())
            .stdout(self.log()?)
            .stderr(self.log()?)
            .status()
            .map_err(|e| format!("initdb: {e}"))?;
        if !status.success() {
            return Err(format!("initdb failed:\n{}", self.log_text()));
        }
        Ok(password)
    }

    fn tls(&self, initdb: &mut Command) -> Result<String, String> {
        let secret = uuid::Uuid::now_v7().simple().to_string();
        let pwfile = self.root.join("password");
        std::fs::write(&pwfile, &secret).map_err(|e| e.to_string())?;
        self.give(&pwfile)?;
        initdb
            .args(["--auth-local=trust", "--auth-host=scram-sha-256"])
            .arg(format!("--pwfile={}", pwfile.display()));
        make_certificates(&self.root)?;
        for file in ["server.crt", "server.key"] {
            self.give(&self.root.join(file))?;
        }
        // PostgreSQL refuses a key others may read.
        std::fs::set_permissions(self.root.join("server.key"), std::fs::Permissions::from_mode(0o600))
            .map_err(|e| e.to_string())?;
        Ok(secret)
    }

    /// Starts the server on a free loopback port with `settings`.
    fn spawn(&self, settings: &[String]) -> Result<(std::process::Child, u16), String> {
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let server = self
            .command("postgres")
            .arg("-D")
            .arg(&self.data)
            .arg("-p")
            .arg(port.to_string())
            .arg("-k")
            .arg(&self.root)
            .args([
                "-c",
                "listen_addresses=127.0.0.1",
                // A test server loses nothing worth keeping in a crash.
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "max_connections=300",
            ])
            .args(settings.iter().flat_map(|s| ["-c", s.as_str()]))
            .stdin(Stdio::null())
            .stdout(self.log()?)
            .stderr(self.log()?)
            .spawn()
            .map_err(|e| format!("postgres: {e}"))?;
        Ok((server, port))
    }
}

/// The `postgres` user's uid (`-u`) or gid (`-g`), to run the server as
/// when the tests run as root.
fn postgres_id(flag: &str) -> Result<u32, String> {
    let out = Command::new("id")
        .args([flag, "postgres"])
        .output()
        .map_err(|e| format!("id: {e}"))?;
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .map_err(|_| "running as root, and there is no postgres user to run PostgreSQL as".to_owned())
}

/// Makes, in `dir`, a CA (`ca.crt`), a server certificate it signed for
/// `localhost` and `127.0.0.1` (`server.crt`, `server.key`), and a second,
/// unrelated CA (`stranger-ca.crt`). ECDSA P-256 signed with SHA-256, so
/// channel binding hashes with SHA-256.
fn make_certificates(dir: &Path) -> Result<(), String> {
    let openssl = |args: &[&str]| -> Result<(), String> {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("openssl: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "openssl {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    };
    const KEY: [&str; 5] = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    for ca in ["ca", "stranger-ca"] {
        let (key, crt, subject) = (
            format!("{ca}.key"),
            format!("{ca}.crt"),
            format!("/CN=auditlog test {ca}"),
        );
        let mut args = vec!["req", "-x509"];
        args.extend(KEY);
        args.extend(["-keyout", &key, "-out", &crt, "-days", "2", "-subj", &subject]);
        openssl(&args)?;
    }
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n\
         basicConstraints=critical,CA:FALSE\n\
         keyUsage=critical,digitalSignature\n\
         extendedKeyUsage=serverAuth\n",
    )
    .map_err(|e| e.to_string())?;
    let mut args = vec!["req", "-new"];
    args.extend(KEY);
    args.extend(["-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost"]);
    openssl(&args)?;
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-set_serial",
        "2",
        "-days",
        "2",
        "-extfile",
        "server.ext",
        "-out",
        "server.crt",
    ])
}

/// Starts the watchdog: once this process is gone, it stops the server
/// (fast shutdown) and removes its directory. A shell loop, as the
/// workspace has no `unsafe` for a `prctl(PR_SET_PDEATHSIG)`.
fn watch_over(server: u32, data: &Path, root: &Path) -> Result<(), String> {
    const SCRIPT: &str = r#"
        while kill -0 "$1" 2>/dev/null; do sleep 1; done
        pid=$(head -n 1 "$3/postmaster.pid" 2>/dev/null)
        kill -INT "${pid:-$2}" 2>/dev/null
        i=0
        while kill -0 "${pid:-$2}" 2>/dev/null && [ "$i" -lt 60 ]; do sleep 0.5; i=$((i + 1)); done
        rm -rf "$4"
    "#;
    Command::new("sh")
        .arg("-c")
        .arg(SCRIPT)
        .arg("auditlog-pg-watchdog")
        .arg(std::process::id().to_string())
        .arg(server.to_string())
        .arg(data)
        .arg(root)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map(drop)
        .map_err(|e| format!("cannot start the watchdog: {e}"))
}

/// Waits until the server accepts connections: its port answers and its
/// `postmaster.pid` says "ready".
fn wait_until_ready(server: &mut Child, port: u16, data: &Path) -> Result<(), String> {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Ok(Some(status)) = server.try_wait() {
            return Err(format!("postgres exited at start ({status})"));
        }
        let ready = std::fs::read_to_string(data.join("postmaster.pid"))
            .map(|pid_file| pid_file.lines().any(|l| l.trim() == "ready"))
            .unwrap_or(false);
        if ready && TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("postgres did not become ready within {START_TIMEOUT:?}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

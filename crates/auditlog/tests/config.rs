//! `serve --config FILE` with the real binary: the file's settings reach the
//! running server; a variable wins over the file and a flag over its
//! variable, for a setting of each kind; a key the file does not know or a
//! value of the wrong kind stops `serve` before anything starts; and
//! `config default` prints a file that is exactly the defaults.

mod common;

use common::*;

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Long enough for a debug build on a busy machine; only a broken build
/// waits this long, instead of hanging the run.
const PATIENCE: Duration = Duration::from_secs(120);

/// The binary with `args`, and with no `AUDITLOG_*` variable of the test's
/// own environment.
fn clean(args: &[&str]) -> Command {
    let mut cmd = auditlog();
    cmd.args(args);
    for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("AUDITLOG_")) {
        cmd.env_remove(name);
    }
    cmd
}

/// Everything `pipe` says until it closes, read on a thread of its own so
/// that neither of a child's pipes can fill up and stall it.
fn drain(mut pipe: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (done, text) = mpsc::channel();
    std::thread::spawn(move || {
        let mut all = String::new();
        let _ = pipe.read_to_string(&mut all);
        let _ = done.send(all);
    });
    text
}

/// Runs a command that must end by itself; returns whether it succeeded,
/// its stdout and its stderr.
fn finish(mut cmd: Command) -> (bool, String, String) {
    let mut child = Killed(cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap());
    let stdout = drain(child.0.stdout.take().unwrap());
    let stderr = drain(child.0.stderr.take().unwrap());
    // Both pipes close when the process ends.
    let stdout = stdout.recv_timeout(PATIENCE).expect("the command ended by itself");
    let stderr = stderr.recv_timeout(PATIENCE).expect("the command ended by itself");
    let status = child.0.wait().unwrap();
    (status.success(), stdout, stderr)
}

/// `auditlog config show` under `cmd`'s file, variables and flags, as TOML.
fn shown(cmd: Command) -> toml::Table {
    let (ok, stdout, stderr) = finish(cmd);
    assert!(ok, "config show failed: {stderr}");
    toml::from_str(&stdout).unwrap()
}

/// Starts `serve` (set to log JSON) and returns it with the address it
/// says it listens on, once it says so.
fn serve_and_wait(mut cmd: Command) -> (Killed, SocketAddr) {
    let mut child = Killed(cmd.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap());
    let stderr = BufReader::new(child.0.stderr.take().unwrap());
    let (lines, received) = mpsc::channel();
    // Reads to the end, so the server never blocks on a full pipe.
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    loop {
        let line = received.recv_timeout(PATIENCE).expect("serve said it is listening");
        let Ok(entry) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        if entry["fields"]["message"] == "auditlog listening" {
            let addr = entry["fields"]["addr"].as_str().unwrap().parse().unwrap();
            return (child, addr);
        }
    }
}

fn write(dir: &std::path::Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn config_default_prints_a_file_that_is_exactly_the_defaults() {
    let (ok, printed, stderr) = finish(clean(&["config", "default"]));
    assert!(ok, "{stderr}");
    let kept = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config.default.toml")).unwrap();
    assert_eq!(printed, kept);
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "default.toml", &printed);
    let with_file = shown(clean(&["config", "show", "--config", &file]));
    let without = shown(clean(&["config", "show"]));
    assert_eq!(with_file, without);
    assert_eq!(without["listen"].as_str(), Some("127.0.0.1:8080"));
}

/// A string, a number, a boolean and a list, each set by the file, then
/// also by its variable, then also by its flag: each step must win over the
/// ones before it.
#[test]
fn a_flag_wins_over_its_variable_which_wins_over_the_file_which_wins_over_the_default() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "auditlog.toml",
        "database = \"sqlite://file.db\"\nsecure_cookies = true\n\
         [bodies]\nbudget_mib = 3\n[webhooks]\nallow_subnets = [\"10.0.0.0/8\"]\n",
    );
    let read = |table: &toml::Table| {
        (
            table["database"].as_str().unwrap().to_owned(),
            table["bodies"]["budget_mib"].as_integer().unwrap(),
            table["secure_cookies"].as_bool().unwrap(),
            table["webhooks"]["allow_subnets"].clone(),
        )
    };
    let list = |items: &[&str]| toml::Value::Array(items.iter().map(|s| toml::Value::from(*s)).collect());
    let show = |with_file: bool, with_env: bool, flags: &[&str]| {
        let mut cmd = clean(&["config", "show"]);
        if with_file {
            cmd.args(["--config", &file]);
        }
        if with_env {
            cmd.env("AUDITLOG_DATABASE_URL", "sqlite://env.db")
                .env("AUDITLOG_BODY_BUDGET_MIB", "5")
                .env("AUDITLOG_SECURE_COOKIES", "false")
                .env("AUDITLOG_WEBHOOK_ALLOW_SUBNETS", "172.16.0.0/12,192.168.0.0/16");
        }
        cmd.args(flags);
        read(&shown(cmd))
    };
    let defaults = ("sqlite://auditlog.db".to_owned(), 256, false, list(&[]));
    let from_file = ("sqlite://file.db".to_owned(), 3, true, list(&["10.0.0.0/8"]));
    let from_env = (
        "sqlite://env.db".to_owned(),
        5,
        false,
        list(&["172.16.0.0/12", "192.168.0.0/16"]),
    );
    let from_flags = ("sqlite://flag.db".to_owned(), 7, true, list(&["127.0.0.0/8"]));
    let flags = [
        "--database",
        "sqlite://flag.db",
        "--body-budget-mib",
        "7",
        "--secure-cookies",
        "--webhook-allow-subnet",
        "127.0.0.0/8",
    ];
    assert_eq!(show(false, false, &[]), defaults);
    assert_eq!(show(true, false, &[]), from_file);
    assert_eq!(show(true, true, &[]), from_env);
    assert_eq!(show(true, true, &flags), from_flags);
    // A variable wins over the default too, and a flag over the file.
    assert_eq!(show(false, true, &[]), from_env);
    assert_eq!(show(true, false, &flags), from_flags);
}

/// The file's address, log format and webhook rules reach the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_files_settings_take_effect_in_the_running_server() {
    auditlog_server::init_tls();
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("file.db").display());
    acme_with_admin(&db);
    let port = free_port();
    let file = write(
        dir.path(),
        "auditlog.toml",
        &format!(
            "listen = \"127.0.0.1:{port}\"\ndatabase = \"{db}\"\n\
             [webhooks]\nallow_subnets = [\"127.0.0.0/8\"]\nallow_http = true\n[log]\nformat = \"json\"\n"
        ),
    );
    let (_server, addr) = serve_and_wait(clean(&["serve", "--config", &file]));
    assert_eq!(addr.port(), port);
    let base = format!("http://{addr}");
    let client = reqwest::Client::new();
    // By default a loopback http:// destination is refused; the file allows it.
    let secret = create_webhook(
        &client,
        &base,
        "adam@acme.com",
        "http://127.0.0.1:9/hook",
        &["guardrail.*"],
    )
    .await;
    assert!(secret.starts_with("whsec_"), "{secret}");
}

/// What listens is the variable's address over the file's, and the flag's
/// over the variable's.
#[test]
fn the_running_server_listens_where_the_variable_then_the_flag_says() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("order.db").display());
    let (file_port, env_port, flag_port) = (free_port(), free_port(), free_port());
    let file = write(
        dir.path(),
        "auditlog.toml",
        &format!("listen = \"127.0.0.1:{file_port}\"\ndatabase = \"{db}\"\n[log]\nformat = \"json\"\n"),
    );
    let serve = |flags: &[&str]| {
        let mut cmd = clean(&["serve", "--config", &file]);
        cmd.env("AUDITLOG_LISTEN", format!("127.0.0.1:{env_port}")).args(flags);
        serve_and_wait(cmd)
    };
    let (server, addr) = serve(&[]);
    assert_eq!(addr.port(), env_port);
    drop(server);
    let (_server, addr) = serve(&["--listen", &format!("127.0.0.1:{flag_port}")]);
    assert_eq!(addr.port(), flag_port);
}

/// Runs `serve` on `file`, which it must refuse; returns its stderr after
/// checking that it started nothing.
fn refused(dir: &std::path::Path, file: &str) -> String {
    let db = dir.join("never.db");
    let mut cmd = clean(&["serve", "--config", file]);
    cmd.env("AUDITLOG_DATABASE_URL", format!("sqlite://{}", db.display()));
    let (ok, _, stderr) = finish(cmd);
    assert!(!ok, "serve refused the file");
    assert!(!db.exists(), "nothing was started: {stderr}");
    stderr
}

#[test]
fn an_unknown_key_stops_serve_naming_the_key_and_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "typo.toml", "[bodies]\nbudget_mb = 3\n");
    let stderr = refused(dir.path(), &file);
    assert!(
        stderr.contains("`bodies.budget_mb`") && stderr.contains(&file),
        "{stderr}"
    );
}

#[test]
fn a_bad_value_stops_serve_naming_the_key_and_what_was_expected() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "bad.toml", "[bodies]\nbudget_mib = \"lots\"\n");
    let stderr = refused(dir.path(), &file);
    assert!(
        stderr.contains("`bodies.budget_mib`") && stderr.contains("expected a whole number"),
        "{stderr}"
    );
    assert!(stderr.contains(&file), "{stderr}");
}

/// The Debian package's configuration is the commented default with only
/// the database moved to /var/lib/auditlog, and `serve` reads it whole.
#[test]
fn the_packaged_configuration_is_the_default_with_the_data_in_var_lib() {
    let packaged = include_str!("../../../packaging/deb/auditlog.toml");
    let default = include_str!("../config.default.toml");
    let expected = default
        .replacen(
            "database = \"sqlite://auditlog.db\"",
            "database = \"sqlite:///var/lib/auditlog/audit.db\"",
            1,
        )
        .replacen(
            "# The configuration of `auditlog serve`, with every key at its default.\n",
            "# The configuration of `auditlog serve`, with every key at its default\n\
             # but `database`, which the Debian package puts in /var/lib/auditlog.\n",
            1,
        );
    assert_eq!(packaged, expected);
    let out = common::auditlog()
        .args(["config", "show", "--config"])
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../packaging/deb/auditlog.toml"
        ))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("database = \"sqlite:///var/lib/auditlog/audit.db\""));
}

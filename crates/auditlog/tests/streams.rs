//! SIEM streams from the real binary to real receivers: Debian's rsyslog
//! and syslog-ng on loopback over TLS (tests/common/syslog.rs starts them
//! with generated certificates). Every entry must arrive exactly as the
//! domain formats it, in order; a receiver's restart and a SIGKILL of
//! auditlog may repeat entries but never lose one; a receiver whose
//! certificate does not verify is reported on the stream, and once it is
//! fixed nothing is missing.

mod common;

use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use auditlog_domain::Entry;
use auditlog_domain::siem::{self, Format, Header};
use common::syslog::{Certs, Kind, Receiver, Tls};
use common::*;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(90);

fn serve(db: &str, dir: &Path, port: u16) -> Child {
    auditlog()
        .args(["serve", "--database", db])
        .args(["--signing-key", dir.join("key").to_str().unwrap()])
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--stream-allow-subnet", "127.0.0.0/8"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Creates a stream with the command line, trusting the test CA and
/// presenting the client certificate; returns its id.
fn create_stream(db: &str, dir: &Path, port: u16, format: &str, certs: &Certs) -> String {
    let path = |p: &Path| p.to_str().unwrap().to_owned();
    let out = admin(
        db,
        &[
            "stream",
            "create",
            "--org",
            "acme",
            "--url",
            &format!("syslog+tls://127.0.0.1:{port}"),
            "--format",
            format,
            "--ca",
            &path(&certs.ca),
            "--client-cert",
            &path(&certs.client_cert),
            "--client-key",
            &path(&certs.client_key),
            "--stream-allow-subnet",
            "127.0.0.0/8",
            "--signing-key",
            dir.join("key").to_str().unwrap(),
        ],
    );
    out.trim().to_owned()
}

/// Entries whose values need every kind of escaping.
fn nasty(i: usize) -> Value {
    json!({
        "actor": format!("p{i}@acme.com"),
        "event": "guardrail.created",
        "resource": {"type": "guardrail", "id": format!("g|{i}=\\]\"x"), "name": "line | one = \\ two"},
        "details": {"name": "a=b \\ c | d ] \"e\" \r\n é ✓", "type": "pii", "n": i},
        "ip_address": if i.is_multiple_of(2) { "203.0.113.9" } else { "2001:db8::7" },
        "user_agent": "curl/8 (x=y|z)",
    })
}

async fn ingest_nasty(http: &reqwest::Client, base: &str, key: &str, n: usize) {
    let events: Vec<Value> = (0..n).map(nasty).collect();
    let resp = http
        .post(format!("{base}/v1/orgs/acme/audit/events"))
        .bearer_auth(key)
        .json(&json!({ "events": events }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());
}

/// Every entry of the log, read back as the API shows it.
async fn entries(http: &reqwest::Client, base: &str, key: &str) -> Vec<Entry> {
    let text = get_text(http, format!("{base}/v1/orgs/acme/audit/export?format=jsonl"), key).await;
    let mut all: Vec<Entry> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    all.sort_by_key(|e| e.seq);
    all
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "-".into())
}

/// What the stream should have sent for `entries`.
fn expected(format: Format, entries: &[Entry]) -> Vec<String> {
    let host = hostname();
    let header = Header {
        facility: 13,
        hostname: &host,
        app_name: "auditlog",
    };
    entries
        .iter()
        .map(|e| siem::message(format, e, "acme", &header))
        .collect()
}

/// The `seq` of one of our messages, whatever its format.
fn seq_of(line: &str) -> i64 {
    for (key, end) in [(" seq=\"", '"'), ("cn1=", ' '), ("\"sequence\":", ',')] {
        if let Some(at) = line.find(key) {
            let rest = &line[at + key.len()..];
            let stop = rest.find([end, '}']).unwrap_or(rest.len());
            return rest[..stop].parse().unwrap_or_else(|_| panic!("no seq in {line}"));
        }
    }
    panic!("no seq in {line}")
}

struct Running {
    db: String,
    dir: tempfile::TempDir,
    port: u16,
    base: String,
    http: reqwest::Client,
    key: String,
}

fn prepare() -> Running {
    auditlog_server::init_tls();
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("audit.db").display());
    acme_with_admin(&db);
    let key = read_write_key(&db);
    let port = free_port();
    Running {
        base: format!("http://127.0.0.1:{port}"),
        http: reqwest::Client::new(),
        db,
        dir,
        port,
        key,
    }
}

async fn delivers_exactly(kind: Kind, format: Format) {
    let certs = Certs::generate();
    let tls = Tls::On {
        certs: &certs,
        require_client_cert: true,
    };
    let Some(receiver) = Receiver::start(kind, tls) else {
        return;
    };
    let r = prepare();
    create_stream(&r.db, r.dir.path(), receiver.port, format.as_str(), &certs);
    let _server = Killed(serve(&r.db, r.dir.path(), r.port));
    wait_ready(&r.http, &r.base).await;
    ingest_nasty(&r.http, &r.base, &r.key, 40).await;
    let all = entries(&r.http, &r.base, &r.key).await;
    // From the stream's own creation on: it starts at the log's head.
    let created = all.iter().position(|e| e.event == "stream.created").unwrap();
    let want = expected(format, &all[created..]);
    let got = receiver.wait_for_lines(want.len(), WAIT);
    assert_eq!(
        got[..want.len()],
        want[..],
        "{kind} received exactly what was formatted, in order"
    );
    if format == Format::Ocsf {
        ocsf_valid(&got[..want.len()], r.dir.path());
    }
}

/// The OCSF messages' events hold against the official schema.
fn ocsf_valid(lines: &[String], dir: &Path) {
    let events: Vec<&str> = lines.iter().map(|l| &l[l.find("{\"").unwrap()..]).collect();
    let file = dir.join("ocsf.jsonl");
    std::fs::write(&file, events.join("\n")).unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let schema = root.join("../shared/ocsf/ocsf-schema-1.8.0");
    let script = root.join("crates/auditlog-domain/tests/siem/ocsf_check.py");
    let out = std::process::Command::new("python3")
        .arg(&script)
        .arg(&schema)
        .arg(&file)
        .output();
    match out {
        Ok(o) if o.status.success() => {}
        Ok(o) if String::from_utf8_lossy(&o.stderr).contains("No module named") => {
            skip_or_fail("ocsf-lib is needed (pip install 'ocsf-lib>=0.10.4,<0.11'): OCSF check SKIPPED")
        }
        Ok(o) => panic!(
            "OCSF events refused:\n{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => skip_or_fail(&format!("python3 is needed for the OCSF check ({e}): SKIPPED")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rsyslog_receives_every_entry_exactly_as_formatted_in_rfc5424() {
    delivers_exactly(Kind::Rsyslog, Format::Rfc5424).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syslog_ng_receives_every_entry_exactly_as_formatted_in_cef() {
    delivers_exactly(Kind::SyslogNg, Format::Cef).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rsyslog_receives_ocsf_events_the_official_schema_accepts() {
    delivers_exactly(Kind::Rsyslog, Format::Ocsf).await;
}

/// Waits until every `seq` from `from` to `to` has arrived; returns the
/// seqs in the order they came.
fn wait_for_seqs(receiver: &Receiver, from: i64, to: i64) -> Vec<i64> {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let seqs: Vec<i64> = receiver.lines().iter().map(|l| seq_of(l)).collect();
        let mut have: Vec<i64> = seqs.iter().copied().filter(|s| (from..=to).contains(s)).collect();
        have.sort_unstable();
        have.dedup();
        if have.len() as i64 == to - from + 1 {
            return seqs;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{} of {} entries arrived; the receiver's log:\n{}",
            have.len(),
            to - from + 1,
            receiver.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_restart_and_a_killed_auditlog_repeat_entries_but_lose_none() {
    let certs = Certs::generate();
    let tls = Tls::On {
        certs: &certs,
        require_client_cert: false,
    };
    let Some(mut receiver) = Receiver::start(Kind::Rsyslog, tls) else {
        return;
    };
    let r = prepare();
    create_stream(&r.db, r.dir.path(), receiver.port, "rfc5424", &certs);
    let mut server = Killed(serve(&r.db, r.dir.path(), r.port));
    wait_ready(&r.http, &r.base).await;
    let stop = Arc::new(AtomicBool::new(false));
    let writer = tokio::spawn(ingest_distinct("s".into(), r.base.clone(), r.key.clone(), stop.clone()));
    receiver.wait_for_lines(50, WAIT);
    receiver.restart();
    let before_kill = receiver.lines().len();
    receiver.wait_for_lines(before_kill + 50, WAIT);
    server.0.kill().unwrap(); // SIGKILL, mid-stream
    server.0.wait().unwrap();
    let _server = Killed(serve(&r.db, r.dir.path(), r.port));
    wait_ready(&r.http, &r.base).await;
    let now = receiver.lines().len();
    receiver.wait_for_lines(now + 50, WAIT);
    stop.store(true, Ordering::Relaxed);
    writer.await.unwrap();
    let all = entries(&r.http, &r.base, &r.key).await;
    let created = all.iter().find(|e| e.event == "stream.created").unwrap().seq;
    let last = all.last().unwrap().seq;
    let seqs = wait_for_seqs(&receiver, created, last);
    // In order on each connection: a step back only where a connection
    // started again (the restart, the kill), never inside one.
    let steps_back = seqs.windows(2).filter(|w| w[1] <= w[0]).count();
    assert!(steps_back <= 2, "{steps_back} steps back in {seqs:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_that_does_not_verify_is_reported_and_nothing_is_lost() {
    let certs = Certs::generate();
    let Some(impostor) = Receiver::start(Kind::Rsyslog, Tls::Untrusted { certs: &certs }) else {
        return;
    };
    let r = prepare();
    let id = create_stream(&r.db, r.dir.path(), impostor.port, "rfc5424", &certs);
    let _server = Killed(serve(&r.db, r.dir.path(), r.port));
    wait_ready(&r.http, &r.base).await;
    let admin_key = admin(&r.db, &["key", "create", "--org", "acme", "--scope", "admin"])
        .lines()
        .last()
        .unwrap()
        .to_owned();
    let url = format!("{}/v1/orgs/acme/streams/{id}", r.base);
    let view: Value = loop {
        let v: Value = serde_json::from_str(&get_text(&r.http, url.clone(), &admin_key).await).unwrap();
        if v["last_error"].is_string() {
            break v;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(view["health"], "failing", "{view}");
    let error = view["last_error"].as_str().unwrap();
    assert!(
        error.contains("certificate") || error.contains("UnknownIssuer"),
        "{error}"
    );
    assert!(
        impostor.lines().is_empty(),
        "nothing sent to a receiver that did not prove itself"
    );
    ingest_nasty(&r.http, &r.base, &r.key, 10).await;

    // The real receiver: the stream goes on from where it was.
    let tls = Tls::On {
        certs: &certs,
        require_client_cert: false,
    };
    let Some(real) = Receiver::start(Kind::Rsyslog, tls) else {
        return;
    };
    let patch = r
        .http
        .patch(&url)
        .bearer_auth(&admin_key)
        .json(&json!({"url": format!("syslog+tls://127.0.0.1:{}", real.port)}))
        .send()
        .await
        .unwrap();
    assert_eq!(patch.status(), 200);
    let all = entries(&r.http, &r.base, &r.key).await;
    let created = all.iter().find(|e| e.event == "stream.created").unwrap().seq;
    wait_for_seqs(&real, created, all.last().unwrap().seq);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_line_manages_streams_under_the_apis_rules_and_records_the_operator() {
    let r = prepare();
    let refused = auditlog()
        .args([
            "stream",
            "create",
            "--org",
            "acme",
            "--url",
            "syslog+tls://127.0.0.1:6514",
        ])
        .args([
            "--format",
            "leef",
            "--stream-allow-subnet",
            "127.0.0.0/8",
            "--database",
            &r.db,
        ])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("unknown format"));
    let private = auditlog()
        .args(["stream", "create", "--org", "acme", "--url", "syslog+tls://10.0.0.1"])
        .args(["--format", "cef", "--database", &r.db])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&private.stderr).contains("not a public address"));
    // Patterns are checked against the operator's catalog, when given.
    let catalog = r.dir.path().join("extra.toml");
    std::fs::write(
        &catalog,
        "[categories]\ndataset = \"Datasets\"\n[[event]]\nname = \"dataset.created\"\ndescription = \"A dataset was created.\"\n",
    )
    .unwrap();
    let custom = |with_catalog: bool| {
        let mut cmd = auditlog();
        cmd.args([
            "stream",
            "create",
            "--org",
            "acme",
            "--url",
            "syslog+tcp://127.0.0.1:601",
        ])
        .args(["--format", "cef", "--event", "dataset.*", "--database", &r.db])
        .args(["--stream-allow-subnet", "127.0.0.0/8", "--stream-allow-plaintext"])
        .arg("--signing-key")
        .arg(r.dir.path().join("key"))
        .env_remove("AUDITLOG_CATALOG");
        if with_catalog {
            cmd.arg("--catalog").arg(&catalog);
        }
        cmd.output().unwrap()
    };
    let unknown = custom(false);
    assert!(
        String::from_utf8_lossy(&unknown.stderr).contains("matches no event"),
        "{unknown:?}"
    );
    let known = custom(true);
    assert!(known.status.success(), "{known:?}");
    let id = String::from_utf8_lossy(&known.stdout).trim().to_owned();
    admin(&r.db, &["stream", "delete", "--org", "acme", &id]);

    let certs = Certs::generate();
    let id = create_stream(&r.db, r.dir.path(), 6514, "cef", &certs);
    assert!(id.starts_with("st_"), "{id}");
    let listed = admin(&r.db, &["stream", "list", "--org", "acme"]);
    assert!(listed.contains(&id) && listed.contains("syslog+tls://127.0.0.1:6514") && listed.contains("healthy"));
    admin(&r.db, &["stream", "disable", "--org", "acme", &id]);
    assert!(admin(&r.db, &["stream", "list", "--org", "acme"]).contains("disabled"));
    admin(&r.db, &["stream", "enable", "--org", "acme", &id]);
    admin(&r.db, &["stream", "delete", "--org", "acme", &id]);
    assert!(!admin(&r.db, &["stream", "list", "--org", "acme"]).contains(&id));

    let _server = Killed(serve(&r.db, r.dir.path(), r.port));
    wait_ready(&r.http, &r.base).await;
    let log = entries(&r.http, &r.base, &r.key).await;
    let events: Vec<&str> = log
        .iter()
        .filter(|e| e.event.starts_with("stream."))
        .map(|e| e.event.as_str())
        .collect();
    assert_eq!(
        events,
        [
            "stream.created",
            "stream.deleted",
            "stream.created",
            "stream.updated",
            "stream.updated",
            "stream.deleted"
        ]
    );
    for e in log.iter().filter(|e| e.event.starts_with("stream.")) {
        assert_eq!(e.submitted_by.as_ref().unwrap().kind.as_str(), "cli", "{e:?}");
    }
}

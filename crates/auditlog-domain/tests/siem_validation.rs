//! The SIEM formats checked by tools that share no code with them: CEF
//! lines read back by an independent CEF parser (`tests/siem/cef_check.py`,
//! with `cefp`), and OCSF events validated against the official 1.8.0 schema
//! as the OCSF project's own library compiles it (`tests/siem/ocsf_check.py`,
//! with `ocsf-lib`) — as streams carry them, and as OCSF exports and
//! webhook payloads do.
//!
//! Without python3, those packages or the schema, each test says SKIPPED
//! and passes, except under `CI=true`, where a check that cannot run fails.

use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use auditlog_domain::entry::{SubmittedBy, SubmitterKind};
use auditlog_domain::export_format::{ExportFormat, PageWriter};
use auditlog_domain::siem::{self, Format, Header};
use auditlog_domain::webhook::{PayloadFormat, payload_body};
use auditlog_domain::{Actor, ActorType, Catalog, Entry, OrgId, Resource, Timestamp};
use serde_json::{Map, Value, json};

const T: i64 = 1_769_862_896_789;

/// The exit code the scripts use for "my package is not installed".
const NOT_INSTALLED: i32 = 77;

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Passes, saying so loudly, or under CI fails: a check that cannot run
/// there is a broken setup, not a pass.
fn skip(why: &str) {
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{why}: CI must run this check (install what .ci sets up)"
    );
    // Straight to stderr: the test harness captures eprintln!, and a skip
    // must be seen.
    let _ = writeln!(std::io::stderr(), "\n*** siem_validation: {why}: SKIPPED ***\n");
}

/// Runs a checker script; `None` when it could not run (after [`skip`]).
fn run_script(script: &str, args: &[&Path]) -> Option<Output> {
    let path = manifest_dir().join("tests/siem").join(script);
    match Command::new("python3").arg(&path).args(args).output() {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            skip("python3 is not installed");
            None
        }
        Err(e) => panic!("cannot run {}: {e}", path.display()),
        Ok(out) if out.status.code() == Some(NOT_INSTALLED) => {
            skip(String::from_utf8_lossy(&out.stdout).trim());
            None
        }
        Ok(out) => Some(out),
    }
}

fn assert_success(out: &Output, what: &str) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{what} failed:\n{stdout}\n{stderr}");
    println!("{stdout}");
}

/// A file in the temporary directory, removed when dropped.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, contents: &str) -> Self {
        let path = std::env::temp_dir().join(format!("auditlog-siem-{}-{name}", std::process::id()));
        std::fs::write(&path, contents).unwrap();
        Self(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn entry(event: &str, actor: Actor, resource: Resource) -> Entry {
    Entry {
        id: uuid::Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0001),
        org_id: OrgId(1),
        seq: 42,
        timestamp: Timestamp(T),
        received_at: Timestamp(T + 5),
        actor,
        event: event.into(),
        resource,
        details: Map::new(),
        ip_address: None,
        user_agent: None,
        request_id: None,
        idempotency_key: None,
        submitted_by: None,
        canonical_version: 2,
        personal: Default::default(),
    }
}

fn actor(kind: ActorType, id: &str) -> Actor {
    Actor { kind, id: id.into() }
}

fn resource(kind: &str, id: &str, name: Option<&str>) -> Resource {
    Resource {
        kind: kind.into(),
        id: id.into(),
        name: name.map(Into::into),
    }
}

fn ip(s: &str) -> Option<IpAddr> {
    Some(s.parse().unwrap())
}

// --- CEF ---------------------------------------------------------------------

/// One CEF line to check: the entry, its organization, and the header's
/// Name and Severity as they must read.
struct CefCase {
    entry: Entry,
    org: &'static str,
    name: &'static str,
    severity: &'static str,
}

/// A person over IPv4, with every field.
fn plain_entry() -> Entry {
    let mut e = entry(
        "project.created",
        actor(ActorType::User, "alice@acme.com"),
        resource("project", "p_1", Some("Prod")),
    );
    e.details = json!({"name": "Prod"}).as_object().unwrap().clone();
    e.ip_address = ip("203.0.113.7");
    e.user_agent = Some("curl/8.5".into());
    e.request_id = Some("r-1".into());
    e.submitted_by = Some(SubmittedBy::new(SubmitterKind::Session, "alice@acme.com"));
    e
}

/// Every text field holding what CEF must escape, over IPv6.
fn nasty_entry() -> Entry {
    let mut e = entry(
        "organization.member_role_changed",
        actor(ActorType::User, "e=v\\e|l\r\nx@acme.com"),
        resource("mem|ber=", "a=b\\c|d\ne\rf", Some("  two  spaces  é 😀 ")),
    );
    e.details = json!({"member": "b@x.io", "note": "a\nb=c\\d|e ]\"ü", "n": 1.5})
        .as_object()
        .unwrap()
        .clone();
    e.ip_address = ip("2001:db8::7");
    e.user_agent = Some("Mozilla/5.0 (X11; \\ | = ] \") \u{2028}end\r\n".into());
    e.request_id = Some("r=1\\\\2".into());
    e.submitted_by = Some(SubmittedBy::new(SubmitterKind::Cli, "op=1@host\\x"));
    e
}

fn cef_cases() -> Vec<CefCase> {
    let mut bare = entry(
        "api_key.revoked",
        actor(ActorType::ApiKey, "lqt_ab12cd34"),
        resource("api_key", "lqt_ab12cd34", None),
    );
    bare.canonical_version = 1;
    // Not a catalog name, but the header must survive one.
    let weird = entry(
        "we|ird\\na.me\nx",
        actor(ActorType::Service, "billing"),
        resource("x", "y", None),
    );
    let case = |entry, org, name, severity| CefCase {
        entry,
        org,
        name,
        severity,
    };
    vec![
        case(plain_entry(), "acme", "Project created", "3"),
        case(nasty_entry(), "ac|me=\\x\ny", "Organization member role changed", "8"),
        case(bare, "acme", "API key revoked", "5"),
        case(weird, "acme", "We|ird\\na me x", "1"),
    ]
}

/// What a CEF reader must get back from a case's line, stated from the
/// entry's fields (the header's line breaks are the one thing CEF cannot
/// carry: they read back as spaces).
fn cef_expected(case: &CefCase) -> Value {
    let e = &case.entry;
    json!({
        "version": "0",
        "vendor": "auditlog",
        "product": "auditlog",
        "device_version": env!("CARGO_PKG_VERSION"),
        "event_class_id": e.event.replace(['\r', '\n'], " "),
        "name": case.name,
        "severity": case.severity,
        "extension": cef_expected_extension(e, case.org),
    })
}

fn cef_expected_extension(e: &Entry, org: &str) -> Map<String, Value> {
    let mut ext = Map::new();
    let mut put = |k: &str, v: String| {
        ext.insert(k.into(), Value::String(v));
    };
    put("rt", e.received_at.millis().to_string());
    put("start", e.timestamp.millis().to_string());
    put("externalId", e.id.to_string());
    put("act", e.event.clone());
    put("suser", e.actor.id.clone());
    match e.ip_address {
        Some(IpAddr::V4(v4)) => put("src", v4.to_string()),
        Some(IpAddr::V6(v6)) => {
            put("c6a2", v6.to_string());
            put("c6a2Label", "Source IPv6 Address".into());
        }
        None => {}
    }
    if let Some(ua) = &e.user_agent {
        put("requestClientApplication", ua.clone());
    }
    let custom = [
        ("cn1", "seq", Some(e.seq.to_string())),
        ("cn2", "canonical_version", Some(e.canonical_version.to_string())),
        ("cs1", "org", Some(org.to_owned())),
        ("cs2", "actor_type", Some(e.actor.kind.as_str().to_owned())),
        ("cs3", "resource_type", Some(e.resource.kind.clone())),
        ("cs4", "resource_id", Some(e.resource.id.clone())),
        ("cs5", "resource_name", e.resource.name.clone()),
        ("cs6", "details", Some(e.details_json())),
        ("flexString1", "request_id", e.request_id.clone()),
        (
            "flexString2",
            "submitted_by",
            e.submitted_by.as_ref().map(|s| s.to_text()),
        ),
    ];
    for (key, label, value) in custom {
        if let Some(v) = value {
            put(key, v);
            put(&format!("{key}Label"), label.into());
        }
    }
    ext
}

#[test]
fn cef_lines_read_back_exactly_with_an_independent_parser() {
    let header = Header {
        facility: 10,
        hostname: "h",
        app_name: "auditlog",
    };
    let cases = cef_cases();
    let mut lines = String::new();
    for case in &cases {
        let line = siem::cef::line(&case.entry, case.org);
        let message = siem::message(Format::Cef, &case.entry, case.org, &header);
        assert!(message.ends_with(&format!(" - {line}")), "{message}");
        assert!(!line.contains(['\r', '\n']), "{line}");
        lines.push_str(&line);
        lines.push('\n');
    }
    let expected: Vec<Value> = cases.iter().map(cef_expected).collect();
    let lines_file = TempFile::new("cef.txt", &lines);
    let expected_file = TempFile::new("cef-expected.json", &serde_json::to_string(&expected).unwrap());
    if let Some(out) = run_script("cef_check.py", &[&lines_file.0, &expected_file.0]) {
        assert_success(&out, "cef_check.py");
    }
}

// --- OCSF --------------------------------------------------------------------

/// A value for a required detail, typed as the service records it where
/// the mapping reads it.
fn detail_value(key: &str) -> Value {
    match key {
        "new_role" | "role" => json!("admin"),
        "old_role" => json!("viewer"),
        "reason" => json!("wrong_password"),
        "entries" | "rows" | "bytes" | "count" | "seq" | "queued" => json!(3),
        "filters" | "changes" => json!({"event": ["api_key.*"]}),
        "scopes" | "events" => json!(["audit:read"]),
        _ => json!("x"),
    }
}

/// The resource the service records for an event of `category`.
fn resource_of(category: &str) -> Resource {
    match category {
        "organization" | "session" => resource("member", "bob@example.com", None),
        "audit_log" => resource("audit_log", "entries", None),
        "billing" => resource("organization", "acme", Some("Acme")),
        other => resource(other, &format!("{other}_1"), Some("Name")),
    }
}

/// Four ways an entry arrives: a person over IPv4 with everything, an API
/// key over IPv6, auditlog itself with no request, a service with no
/// address and an actor id that is no email.
fn variants(event: &str, category: &str, details: &Map<String, Value>) -> Vec<Entry> {
    let make = |actor: Actor| {
        let mut e = entry(event, actor, resource_of(category));
        e.details = details.clone();
        e
    };
    let mut person = make(actor(ActorType::User, "alice@acme.com"));
    person.ip_address = ip("203.0.113.7");
    person.user_agent = Some("Mozilla/5.0 \"x\"\n".into());
    person.request_id = Some("r-1".into());
    person.idempotency_key = Some("k-1".into());
    person.submitted_by = Some(SubmittedBy::new(SubmitterKind::Session, "alice@acme.com"));
    let mut key = make(actor(ActorType::ApiKey, "lqt_ab12cd34"));
    key.ip_address = ip("2001:db8::7");
    key.user_agent = Some("sdk/1.0".into());
    key.submitted_by = Some(SubmittedBy::new(SubmitterKind::ApiKey, "lqt_ab12cd34"));
    let mut system = make(Actor::system());
    system.submitted_by = Some(SubmittedBy::service());
    let mut service = make(actor(ActorType::Service, "billing service\u{1F600}"));
    service.resource.name = None;
    vec![person, key, system, service]
}

fn ocsf_entries() -> Vec<Entry> {
    let mut entries = Vec::new();
    for spec in Catalog::builtin().events() {
        let details: Map<String, Value> = spec
            .required_details
            .iter()
            .map(|k| (k.clone(), detail_value(k)))
            .collect();
        entries.extend(variants(&spec.name, &spec.category, &details));
    }
    // An operator's events: one whose verb the fallback knows, one it does
    // not (Other), one that failed; with a resource of their own.
    for event in ["dataset.created", "dataset.exported", "sync.run_failed"] {
        let details = json!({"anything": {"nested": [1, "two"]}}).as_object().unwrap().clone();
        entries.extend(variants(event, "dataset", &details));
    }
    entries
}

#[test]
fn ocsf_events_validate_against_the_official_schema() {
    let schema = manifest_dir().join("../../../shared/ocsf/ocsf-schema-1.8.0");
    if !schema.join("version.json").is_file() {
        skip(&format!("the OCSF 1.8.0 schema is not at {}", schema.display()));
        return;
    }
    let header = Header {
        facility: 10,
        hostname: "h",
        app_name: "auditlog",
    };
    let mut lines = String::new();
    for e in ocsf_entries() {
        let event = siem::ocsf::event(&e, "acme");
        let message = siem::message(Format::Ocsf, &e, "acme", &header);
        let json = message.split_once(" - {").map(|(_, rest)| format!("{{{rest}"));
        let carried: Value = serde_json::from_str(&json.unwrap()).unwrap();
        assert_eq!(carried, event, "the message carries the event");
        lines.push_str(&event.to_string());
        lines.push('\n');
    }
    let events_file = TempFile::new("ocsf.jsonl", &lines);
    if let Some(out) = run_script("ocsf_check.py", &[&schema, &events_file.0]) {
        assert_success(&out, "ocsf_check.py");
    }
}

/// The same events reach a SIEM by export (`format=ocsf`) and by webhook
/// (`payload_format: ocsf`): the export's lines, and each webhook body's
/// `data`, are exactly the stream's event, and the export file as written
/// validates against the schema.
#[test]
fn ocsf_exports_and_webhook_payloads_carry_the_same_valid_events() {
    let schema = manifest_dir().join("../../../shared/ocsf/ocsf-schema-1.8.0");
    let entries = ocsf_entries();
    let file = PageWriter::new(ExportFormat::Ocsf, "acme").page(&entries);
    let lines: Vec<Value> = std::str::from_utf8(&file)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), entries.len(), "one line per entry");
    for (e, line) in entries.iter().zip(&lines) {
        let event = siem::ocsf::event(e, "acme");
        assert_eq!(*line, event, "the export line is the event");
        let body: Value = serde_json::from_slice(&payload_body(e, PayloadFormat::Ocsf, "acme")).unwrap();
        assert_eq!(body["data"], event, "the webhook carries the event");
        assert_eq!(body["type"], e.event.as_str());
    }
    if !schema.join("version.json").is_file() {
        skip(&format!("the OCSF 1.8.0 schema is not at {}", schema.display()));
        return;
    }
    let export_file = TempFile::new("export.ocsf.jsonl", std::str::from_utf8(&file).unwrap());
    if let Some(out) = run_script("ocsf_check.py", &[&schema, &export_file.0]) {
        assert_success(&out, "ocsf_check.py on an export");
    }
}

// --- The checkers themselves --------------------------------------------------

/// Runs a checker on what must fail, and returns its report.
fn refused(script: &str, args: &[&Path]) -> Option<String> {
    let out = run_script(script, args)?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{script} accepted what it must refuse:\n{stdout}"
    );
    Some(stdout)
}

#[test]
fn cef_check_refuses_what_a_wrong_writer_would_write() {
    let case = &cef_cases()[0];
    let good = siem::cef::line(&case.entry, case.org);
    let expected = serde_json::to_string(&vec![cef_expected(case); 3]).unwrap();
    let lines = [
        // `=` left unescaped in a value: the reader sees another key.
        good.replace("suser=alice@acme.com", "suser=alice=x@acme.com"),
        // A pipe escaped in the extension, which the standard does not define.
        good.replace("cs5=Prod", r"cs5=Pr\|od"),
        // A field that reads back different.
        good.replace("cs4=p_1", "cs4=p_2"),
    ];
    let lines_file = TempFile::new("cef-bad.txt", &(lines.join("\n") + "\n"));
    let expected_file = TempFile::new("cef-bad-expected.json", &expected);
    if let Some(report) = refused("cef_check.py", &[&lines_file.0, &expected_file.0]) {
        assert!(report.contains("0 of 3 lines"), "{report}");
        assert!(report.contains(r"undefined escape \'|' in the extension"), "{report}");
        assert!(report.contains("extension cs4: got 'p_2', want 'p_1'"), "{report}");
    }
}

#[test]
fn ocsf_check_refuses_invalid_events() {
    let schema = manifest_dir().join("../../../shared/ocsf/ocsf-schema-1.8.0");
    if !schema.join("version.json").is_file() {
        skip(&format!("the OCSF 1.8.0 schema is not at {}", schema.display()));
        return;
    }
    let e = &variants("project.created", "project", &Map::new())[0];
    let good = siem::ocsf::event(e, "acme");
    let mut broken = Vec::new();
    let mut without_entity = good.clone();
    without_entity.as_object_mut().unwrap().remove("entity");
    broken.push(without_entity);
    let mut bad_email = good.clone();
    bad_email["actor"]["user"]["email_addr"] = json!("not an address");
    broken.push(bad_email);
    let mut bad_type = good.clone();
    bad_type["type_uid"] = json!(300402);
    broken.push(bad_type);
    let mut bad_time = good;
    bad_time["time"] = json!("2026-01-31T12:34:56.789Z");
    broken.push(bad_time);
    let text: String = broken.iter().map(|v| format!("{v}\n")).collect();
    let events_file = TempFile::new("ocsf-bad.jsonl", &text);
    if let Some(report) = refused("ocsf_check.py", &[&schema, &events_file.0]) {
        for want in [
            "0 of 4 events valid",
            "entity: required but missing",
            "email_addr: 'not an address' does not match the pattern of email_t",
            "type_uid: is not class_uid * 100 + activity_id",
            "time: '2026-01-31T12:34:56.789Z' is not a timestamp_t",
        ] {
            assert!(report.contains(want), "no {want:?} in\n{report}");
        }
    }
}

// --- The documentation ----------------------------------------------------------

/// Where each class puts the entry's resource, as the table says it.
fn resource_column(class: siem::Class) -> &'static str {
    match class {
        siem::Class::EntityManagement => "`entity`",
        siem::Class::AccountChange => "`user`",
        siem::Class::Authentication => "`user` (and `service`)",
        siem::Class::UserAccessManagement => "`user` (and `privileges`)",
        siem::Class::GroupManagement => "`user` (and `group`)",
        siem::Class::DatastoreActivity => "`unmapped.resource` (and `table`)",
    }
}

/// The row of `docs/ocsf-mapping.md`'s table for `event`.
fn doc_row(event: &str) -> String {
    let m = siem::class_of(event);
    let s = siem::severity::of_event(event);
    format!(
        "| `{event}` | {} ({}) | {} {} | {} | {} {} | {} |",
        m.class.name(),
        m.class.uid(),
        m.activity_id,
        m.activity_caption(),
        m.type_uid(),
        s.ocsf_id(),
        s.ocsf_name(),
        resource_column(m.class),
    )
}

#[test]
fn the_mapping_document_and_the_readme_list_every_built_in_event_as_mapped() {
    for doc in ["docs/ocsf-mapping.md", "README.md"] {
        let path = manifest_dir().join("../..").join(doc);
        let doc = std::fs::read_to_string(&path).unwrap_or_default();
        let rows: Vec<String> = Catalog::builtin().events().map(|e| doc_row(&e.name)).collect();
        let missing: Vec<&String> = rows.iter().filter(|r| !doc.lines().any(|l| l == r.as_str())).collect();
        assert!(
            missing.is_empty(),
            "{} lacks or misstates these rows; the table should read:\n{}",
            path.display(),
            rows.join("\n")
        );
    }
}

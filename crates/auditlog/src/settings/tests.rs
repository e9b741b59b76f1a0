//! The settings' layers and the default file, in process. What needs a real
//! environment (a variable over the file, a flag over its variable) is
//! proven with the binary in `tests/config.rs`, as clap reads the process's
//! own environment.

use std::collections::BTreeMap;

use clap::{CommandFactory, Parser};

use super::load::SettingsError;
use super::*;
use crate::cli::{Cli, Command, ServeArgs};

/// A value for each flag of `serve`, unlike its default.
const SAMPLES: &[(&str, &str)] = &[
    ("listen", "127.0.0.1:9"),
    ("database", "sqlite://other.db"),
    ("signing-key", "other.key"),
    ("catalog", "extra.toml"),
    ("trusted-proxy", "10.0.0.0/8"),
    ("secure-cookies", "true"),
    ("max-connections", "7"),
    ("request-timeout", "7"),
    ("header-timeout", "7"),
    ("retention-interval", "7"),
    ("ingest-rate-per-key", "7"),
    ("ingest-rate-per-ip", "7"),
    ("login-rate-per-ip", "7"),
    ("body-budget-mib", "7"),
    ("body-timeout", "7"),
    ("body-min-rate", "7"),
    ("body-rate-grace", "7"),
    ("webhook-allow-subnet", "10.0.0.0/8"),
    ("webhook-allow-http", "true"),
    ("webhook-timeout", "7"),
    ("stream-allow-subnet", "10.0.0.0/8"),
    ("stream-allow-plaintext", "true"),
    ("stream-unhealthy-after", "7"),
    ("public-url", "https://audit.example.com"),
    ("sso-allow-subnet", "10.0.0.0/8"),
    ("sso-allow-http", "true"),
];

fn serve_args(args: &[&str]) -> ServeArgs {
    match Cli::try_parse_from(["auditlog", "serve"].iter().chain(args))
        .unwrap()
        .command
    {
        Command::Serve(args) => *args,
        _ => unreachable!("parsed as serve"),
    }
}

fn no_env(_: &str) -> Option<String> {
    None
}

/// Loads `file` (TOML text) under `flags`, with `env` as the environment.
fn load_with(file: &str, flags: &[&str], env: &[(&str, &str)]) -> Result<Settings, SettingsError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("auditlog.toml");
    std::fs::write(&path, file).unwrap();
    let config = format!("--config={}", path.display());
    let args = serve_args(&[&[config.as_str()], flags].concat());
    let env: BTreeMap<String, String> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    load(&args, |name| env.get(name).cloned())
}

/// Every key of `settings` as `table.key`, with its value.
fn keys(settings: &impl Serialize) -> BTreeMap<String, toml::Value> {
    fn walk(prefix: &str, table: &toml::Table, out: &mut BTreeMap<String, toml::Value>) {
        for (key, value) in table {
            let path = if prefix.is_empty() {
                key.clone()
            } else {
                format!("{prefix}.{key}")
            };
            match value {
                toml::Value::Table(inner) => walk(&path, inner, out),
                leaf => {
                    out.insert(path, leaf.clone());
                }
            }
        }
    }
    let mut out = BTreeMap::new();
    walk("", &toml::Table::try_from(settings).unwrap(), &mut out);
    out
}

/// Every key there is: the optional ones are left out of the defaults.
fn every_key() -> BTreeMap<String, toml::Value> {
    keys(&Settings {
        signing_key: Some("k".into()),
        catalog: Some("c".into()),
        public_url: Some("https://audit.example.com".into()),
        ..Settings::default()
    })
}

/// The flag and variable of each key, found by giving each flag alone.
fn flags_by_key() -> BTreeMap<String, (String, String)> {
    let cli = Cli::command();
    let serve = cli.find_subcommand("serve").unwrap();
    let mut found = BTreeMap::new();
    for arg in serve
        .get_arguments()
        .filter(|a| a.get_long().is_some_and(|l| l != "config"))
    {
        let long = arg.get_long().unwrap();
        let sample = SAMPLES.iter().find(|(flag, _)| *flag == long);
        let (_, value) = sample.unwrap_or_else(|| panic!("no sample value for --{long}"));
        let given = keys(&serve_args(&[&format!("--{long}={value}")]).settings);
        assert_eq!(given.len(), 1, "--{long} sets one key: {given:?}");
        let key = given.into_keys().next().unwrap();
        let env = arg.get_env().unwrap_or_else(|| panic!("--{long} has a variable"));
        let previous = found.insert(key.clone(), (format!("--{long}"), env.to_string_lossy().into_owned()));
        assert!(previous.is_none(), "two flags set {key}");
    }
    found
}

/// Each key of the default file with the comment lines just above it;
/// a key left commented out (`# key = …`) counts.
fn documented_keys(file: &str) -> BTreeMap<String, Vec<String>> {
    let mut table = String::new();
    let mut comment = Vec::new();
    let mut out = BTreeMap::new();
    for line in file.lines().map(str::trim) {
        let code = line.trim_start_matches("# ");
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            table = format!("{name}.");
        } else if let Some((key, _)) = code
            .split_once(" = ")
            .filter(|(k, _)| k.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
        {
            out.insert(format!("{table}{key}"), std::mem::take(&mut comment));
        } else if line.starts_with('#') {
            comment.push(line.to_owned());
        } else if line.is_empty() {
            comment.clear();
        }
    }
    out
}

#[test]
fn the_default_file_is_the_defaults() {
    let parsed: Settings = toml::from_str(DEFAULT_FILE).unwrap();
    assert_eq!(parsed, Settings::default());
    assert_eq!(load_with(DEFAULT_FILE, &[], &[]).unwrap(), Settings::default());
}

#[test]
fn the_default_file_documents_every_key_with_its_flag_and_variable() {
    let documented = documented_keys(DEFAULT_FILE);
    let every = every_key();
    assert_eq!(documented.keys().collect::<Vec<_>>(), every.keys().collect::<Vec<_>>());
    let mut flags = flags_by_key();
    for (variable, key) in load::ENV_ONLY {
        flags.insert(key.to_owned(), ("No flag".to_owned(), variable.to_owned()));
    }
    assert_eq!(
        flags.keys().collect::<Vec<_>>(),
        every.keys().collect::<Vec<_>>(),
        "a flag for every key"
    );
    for (key, (flag, variable)) in flags {
        let comment = documented[&key].join("\n");
        assert!(
            comment.contains(&flag) && comment.contains(&variable),
            "{key}: {comment}"
        );
        assert!(documented[&key].len() >= 2, "{key} says what it does: {comment}");
    }
}

#[test]
fn every_flag_sets_its_key_over_the_file() {
    let file = toml::to_string(&Settings::default()).unwrap();
    for (key, (flag, _)) in flags_by_key() {
        let value = SAMPLES.iter().find(|(f, _)| format!("--{f}") == flag).unwrap().1;
        let loaded = keys(&load_with(&file, &[&format!("{flag}={value}")], &[]).unwrap());
        let defaults = keys(&Settings::default());
        let mut changed: Vec<&String> = loaded.keys().filter(|k| loaded.get(*k) != defaults.get(*k)).collect();
        changed.extend(defaults.keys().filter(|k| !loaded.contains_key(*k)));
        assert_eq!(changed, [&key], "{flag} changes {key} alone");
    }
}

/// The defaults `serve --help` shows are written in its doc comments; each
/// must be what the flag's key defaults to, and a flag that shows none must
/// default to nothing (unset, empty or false).
#[test]
fn the_help_shows_the_real_defaults() {
    let cli = Cli::command();
    let serve = cli.find_subcommand("serve").unwrap();
    let defaults = keys(&Settings::default());
    for (key, (flag, _)) in flags_by_key() {
        let arg = serve
            .get_arguments()
            .find(|a| a.get_long() == flag.strip_prefix("--"))
            .unwrap();
        let help = arg.get_help().unwrap().to_string();
        match help.split_once("[default: ").and_then(|(_, rest)| rest.split_once(']')) {
            Some((shown, _)) => {
                let given = load(&serve_args(&[&format!("{flag}={shown}")]), no_env).unwrap();
                assert_eq!(given, Settings::default(), "{flag} shows its default {shown}");
            }
            None => {
                let nothing = [toml::Value::Boolean(false), toml::Value::Array(Vec::new())];
                let default = defaults.get(&key);
                assert!(
                    default.is_none_or(|d| nothing.contains(d)),
                    "{flag} shows no default but has {default:?}"
                );
            }
        }
    }
}

/// One setting of each kind set by the file, then also by a flag.
const FILE: &str = r#"
database = "sqlite://from-file.db"
secure_cookies = true
[bodies]
budget_mib = 3
[webhooks]
allow_subnets = ["10.0.0.0/8", "192.168.0.0/16"]
"#;

#[test]
fn the_file_wins_over_the_defaults() {
    let settings = load_with(FILE, &[], &[]).unwrap();
    assert_eq!(settings.database, "sqlite://from-file.db");
    assert_eq!(settings.bodies.budget_mib, 3);
    assert!(settings.secure_cookies);
    assert_eq!(settings.webhooks.allow_subnets.len(), 2);
    // What the file leaves out keeps its default.
    assert_eq!(settings.listen, Settings::default().listen);
    assert_eq!(settings.bodies.timeout, Settings::default().bodies.timeout);
}

#[test]
fn a_flag_wins_over_the_file_and_a_list_flag_replaces_the_files_list() {
    let flags = [
        "--database=sqlite://from-flag.db",
        "--secure-cookies=false",
        "--body-budget-mib=9",
        "--webhook-allow-subnet=127.0.0.0/8",
    ];
    let settings = load_with(FILE, &flags, &[]).unwrap();
    assert_eq!(settings.database, "sqlite://from-flag.db");
    assert!(!settings.secure_cookies);
    assert_eq!(settings.bodies.budget_mib, 9);
    assert_eq!(
        settings.webhooks.allow_subnets,
        ["127.0.0.0/8".parse::<IpNet>().unwrap()]
    );
    // A bare boolean flag means true.
    assert!(
        load_with("secure_cookies = false", &["--secure-cookies"], &[])
            .unwrap()
            .secure_cookies
    );
}

#[test]
fn the_log_variables_win_over_the_file() {
    let file = "[log]\nfilter = \"debug\"\nformat = \"json\"\n";
    let from_file = load_with(file, &[], &[]).unwrap();
    assert_eq!(
        (from_file.log.filter.as_str(), from_file.log.format),
        ("debug", LogFormat::Json)
    );
    let env = [("AUDITLOG_LOG", "warn"), ("AUDITLOG_LOG_FORMAT", "text")];
    let from_env = load_with(file, &[], &env).unwrap();
    assert_eq!(
        (from_env.log.filter.as_str(), from_env.log.format),
        ("warn", LogFormat::Text)
    );
    let defaults = load(&serve_args(&[]), no_env).unwrap();
    assert_eq!(defaults, Settings::default());
}

#[test]
fn an_unknown_key_is_refused_naming_it_and_the_file() {
    for (file, key) in [
        ("[bodies]\nbudget_mb = 3\n", "bodies.budget_mb"),
        ("listn = \"127.0.0.1:1\"\n", "listn"),
        ("[webhook]\nallow_http = true\n", "webhook"),
    ] {
        let error = load_with(file, &[], &[]).unwrap_err();
        let message = error.to_string();
        assert!(matches!(error, SettingsError::UnknownKey { .. }), "{message}");
        assert!(message.contains(&format!("`{key}`")), "{message}");
        assert!(message.contains("auditlog.toml"), "{message}");
    }
    let message = load_with("[bodies]\nbudget_mb = 3\n", &[], &[])
        .unwrap_err()
        .to_string();
    assert!(message.contains("budget_mib"), "the keys it takes: {message}");
}

#[test]
fn a_bad_value_is_refused_naming_the_key_and_what_was_expected() {
    for (file, key, expected) in [
        (
            "[bodies]\nbudget_mib = \"lots\"\n",
            "`bodies.budget_mib`",
            "expected a whole number",
        ),
        (
            "[bodies]\nbudget_mib = -1\n",
            "`bodies.budget_mib`",
            "expected a whole number",
        ),
        (
            "[rate_limits]\nlogin_per_ip = true\n",
            "`rate_limits.login_per_ip`",
            "expected a number",
        ),
        (
            "listen = \"here\"\n",
            "`listen`",
            "found string \"here\", expected an address and port",
        ),
        ("secure_cookies = \"yes\"\n", "`secure_cookies`", "a boolean"),
        (
            "[webhooks]\nallow_subnets = [\"10.0.0.0/8\", \"nowhere\"]\n",
            "`webhooks.allow_subnets`",
            "found string \"nowhere\", expected a subnet",
        ),
        ("[log]\nformat = \"xml\"\n", "`log.format`", "`json`"),
        ("[log]\nfilter = \"=\"\n", "`log.filter`", "log filter"),
    ] {
        let error = load_with(file, &[], &[]).unwrap_err();
        let message = error.to_string();
        assert!(matches!(error, SettingsError::BadValue { .. }), "{message}");
        assert!(message.contains(key) && message.contains(expected), "{message}");
        assert!(message.contains("auditlog.toml"), "{message}");
    }
    let message = load_with("", &[], &[("AUDITLOG_LOG_FORMAT", "xml")])
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("AUDITLOG_LOG_FORMAT") && message.contains("`log.format`"),
        "{message}"
    );
}

#[test]
fn a_file_that_is_not_toml_or_not_there_is_refused_naming_it() {
    let message = load_with("listen = ", &[], &[]).unwrap_err().to_string();
    assert!(
        message.contains("auditlog.toml") && message.contains("not valid TOML"),
        "{message}"
    );
    let args = serve_args(&["--config", "/nonexistent/auditlog.toml"]);
    let message = load(&args, no_env).unwrap_err().to_string();
    assert!(
        message.contains("cannot read") && message.contains("/nonexistent/auditlog.toml"),
        "{message}"
    );
}

#[test]
fn printed_settings_hide_the_database_password() {
    let settings = Settings {
        database: "postgres://auditlog:s3cret@db.internal:5432/auditlog".to_owned(),
        ..Settings::default()
    };
    let printed = settings.to_redacted_toml();
    assert!(
        printed.contains("postgres://auditlog:***@db.internal:5432/auditlog"),
        "{printed}"
    );
    assert!(!printed.contains("s3cret") && !format!("{settings:?}").contains("s3cret"));
    assert_eq!(redact_password("sqlite://a@b.db"), "sqlite://a@b.db");
    assert_eq!(redact_password("postgres://u@h/d"), "postgres://u@h/d");
    assert_eq!(
        redact_password("postgres://h/d?user=u&password=s3cret&sslmode=require"),
        "postgres://h/d?user=u&password=***&sslmode=require"
    );
}

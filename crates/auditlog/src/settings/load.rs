//! Layering `serve`'s settings with figment: the built-in defaults, then the
//! `--config` file, then the environment, then flags, each layer replacing
//! what the ones below it say (a list too is replaced whole, not extended).
//! clap reads the flags and their variables, a flag first; the two log
//! settings have a variable and no flag, so they are read here.
//!
//! A key the file does not know and a value of the wrong kind are errors
//! naming the key and where it came from: a setting that silently does
//! nothing is a defect.

use std::path::{Path, PathBuf};

use figment::providers::Serialized;
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider, Source};

use super::Settings;
use crate::cli::ServeArgs;

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("cannot read the configuration file {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("the configuration file {} is not valid TOML: {message}", path.display())]
    Syntax { path: PathBuf, message: String },
    #[error("the configuration file {} has an unknown key `{key}`; {expected}", path.display())]
    UnknownKey {
        path: PathBuf,
        key: String,
        expected: String,
    },
    #[error("`{key}` from {origin}: {problem}")]
    BadValue {
        origin: String,
        key: String,
        problem: String,
    },
}

/// The variables that set a key without a flag, with that key.
pub(super) const ENV_ONLY: [(&str, &str); 2] = [("AUDITLOG_LOG", "log.filter"), ("AUDITLOG_LOG_FORMAT", "log.format")];

/// The settings `serve` runs with. `env` looks a variable up (the process's
/// environment, or a test's).
pub fn load(args: &ServeArgs, env: impl Fn(&str) -> Option<String>) -> Result<Settings, SettingsError> {
    let mut figment = Figment::from(Serialized::defaults(Settings::default()));
    if let Some(path) = &args.config {
        figment = figment.merge(file_layer(path)?);
    }
    for (variable, key) in ENV_ONLY {
        if let Some(value) = env(variable).filter(|v| !v.is_empty()) {
            let name = format!("the environment variable {variable}");
            figment = figment.merge(Layer::new(Metadata::named(name), nest(key, Value::from(value))));
        }
    }
    let given = Value::serialize(&args.settings).expect("flags serialize as plain values");
    let given = given.into_dict().expect("flags serialize as a table");
    figment = figment.merge(Layer::new(Metadata::named("the command line or environment"), given));
    let settings: Settings = figment.extract().map_err(|e| explain(e, args.config.as_deref()))?;
    validate(&settings, &figment)?;
    Ok(settings)
}

/// The file as a layer, read with the workspace's `toml` (figment's own
/// TOML provider would bring a second major version of it).
fn file_layer(path: &Path) -> Result<Layer, SettingsError> {
    let text = std::fs::read_to_string(path).map_err(|source| SettingsError::Read {
        path: path.to_owned(),
        source,
    })?;
    let table: toml::Table = toml::from_str(&text).map_err(|e| SettingsError::Syntax {
        path: path.to_owned(),
        message: e.to_string(),
    })?;
    let dict = Value::serialize(&table)
        .ok()
        .and_then(Value::into_dict)
        .ok_or_else(|| SettingsError::Syntax {
            path: path.to_owned(),
            message: "it holds a value TOML settings cannot (such as a date)".to_owned(),
        })?;
    Ok(Layer::new(
        Metadata::from("the configuration file", Source::File(path.to_owned())),
        dict,
    ))
}

/// Checks what the types alone cannot.
fn validate(settings: &Settings, figment: &Figment) -> Result<(), SettingsError> {
    if let Err(e) = tracing_subscriber::EnvFilter::try_new(&settings.log.filter) {
        return Err(SettingsError::BadValue {
            origin: origin(figment.find_metadata("log.filter")),
            key: "log.filter".to_owned(),
            problem: format!("not a log filter ({e}); expected e.g. `info` or `auditlog_server=debug,info`"),
        });
    }
    Ok(())
}

/// Turns figment's error into ours, naming the key as the file spells it.
fn explain(error: figment::Error, file: Option<&Path>) -> SettingsError {
    let key = key_name(&error.path);
    match (&error.kind, file) {
        // Only the file can hold a key no flag has.
        (figment::error::Kind::UnknownField(_, expected), Some(path)) => SettingsError::UnknownKey {
            path: path.to_owned(),
            key,
            expected: match expected.len() {
                0 => "this table takes no keys".to_owned(),
                _ => format!("expected one of {}", expected.join(", ")),
            },
        },
        (kind, _) => SettingsError::BadValue {
            origin: origin(error.metadata.as_ref()),
            key,
            problem: problem(kind),
        },
    }
}

/// What was wrong with a value, in words rather than Rust's type names.
fn problem(kind: &figment::error::Kind) -> String {
    use figment::error::Kind;
    let expected = |rust: &str| match rust {
        "u8" | "u16" | "u32" | "u64" | "usize" => "a whole number, 0 or more".to_owned(),
        "f32" | "f64" => "a number".to_owned(),
        other => other.to_owned(),
    };
    match kind {
        Kind::InvalidType(found, wanted) | Kind::InvalidValue(found, wanted) => {
            format!("found {found}, expected {}", expected(wanted))
        }
        other => other.to_string(),
    }
}

/// `webhooks.allow_subnets[1]`.
fn key_name(path: &[String]) -> String {
    let mut key = String::new();
    for part in path {
        if part.parse::<usize>().is_ok() {
            key.push_str(&format!("[{part}]"));
        } else {
            if !key.is_empty() {
                key.push('.');
            }
            key.push_str(part);
        }
    }
    key
}

fn origin(metadata: Option<&Metadata>) -> String {
    match metadata {
        Some(Metadata {
            source: Some(Source::File(path)),
            name,
            ..
        }) => format!("{name} {}", path.display()),
        Some(metadata) => metadata.name.to_string(),
        None => "the settings".to_owned(),
    }
}

/// `log.format` = v as nested tables.
fn nest(key: &str, value: Value) -> Dict {
    let mut parts = key.rsplit('.');
    let leaf = parts.next().expect("a key has a name");
    let mut dict = Dict::from([(leaf.to_owned(), value)]);
    for table in parts {
        dict = Dict::from([(table.to_owned(), Value::from(dict))]);
    }
    dict
}

/// One source of settings, named so that errors can say where a value
/// came from.
struct Layer {
    metadata: Metadata,
    dict: Dict,
}

impl Layer {
    fn new(metadata: Metadata, dict: Dict) -> Self {
        Self { metadata, dict }
    }
}

impl Provider for Layer {
    fn metadata(&self) -> Metadata {
        self.metadata.clone()
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Ok(Profile::Default.collect(self.dict.clone()))
    }
}

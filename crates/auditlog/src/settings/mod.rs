//! What a person can set for `auditlog serve`: one plain structure with the
//! same keys as the configuration file (`config.default.toml` beside this
//! crate's `Cargo.toml` lists them all, with their flags and environment
//! variables). The server's own `ServerConfig` is built from it in
//! `serve.rs`; this module knows nothing of clocks, catalogs or metrics.
//!
//! `load` layers the sources: flag, then environment, then file, then the
//! built-in defaults below.

mod load;

use std::net::SocketAddr;
use std::path::PathBuf;

use auditlog_server::ServerConfig;
use auditlog_server::config::{BodyLimits, RateLimits as ServerRateLimits, RetentionConfig};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

pub use load::load;

/// The commented default file `auditlog config default` prints.
pub const DEFAULT_FILE: &str = include_str!("../../config.default.toml");

/// Every setting of `auditlog serve`. Durations are whole seconds, as the
/// flags take them.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    #[serde(deserialize_with = "parsed::socket_addr")]
    pub listen: SocketAddr,
    pub database: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signing_key: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub catalog: Option<PathBuf>,
    /// Where people reach the service, for the links it sends away (the
    /// single sign-on redirect URI).
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "parsed::public_url")]
    pub public_url: Option<String>,
    #[serde(deserialize_with = "parsed::subnets")]
    pub trusted_proxies: Vec<IpNet>,
    pub secure_cookies: bool,
    pub max_connections: usize,
    pub request_timeout: u64,
    pub header_timeout: u64,
    pub retention: Retention,
    pub rate_limits: RateLimits,
    pub bodies: Bodies,
    pub webhooks: Webhooks,
    pub streams: Streams,
    pub sso: SingleSignOn,
    pub log: Log,
}

/// Where SIEM streams may go, and when one is unhealthy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Streams {
    #[serde(deserialize_with = "parsed::subnets")]
    pub allow_subnets: Vec<IpNet>,
    pub allow_plaintext: bool,
    pub unhealthy_after: u64,
}

impl Default for Streams {
    fn default() -> Self {
        let server = ServerConfig::default();
        Self {
            allow_subnets: server.streams.policy.allowed_subnets,
            allow_plaintext: server.streams.policy.allow_plaintext,
            unhealthy_after: server.streams.unhealthy_after.as_secs(),
        }
    }
}

/// Which identity providers organizations may sign in through.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SingleSignOn {
    #[serde(deserialize_with = "parsed::subnets")]
    pub allow_subnets: Vec<IpNet>,
    pub allow_http: bool,
}

impl Default for SingleSignOn {
    fn default() -> Self {
        let server = ServerConfig::default();
        Self {
            allow_subnets: server.sso_policy.allowed_subnets,
            allow_http: server.sso_policy.allow_http,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Retention {
    pub interval: u64,
}

/// Requests per second; 0 turns a limit off.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimits {
    pub ingest_per_key: f64,
    pub ingest_per_ip: f64,
    pub login_per_ip: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Bodies {
    pub budget_mib: usize,
    pub timeout: u64,
    pub min_rate: u64,
    pub rate_grace: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Webhooks {
    #[serde(deserialize_with = "parsed::subnets")]
    pub allow_subnets: Vec<IpNet>,
    pub allow_http: bool,
    pub timeout: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Log {
    /// A tracing filter: `info`, `debug`, `auditlog_server=debug,info`, …
    pub filter: String,
    pub format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// The defaults are the server's own where it has one, so the two cannot
/// disagree.
impl Default for Settings {
    fn default() -> Self {
        let server = ServerConfig::default();
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            database: "sqlite://auditlog.db".to_owned(),
            signing_key: None,
            catalog: None,
            public_url: None,
            trusted_proxies: server.trusted_proxies,
            secure_cookies: server.secure_cookies,
            max_connections: server.max_connections,
            request_timeout: server.request_timeout.as_secs(),
            header_timeout: server.header_read_timeout.as_secs(),
            retention: Retention::default(),
            rate_limits: RateLimits::default(),
            bodies: Bodies::default(),
            webhooks: Webhooks::default(),
            streams: Streams::default(),
            sso: SingleSignOn::default(),
            log: Log::default(),
        }
    }
}

impl Default for Webhooks {
    fn default() -> Self {
        let server = ServerConfig::default();
        Self {
            allow_subnets: server.webhook_policy.allowed_subnets,
            allow_http: server.webhook_policy.allow_http,
            timeout: server.webhook_timeout.as_secs(),
        }
    }
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            interval: RetentionConfig::default().interval.as_secs(),
        }
    }
}

impl Default for RateLimits {
    fn default() -> Self {
        let server = ServerRateLimits::default();
        Self {
            ingest_per_key: server.ingest_per_key.per_second,
            ingest_per_ip: server.ingest_per_ip.per_second,
            login_per_ip: server.login_per_ip.per_second,
        }
    }
}

impl Default for Bodies {
    fn default() -> Self {
        let server = BodyLimits::default();
        Self {
            budget_mib: server.budget_bytes / (1024 * 1024),
            timeout: server.timeout.as_secs(),
            min_rate: server.min_rate,
            rate_grace: server.rate_grace.as_secs(),
        }
    }
}

impl Default for Log {
    fn default() -> Self {
        Self {
            filter: "info".to_owned(),
            format: LogFormat::Text,
        }
    }
}

impl Settings {
    /// These settings as TOML, the database password hidden.
    pub fn to_redacted_toml(&self) -> String {
        let shown = Settings {
            database: redact_password(&self.database),
            ..self.clone()
        };
        toml::to_string(&shown).expect("settings are plain TOML values")
    }
}

/// The database URL may carry a password; nothing that prints settings
/// shows it.
impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("listen", &self.listen)
            .field("database", &redact_password(&self.database))
            .field("signing_key", &self.signing_key)
            .field("catalog", &self.catalog)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("secure_cookies", &self.secure_cookies)
            .field("max_connections", &self.max_connections)
            .field("request_timeout", &self.request_timeout)
            .field("header_timeout", &self.header_timeout)
            .field("retention", &self.retention)
            .field("rate_limits", &self.rate_limits)
            .field("bodies", &self.bodies)
            .field("webhooks", &self.webhooks)
            .field("streams", &self.streams)
            .field("log", &self.log)
            .finish()
    }
}

/// `postgres://user:secret@host/db` becomes `postgres://user:***@host/db`,
/// and a `password=` parameter is hidden the same way.
fn redact_password(url: &str) -> String {
    let url = match url.split_once("password=") {
        Some((before, after)) => {
            let rest = after.find('&').map_or("", |end| &after[end..]);
            format!("{before}password=***{rest}")
        }
        None => url.to_owned(),
    };
    let Some((scheme, rest)) = url.split_once("://") else {
        return url;
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let Some((credentials, host)) = authority.rsplit_once('@') else {
        return url;
    };
    match credentials.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}{path}"),
        None => url,
    }
}

/// Values written as strings, refused with an example of what was expected
/// (their own parsers only say "invalid … syntax").
mod parsed {
    use std::net::SocketAddr;
    use std::str::FromStr;

    use ipnet::IpNet;
    use serde::de::{Deserialize, Deserializer, Error, Unexpected};

    fn parse<'de, D: Deserializer<'de>, T: FromStr>(text: &str, expected: &'static str) -> Result<T, D::Error> {
        text.parse()
            .map_err(|_| D::Error::invalid_value(Unexpected::Str(text), &expected))
    }

    pub fn socket_addr<'de, D: Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
        parse::<D, _>(&String::deserialize(d)?, "an address and port such as 127.0.0.1:8080")
    }

    pub fn public_url<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        let text = String::deserialize(d)?;
        match auditlog_server::sso::parse_public_url(&text) {
            Ok(_) => Ok(Some(text)),
            Err(e) => Err(D::Error::invalid_value(Unexpected::Str(&text), &e.as_str())),
        }
    }

    pub fn subnets<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<IpNet>, D::Error> {
        let texts = Vec::<String>::deserialize(d)?;
        texts
            .iter()
            .map(|text| parse::<D, _>(text, "a subnet in CIDR notation such as 10.0.0.0/8"))
            .collect()
    }
}

#[cfg(test)]
mod tests;

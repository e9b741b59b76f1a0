//! A stream's settings as a person writes them (the API's body, the
//! command line's flags), checked and turned into what the store keeps:
//! the destination under the operator's policy, the format, patterns that
//! select catalogued events, a facility and APP-NAME syslog accepts, and
//! TLS material that parses (the client key sealed before it is stored).

use auditlog_domain::Catalog;
use auditlog_domain::pattern::EventPattern;
use auditlog_domain::sealed::SecretSealer;
use auditlog_domain::siem::{self, Format};
use auditlog_domain::stream::{DEFAULT_FACILITY, StreamSettings, TlsSettings};
use serde::Deserialize;

use super::connect::{StreamPolicy, tls_config};

const MAX_PATTERNS: usize = 50;
const MAX_PEM_BYTES: usize = 64 * 1024;

/// A field that cannot be taken as it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct Invalid {
    pub field: &'static str,
    pub code: &'static str,
    pub message: String,
}

/// The longest URL taken, as for webhooks: a host name is at most 253
/// characters, so only a mistake or an attack is longer.
const MAX_URL: usize = 2048;

fn invalid(field: &'static str, code: &'static str, message: impl Into<String>) -> Invalid {
    Invalid {
        field,
        code,
        message: message.into(),
    }
}

/// TLS material, PEM.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TlsInput {
    /// Certificates to trust instead of the system's roots.
    pub ca_pem: Option<String>,
    /// A client certificate (chain) for receivers that ask for one.
    pub client_cert_pem: Option<String>,
    /// Its private key; stored sealed and never shown again.
    pub client_key_pem: Option<String>,
}

/// Everything a stream's settings are made of, as written.
#[derive(Debug, Clone)]
pub struct Proposed {
    pub url: String,
    pub format: String,
    pub events: Vec<String>,
    pub facility: Option<u8>,
    pub app_name: Option<String>,
    pub description: Option<String>,
    pub enabled: bool,
    pub tls: TlsInput,
}

/// What the settings are checked against.
pub struct Rules<'a> {
    pub policy: &'a StreamPolicy,
    pub catalog: &'a Catalog,
    pub sealer: Option<&'a SecretSealer>,
}

/// Checks `p` and builds stream `id`'s settings from it. `kept_key` is
/// the stored client key, used when `p` brings a client certificate but
/// no key (an update that leaves the key as it is).
pub fn settings(id: &str, p: Proposed, kept_key: Option<&[u8]>, rules: &Rules) -> Result<StreamSettings, Invalid> {
    if p.url.len() > MAX_URL {
        return Err(invalid(
            "url",
            "too_long",
            format!("the URL is longer than {MAX_URL} characters"),
        ));
    }
    let destination = rules
        .policy
        .destination(&p.url)
        .map_err(|e| invalid("url", "invalid_destination", e))?;
    let format = Format::parse(&p.format).ok_or_else(|| {
        invalid(
            "format",
            "unknown_format",
            format!("unknown format {:?}; use rfc5424, cef or ocsf", p.format),
        )
    })?;
    let facility = p.facility.unwrap_or(DEFAULT_FACILITY);
    if facility > 23 {
        return Err(invalid("facility", "invalid_value", "a syslog facility is 0 to 23"));
    }
    let app_name = p.app_name.unwrap_or_else(|| "auditlog".into());
    if !siem::valid_app_name(&app_name) {
        return Err(invalid(
            "app_name",
            "invalid_value",
            "1 to 48 printable ASCII characters, no spaces (RFC 5424 APP-NAME)",
        ));
    }
    let settings = StreamSettings {
        id: id.to_owned(),
        destination,
        format,
        events: patterns(&p.events, rules.catalog)?,
        facility,
        app_name,
        description: description(p.description)?,
        enabled: p.enabled,
        tls: tls(p.tls, kept_key, rules.sealer)?,
    };
    Ok(settings)
}

fn patterns(raw: &[String], catalog: &Catalog) -> Result<Vec<EventPattern>, Invalid> {
    if raw.len() > MAX_PATTERNS {
        return Err(invalid(
            "events",
            "too_many",
            format!("at most {MAX_PATTERNS} patterns"),
        ));
    }
    raw.iter()
        .map(|p| {
            let pattern = EventPattern::parse(p).map_err(|e| invalid("events", "invalid_pattern", e.to_string()))?;
            if pattern.expand(catalog).is_empty() {
                return Err(invalid(
                    "events",
                    "unknown_event",
                    format!("{p:?} matches no event in the catalog"),
                ));
            }
            Ok(pattern)
        })
        .collect()
}

fn description(raw: Option<String>) -> Result<String, Invalid> {
    let d = raw.unwrap_or_default();
    if d.chars().count() > 500 || d.chars().any(char::is_control) {
        return Err(invalid(
            "description",
            "invalid_value",
            "at most 500 characters, no control characters",
        ));
    }
    Ok(d.trim().to_owned())
}

/// The TLS material, checked by building the client settings it makes.
fn tls(input: TlsInput, kept_key: Option<&[u8]>, sealer: Option<&SecretSealer>) -> Result<TlsSettings, Invalid> {
    for (field, pem) in [
        ("tls.ca_pem", &input.ca_pem),
        ("tls.client_cert_pem", &input.client_cert_pem),
        ("tls.client_key_pem", &input.client_key_pem),
    ] {
        if pem.as_ref().is_some_and(|p| p.len() > MAX_PEM_BYTES) {
            return Err(invalid(field, "too_long", format!("at most {MAX_PEM_BYTES} bytes")));
        }
    }
    let client_key = match (&input.client_key_pem, &input.client_cert_pem) {
        (Some(key), _) => Some(match sealer {
            Some(s) => s.seal(key.as_bytes()),
            None => key.as_bytes().to_vec(),
        }),
        (None, Some(_)) => kept_key.map(<[u8]>::to_vec),
        (None, None) => None,
    };
    let settings = TlsSettings {
        ca_pem: input.ca_pem,
        client_cert_pem: input.client_cert_pem,
        client_key,
    };
    tls_config(&settings, sealer).map_err(|e| invalid("tls", "invalid_tls", e))?;
    Ok(settings)
}

/// What `stream.created` says: every setting but the TLS material, of
/// which only its presence.
pub fn created_details(c: &StreamSettings) -> serde_json::Value {
    serde_json::json!({
        "destination": c.destination.to_url(),
        "format": c.format.as_str(),
        "events": c.events.iter().map(|p| p.as_str()).collect::<Vec<_>>(),
        "facility": c.facility,
        "app_name": c.app_name,
        "enabled": c.enabled,
        "custom_ca": c.tls.ca_pem.is_some(),
        "client_certificate": c.tls.client_cert_pem.is_some(),
    })
}

//! `auditlog serve`: load the catalog, open the store, serve until SIGINT or
//! SIGTERM, then shut down gracefully.

use std::sync::Arc;
use std::time::Duration;

use auditlog_domain::Catalog;
use auditlog_domain::checkpoint::SigningKey;
use auditlog_domain::rate_limit::Rate;
use auditlog_server::ServerConfig;
use auditlog_server::config::{BodyLimits, RateLimits, RetentionConfig, Runtime};
use auditlog_server::workers::checkpointer::CheckpointConfig;
use auditlog_server::workers::dispatcher::DispatcherConfig;
use auditlog_server::workers::streams::{StreamPolicy, StreamsConfig};
use auditlog_server::workers::webhook_client::DestinationPolicy;
use tokio_util::sync::CancellationToken;

use crate::backend::{AnyError, open};
use crate::settings::{Bodies, Settings};

pub fn load_catalog(extension: Option<&std::path::Path>) -> Result<Catalog, AnyError> {
    let mut catalog = Catalog::builtin();
    if let Some(path) = extension {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read catalog {}: {e}", path.display()))?;
        catalog.extend_from_toml(&path.display().to_string(), &text)?;
    }
    Ok(catalog)
}

/// Cancels the token on Ctrl-C or SIGTERM.
pub fn shutdown_on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(error = %e, "cannot listen for SIGTERM");
                    let _ = ctrl_c.await;
                    t.cancel();
                    return;
                }
            };
            tokio::select! {
                _ = ctrl_c => tracing::info!("interrupted; shutting down"),
                _ = term.recv() => tracing::info!("terminated; shutting down"),
            }
        }
        #[cfg(not(unix))]
        {
            let _ = ctrl_c.await;
        }
        t.cancel();
    });
    token
}

/// The request-body settings as the server takes them.
fn body_limits(settings: &Bodies) -> BodyLimits {
    BodyLimits {
        budget_bytes: settings.budget_mib.max(1).saturating_mul(1024 * 1024),
        timeout: Duration::from_secs(settings.timeout.max(1)),
        min_rate: settings.min_rate,
        rate_grace: Duration::from_secs(settings.rate_grace),
        ..BodyLimits::default()
    }
}

/// The server's configuration: the person's settings, and the parts a
/// process makes for itself (the catalog and the signing key here; the
/// clock and metrics are the runtime's defaults).
fn server_config(settings: &Settings, catalog: Catalog, key: SigningKey) -> ServerConfig {
    let rates = &settings.rate_limits;
    let webhook_timeout = Duration::from_secs(settings.webhooks.timeout.max(1));
    ServerConfig {
        checkpoints: CheckpointConfig {
            key: Arc::new(key),
            ..CheckpointConfig::default()
        },
        runtime: Runtime {
            catalog: Arc::new(catalog),
            ..Runtime::default()
        },
        trusted_proxies: settings.trusted_proxies.clone(),
        secure_cookies: settings.secure_cookies,
        webhook_policy: DestinationPolicy {
            allowed_subnets: settings.webhooks.allow_subnets.clone(),
            allow_http: settings.webhooks.allow_http,
        },
        streams: StreamsConfig {
            policy: StreamPolicy {
                allowed_subnets: settings.streams.allow_subnets.clone(),
                allow_plaintext: settings.streams.allow_plaintext,
            },
            unhealthy_after: Duration::from_secs(settings.streams.unhealthy_after.max(1)),
            ..StreamsConfig::default()
        },
        sso_policy: DestinationPolicy {
            allowed_subnets: settings.sso.allow_subnets.clone(),
            allow_http: settings.sso.allow_http,
        },
        public_url: settings
            .public_url
            .as_deref()
            .and_then(|u| auditlog_server::sso::parse_public_url(u).ok()),
        rate_limits: RateLimits {
            ingest_per_key: Rate::per_second(rates.ingest_per_key),
            ingest_per_ip: Rate::per_second(rates.ingest_per_ip),
            login_per_ip: Rate {
                per_second: rates.login_per_ip,
                burst: 20.0,
            },
            ..RateLimits::default()
        },
        webhook_timeout,
        dispatcher: DispatcherConfig {
            lease: 2 * webhook_timeout,
            ..DispatcherConfig::default()
        },
        max_connections: settings.max_connections,
        request_timeout: Duration::from_secs(settings.request_timeout.max(1)),
        header_read_timeout: Duration::from_secs(settings.header_timeout.max(1)),
        bodies: body_limits(&settings.bodies),
        retention: RetentionConfig {
            interval: Duration::from_secs(settings.retention.interval.max(1)),
            ..RetentionConfig::default()
        },
        ..ServerConfig::default()
    }
}

pub async fn run(settings: Settings) -> Result<(), AnyError> {
    auditlog_server::workers::fault::configure_from_env();
    let catalog = load_catalog(settings.catalog.as_deref())?;
    let key_path = crate::signing_key::path(settings.signing_key.as_deref(), &settings.database)?;
    let store = open(&settings.database).await?;
    let key = crate::signing_key::load_or_create(&key_path)?;
    let config = server_config(&settings, catalog, key);
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", settings.listen))?;
    auditlog_server::serve(config, store, listener, shutdown_on_signal()).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_settings_reach_the_server_config() {
        let limits = body_limits(&Bodies {
            budget_mib: 3,
            timeout: 7,
            min_rate: 500,
            rate_grace: 2,
        });
        assert_eq!(limits.budget_bytes, 3 * 1024 * 1024);
        assert_eq!(limits.timeout, Duration::from_secs(7));
        assert_eq!(limits.min_rate, 500);
        assert_eq!(limits.rate_grace, Duration::from_secs(2));
    }

    #[test]
    fn the_default_settings_make_the_server_defaults() {
        let defaults = ServerConfig::default();
        let key = SigningKey::generate(crate::signing_key::LOG_NAME).unwrap();
        let config = server_config(&Settings::default(), Catalog::builtin(), key);
        let (limits, server) = (config.bodies, defaults.bodies);
        assert_eq!(limits.budget_bytes, server.budget_bytes);
        assert_eq!(limits.timeout, server.timeout);
        assert_eq!(limits.min_rate, server.min_rate);
        assert_eq!(limits.rate_grace, server.rate_grace);
        assert_eq!(config.request_timeout, defaults.request_timeout);
        assert_eq!(config.header_read_timeout, defaults.header_read_timeout);
        assert_eq!(config.webhook_timeout, defaults.webhook_timeout);
        assert_eq!(config.retention.interval, defaults.retention.interval);
        assert_eq!(config.max_connections, defaults.max_connections);
        assert_eq!(
            config.rate_limits.login_per_ip.burst,
            defaults.rate_limits.login_per_ip.burst
        );
    }
}

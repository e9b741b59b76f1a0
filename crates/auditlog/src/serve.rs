//! `auditlog serve`: load the catalog, open the store, serve until SIGINT or
//! SIGTERM, then shut down gracefully.

use std::sync::Arc;
use std::time::Duration;

use auditlog_domain::Catalog;
use auditlog_domain::rate_limit::Rate;
use auditlog_server::ServerConfig;
use auditlog_server::checkpointer::CheckpointConfig;
use auditlog_server::config::{BodyLimits, RateLimits, RetentionConfig};
use auditlog_server::dispatcher::DispatcherConfig;
use auditlog_server::webhook_client::DestinationPolicy;
use tokio_util::sync::CancellationToken;

use crate::backend::{AnyError, open};
use crate::cli::ServeArgs;

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

/// The request-body flags as the server takes them.
fn body_limits(args: &ServeArgs) -> BodyLimits {
    BodyLimits {
        budget_bytes: args.body_budget_mib.max(1).saturating_mul(1024 * 1024),
        timeout: Duration::from_secs(args.body_timeout.max(1)),
        min_rate: args.body_min_rate,
        rate_grace: Duration::from_secs(args.body_rate_grace),
        ..BodyLimits::default()
    }
}

pub async fn run(args: ServeArgs) -> Result<(), AnyError> {
    auditlog_server::fault::configure_from_env();
    let catalog = load_catalog(args.catalog.as_deref())?;
    let key_path = crate::signing_key::path(args.signing.signing_key.as_deref(), &args.db.database)?;
    let store = open(&args.db.database).await?;
    let key = crate::signing_key::load_or_create(&key_path)?;
    let bodies = body_limits(&args);
    let config = ServerConfig {
        checkpoints: CheckpointConfig {
            key: Arc::new(key),
            ..CheckpointConfig::default()
        },
        catalog: Arc::new(catalog),
        trusted_proxies: args.trusted_proxies,
        secure_cookies: args.secure_cookies,
        webhook_policy: DestinationPolicy {
            allowed_subnets: args.webhook_allow_subnets,
            allow_http: args.webhook_allow_http,
        },
        rate_limits: RateLimits {
            ingest_per_key: Rate::per_second(args.ingest_rate_per_key),
            ingest_per_ip: Rate::per_second(args.ingest_rate_per_ip),
            login_per_ip: Rate {
                per_second: args.login_rate_per_ip,
                burst: 20.0,
            },
            ..RateLimits::default()
        },
        webhook_timeout: std::time::Duration::from_secs(args.webhook_timeout.max(1)),
        dispatcher: DispatcherConfig {
            lease: std::time::Duration::from_secs(2 * args.webhook_timeout.max(1)),
            ..DispatcherConfig::default()
        },
        max_connections: args.max_connections,
        request_timeout: std::time::Duration::from_secs(args.request_timeout.max(1)),
        header_read_timeout: std::time::Duration::from_secs(args.header_timeout.max(1)),
        bodies,
        retention: RetentionConfig {
            interval: std::time::Duration::from_secs(args.retention_interval.max(1)),
            ..RetentionConfig::default()
        },
        ..ServerConfig::default()
    };
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    auditlog_server::serve(config, store, listener, shutdown_on_signal()).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    fn serve_args(args: &[&str]) -> ServeArgs {
        match Cli::try_parse_from(["auditlog", "serve"].iter().chain(args))
            .unwrap()
            .command
        {
            Command::Serve(args) => args,
            _ => unreachable!("parsed as serve"),
        }
    }

    #[test]
    fn the_body_flags_reach_the_server_config() {
        let limits = body_limits(&serve_args(&[
            "--body-budget-mib",
            "3",
            "--body-timeout",
            "7",
            "--body-min-rate",
            "500",
            "--body-rate-grace",
            "2",
        ]));
        assert_eq!(limits.budget_bytes, 3 * 1024 * 1024);
        assert_eq!(limits.timeout, Duration::from_secs(7));
        assert_eq!(limits.min_rate, 500);
        assert_eq!(limits.rate_grace, Duration::from_secs(2));
    }

    #[test]
    fn the_body_flags_default_to_the_server_defaults() {
        let limits = body_limits(&serve_args(&[]));
        let defaults = BodyLimits::default();
        assert_eq!(limits.budget_bytes, defaults.budget_bytes);
        assert_eq!(limits.timeout, defaults.timeout);
        assert_eq!(limits.min_rate, defaults.min_rate);
        assert_eq!(limits.rate_grace, defaults.rate_grace);
    }
}

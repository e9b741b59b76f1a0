//! [`AppState`], what every handler can reach, and the per-process rate
//! limiters it holds.

use std::sync::{Arc, Mutex};

use auditlog_domain::rate_limit::RateLimiter;
use auditlog_domain::throttle::LoginThrottle;
use auditlog_domain::{Catalog, Clock, Store};

use crate::config::{RateLimits, ServerConfig};
use crate::http::error::ApiError;
use crate::http::key_cache::KeyCache;
use crate::workers::checkpointer::Checkpointer;
use crate::workers::read_recorder::ReadAudit;
use crate::workers::webhook_client::WebhookClient;
use crate::workers::writer::Writer;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub catalog: Arc<Catalog>,
    pub clock: Arc<dyn Clock>,
    pub writer: Writer,
    pub config: Arc<ServerConfig>,
    /// Failed sign-ins by account and by client address. In memory: each
    /// replica limits on its own, which bounds guessing per replica.
    pub login: Arc<Mutex<LoginThrottle>>,
    /// Sends webhooks (test events from handlers, deliveries from the
    /// dispatcher) under the destination policy.
    pub webhooks: WebhookClient,
    pub keys: Arc<KeyCache>,
    pub checkpoints: Checkpointer,
    pub limits: Arc<Limiters>,
    /// Which reads of the log were recorded lately (`audit_log.viewed`).
    pub reads: Arc<ReadAudit>,
    /// Seals the secrets the service must read back (single sign-on
    /// client secrets), as webhook secrets are.
    pub sealer: Arc<auditlog_domain::sealed::SecretSealer>,
    /// Organizations' identity providers, under the operator's rules.
    pub sso: crate::sso::provider::Providers,
    /// The personal-data keys the store seals with: pseudonyms of the
    /// people an erasure names.
    pub personal: Arc<auditlog_domain::personal::PersonalData>,
}

/// The request-rate limits of [`RateLimits`], in memory per process.
#[derive(Debug)]
pub struct Limiters {
    pub ingest_per_key: Mutex<RateLimiter>,
    pub ingest_per_ip: Mutex<RateLimiter>,
    pub login_per_ip: Mutex<RateLimiter>,
}

impl Limiters {
    pub fn new(limits: &RateLimits) -> Self {
        let make = |rate| Mutex::new(RateLimiter::new(rate, limits.tracked));
        Self {
            ingest_per_key: make(limits.ingest_per_key),
            ingest_per_ip: make(limits.ingest_per_ip),
            login_per_ip: make(limits.login_per_ip),
        }
    }

    /// Takes one request from `limiter` for `key`; 429 when it is over.
    pub fn take(limiter: &Mutex<RateLimiter>, key: &str, now: auditlog_domain::Timestamp) -> Result<(), ApiError> {
        limiter
            .lock()
            .map_err(|_| ApiError::Internal("rate limiter poisoned".into()))?
            .take(key, now)
            .map_err(ApiError::TooManyRequests)
    }
}

impl AppState {
    pub fn login_throttle(&self) -> Result<std::sync::MutexGuard<'_, LoginThrottle>, ApiError> {
        self.login
            .lock()
            .map_err(|_| ApiError::Internal("login throttle poisoned".into()))
    }
}

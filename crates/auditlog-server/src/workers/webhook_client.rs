//! The HTTP client that delivers webhooks, and the rules on where it may go.
//!
//! Destinations must be `https` (plain `http` only when the operator allows
//! it). Addresses are checked inside the client's DNS resolver, so the
//! address checked is the address connected to: a name that resolves to a
//! public address when the endpoint is saved and to a private one later
//! (DNS rebinding) is still refused. Literal IP addresses in URLs, which
//! skip the resolver, are checked before sending. Redirects are not
//! followed.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use auditlog_domain::Timestamp;
use auditlog_domain::sealed::SecretSealer;
use auditlog_domain::ssrf;
use auditlog_domain::webhook::{Secret, signature_header};
use ipnet::IpNet;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::{Url, header};

/// Installs the process's TLS crypto provider (ring). Every HTTPS client in
/// the process needs it; calling it again does nothing.
pub fn init_tls() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

#[derive(Debug, Clone, Default)]
pub struct DestinationPolicy {
    /// Subnets delivered to even though they are not public.
    pub allowed_subnets: Vec<IpNet>,
    /// Allow `http://` destinations.
    pub allow_http: bool,
}

impl DestinationPolicy {
    /// Checks a URL as far as can be done without resolving it.
    pub fn check_url(&self, raw: &str) -> Result<Url, String> {
        let url = Url::parse(raw).map_err(|e| format!("not a URL: {e}"))?;
        match url.scheme() {
            "https" => {}
            "http" if self.allow_http => {}
            "http" => return Err("the URL must use https; the operator has not allowed plain http".into()),
            other => return Err(format!("unsupported scheme {other:?}; use https")),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("the URL must not carry credentials".into());
        }
        match url.host() {
            None => return Err("the URL has no host".into()),
            Some(url::Host::Ipv4(ip)) => self.check_ip(IpAddr::V4(ip))?,
            Some(url::Host::Ipv6(ip)) => self.check_ip(IpAddr::V6(ip))?,
            Some(url::Host::Domain(d)) if d.eq_ignore_ascii_case("localhost") || d.ends_with(".localhost") => {
                self.check_ip(IpAddr::from([127, 0, 0, 1]))?
            }
            Some(url::Host::Domain(_)) => {}
        }
        Ok(url)
    }

    fn check_ip(&self, ip: IpAddr) -> Result<(), String> {
        if ssrf::forbidden(ip, &self.allowed_subnets) {
            Err(format!("{ip} is not a public address; the operator has not allowed it"))
        } else {
            Ok(())
        }
    }
}

/// Resolves names and drops every address the policy refuses.
pub(crate) struct GuardedResolver {
    allowed: Arc<Vec<IpNet>>,
}

impl GuardedResolver {
    pub(crate) fn new(policy: &DestinationPolicy) -> Arc<Self> {
        Arc::new(GuardedResolver {
            allowed: Arc::new(policy.allowed_subnets.clone()),
        })
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allowed = self.allowed.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let ok: Vec<SocketAddr> = found
                .into_iter()
                .filter(|a| !ssrf::forbidden(a.ip(), &allowed))
                .collect();
            if ok.is_empty() {
                return Err(format!("refused: {host} resolves only to addresses that are not public").into());
            }
            Ok(Box::new(ok.into_iter()) as Addrs)
        })
    }
}

/// What one delivery attempt got back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// `None` for a timeout, a refused destination or a connection error.
    pub status: Option<u16>,
    pub retry_after_secs: Option<u64>,
    pub latency_ms: u64,
    pub error: Option<String>,
}

#[derive(Clone)]
pub struct WebhookClient {
    http: reqwest::Client,
    policy: DestinationPolicy,
    /// Seals secrets before they are stored and opens them to sign; without
    /// one, secrets are stored and read as they are.
    sealer: Option<Arc<SecretSealer>>,
}

impl std::fmt::Debug for WebhookClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookClient").field("policy", &self.policy).finish()
    }
}

impl WebhookClient {
    pub fn new(policy: DestinationPolicy, timeout: Duration) -> Result<Self, String> {
        init_tls();
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(GuardedResolver::new(&policy))
            .user_agent(concat!("auditlog-webhooks/", env!("CARGO_PKG_VERSION")))
            // At least as many as the dispatcher sends at once (workers ×
            // concurrency, 192 by default): fewer, and connections to a busy
            // receiver are closed as sends finish and opened again for the
            // next ones, a connect and a shutdown per delivery.
            .pool_max_idle_per_host(256)
            .build()
            .map_err(|e| format!("cannot build the webhook client: {e}"))?;
        Ok(Self {
            http,
            policy,
            sealer: None,
        })
    }

    /// Secrets are sealed at rest under `sealer`.
    pub fn with_sealer(self, sealer: Arc<SecretSealer>) -> Self {
        Self {
            sealer: Some(sealer),
            ..self
        }
    }

    /// A new secret in the form it is stored in.
    pub fn seal(&self, secret: &Secret) -> Secret {
        match &self.sealer {
            Some(sealer) => Secret(sealer.seal(&secret.0)),
            None => Secret(secret.0.clone()),
        }
    }

    /// Stored secrets as they sign.
    fn open(&self, stored: &[&Secret]) -> Result<Vec<Secret>, String> {
        stored
            .iter()
            .map(|s| match &self.sealer {
                Some(sealer) => sealer
                    .open(&s.0)
                    .map(Secret)
                    .map_err(|e| format!("{e}; rotate the secret")),
                None => Ok(Secret(s.0.clone())),
            })
            .collect()
    }

    pub fn policy(&self) -> &DestinationPolicy {
        &self.policy
    }

    /// Sends one message signed with the stored `secrets` (opened here);
    /// never fails, the outcome says what happened.
    pub async fn send(&self, url: &str, secrets: &[&Secret], msg_id: &str, now: Timestamp, body: Vec<u8>) -> Sent {
        let started = Instant::now();
        let failed = |error: String, started: Instant| Sent {
            status: None,
            retry_after_secs: None,
            latency_ms: started.elapsed().as_millis() as u64,
            error: Some(error),
        };
        let url = match self.policy.check_url(url) {
            Ok(u) => u,
            Err(e) => return failed(e, started),
        };
        let secrets = match self.open(secrets) {
            Ok(s) => s,
            Err(e) => return failed(e, started),
        };
        let ts = now.millis().div_euclid(1000);
        let signature = signature_header(&secrets.iter().collect::<Vec<_>>(), msg_id, ts, &body);
        let resp = self
            .http
            .post(url)
            .header(header::CONTENT_TYPE, "application/json")
            .header("webhook-id", msg_id)
            .header("webhook-timestamp", ts.to_string())
            .header("webhook-signature", signature)
            .body(body)
            .send()
            .await;
        match resp {
            Ok(mut r) => {
                let status = r.status().as_u16();
                let retry_after_secs = r
                    .headers()
                    .get(header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok());
                let latency_ms = started.elapsed().as_millis() as u64;
                let error = if (200..300).contains(&status) {
                    None
                } else {
                    Some(match excerpt(&mut r).await {
                        text if text.is_empty() => format!("HTTP {status}"),
                        text => format!("HTTP {status}: {text}"),
                    })
                };
                Sent {
                    status: Some(status),
                    retry_after_secs,
                    latency_ms,
                    error,
                }
            }
            Err(e) if e.is_timeout() => failed("timed out".into(), started),
            Err(e) => {
                // The full chain names the cause (refused address, TLS, reset).
                let mut msg = e.to_string();
                let mut src = std::error::Error::source(&e);
                while let Some(s) = src {
                    msg = format!("{msg}: {s}");
                    src = s.source();
                }
                failed(msg, started)
            }
        }
    }
}

/// How much of a refusing receiver's answer is kept, in characters.
const EXCERPT_CHARS: usize = 200;

/// The start of a refusal's body, as one line of text: what the receiver
/// said is often the quickest way to see why it refused. At most a few
/// hundred bytes are read, within the client's timeout.
async fn excerpt(resp: &mut reqwest::Response) -> String {
    let mut bytes = Vec::new();
    while bytes.len() < EXCERPT_CHARS * 4 {
        match resp.chunk().await {
            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
            _ => break,
        }
    }
    let text = String::from_utf8_lossy(&bytes);
    let line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(EXCERPT_CHARS)
        .collect();
    line.split_whitespace().collect::<Vec<_>>().join(" ")
}

//! Talking to an organization's OpenID Connect provider: discovery, its
//! signing keys, the code exchange and the ID token's checks.
//!
//! Issuers are set by organization owners, so every request goes through
//! the same destination rules as webhooks (https, public addresses, checked
//! at connect time, no redirects followed) and every answer is read up to a
//! small limit. Discovery documents and key sets are cached per issuer; a
//! token signed by a key the cache does not hold makes one fresh fetch of
//! the key set, which is how a provider's key rotation is followed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use reqwest::{Url, header};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::SsoError;
use crate::workers::webhook_client::{DestinationPolicy, GuardedResolver};

/// How long discovery and keys are trusted before they are fetched again.
const CACHE_TTL: Duration = Duration::from_secs(3600);
/// Largest answer read from a provider.
const MAX_ANSWER_BYTES: usize = 256 * 1024;
/// Clock difference allowed between us and the provider.
pub const SKEW_SECS: u64 = 60;

/// What discovery says about a provider, as far as sign-in needs it.
#[derive(Debug, Clone, Deserialize)]
struct Document {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
}

#[derive(Clone)]
struct Cached {
    document: Document,
    keys: Arc<JwkSet>,
    at: Instant,
}

/// The claims sign-in reads from a verified ID token.
#[derive(Debug, Clone, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub iat: Option<i64>,
    pub nonce: Option<String>,
    pub email: Option<String>,
    pub email_verified: Option<bool>,
}

/// One organization's client at its provider.
pub struct Client<'a> {
    pub issuer: &'a str,
    pub client_id: &'a str,
    pub client_secret: &'a str,
    pub redirect_uri: &'a str,
}

/// The provider client shared by every sign-in.
#[derive(Clone)]
pub struct Providers {
    http: reqwest::Client,
    policy: DestinationPolicy,
    cache: Arc<Mutex<HashMap<String, Cached>>>,
}

impl std::fmt::Debug for Providers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Providers").field("policy", &self.policy).finish()
    }
}

impl Providers {
    pub fn new(policy: DestinationPolicy, timeout: Duration) -> Result<Self, String> {
        crate::workers::webhook_client::init_tls();
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(GuardedResolver::new(&policy))
            .user_agent(concat!("auditlog/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the single sign-on client: {e}"))?;
        Ok(Self {
            http,
            policy,
            cache: Arc::default(),
        })
    }

    /// Where issuers may be.
    pub fn policy(&self) -> &DestinationPolicy {
        &self.policy
    }

    /// The provider's authorization URL for one sign-in.
    pub async fn authorization_url(
        &self,
        client: &Client<'_>,
        state: &str,
        nonce: &str,
        challenge: &str,
    ) -> Result<Url, SsoError> {
        let (document, _) = self.discover(client.issuer).await?;
        let mut url = self.url(&document.authorization_endpoint, "authorization_endpoint")?;
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", client.client_id)
            .append_pair("redirect_uri", client.redirect_uri)
            .append_pair("scope", "openid email")
            .append_pair("state", state)
            .append_pair("nonce", nonce)
            .append_pair("code_challenge", challenge)
            .append_pair("code_challenge_method", "S256");
        Ok(url)
    }

    /// Exchanges an authorization code for an ID token and returns its
    /// claims once every check has passed: one request to the provider,
    /// plus a key-set fetch when the token names a key not yet known.
    pub async fn sign_in(
        &self,
        client: &Client<'_>,
        code: &str,
        verifier: &str,
        nonce: &str,
        now_secs: i64,
    ) -> Result<Claims, SsoError> {
        let (document, keys) = self.discover(client.issuer).await?;
        let id_token = self.exchange(client, &document, code, verifier).await?;
        let header = jsonwebtoken::decode_header(&id_token)
            .map_err(|e| SsoError::InvalidToken(format!("its header cannot be read: {e}")))?;
        if !matches!(header.alg, Algorithm::RS256 | Algorithm::ES256) {
            return Err(SsoError::InvalidToken(format!(
                "it is signed with {:?}; only RS256 and ES256 are accepted",
                header.alg
            )));
        }
        let key = match find_key(&keys, header.kid.as_deref(), header.alg) {
            Some(key) => key,
            None => {
                let keys = self.refresh_keys(client.issuer, &document).await?;
                find_key(&keys, header.kid.as_deref(), header.alg).ok_or(SsoError::BadSignature)?
            }
        };
        let claims = verify(&id_token, &key, header.alg, client, now_secs)?;
        let same_nonce = claims
            .nonce
            .as_deref()
            .is_some_and(|n| subtle::ConstantTimeEq::ct_eq(n.as_bytes(), nonce.as_bytes()).into());
        if !same_nonce {
            return Err(SsoError::WrongNonce);
        }
        Ok(claims)
    }

    fn url(&self, raw: &str, what: &str) -> Result<Url, SsoError> {
        self.policy
            .check_url(raw)
            .map_err(|e| SsoError::NotAProvider(format!("its {what} {raw:?} is refused: {e}")))
    }

    /// The issuer's discovery document and keys, from the cache when fresh.
    async fn discover(&self, issuer: &str) -> Result<(Document, Arc<JwkSet>), SsoError> {
        if let Some(c) = self.cached(issuer) {
            return Ok((c.document, c.keys));
        }
        let base = self.policy.check_url(issuer).map_err(SsoError::IssuerRefused)?;
        let url = format!(
            "{}/.well-known/openid-configuration",
            base.as_str().trim_end_matches('/')
        );
        let document: Document = self.get_json(&url, "discovery document").await?;
        // OpenID Connect Discovery 1.0, section 4.3: the document must name
        // the very issuer it was fetched for.
        if document.issuer != issuer {
            return Err(SsoError::NotAProvider(format!(
                "its discovery document names the issuer {:?}, not {issuer:?}",
                document.issuer
            )));
        }
        let keys = self.fetch_keys(&document).await?;
        self.store(issuer, &document, keys.clone());
        Ok((document, keys))
    }

    fn cached(&self, issuer: &str) -> Option<Cached> {
        let cache = self.cache.lock().ok()?;
        cache.get(issuer).filter(|c| c.at.elapsed() < CACHE_TTL).cloned()
    }

    fn store(&self, issuer: &str, document: &Document, keys: Arc<JwkSet>) {
        if let Ok(mut cache) = self.cache.lock() {
            // Issuers an organization moved away from go once stale.
            cache.retain(|_, c| c.at.elapsed() < CACHE_TTL);
            cache.insert(
                issuer.to_owned(),
                Cached {
                    document: document.clone(),
                    keys,
                    at: Instant::now(),
                },
            );
        }
    }

    async fn refresh_keys(&self, issuer: &str, document: &Document) -> Result<Arc<JwkSet>, SsoError> {
        let keys = self.fetch_keys(document).await?;
        self.store(issuer, document, keys.clone());
        Ok(keys)
    }

    /// The key set; keys of kinds we cannot use are skipped, not fatal.
    async fn fetch_keys(&self, document: &Document) -> Result<Arc<JwkSet>, SsoError> {
        let url = self.url(&document.jwks_uri, "jwks_uri")?;
        #[derive(Deserialize)]
        struct Raw {
            keys: Vec<serde_json::Value>,
        }
        let raw: Raw = self.get_json(url.as_str(), "key set").await?;
        let keys = raw
            .keys
            .into_iter()
            .filter_map(|k| serde_json::from_value::<Jwk>(k).ok())
            .collect();
        Ok(Arc::new(JwkSet { keys }))
    }

    async fn get_json<T: DeserializeOwned>(&self, url: &str, what: &str) -> Result<T, SsoError> {
        let resp = self
            .http
            .get(url)
            .header(header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| SsoError::Unreachable(format!("{url}: {}", error_chain(&e))))?;
        let status = resp.status();
        let body = read_capped(resp).await?;
        if !status.is_success() {
            return Err(SsoError::NotAProvider(format!("its {what} at {url} answered {status}")));
        }
        serde_json::from_slice(&body)
            .map_err(|e| SsoError::NotAProvider(format!("its {what} at {url} is not what OpenID Connect says: {e}")))
    }

    async fn exchange(
        &self,
        client: &Client<'_>,
        document: &Document,
        code: &str,
        verifier: &str,
    ) -> Result<String, SsoError> {
        let url = self.url(&document.token_endpoint, "token_endpoint")?;
        let form = form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "authorization_code")
            .append_pair("code", code)
            .append_pair("redirect_uri", client.redirect_uri)
            .append_pair("code_verifier", verifier)
            .finish();
        // client_secret_basic: RFC 6749, section 2.3.1 form-encodes both
        // parts before they are joined.
        let encode = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let resp = self
            .http
            .post(url)
            .basic_auth(encode(client.client_id), Some(encode(client.client_secret)))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::ACCEPT, "application/json")
            .body(form)
            .send()
            .await
            .map_err(|e| SsoError::Unreachable(format!("its token endpoint: {}", error_chain(&e))))?;
        let status = resp.status();
        let body = read_capped(resp).await?;
        #[derive(Deserialize)]
        struct Answer {
            id_token: Option<String>,
            error: Option<String>,
            error_description: Option<String>,
        }
        let answer: Answer = serde_json::from_slice(&body).map_err(|_| {
            SsoError::NotAProvider(format!(
                "its token endpoint answered {status} with something other than JSON"
            ))
        })?;
        match (status.is_success(), answer.id_token, answer.error) {
            (true, Some(token), _) => Ok(token),
            (true, None, _) => Err(SsoError::InvalidToken("the provider sent no ID token".into())),
            (false, _, error) => Err(SsoError::CodeRefused {
                error: error.unwrap_or_else(|| status.to_string()),
                description: answer.error_description.unwrap_or_default(),
            }),
        }
    }
}

/// The key the token names (or, when it names none, the only key of its
/// algorithm).
fn find_key(keys: &JwkSet, kid: Option<&str>, alg: Algorithm) -> Option<DecodingKey> {
    let fits = |k: &&Jwk| {
        k.common
            .key_algorithm
            .is_none_or(|a| a.to_string() == format!("{alg:?}"))
    };
    let jwk = match kid {
        Some(kid) => keys.find(kid).filter(fits),
        None => {
            let mut usable = keys.keys.iter().filter(fits);
            usable.next().filter(|_| usable.next().is_none())
        }
    }?;
    DecodingKey::from_jwk(jwk).ok()
}

/// The token's signature, issuer, audience and times.
fn verify(token: &str, key: &DecodingKey, alg: Algorithm, client: &Client<'_>, now: i64) -> Result<Claims, SsoError> {
    let mut validation = Validation::new(alg);
    validation.set_issuer(&[client.issuer]);
    validation.set_audience(&[client.client_id]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    validation.leeway = SKEW_SECS;
    let data = jsonwebtoken::decode::<Claims>(token, key, &validation).map_err(|e| match e.kind() {
        ErrorKind::InvalidSignature => SsoError::BadSignature,
        ErrorKind::ExpiredSignature | ErrorKind::ImmatureSignature => SsoError::Expired,
        ErrorKind::InvalidAudience => SsoError::WrongAudience,
        ErrorKind::InvalidIssuer => SsoError::WrongIssuer,
        _ => SsoError::InvalidToken(e.to_string()),
    })?;
    let claims = data.claims;
    match claims.iat {
        Some(iat) if iat <= now + SKEW_SECS as i64 => Ok(claims),
        Some(_) => Err(SsoError::Expired),
        None => Err(SsoError::InvalidToken("it has no iat (issued at) claim".into())),
    }
}

async fn read_capped(mut resp: reqwest::Response) -> Result<Vec<u8>, SsoError> {
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| SsoError::Unreachable(error_chain(&e)))? {
        if body.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err(SsoError::NotAProvider(format!(
                "it sent an answer larger than {} KiB",
                MAX_ANSWER_BYTES / 1024
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// An error with its causes, which say what actually went wrong (refused
/// address, connection refused, timeout).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

//! Checks the OpenID Connect provider fixture (tests/common/oidc.rs and
//! tests/fixtures/oidc-provider) with a relying party written out by hand,
//! so that a failing single sign-on test can be blamed on auditlog rather
//! than on the provider it signs in against.

#[path = "common/oidc.rs"]
mod oidc;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use serde_json::Value;
use url::Url;

const REDIRECT: &str = "http://127.0.0.1:1/callback";

// The verifier and S256 challenge of RFC 7636, Appendix B: a known answer,
// as SHA-256 (sha2) is no dependency of this crate.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

/// The relying party's side of one provider: its discovery document.
struct Rp<'a> {
    provider: &'a oidc::Provider,
    http: reqwest::Client,
    discovery: Value,
}

/// One sign-in's outcome: the callback's query and, when it had a code,
/// the ID token's header and claims.
struct SignIn {
    callback: HashMap<String, String>,
    state: String,
    nonce: String,
    header: Value,
    claims: Value,
}

fn unique(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
    format!("{prefix}-{nanos}-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

fn jwt_part(jwt: &str, index: usize) -> Value {
    let part = jwt.split('.').nth(index).expect("a JWT has three parts");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("JSON")
}

impl<'a> Rp<'a> {
    async fn discover(provider: &'a oidc::Provider) -> Rp<'a> {
        let http = reqwest::Client::new();
        let discovery: Value = http
            .get(format!("{}/.well-known/openid-configuration", provider.issuer))
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap()
            .json()
            .await
            .unwrap();
        Rp {
            provider,
            http,
            discovery,
        }
    }

    fn endpoint(&self, name: &str) -> &str {
        self.discovery[name]
            .as_str()
            .unwrap_or_else(|| panic!("discovery has {name}"))
    }

    fn authorization_url(&self, client_id: &str, state: &str, nonce: &str) -> String {
        let mut url = Url::parse(self.endpoint("authorization_endpoint")).unwrap();
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", client_id)
            .append_pair("redirect_uri", REDIRECT)
            .append_pair("scope", "openid email")
            .append_pair("state", state)
            .append_pair("nonce", nonce)
            .append_pair("code_challenge", CHALLENGE)
            .append_pair("code_challenge_method", "S256");
        url.into()
    }

    async fn jwks(&self) -> Value {
        self.http
            .get(self.endpoint("jwks_uri"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Signs in as `login` and, given a code, redeems it.
    async fn sign_in(&self, login: &str, client: (&str, &str)) -> SignIn {
        let state = unique("state");
        let nonce = unique("nonce");
        let url = self.authorization_url(client.0, &state, &nonce);
        let landed = self.provider.sign_in(&url, login).await;
        assert!(landed.starts_with(REDIRECT), "{landed} is not at the redirect URI");
        let callback: HashMap<String, String> = Url::parse(&landed).unwrap().query_pairs().into_owned().collect();
        let mut out = SignIn {
            callback,
            state,
            nonce,
            header: Value::Null,
            claims: Value::Null,
        };
        let Some(code) = out.callback.get("code") else {
            return out;
        };
        let body = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "authorization_code")
            .append_pair("code", code)
            .append_pair("redirect_uri", REDIRECT)
            .append_pair("code_verifier", VERIFIER)
            .finish();
        let resp = self
            .http
            .post(self.endpoint("token_endpoint"))
            .basic_auth(client.0, Some(client.1))
            .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let tokens: Value = resp.json().await.unwrap();
        assert_eq!(status, 200, "token endpoint: {tokens}");
        let id_token = tokens["id_token"].as_str().expect("an ID token");
        out.header = jwt_part(id_token, 0);
        out.claims = jwt_part(id_token, 1);
        out
    }
}

const TEST_CLIENT: (&str, &str) = ("auditlog-test", "test-secret");

#[tokio::test]
async fn a_sign_in_yields_an_id_token_with_the_email() {
    let Some(provider) = oidc::start(&[REDIRECT], "RS256").await else {
        return;
    };
    let rp = Rp::discover(&provider).await;
    assert_eq!(rp.discovery["issuer"], provider.issuer.as_str());
    assert!(!provider.issuer.ends_with('/'));
    for (name, path) in [
        ("authorization_endpoint", "/auth"),
        ("token_endpoint", "/token"),
        ("jwks_uri", "/jwks"),
        ("userinfo_endpoint", "/me"),
        ("end_session_endpoint", "/session/end"),
    ] {
        assert_eq!(rp.endpoint(name), format!("{}{path}", provider.issuer));
    }
    assert_eq!(
        rp.discovery["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );

    let signed_in = rp.sign_in("ada@acme.com", TEST_CLIENT).await;
    assert_eq!(signed_in.callback["state"], signed_in.state);
    assert_eq!(signed_in.callback["iss"], provider.issuer);
    let claims = &signed_in.claims;
    assert_eq!(claims["iss"], provider.issuer.as_str());
    assert_eq!(claims["sub"], "ada@acme.com");
    assert_eq!(claims["email"], "ada@acme.com");
    assert_eq!(claims["email_verified"], true);
    assert_eq!(claims["nonce"], signed_in.nonce.as_str());
    assert_eq!(claims["aud"], "auditlog-test");
    assert!(claims["exp"].as_i64().unwrap() > now());
    assert_eq!(signed_in.header["alg"], "RS256");
    let jwks = rp.jwks().await;
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert!(kids.contains(&signed_in.header["kid"].as_str().unwrap()), "{jwks}");
    let kinds: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kty"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"RSA") && kinds.contains(&"EC"), "{jwks}");

    let requests = provider.requests().await;
    assert_eq!(requests["/.well-known/openid-configuration"], 1, "{requests}");
    assert_eq!(requests["/auth"], 1, "{requests}");
    assert_eq!(requests["/token"], 1, "{requests}");
    assert_eq!(requests["/jwks"], 1, "{requests}");
    assert!(
        requests
            .as_object()
            .unwrap()
            .keys()
            .all(|path| !path.starts_with("/__test"))
    );

    // A PKCE verifier that does not match is refused: PKCE is enforced.
    let state = unique("state");
    let landed = provider
        .sign_in(&rp.authorization_url("auditlog-test", &state, "n"), "ada@acme.com")
        .await;
    let code = Url::parse(&landed)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let body = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "authorization_code")
        .append_pair("code", &code)
        .append_pair("redirect_uri", REDIRECT)
        .append_pair("code_verifier", &"x".repeat(43))
        .finish();
    let resp = rp
        .http
        .post(rp.endpoint("token_endpoint"))
        .basic_auth("auditlog-test", Some("test-secret"))
        .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(resp.json::<Value>().await.unwrap()["error"], "invalid_grant");
}

#[tokio::test]
async fn the_accounts_carry_their_email_claims() {
    let Some(provider) = oidc::start(&["http://127.0.0.1:2/elsewhere", REDIRECT], "RS256").await else {
        return;
    };
    let rp = Rp::discover(&provider).await;
    for login in ["owner@acme.com", "new@acme.com", "eve@evil.example"] {
        let claims = rp.sign_in(login, TEST_CLIENT).await.claims;
        assert_eq!(claims["email"], login);
        assert_eq!(claims["email_verified"], true);
    }
    let claims = rp.sign_in("unverified@acme.com", TEST_CLIENT).await.claims;
    assert_eq!(claims["email"], "unverified@acme.com");
    assert_eq!(claims["email_verified"], false);
    let claims = rp.sign_in("noemail@acme.com", TEST_CLIENT).await.claims;
    assert_eq!(claims["sub"], "noemail@acme.com");
    assert!(
        claims.get("email").is_none() && claims.get("email_verified").is_none(),
        "{claims}"
    );

    // The second client gives tokens meant for someone else.
    let claims = rp
        .sign_in("ada@acme.com", ("other-client", "other-secret"))
        .await
        .claims;
    assert_eq!(claims["aud"], "other-client");
}

#[tokio::test]
async fn es256_signs_with_the_p256_key() {
    let Some(provider) = oidc::start(&[REDIRECT], "ES256").await else {
        return;
    };
    let rp = Rp::discover(&provider).await;
    let signed_in = rp.sign_in("ada@acme.com", TEST_CLIENT).await;
    assert_eq!(signed_in.header["alg"], "ES256");
    let jwks = rp.jwks().await;
    let key = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == signed_in.header["kid"])
        .expect("the signing key is published");
    assert_eq!(key["kty"], "EC");
    assert_eq!(key["crv"], "P-256");
    assert!(key.get("d").is_none(), "the JWKS leaks a private key: {key}");
}

#[tokio::test]
async fn modes_spoil_the_id_token_as_asked() {
    let Some(provider) = oidc::start(&[REDIRECT], "RS256").await else {
        return;
    };
    let rp = Rp::discover(&provider).await;
    let normal = rp.sign_in("ada@acme.com", TEST_CLIENT).await;

    provider.set_mode("expired").await;
    let claims = rp.sign_in("ada@acme.com", TEST_CLIENT).await.claims;
    let exp = claims["exp"].as_i64().unwrap();
    assert!(exp < now() - 3600, "{claims}");
    assert!(claims["iat"].as_i64().unwrap() < now() - 3600, "{claims}");

    provider.set_mode("wrong_audience").await;
    assert_eq!(
        rp.sign_in("ada@acme.com", TEST_CLIENT).await.claims["aud"],
        "other-client"
    );

    provider.set_mode("wrong_nonce").await;
    let signed_in = rp.sign_in("ada@acme.com", TEST_CLIENT).await;
    assert_ne!(signed_in.claims["nonce"], signed_in.nonce.as_str());

    provider.set_mode("wrong_issuer").await;
    let claims = rp.sign_in("ada@acme.com", TEST_CLIENT).await.claims;
    assert_ne!(claims["iss"], provider.issuer.as_str());

    provider.set_mode("unverified_email").await;
    let claims = rp.sign_in("ada@acme.com", TEST_CLIENT).await.claims;
    assert_eq!(
        (&claims["email"], &claims["email_verified"]),
        (&"ada@acme.com".into(), &false.into())
    );

    provider.set_mode("no_email").await;
    let claims = rp.sign_in("ada@acme.com", TEST_CLIENT).await.claims;
    assert!(
        claims.get("email").is_none() && claims.get("email_verified").is_none(),
        "{claims}"
    );

    // Same published kid, other signature: only a signature check tells.
    provider.set_mode("wrong_key").await;
    let header = rp.sign_in("ada@acme.com", TEST_CLIENT).await.header;
    assert_eq!(header["kid"], normal.header["kid"]);
    assert_eq!(header["alg"], "RS256");

    provider.set_mode("normal").await;
    let claims = rp.sign_in("ada@acme.com", TEST_CLIENT).await.claims;
    assert_eq!(claims["aud"], "auditlog-test");
    assert_eq!(claims["email_verified"], true);
}

#[tokio::test]
async fn rotation_replaces_the_published_key() {
    let Some(provider) = oidc::start(&[REDIRECT], "RS256").await else {
        return;
    };
    let rp = Rp::discover(&provider).await;
    let before = rp.sign_in("ada@acme.com", TEST_CLIENT).await.header["kid"].clone();
    let new_kid = provider.rotate().await;
    assert_ne!(before, new_kid.as_str());
    let jwks = rp.jwks().await;
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert!(
        kids.contains(&new_kid.as_str()) && !kids.contains(&before.as_str().unwrap()),
        "{jwks}"
    );
    assert_eq!(kids.len(), 2, "the P-256 key stays: {jwks}");
    assert_eq!(
        rp.sign_in("ada@acme.com", TEST_CLIENT).await.header["kid"],
        new_kid.as_str()
    );
}

#[tokio::test]
async fn fail_next_sends_the_error_back_once() {
    let Some(provider) = oidc::start(&[REDIRECT], "RS256").await else {
        return;
    };
    let rp = Rp::discover(&provider).await;
    provider.fail_next("access_denied").await;
    let failed = rp.sign_in("ada@acme.com", TEST_CLIENT).await;
    assert_eq!(failed.callback["error"], "access_denied");
    assert!(failed.callback.contains_key("error_description"));
    assert_eq!(failed.callback["state"], failed.state);
    assert!(!failed.callback.contains_key("code"));
    assert_eq!(
        rp.sign_in("ada@acme.com", TEST_CLIENT).await.claims["email"],
        "ada@acme.com"
    );
}

#[tokio::test]
async fn not_oidc_answers_404_everywhere() {
    let Some(provider) = oidc::start_not_oidc().await else {
        return;
    };
    let resp = reqwest::get(format!("{}/.well-known/openid-configuration", provider.issuer))
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert_eq!(provider.requests().await["/.well-known/openid-configuration"], 1);
}

//! A real OpenID Connect provider for the single sign-on tests: starts the
//! oidc-provider fixture (tests/fixtures/oidc-provider), signs in on its login
//! page as a browser would, and reaches its /__test/ controls, so tests run
//! auditlog against a certified implementation rather than a mock.

#![allow(dead_code)]

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use reqwest::header::{CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use url::Url;

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/oidc-provider");

/// A running provider; the Node.js process ends when this is dropped.
pub struct Provider {
    /// `http://127.0.0.1:<port>`, no trailing slash; discovery is at
    /// `{issuer}/.well-known/openid-configuration`.
    pub issuer: String,
    http: reqwest::Client,
    child: Child,
    // The server exits when this pipe closes, which also covers a test
    // process that dies without running Drop.
    stdin: Option<ChildStdin>,
    log: tempfile::NamedTempFile,
}

impl Drop for Provider {
    fn drop(&mut self) {
        self.stdin.take();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts a provider whose clients `auditlog-test` (secret `test-secret`)
/// and `other-client` (`other-secret`) accept exactly `redirect_uris`, and
/// sign their ID tokens with `alg` (`RS256` or `ES256`). `None`, after a loud
/// message, when Node.js or npm is missing, except under `CI=true`, where
/// that is a failure.
pub async fn start(redirect_uris: &[&str], alg: &str) -> Option<Provider> {
    launch(vec![
        ("REDIRECT_URIS", redirect_uris.join(",")),
        ("ID_TOKEN_ALG", alg.to_owned()),
    ])
    .await
}

/// Starts the same server answering 404 HTML on every path but /__test/,
/// for an issuer that is no OpenID provider at all.
pub async fn start_not_oidc() -> Option<Provider> {
    launch(vec![("NOT_OIDC", "1".to_owned())]).await
}

async fn launch(env: Vec<(&'static str, String)>) -> Option<Provider> {
    auditlog_server::init_tls();
    let (node, npm) = super::node::tools("the OpenID Connect tests (tests/fixtures/oidc-provider)")?;
    let provider = tokio::task::spawn_blocking(move || {
        super::node::npm_ci(&npm, Path::new(FIXTURE));
        spawn(&node, &env)
    })
    .await
    .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
    Some(provider)
}

fn spawn(node: &Path, env: &[(&'static str, String)]) -> Provider {
    let log = tempfile::NamedTempFile::new().expect("a temporary file for the provider's log");
    let mut child = Command::new(node)
        .arg("server.mjs")
        .current_dir(FIXTURE)
        .env("PORT", "0")
        .env("EXIT_ON_STDIN_CLOSE", "1")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(log.reopen().expect("the log file opens again"))
        .spawn()
        .expect("node starts");
    let stdin = child.stdin.take();
    let stdout = child.stdout.take().expect("piped stdout");
    // The reader keeps draining stdout after the issuer line so the server
    // never writes into a closed pipe.
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(issuer) = serde_json::from_str::<serde_json::Value>(&line)
                .ok()
                .and_then(|v| v["issuer"].as_str().map(str::to_owned))
                && let Some(tx) = tx.take()
            {
                let _ = tx.send(issuer);
            }
        }
    });
    let issuer = match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(issuer) => issuer,
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the OpenID provider fixture did not print its issuer; its log:\n{}",
                read_log(log.path())
            );
        }
    };
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("an HTTP client");
    Provider {
        issuer,
        http,
        child,
        stdin,
        log,
    }
}

fn read_log(path: &Path) -> String {
    let mut text = String::new();
    let _ = File::open(path).and_then(|mut f| f.read_to_string(&mut text));
    text
}

impl Provider {
    /// What the server wrote to stderr so far, for a failing test's message.
    pub fn log(&self) -> String {
        read_log(self.log.path())
    }

    /// Requests received per path since start (the /__test/ ones excluded),
    /// e.g. `{"/.well-known/openid-configuration": 1, "/jwks": 1}`.
    pub async fn requests(&self) -> serde_json::Value {
        let resp = self
            .http
            .get(format!("{}/__test/requests", self.issuer))
            .send()
            .await
            .expect("the provider answers");
        assert_eq!(resp.status(), 200);
        resp.json().await.expect("JSON")
    }

    /// How the ID tokens issued from now on are made, until the next call:
    /// `normal`, `wrong_key`, `expired`, `wrong_audience`, `wrong_nonce`,
    /// `wrong_issuer`, `unverified_email` or `no_email`.
    pub async fn set_mode(&self, mode: &str) {
        self.control("mode", serde_json::json!({ "mode": mode })).await;
    }

    /// Replaces the signing key of the ID tokens' algorithm with one under a
    /// new kid, published in place of the old one; returns the new kid.
    pub async fn rotate(&self) -> String {
        let answer = self.control("rotate", serde_json::json!({})).await;
        answer["kid"].as_str().expect("the new kid").to_owned()
    }

    /// Makes the next authorization request redirect straight back with
    /// `error` (e.g. `access_denied`), an error_description and the state.
    pub async fn fail_next(&self, error: &str) {
        self.control("error", serde_json::json!({ "error": error })).await;
    }

    async fn control(&self, what: &str, body: serde_json::Value) -> serde_json::Value {
        let resp = self
            .http
            .post(format!("{}/__test/{what}", self.issuer))
            .json(&body)
            .send()
            .await
            .expect("the provider answers");
        let status = resp.status();
        let answer: serde_json::Value = resp.json().await.expect("JSON");
        assert_eq!(status, 200, "/__test/{what} refused {body}: {answer}");
        answer
    }

    /// Follows `authorization_url` (the provider's, as auditlog redirected
    /// to it) through the login form as a browser would, signing in as
    /// `login` (any password), and returns the redirect that leaves the
    /// provider (the redirect URI with `code` and `state`, or `error`)
    /// without requesting it.
    pub async fn sign_in(&self, authorization_url: &str, login: &str) -> String {
        let issuer = Url::parse(&self.issuer).expect("the issuer is a URL");
        let mut url = Url::parse(authorization_url).expect("the authorization URL is a URL");
        assert_eq!(
            url.origin(),
            issuer.origin(),
            "sign_in starts at the provider, not at {authorization_url}"
        );
        let mut jar = Jar::default();
        let mut form_sent = false;
        for _ in 0..20 {
            let resp = jar
                .attach(self.http.get(url.clone()), &url)
                .send()
                .await
                .expect("the provider answers");
            jar.store(&url, &resp);
            let resp = if resp.status().is_redirection() {
                resp
            } else {
                let status = resp.status();
                let page = resp.text().await.unwrap_or_default();
                let Some(action) = (status == 200 && !form_sent).then(|| form_action(&page)).flatten() else {
                    panic!(
                        "the provider answered {url} with {status}:\n{page}\nits log:\n{}",
                        self.log()
                    );
                };
                form_sent = true;
                let target = url.join(&action).expect("the form's action is a URL");
                let body = url::form_urlencoded::Serializer::new(String::new())
                    .append_pair("login", login)
                    .append_pair("password", "any password")
                    .finish();
                let resp = jar
                    .attach(self.http.post(target.clone()), &target)
                    .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .body(body)
                    .send()
                    .await
                    .expect("the provider answers");
                jar.store(&target, &resp);
                if !resp.status().is_redirection() {
                    let status = resp.status();
                    let page = resp.text().await.unwrap_or_default();
                    panic!("signing in as {login} at {target} got {status}:\n{page}");
                }
                resp
            };
            let location = resp
                .headers()
                .get(LOCATION)
                .and_then(|v| v.to_str().ok())
                .expect("a redirect has a Location");
            let next = url.join(location).expect("Location is a URL");
            if next.origin() != issuer.origin() {
                return next.into();
            }
            url = next;
        }
        panic!("the provider kept redirecting; last at {url}");
    }
}

/// The `action` of the login page's form.
fn form_action(page: &str) -> Option<String> {
    let form = &page[page.find("<form")?..];
    let form = &form[..form.find('>')?];
    let start = form.find("action=\"")? + "action=\"".len();
    let action = &form[start..];
    let action = &action[..action.find('"')?];
    Some(
        action
            .replace("&#38;", "&")
            .replace("&amp;", "&")
            .replace("&#34;", "\"")
            .replace("&#39;", "'"),
    )
}

/// Just enough of a browser's cookie handling for one host: paths and
/// deletion, which oidc-provider relies on; domains and expiry times it does
/// not.
#[derive(Default)]
struct Jar(Vec<Cookie>);

struct Cookie {
    name: String,
    value: String,
    path: String,
}

impl Jar {
    fn store(&mut self, url: &Url, resp: &reqwest::Response) {
        for header in resp.headers().get_all(SET_COOKIE) {
            let Ok(header) = header.to_str() else { continue };
            let mut parts = header.split(';').map(str::trim);
            let Some((name, value)) = parts.next().and_then(|p| p.split_once('=')) else {
                continue;
            };
            // RFC 6265's default path: the request path up to its last slash.
            let mut path = match url.path().rfind('/') {
                Some(0) | None => "/".to_owned(),
                Some(i) => url.path()[..i].to_owned(),
            };
            let mut gone = value.is_empty();
            for attribute in parts {
                let (key, val) = attribute.split_once('=').unwrap_or((attribute, ""));
                match key.to_ascii_lowercase().as_str() {
                    "path" if val.starts_with('/') => path = val.to_owned(),
                    "max-age" => gone |= val.parse::<i64>().is_ok_and(|s| s <= 0),
                    // Deletion sets the epoch; no cookie here is meant to
                    // outlive the test by a date.
                    "expires" => gone |= val.contains("1970"),
                    _ => {}
                }
            }
            self.0.retain(|c| !(c.name == name && c.path == path));
            if !gone {
                self.0.push(Cookie {
                    name: name.to_owned(),
                    value: value.to_owned(),
                    path,
                });
            }
        }
    }

    fn attach(&self, request: reqwest::RequestBuilder, url: &Url) -> reqwest::RequestBuilder {
        let path = url.path();
        let cookies = self
            .0
            .iter()
            .filter(|c| {
                path == c.path
                    || (path.starts_with(&c.path) && (c.path.ends_with('/') || path[c.path.len()..].starts_with('/')))
            })
            .map(|c| format!("{}={}", c.name, c.value))
            .collect::<Vec<_>>()
            .join("; ");
        if cookies.is_empty() {
            request
        } else {
            request.header(COOKIE, cookies)
        }
    }
}

//! Real Chromium for the browser tests, over WebDriver: finding it (or
//! skipping loudly), starting it, waiting on the page, and checking each
//! page with axe-core, the accessibility checker, from npm
//! (tests/fixtures/axe).

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use thirtyfour::{By, Capabilities, WebDriver};

use super::{Killed, free_port, skip_or_fail};

pub const WAIT: Duration = Duration::from_secs(15);

const AXE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/axe");

pub struct Tools {
    pub chromium: PathBuf,
    pub chromedriver: PathBuf,
}

fn find_tool(env: &str, names: &[&str]) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(env) {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |n| dir.join(n)))
        .find(|p| p.is_file())
}

/// The browser and its driver, or `None` (after saying so) to skip.
pub fn tools() -> Option<Tools> {
    let chromium = find_tool("AUDITLOG_CHROMIUM", &["chromium", "chromium-browser", "google-chrome"]);
    let chromedriver = find_tool("AUDITLOG_CHROMEDRIVER", &["chromedriver"]);
    match (chromium, chromedriver) {
        (Some(chromium), Some(chromedriver)) => Some(Tools { chromium, chromedriver }),
        _ => {
            skip_or_fail(
                "BROWSER TESTS SKIPPED: chromium and chromedriver are not installed \
                 (apt-get install chromium chromium-driver)",
            );
            None
        }
    }
}

pub async fn start_browser(tools: &Tools, downloads: &Path) -> (Killed, WebDriver) {
    let port = free_port();
    let driver = Killed(
        Command::new(&tools.chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver"),
    );
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(started.elapsed() < WAIT, "chromedriver did not start listening");
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut caps = Capabilities::new();
    caps.set("browserName", "chrome").unwrap();
    caps.set(
        "goog:chromeOptions",
        json!({
            "binary": tools.chromium,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1280,1000", "--lang=en-US"],
            "prefs": {
                "download.default_directory": downloads,
                "download.prompt_for_download": false,
            },
        }),
    )
    .unwrap();
    let client = WebDriver::new(format!("http://127.0.0.1:{port}"), caps)
        .await
        .expect("a Chromium session");
    (driver, client)
}

/// Waits until a JavaScript expression is true in the page.
pub async fn wait_until(c: &WebDriver, expr: &str) {
    let started = Instant::now();
    loop {
        let v = c
            .execute(format!("return !!({expr});"), Vec::<Value>::new())
            .await
            .unwrap()
            .json()
            .clone();
        if v == json!(true) {
            return;
        }
        if started.elapsed() >= WAIT {
            let at = c
                .execute(
                    "return location.href + '\\n' + document.body.innerText;",
                    Vec::<Value>::new(),
                )
                .await
                .map(|r| r.json().clone())
                .unwrap_or_default();
            panic!(
                "timed out waiting for `{expr}`; the page is at {}",
                at.as_str().unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn js(c: &WebDriver, script: &str) -> Value {
    c.execute(script.to_owned(), Vec::<Value>::new())
        .await
        .unwrap()
        .json()
        .clone()
}

pub async fn set_field(c: &WebDriver, id: &str, value: &str) {
    let el = c.find(By::Id(id)).await.unwrap();
    el.clear().await.unwrap();
    if !value.is_empty() {
        el.send_keys(value).await.unwrap();
    }
}

pub async fn url(c: &WebDriver) -> url::Url {
    c.current_url().await.unwrap()
}

/// Clicks the element `css` selects.
pub async fn click(c: &WebDriver, css: &str) {
    c.find(By::Css(css)).await.unwrap().click().await.unwrap();
}

/// The sign-in page's first step: the email, then Continue, which shows
/// the ways in for it.
pub async fn continue_with_email(c: &WebDriver, email: &str) {
    set_field(c, "email", email).await;
    click(c, "form button[type=submit]").await;
    wait_until(
        c,
        "document.querySelector('#password') && document.readyState === 'complete'",
    )
    .await;
}

/// Runs axe-core on the page as it is now and asserts it finds no
/// violation (WCAG 2.1 A and AA, and best practices). `what` names the page
/// in the failure.
pub async fn assert_accessible(c: &WebDriver, what: &str) {
    let source = axe_source();
    let script = format!(
        "{source}\nreturn axe.run(document, {{resultTypes: ['violations']}}).then(r => r.violations.map(v => ({{id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map(n => n.target.join(' '))}})));"
    );
    let violations = c.execute(script, Vec::<Value>::new()).await.unwrap().json().clone();
    assert_eq!(violations, json!([]), "axe-core finds violations on {what}");
}

/// axe-core's script, installed from the fixture's lockfile on first use.
fn axe_source() -> &'static str {
    static SOURCE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SOURCE.get_or_init(|| {
        let npm = super::node::npm().expect("npm is needed for axe-core (tests/fixtures/axe)");
        super::node::npm_ci(&npm, Path::new(AXE));
        std::fs::read_to_string(Path::new(AXE).join("node_modules/axe-core/axe.min.js")).expect("axe.min.js")
    })
}

/// Signs in through the form and waits for the page it leads to.
pub async fn sign_in(c: &WebDriver, base: &str, (email, password): &(String, String)) {
    c.goto(&format!("{base}/login")).await.unwrap();
    continue_with_email(c, email).await;
    set_field(c, "password", password).await;
    click(c, "form button[type=submit]").await;
    wait_until(
        c,
        "!location.pathname.startsWith('/login') && document.readyState === 'complete'",
    )
    .await;
}

/// Into cargo's scratch directory for integration tests (inside whatever
/// target directory the build uses), and into `docs/` when asked.
pub fn save_screenshot(name: &str, png: &[u8]) {
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::write(&target, png).unwrap();
    eprintln!("screenshot: {}", target.display());
    if std::env::var("AUDITLOG_UPDATE_SCREENSHOTS").is_ok_and(|v| v == "1") {
        let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs");
        std::fs::write(docs.join(name), png).unwrap();
    }
}

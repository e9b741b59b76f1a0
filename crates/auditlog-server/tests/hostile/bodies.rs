//! Findings 2 and 4: request bodies as a weapon.
//!
//! Finding 2: `POST /v1/session` declaring 19 MiB, sent slowly from 300
//! connections, took the server to 7.9 GB, because every route buffered up
//! to 20 MiB before the sign-in limiter ran. Now routes open to strangers
//! take a few KiB and refuse a larger declared length before reading, a
//! chunked body is cut at the same limit, rate limits and authentication
//! come before an ingest body is read, and all bodies in flight share a
//! memory budget (past it, a wait, then 503).
//!
//! Finding 4: bodies sent a byte every 4 s held every connection slot.
//! Now a body must arrive within a timeout and at a minimum pace.
//!
//! Every test talks raw HTTP over a socket, so that what is sent (and what
//! is not) is exactly what the test says. None waits on a clock of its own
//! for the server to act: each waits for the server's answer, with small
//! limits configured so that answer comes early.

use std::time::Duration;

use auditlog_domain::rate_limit::Rate;
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

use crate::helpers::*;

/// How long a test waits for an answer before it fails: a guard against
/// hanging, far beyond the limits the tests configure.
const PATIENCE: Duration = Duration::from_secs(60);
/// The request timeout in these tests. Without a fix under test, the server
/// waits on the body this long and answers 503 `timeout` instead.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// A raw connection and what has been read from it but not yet used.
struct Conn {
    reader: OwnedReadHalf,
    /// Taken by a task that trickles a body while the test reads.
    writer: Option<OwnedWriteHalf>,
    pending: Vec<u8>,
}

#[derive(Debug)]
struct Answer {
    status: u16,
    head: String,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }

    fn code(&self) -> String {
        error_code(&self.json())
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

impl Conn {
    async fn open(app: &TestApp) -> Self {
        let stream = TcpStream::connect(app.base.trim_start_matches("http://"))
            .await
            .expect("connect");
        let (reader, writer) = stream.into_split();
        Self {
            reader,
            writer: Some(writer),
            pending: Vec::new(),
        }
    }

    /// Sends a request's line and headers (and `Host`), no body.
    async fn head(&mut self, method_path: &str, headers: &[(&str, String)]) {
        let mut text = format!("{method_path} HTTP/1.1\r\nHost: test\r\n");
        for (name, value) in headers {
            text.push_str(&format!("{name}: {value}\r\n"));
        }
        text.push_str("\r\n");
        self.send(text.as_bytes()).await;
    }

    async fn send(&mut self, bytes: &[u8]) {
        let writer = self.writer.as_mut().expect("the writer is still here");
        writer.write_all(bytes).await.expect("write");
    }

    /// The next answer's head (a `100 Continue` included).
    async fn next_head(&mut self) -> (u16, String) {
        let end = loop {
            if let Some(i) = self.pending.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            self.fill().await;
        };
        let head = String::from_utf8_lossy(&self.pending[..end]).into_owned();
        self.pending.drain(..end);
        let status = head.get(9..12).and_then(|s| s.parse().ok()).expect("a status line");
        (status, head)
    }

    async fn fill(&mut self) {
        let mut chunk = [0u8; 4096];
        let n = read_some(&mut self.reader, &mut chunk).await;
        assert!(
            n > 0,
            "closed before an answer; had {:?}",
            String::from_utf8_lossy(&self.pending)
        );
        self.pending.extend_from_slice(&chunk[..n]);
    }

    /// Waits for the `100 Continue` that says the server has started to
    /// read this request's body (and so holds its room under the budget).
    async fn reading_started(&mut self) {
        let (status, head) = tokio::time::timeout(PATIENCE, self.next_head())
            .await
            .expect("an interim answer in time");
        assert_eq!(status, 100, "{head}");
    }

    /// The final answer, whole.
    async fn answer(&mut self) -> Answer {
        tokio::time::timeout(PATIENCE, async {
            loop {
                let (status, head) = self.next_head().await;
                if status == 100 {
                    continue;
                }
                let answer = Answer {
                    status,
                    head,
                    body: String::new(),
                };
                let length: usize = answer.header("content-length").map_or(0, |v| v.parse().unwrap());
                while self.pending.len() < length {
                    self.fill().await;
                }
                let body = String::from_utf8_lossy(&self.pending[..length]).into_owned();
                self.pending.drain(..length);
                return Answer { body, ..answer };
            }
        })
        .await
        .expect("an answer in time")
    }

    /// Whether the server has closed the connection (after its answer).
    async fn closed(&mut self) -> bool {
        let mut chunk = [0u8; 64];
        matches!(
            tokio::time::timeout(PATIENCE, self.reader.read(&mut chunk)).await,
            Ok(Ok(0) | Err(_))
        )
    }
}

async fn read_some(reader: &mut (impl AsyncRead + Unpin), buf: &mut [u8]) -> usize {
    // A reset after the answer counts as closed, like an orderly close.
    reader.read(buf).await.unwrap_or(0)
}

fn one_event() -> String {
    event("a@acme.com", "guardrail.enabled", ("guardrail", "g1")).to_string()
}

fn ingest_headers(app: &TestApp, length: usize) -> Vec<(&'static str, String)> {
    vec![
        ("Authorization", format!("Bearer {}", app.keys.write)),
        ("Content-Type", "application/json".into()),
        ("Content-Length", length.to_string()),
    ]
}

/// Sends one event to ingest, whole; the answer.
async fn ingest_whole(app: &TestApp) -> Answer {
    let body = one_event();
    let mut conn = Conn::open(app).await;
    conn.head("POST /v1/orgs/acme/audit/events", &ingest_headers(app, body.len()))
        .await;
    conn.send(body.as_bytes()).await;
    conn.answer().await
}

#[tokio::test]
async fn sign_in_declaring_a_large_body_is_refused_before_it_is_sent() {
    let app = spawn_app_with(|c| c.request_timeout = REQUEST_TIMEOUT).await;
    for (path, kind) in [
        ("/v1/session", "application/json"),
        ("/login", "application/x-www-form-urlencoded"),
    ] {
        let mut conn = Conn::open(&app).await;
        // The finding's request: 19 MiB declared. Not a byte of it is sent.
        conn.head(
            &format!("POST {path}"),
            &[("Content-Type", kind.into()), ("Content-Length", "19922945".into())],
        )
        .await;
        let answer = conn.answer().await;
        assert_eq!(answer.status, 413, "{path}: {answer:?}");
        assert_eq!(answer.code(), "payload_too_large");
        assert!(answer.body.contains("8192 bytes"), "{}", answer.body);
        assert!(
            conn.closed().await,
            "{path}: the connection is closed after the refusal"
        );
    }
}

#[tokio::test]
async fn a_chunked_sign_in_is_cut_at_the_small_limit() {
    let app = spawn_app_with(|c| c.request_timeout = REQUEST_TIMEOUT).await;
    let mut conn = Conn::open(&app).await;
    conn.head(
        "POST /v1/session",
        &[
            ("Content-Type", "application/json".into()),
            ("Transfer-Encoding", "chunked".into()),
        ],
    )
    .await;
    // 9 KiB in one chunk, then the end: whole, it would be read and
    // refused as invalid JSON.
    let chunk = "a".repeat(9 * 1024);
    conn.send(format!("{:x}\r\n{chunk}\r\n0\r\n\r\n", chunk.len()).as_bytes())
        .await;
    let answer = conn.answer().await;
    assert_eq!(answer.status, 413, "{answer:?}");
    assert_eq!(answer.code(), "payload_too_large");
}

#[tokio::test]
async fn ingest_over_its_rate_is_refused_before_its_body_is_read() {
    let app = spawn_app_with(|c| {
        c.request_timeout = REQUEST_TIMEOUT;
        c.rate_limits.ingest_per_key = Rate {
            per_second: 0.001,
            burst: 1.0,
        };
    })
    .await;
    assert_eq!(ingest_whole(&app).await.status, 201);
    // Over the rate: the answer comes without the body being sent.
    let mut conn = Conn::open(&app).await;
    conn.head("POST /v1/orgs/acme/audit/events", &ingest_headers(&app, 1_000_000))
        .await;
    let answer = conn.answer().await;
    assert_eq!(answer.status, 429, "{answer:?}");
    assert_eq!(answer.code(), "too_many_requests");
}

#[tokio::test]
async fn ingest_without_a_valid_key_is_refused_before_its_body_is_read() {
    let app = spawn_app_with(|c| c.request_timeout = REQUEST_TIMEOUT).await;
    let mut conn = Conn::open(&app).await;
    conn.head(
        "POST /v1/orgs/acme/audit/events",
        &[
            ("Authorization", "Bearer lqt_notakey_0000000000000000".into()),
            ("Content-Type", "application/json".into()),
            ("Content-Length", "19922945".into()),
        ],
    )
    .await;
    let answer = conn.answer().await;
    assert_eq!(answer.status, 401, "{answer:?}");
}

/// Starts an ingest request declaring `length` bytes, with
/// `Expect: 100-continue`, and returns once the server has started reading
/// its body: from then on it holds `length` bytes of the budget.
async fn holding(app: &TestApp, length: usize) -> Conn {
    let mut conn = Conn::open(app).await;
    let mut headers = ingest_headers(app, length);
    headers.push(("Expect", "100-continue".into()));
    conn.head("POST /v1/orgs/acme/audit/events", &headers).await;
    conn.reading_started().await;
    conn
}

/// Sends the rest of a held request's body, padded with spaces to its
/// declared length, and insists it is recorded.
async fn finish(mut conn: Conn, length: usize) {
    let body = format!("{:<length$}", one_event());
    conn.send(body.as_bytes()).await;
    let answer = conn.answer().await;
    assert_eq!(answer.status, 201, "{answer:?}");
}

#[tokio::test]
async fn bodies_in_flight_share_a_budget_and_a_request_past_it_gets_503() {
    let app = spawn_app_with(|c| {
        c.request_timeout = REQUEST_TIMEOUT;
        c.bodies.budget_bytes = 1000;
        c.bodies.budget_wait = Duration::from_millis(100);
    })
    .await;
    let held = holding(&app, 800).await;
    // 800 + 400 > 1000: this one finds no room in time.
    let body = format!("{:<400}", one_event());
    let mut conn = Conn::open(&app).await;
    conn.head("POST /v1/orgs/acme/audit/events", &ingest_headers(&app, body.len()))
        .await;
    conn.send(body.as_bytes()).await;
    let answer = conn.answer().await;
    assert_eq!(answer.status, 503, "{answer:?}");
    assert_eq!(answer.code(), "overloaded");
    assert!(answer.header("retry-after").is_some(), "{answer:?}");
    // Once the first is done its room is given back.
    finish(held, 800).await;
    let answer = ingest_whole(&app).await;
    assert_eq!(answer.status, 201, "{answer:?}");
}

#[tokio::test]
async fn a_request_waits_for_room_under_the_budget_as_long_as_configured() {
    let app = spawn_app_with(|c| {
        c.request_timeout = REQUEST_TIMEOUT;
        c.bodies.budget_bytes = 1000;
        c.bodies.budget_wait = Duration::from_secs(30);
    })
    .await;
    let held = holding(&app, 800).await;
    let (answer, ()) = tokio::join!(holding_later(&app, 800), async {
        // Longer than the default wait, which would have refused it by now.
        tokio::time::sleep(Duration::from_millis(2500)).await;
        finish(held, 800).await;
    });
    assert_eq!(answer.status, 201, "{answer:?}");
}

/// Sends a whole request of `length` bytes to ingest and waits for its
/// answer, however long the server makes it wait for room.
async fn holding_later(app: &TestApp, length: usize) -> Answer {
    let body = format!("{:<length$}", one_event());
    let mut conn = Conn::open(app).await;
    conn.head("POST /v1/orgs/acme/audit/events", &ingest_headers(app, length))
        .await;
    conn.send(body.as_bytes()).await;
    conn.answer().await
}

#[tokio::test]
async fn a_body_that_stops_arriving_is_dropped_at_the_body_timeout() {
    let app = spawn_app_with(|c| {
        c.request_timeout = REQUEST_TIMEOUT;
        c.bodies.timeout = Duration::from_millis(500);
        // Only the timeout is under test.
        c.bodies.min_rate = 0;
    })
    .await;
    let mut conn = Conn::open(&app).await;
    conn.head("POST /v1/orgs/acme/audit/events", &ingest_headers(&app, 1000))
        .await;
    conn.send(b"{\"event\": ").await;
    let answer = conn.answer().await;
    assert_eq!(answer.status, 408, "{answer:?}");
    assert_eq!(answer.code(), "body_timeout");
    assert!(conn.closed().await, "the connection is closed");
}

#[tokio::test]
async fn a_body_trickling_below_the_minimum_rate_is_dropped() {
    let app = spawn_app_with(|c| {
        c.request_timeout = REQUEST_TIMEOUT;
        c.bodies.timeout = Duration::from_secs(600);
        c.bodies.min_rate = 1000;
        c.bodies.rate_grace = Duration::from_millis(200);
    })
    .await;
    let mut conn = Conn::open(&app).await;
    conn.head(
        "POST /v1/session",
        &[
            ("Content-Type", "application/json".into()),
            ("Content-Length", "4000".into()),
        ],
    )
    .await;
    let mut writer = conn.writer.take().expect("the writer");
    // A byte every 50 ms (20 bytes/s) until the server gives up; bounded by
    // the body's length.
    let trickle = tokio::spawn(async move {
        for _ in 0..4000 {
            if writer.write_all(b" ").await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    let answer = conn.answer().await;
    trickle.abort();
    assert_eq!(answer.status, 408, "{answer:?}");
    assert_eq!(answer.code(), "body_timeout");
}

#[tokio::test]
async fn healthz_is_answered_while_slow_bodies_fill_every_connection_slot() {
    const SLOTS: usize = 8;
    let app = spawn_app_with(|c| {
        c.max_connections = SLOTS;
        c.request_timeout = Duration::from_secs(60);
        // Only the pace can free a slot early.
        c.bodies.timeout = Duration::from_secs(600);
        c.bodies.min_rate = 1000;
        c.bodies.rate_grace = Duration::from_millis(200);
    })
    .await;
    // The finding's attack: every slot holds a body sent a byte at a time.
    let mut attackers = Vec::new();
    for _ in 0..SLOTS {
        let mut conn = holding(&app, 1_000_000).await;
        conn.send(b"{").await;
        attackers.push(conn);
    }
    // Served once the pace drops an attacker; without it, only when the
    // request timeout ends one, long after this client's patience.
    let answer = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
        .get(app.url("/healthz"))
        .send()
        .await
        .expect("healthz answered while attackers hold the slots");
    assert_eq!(answer.status(), 200);
    for mut conn in attackers {
        assert_eq!(conn.answer().await.status, 408);
    }
}

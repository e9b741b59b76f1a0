//! A real webhook receiver for tests: an HTTP server on loopback that
//! forwards every request it gets into a channel, answers as the test tells
//! it (fail at random, be slow, say 410 or 429), and can be stopped and
//! started again on the same port.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: Bytes,
    /// What the receiver answered.
    pub status: u16,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Behaviour {
    Ok,
    /// Answer 500 to this fraction of requests, at random.
    FailFraction(f64),
    /// Answer after this long.
    Slow(Duration),
    Status(u16),
    TooManyRequests {
        retry_after_secs: u64,
    },
}

#[derive(Clone)]
struct Shared {
    tx: mpsc::UnboundedSender<Received>,
    behaviour: Arc<Mutex<Behaviour>>,
}

pub struct Receiver {
    pub addr: SocketAddr,
    pub rx: mpsc::UnboundedReceiver<Received>,
    shared: Shared,
    stop: Option<CancellationToken>,
}

async fn handle(State(s): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let behaviour = *s.behaviour.lock().unwrap();
    let (status, extra) = match behaviour {
        Behaviour::Ok => (200, None),
        Behaviour::FailFraction(f) => (if rand_fraction() < f { 500 } else { 200 }, None),
        Behaviour::Slow(d) => {
            tokio::time::sleep(d).await;
            (200, None)
        }
        Behaviour::Status(code) => (code, None),
        Behaviour::TooManyRequests { retry_after_secs } => (429, Some(retry_after_secs)),
    };
    let _ = s.tx.send(Received { headers, body, status });
    // A refusal says why, as receivers often do, for the delivery log's
    // excerpt of the answer.
    let said = if (200..300).contains(&status) {
        String::new()
    } else {
        format!("receiver says no: {status}")
    };
    let mut resp = (StatusCode::from_u16(status).unwrap(), said).into_response();
    if let Some(secs) = extra {
        resp.headers_mut().insert("retry-after", secs.into());
    }
    resp
}

fn rand_fraction() -> f64 {
    rand::random::<f64>()
}

impl Receiver {
    pub async fn start(behaviour: Behaviour) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let shared = Shared {
            tx,
            behaviour: Arc::new(Mutex::new(behaviour)),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut r = Self {
            addr,
            rx,
            shared,
            stop: None,
        };
        r.serve(listener);
        r
    }

    fn serve(&mut self, listener: tokio::net::TcpListener) {
        let stop = CancellationToken::new();
        let app = Router::new()
            .route("/hook", post(handle))
            .with_state(self.shared.clone());
        let token = stop.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(token.cancelled_owned())
                .await;
        });
        self.stop = Some(stop);
    }

    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    pub fn set(&self, b: Behaviour) {
        *self.shared.behaviour.lock().unwrap() = b;
    }

    /// Stops listening; deliveries meanwhile get connection errors.
    pub fn stop(&mut self) {
        if let Some(s) = self.stop.take() {
            s.cancel();
        }
    }

    /// Listens again on the same port.
    pub async fn restart(&mut self) {
        self.stop();
        let mut tries = 0;
        let listener = loop {
            match tokio::net::TcpListener::bind(self.addr).await {
                Ok(l) => break l,
                Err(_) if tries < 50 => {
                    tries += 1;
                    tokio::task::yield_now().await;
                }
                Err(e) => panic!("cannot listen again on {}: {e}", self.addr),
            }
        };
        self.serve(listener);
    }

    /// Everything received so far.
    pub fn drain(&mut self) -> Vec<Received> {
        let mut out = Vec::new();
        while let Ok(r) = self.rx.try_recv() {
            out.push(r);
        }
        out
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop();
    }
}

//! A syslog receiver over plain TCP for the API's stream tests: it reads
//! RFC 6587 octet-counted frames and keeps each message with the number of
//! the connection it came on. It can stop reading (to push back), close
//! every connection, or go away and come back on the same port. The real
//! daemons (rsyslog, syslog-ng, over TLS) are in the binary's tests.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

#[derive(Default)]
struct Shared {
    /// (connection number, message)
    messages: Mutex<Vec<(usize, String)>>,
    arrived: Notify,
    /// Connections accepted, across restarts.
    connections: std::sync::atomic::AtomicUsize,
    /// Close the next connection after reading this many bytes of it (0:
    /// never): a receiver that goes away in the middle of a message.
    cut_after: std::sync::atomic::AtomicUsize,
}

pub struct SyslogReceiver {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    reading: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl SyslogReceiver {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::on(listener, Arc::default())
    }

    fn on(listener: TcpListener, shared: Arc<Shared>) -> Self {
        let addr = listener.local_addr().unwrap();
        let (reading, watch) = watch::channel(true);
        let task = tokio::spawn(accept(listener, shared.clone(), watch));
        Self {
            addr,
            shared,
            reading,
            task: Some(task),
        }
    }

    pub fn url(&self) -> String {
        format!("syslog+tcp://{}", self.addr)
    }

    /// Stops (or resumes) reading from every connection.
    pub fn set_reading(&self, on: bool) {
        self.reading.send_replace(on);
    }

    /// Goes away: the listener and every connection close.
    pub fn stop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }

    /// Comes back on the same port, keeping what arrived before.
    pub async fn restart(&mut self) {
        self.stop();
        let listener = loop {
            match TcpListener::bind(self.addr).await {
                Ok(l) => break l,
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        };
        let shared = self.shared.clone();
        *self = Self::on(listener, shared);
    }

    /// Closes the next connection once it has read `bytes` bytes, whatever
    /// frame they end in.
    pub fn cut_next_connection_after(&self, bytes: usize) {
        self.shared.cut_after.store(bytes, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn messages(&self) -> Vec<(usize, String)> {
        self.shared.messages.lock().unwrap().clone()
    }

    /// Waits until `pred` holds of what arrived (or fails after a minute).
    pub async fn wait_for(&self, what: &str, pred: impl Fn(&[(usize, String)]) -> bool) -> Vec<(usize, String)> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let arrived = self.shared.arrived.notified();
            let got = self.messages();
            if pred(&got) {
                return got;
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                panic!("waited a minute for {what}; arrived: {} messages", got.len());
            }
        }
    }
}

impl Drop for SyslogReceiver {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn accept(listener: TcpListener, shared: Arc<Shared>, reading: watch::Receiver<bool>) {
    let mut connections = tokio::task::JoinSet::new();
    while let Ok((socket, _)) = listener.accept().await {
        let n = shared.connections.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        connections.spawn(read(socket, n, shared.clone(), reading.clone()));
    }
}

async fn read(mut socket: TcpStream, n: usize, shared: Arc<Shared>, mut reading: watch::Receiver<bool>) {
    let mut buf = Vec::new();
    let cut = shared.cut_after.swap(0, std::sync::atomic::Ordering::SeqCst);
    let mut chunk = vec![0u8; if cut > 0 { cut } else { 16 * 1024 }];
    loop {
        while !*reading.borrow_and_update() {
            if reading.changed().await.is_err() {
                return;
            }
        }
        match socket.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(k) => buf.extend_from_slice(&chunk[..k]),
        }
        if cut > 0 && buf.len() >= cut {
            // Gone mid-message: what was read of it is lost.
            return;
        }
        let mut got = Vec::new();
        while let Some((message, used)) = frame(&buf) {
            got.push((n, message));
            buf.drain(..used);
        }
        if !got.is_empty() {
            shared.messages.lock().unwrap().extend(got);
            shared.arrived.notify_waiters();
        }
    }
}

/// One octet-counted frame from the front of `buf`, and its length.
fn frame(buf: &[u8]) -> Option<(String, usize)> {
    let space = buf.iter().position(|&b| b == b' ')?;
    let len: usize = std::str::from_utf8(&buf[..space]).ok()?.parse().ok()?;
    let end = space + 1 + len;
    (buf.len() >= end).then(|| (String::from_utf8_lossy(&buf[space + 1..end]).into_owned(), end))
}

/// The `seq` an RFC 5424 message of ours carries.
pub fn seq_of(message: &str) -> i64 {
    let at = message.find(" seq=\"").expect("a seq parameter") + 6;
    let end = message[at..].find('"').unwrap() + at;
    message[at..end].parse().unwrap()
}

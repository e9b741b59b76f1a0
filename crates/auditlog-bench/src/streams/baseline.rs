//! The streams section's baseline: messages written straight to the same
//! rsyslog over TLS (rustls, as the service uses), paced like a stream's
//! writes, each stamped with the time it was written where an entry
//! carries its `received_at`, and read back by the same tail. What it
//! measures is what rsyslog, its file and the tail add on their own.

use std::io::Write as _;
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use auditlog_domain::stream::TlsSettings;
use auditlog_domain::{Clock, SystemClock};
use auditlog_server::workers::streams::tls_config;
use rustls::pki_types::ServerName;

use super::tail::{Received, Tail};
use crate::AnyError;

/// The organization the baseline's messages name, for the tail.
const ORG: &str = "baseline";

#[derive(Debug, Clone, Copy)]
pub(crate) struct Plan {
    pub(crate) messages: usize,
    /// Messages per write.
    pub(crate) per_write: usize,
    /// Messages a second.
    pub(crate) rate: u32,
    /// Bytes per message, about.
    pub(crate) size: usize,
}

/// Sends `plan.messages` messages to 127.0.0.1:`port` and waits (up to a
/// minute) for them to appear in `output`; what arrived.
pub(crate) async fn run(
    port: u16,
    output: PathBuf,
    ca_pem: &str,
    plan: Plan,
    poll: Duration,
) -> Result<Received, AnyError> {
    let tls = tls_config(
        &TlsSettings {
            ca_pem: Some(ca_pem.to_owned()),
            ..TlsSettings::default()
        },
        None,
    )?;
    let tail = Tail::start(&[output], ORG, poll)?;
    tail.count_from(0);
    let sender = std::thread::Builder::new()
        .name("bench-baseline".into())
        .spawn(move || send(port, tls, plan))?;
    while !sender.is_finished() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    sender.join().map_err(|_| "the baseline's sender panicked")??;
    let want = plan.messages;
    tail.wait(Duration::from_secs(60), |r| r.distinct >= want).await;
    let mut received = tail.finish()?;
    Ok(received.pop().unwrap_or_default())
}

/// Connects, shakes hands, and writes the messages paced to the plan.
fn send(port: u16, tls: Arc<rustls::ClientConfig>, plan: Plan) -> Result<(), AnyError> {
    let tcp = TcpStream::connect(("127.0.0.1", port))?;
    tcp.set_nodelay(true)?;
    let name = ServerName::try_from("127.0.0.1")?.to_owned();
    let conn = rustls::ClientConnection::new(tls, name)?;
    let mut stream = rustls::StreamOwned::new(conn, tcp);
    let writes = plan.messages.div_ceil(plan.per_write);
    let period = Duration::from_secs_f64(plan.per_write as f64 / f64::from(plan.rate));
    let start = Instant::now();
    let mut buf = Vec::with_capacity(plan.per_write * (plan.size + 8));
    for w in 0..writes {
        let due = start + period.mul_f64(w as f64);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        buf.clear();
        let now = SystemClock.now().to_rfc3339();
        let first = w * plan.per_write + 1;
        for seq in first..(first + plan.per_write).min(plan.messages + 1) {
            let message = message(seq, &now, plan.size);
            buf.extend_from_slice(format!("{} {message}", message.len()).as_bytes());
        }
        stream.write_all(&buf)?;
        stream.flush()?;
    }
    // Let the last bytes leave before the connection closes.
    std::thread::sleep(Duration::from_millis(200));
    stream.conn.send_close_notify();
    let _ = stream.flush();
    Ok(())
}

/// An RFC 5424 message shaped as a stream's (header, then the
/// `auditlog@32473` structured data), padded to about `size` bytes.
fn message(seq: usize, now: &str, size: usize) -> String {
    let head = format!(
        "<110>1 {now} bench auditlog - baseline [auditlog@32473 id=\"baseline-{seq}\" seq=\"{seq}\" \
         org=\"{ORG}\" timestamp=\"{now}\" received_at=\"{now}\" details=\""
    );
    let tail = "\"] baseline message";
    let pad = size.saturating_sub(head.len() + tail.len());
    format!("{head}{}{tail}", "x".repeat(pad))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_the_size_asked_for_and_read_by_the_tail() {
        let m = message(7, "2026-12-07T16:00:00.000Z", 600);
        assert_eq!(m.len(), 600);
        assert!(m.contains(" seq=\"7\" org=\"baseline\""), "{m}");
    }
}

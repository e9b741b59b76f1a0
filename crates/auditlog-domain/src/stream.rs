//! SIEM streams: syslog destinations that receive an organization's
//! entries in `seq` order, and the rules that keep that delivery honest.
//!
//! A stream needs no outbox row per entry: the log is already an ordered,
//! durable queue, so each stream keeps a cursor (the last `seq` it has
//! delivered) beside its settings. An entry is committed before any stream
//! can read it, and a stream's cursor only moves past an entry once the
//! receiver has had it, so every committed entry reaches every stream that
//! existed when it was committed, at least once.
//!
//! Syslog over TCP has no acknowledgement: a write the kernel accepted may
//! still die in a receiver that restarts. [`Window`] therefore confirms a
//! batch only once the connection has stayed up for [`CONFIRM_AFTER_MS`]
//! after it was written; when the connection drops, everything not yet
//! confirmed is sent again from the cursor. Receivers de-duplicate on the
//! entry id and `seq` every message carries.

use std::collections::VecDeque;

use crate::Timestamp;
use crate::pattern::EventPattern;
use crate::siem::Format;

/// How long a connection must stay up after a batch was written before
/// the batch counts as received.
pub const CONFIRM_AFTER_MS: i64 = 2_000;

/// The longest pause between reconnection attempts.
pub const MAX_BACKOFF_MS: i64 = 60_000;

/// How a stream reaches its receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// RFC 5425: TLS, octet-counting framing.
    SyslogTls,
    /// RFC 6587 octet counting over plain TCP; only where the operator
    /// allows it.
    SyslogTcp,
}

impl Transport {
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::SyslogTls => "syslog+tls",
            Transport::SyslogTcp => "syslog+tcp",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::SyslogTls, Self::SyslogTcp].into_iter().find(|t| t.as_str() == s)
    }

    /// The port registered for the transport (RFC 5425's 6514; 601 for
    /// syslog over plain TCP, RFC 3195).
    pub fn default_port(self) -> u16 {
        match self {
            Transport::SyslogTls => 6514,
            Transport::SyslogTcp => 601,
        }
    }
}

/// Where a stream sends: `syslog+tls://host:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    pub transport: Transport,
    /// A DNS name or an IP address (IPv6 without brackets).
    pub host: String,
    pub port: u16,
}

impl Destination {
    /// The destination as a URL, the form the API shows and takes.
    pub fn to_url(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        format!("{}://{host}:{}", self.transport.as_str(), self.port)
    }
}

/// TLS settings beyond the defaults (the system's roots, no client
/// certificate).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct TlsSettings {
    /// PEM certificates to trust instead of the system's roots.
    pub ca_pem: Option<String>,
    /// A PEM certificate chain presented to receivers that ask for one.
    pub client_cert_pem: Option<String>,
    /// The client certificate's private key, PEM, sealed at rest.
    pub client_key: Option<Vec<u8>>,
}

impl std::fmt::Debug for TlsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSettings")
            .field("ca_pem", &self.ca_pem.is_some())
            .field("client_cert_pem", &self.client_cert_pem.is_some())
            .field("client_key", &self.client_key.as_ref().map(|_| "…"))
            .finish()
    }
}

/// What a person configures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSettings {
    pub id: String,
    pub destination: Destination,
    pub format: Format,
    /// Empty: every event.
    pub events: Vec<EventPattern>,
    /// Syslog facility, 0–23 (default 13, "log audit").
    pub facility: u8,
    /// RFC 5424 APP-NAME.
    pub app_name: String,
    pub description: String,
    pub enabled: bool,
    pub tls: TlsSettings,
}

/// How delivery is going.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamState {
    /// The last `seq` the receiver has had (or that the stream skipped as
    /// not matching its patterns).
    pub cursor: i64,
    /// Since when connecting or sending has failed; cleared by progress.
    pub failing_since: Option<Timestamp>,
    pub last_error: Option<String>,
    /// When the cursor last moved.
    pub last_delivered_at: Option<Timestamp>,
    /// Entries retention purged before this stream sent them (its receiver
    /// was away longer than the plan keeps entries): counted, so that what
    /// the receiver never got is said, not silently skipped.
    pub purged_unsent: i64,
    /// Bumped by every change of settings, so a sender working from older
    /// settings stops and starts again with the new ones.
    pub revision: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stream {
    pub settings: StreamSettings,
    pub state: StreamState,
    pub created_at: Timestamp,
}

impl StreamSettings {
    pub fn wants(&self, event: &str) -> bool {
        crate::pattern::selects(&self.events, event)
    }
}

/// The syslog facility auditlog uses unless told otherwise: 13, "log audit".
pub const DEFAULT_FACILITY: u8 = 13;

/// Whether a stream failing since `failing_since` is unhealthy at `now`.
pub fn unhealthy(failing_since: Option<Timestamp>, now: Timestamp, after_ms: i64) -> bool {
    failing_since.is_some_and(|since| now.millis() - since.millis() >= after_ms)
}

/// The entries retention purged that a sender newly finds missing when it
/// reads `next` right after `through`: the range `first..=next - 1` less
/// what was counted already (through `counted_through`), as
/// `(first, how many)`. A connection that fails after reading past a gap
/// reads it again from the cursor, and must not count it twice.
pub fn newly_purged(counted_through: i64, through: i64, next: i64) -> Option<(i64, u64)> {
    let first = (through + 1).max(counted_through + 1);
    (first < next).then(|| (first, (next - first) as u64))
}

/// The pause before reconnection attempt `failures + 1`: 1 s doubling to
/// a minute, spread by ±20% with `jitter` in `[0, 1)` so many streams to
/// one recovering receiver do not come back at once.
pub fn backoff_ms(failures: u32, jitter: f64) -> i64 {
    let base = 1_000i64.saturating_mul(1 << failures.min(6)).min(MAX_BACKOFF_MS);
    base + (base as f64 * 0.4 * (jitter.clamp(0.0, 1.0) - 0.5)) as i64
}

/// Batches written on the current connection and not yet confirmed, each
/// with the last `seq` it covers and when it was written.
#[derive(Debug, Default)]
pub struct Window {
    written: VecDeque<(i64, i64)>,
}

impl Window {
    pub fn push(&mut self, through_seq: i64, written_at_ms: i64) {
        self.written.push_back((through_seq, written_at_ms));
    }

    /// Drops the batches written at least [`CONFIRM_AFTER_MS`] before
    /// `now_ms` and returns the last `seq` they cover, if any.
    pub fn confirm(&mut self, now_ms: i64) -> Option<i64> {
        let mut confirmed = None;
        while let Some(&(seq, at)) = self.written.front() {
            if now_ms - at < CONFIRM_AFTER_MS {
                break;
            }
            confirmed = Some(seq);
            self.written.pop_front();
        }
        confirmed
    }

    pub fn is_empty(&self) -> bool {
        self.written.is_empty()
    }

    pub fn len(&self) -> usize {
        self.written.len()
    }

    /// A lost connection: nothing unconfirmed counts.
    pub fn clear(&mut self) {
        self.written.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_purged_range_counts_once_however_often_it_is_read() {
        // Seqs 4..=9 purged: the sender at 3 reads 10 next.
        assert_eq!(newly_purged(3, 3, 10), Some((4, 6)));
        // The connection failed; read again from the cursor (3).
        assert_eq!(newly_purged(9, 3, 10), None);
        // A later gap counts from where counting stopped.
        assert_eq!(newly_purged(9, 12, 15), Some((13, 2)));
        // A gap half counted already (a cursor behind the last count).
        assert_eq!(newly_purged(6, 3, 10), Some((7, 3)));
        assert_eq!(newly_purged(0, 3, 4), None, "no gap");
    }

    #[test]
    fn transports_round_trip() {
        for t in [Transport::SyslogTls, Transport::SyslogTcp] {
            assert_eq!(Transport::parse(t.as_str()), Some(t));
        }
        assert_eq!(Transport::parse("syslog+udp"), None);
        assert_eq!(Transport::SyslogTls.default_port(), 6514);
    }

    #[test]
    fn destinations_print_as_urls() {
        let d = Destination {
            transport: Transport::SyslogTls,
            host: "::1".into(),
            port: 6514,
        };
        assert_eq!(d.to_url(), "syslog+tls://[::1]:6514");
        let d = Destination {
            transport: Transport::SyslogTcp,
            host: "siem.example.com".into(),
            port: 601,
        };
        assert_eq!(d.to_url(), "syslog+tcp://siem.example.com:601");
    }

    #[test]
    fn a_window_confirms_what_has_settled() {
        let mut w = Window::default();
        assert_eq!(w.confirm(10_000), None);
        w.push(5, 1_000);
        w.push(9, 1_500);
        w.push(12, 2_900);
        assert_eq!(w.confirm(2_999), None);
        assert_eq!(w.confirm(3_000), Some(5));
        assert_eq!(w.confirm(3_600), Some(9));
        assert_eq!(w.len(), 1);
        w.clear();
        assert_eq!(w.confirm(100_000), None);
    }

    #[test]
    fn backoff_doubles_to_a_minute() {
        assert_eq!(backoff_ms(0, 0.5), 1_000);
        assert_eq!(backoff_ms(1, 0.5), 2_000);
        assert_eq!(backoff_ms(5, 0.5), 32_000);
        assert_eq!(backoff_ms(6, 0.5), 60_000);
        assert_eq!(backoff_ms(40, 0.5), 60_000);
        assert!((800..=1_200).contains(&backoff_ms(0, 0.0)));
        assert!((800..=1_200).contains(&backoff_ms(0, 0.99)));
    }

    #[test]
    fn health_turns_after_the_set_time() {
        let since = Timestamp(1_000);
        assert!(!unhealthy(None, Timestamp(1_000_000), 60_000));
        assert!(!unhealthy(Some(since), Timestamp(60_999), 60_000));
        assert!(unhealthy(Some(since), Timestamp(61_000), 60_000));
    }
}

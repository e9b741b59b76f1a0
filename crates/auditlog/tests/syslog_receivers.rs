//! Self-test of the syslog receiver harness (tests/common/syslog.rs), so the
//! stream tests can trust what it reports: real rsyslog and syslog-ng
//! receivers, over plain TCP and TLS, get octet-counted RFC 5424 messages
//! from a small client here and write them byte for byte and in order, also
//! across a restart of the receiver; over TLS a server certificate the
//! client does not trust is refused, and a receiver that requires a client
//! certificate refuses a client without one and accepts ours.

mod common;

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::syslog::{Certs, Kind, Receiver, Tls};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

/// A deadline for events that take milliseconds, generous for a loaded CI.
const DEADLINE: Duration = Duration::from_secs(60);

/// The test's messages: RFC 5424 lines with the characters that structured
/// data escapes (`"`, `\`, `]`) and others that parsers trip on (`=`, `|`,
/// a tab), UTF-8 with and without a BOM, one of exactly 4 KiB, and long JSON.
fn messages() -> Vec<String> {
    let header = |second: u32, msgid: &str| {
        format!("<110>1 2025-06-01T12:00:{second:02}.123456Z auditlog.example auditlog - {msgid}")
    };
    let mut exactly_4k = format!("{} [auditlog@32473 seq=\"4\"] ", header(4, "padding"));
    exactly_4k += &"0123456789abcdef".repeat(256)[..4096 - exactly_4k.len()];
    let details: serde_json::Map<String, serde_json::Value> = (0..600)
        .map(|i| {
            (
                format!("field_{i}"),
                serde_json::json!({"old": i, "new": format!("value \"{i}\" \\ é")}),
            )
        })
        .collect();
    let long_json = serde_json::json!({"event": "policy.updated", "details": details}).to_string();
    let messages = vec![
        format!(
            "{} [auditlog@32473 seq=\"1\" org=\"acme\"] {{\"event\":\"member.added\"}}",
            header(1, "member.added")
        ),
        format!(
            "{} [auditlog@32473 seq=\"2\" name=\"say \\\"hi\\\" C:\\\\temp \\] end\" eq=\"a=b\"] \
             quotes \" backslash \\ bracket ] equals = pipe | end",
            header(2, "key.created")
        ),
        format!(
            "{} [auditlog@32473 seq=\"3\" who=\"José 日本語\"] café — 🎉 naïve",
            header(3, "sso.login")
        ),
        exactly_4k,
        format!("{} - \u{feff}with a BOM and a\ttab", header(5, "-")),
        format!("{} [auditlog@32473 seq=\"6\"] {long_json}", header(6, "policy.updated")),
        format!(
            "{} [auditlog@32473 seq=\"7\"] {{\"after\":\"the restart\"}}",
            header(7, "member.removed")
        ),
        format!("{} [auditlog@32473 seq=\"8\"] {long_json}", header(8, "policy.updated")),
    ];
    assert_eq!(messages[3].len(), 4096);
    assert!(
        messages[5].len() > 30_000 && messages[5].len() < 60_000,
        "{}",
        messages[5].len()
    );
    messages
}

/// A connection to a receiver, plain TCP or TLS.
enum Client {
    Tcp(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Client {
    fn tcp(port: u16) -> Client {
        Client::Tcp(TcpStream::connect(("127.0.0.1", port)).expect("the receiver accepts"))
    }

    /// A TLS connection to 127.0.0.1 trusting only the CA in `trust`,
    /// presenting `identity` (certificate and key files) if given; returns
    /// once the handshake is done. An error is what rustls refused.
    fn tls(port: u16, trust: &Path, identity: Option<(&Path, &Path)>) -> io::Result<Client> {
        let socket = TcpStream::connect(("127.0.0.1", port))?;
        socket.set_read_timeout(Some(DEADLINE))?;
        let server = ServerName::try_from("127.0.0.1").expect("an IP address");
        let connection = ClientConnection::new(client_config(trust, identity), server).map_err(io::Error::other)?;
        let mut stream = StreamOwned::new(connection, socket);
        while stream.conn.is_handshaking() {
            stream.conn.complete_io(&mut stream.sock)?;
        }
        Ok(Client::Tls(Box::new(stream)))
    }

    /// Writes each message octet-counted (`"{len} {msg}"`, no newline).
    fn send(&mut self, messages: &[String]) -> io::Result<()> {
        for message in messages {
            let frame = format!("{} {message}", message.len());
            match self {
                Client::Tcp(s) => s.write_all(frame.as_bytes())?,
                Client::Tls(s) => s.write_all(frame.as_bytes())?,
            }
        }
        match self {
            Client::Tcp(s) => s.flush(),
            Client::Tls(s) => s.flush(),
        }
    }

    /// Ends the connection as a client should: TLS with a close_notify.
    /// Errors are ignored: the receiver may be gone already.
    fn close(self) {
        if let Client::Tls(mut s) = self {
            s.conn.send_close_notify();
            let _ = s.flush();
        }
    }

    /// Whether the receiver ends the connection (an end of stream, a reset
    /// or a TLS alert) before the deadline; a receiver never writes to us.
    fn closed_by_peer(&mut self) -> bool {
        let mut byte = [0u8; 1];
        let read = match self {
            Client::Tcp(s) => s.read(&mut byte),
            Client::Tls(s) => s.read(&mut byte),
        };
        match read {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => !matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut),
        }
    }
}

fn client_config(trust: &Path, identity: Option<(&Path, &Path)>) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(trust).expect("the CA file reads") {
        roots.add(cert.expect("a PEM certificate")).expect("a usable root");
    }
    let builder = ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots);
    let config = match identity {
        Some((cert, key)) => {
            let chain = CertificateDer::pem_file_iter(cert)
                .expect("the certificate file reads")
                .collect::<Result<Vec<_>, _>>()
                .expect("PEM certificates");
            let key = PrivateKeyDer::from_pem_file(key).expect("a PEM private key");
            builder
                .with_client_auth_cert(chain, key)
                .expect("a usable client certificate")
        }
        None => builder.with_no_client_auth(),
    };
    Arc::new(config)
}

/// Whether `error` is rustls refusing the peer's certificate.
fn bad_certificate(error: &io::Error) -> bool {
    error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .is_some_and(|e| matches!(e, rustls::Error::InvalidCertificate(_)))
}

/// Compares what arrived with what was sent, naming the first difference
/// (the messages are too long to print whole).
fn assert_same(kind: Kind, got: &[String], want: &[String]) {
    let show = |s: &String| s.chars().take(300).collect::<String>();
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            g == w,
            "{kind}: message {i} differs ({} bytes received, {} sent):\nreceived {}\nsent     {}",
            g.len(),
            w.len(),
            show(g),
            show(w)
        );
    }
    assert_eq!(
        got.len(),
        want.len(),
        "{kind}: {} messages received, {} sent",
        got.len(),
        want.len()
    );
}

/// Sends half the messages, restarts the receiver (gracefully, or killed
/// when `crash`), reconnects and sends the rest; all must arrive exactly.
fn round_trip(kind: Kind, tls: bool, crash: bool) {
    let certs = Certs::generate();
    let mode = match tls {
        true => Tls::On {
            certs: &certs,
            require_client_cert: false,
        },
        false => Tls::Off,
    };
    let Some(mut receiver) = Receiver::start(kind, mode) else {
        return;
    };
    let port = receiver.port;
    let connect = || match tls {
        true => Client::tls(port, &certs.ca, None).expect("the server certificate verifies"),
        false => Client::tcp(port),
    };
    let sent = messages();
    let (before, after) = sent.split_at(4);
    let started = Instant::now();
    let mut client = connect();
    client.send(before).expect("the receiver takes the messages");
    assert_same(kind, &receiver.wait_for_lines(before.len(), DEADLINE), before);
    eprintln!("{kind}: {} messages arrived in {:?}", before.len(), started.elapsed());
    if crash {
        receiver.kill();
    }
    receiver.restart();
    client.close();
    let mut client = connect();
    client.send(after).expect("the restarted receiver takes the messages");
    assert_same(kind, &receiver.wait_for_lines(sent.len(), DEADLINE), &sent);
    client.close();
    if tls {
        let refused = Client::tls(port, &certs.other_ca, None).err();
        assert!(
            refused.as_ref().is_some_and(bad_certificate),
            "{kind}: a client trusting another CA must refuse the server: {refused:?}"
        );
    }
}

/// A receiver requiring a client certificate refuses a client without one
/// (in the handshake, or just after it under TLS 1.3, where the client's
/// side ends first) and takes the messages of one with ours.
fn client_certificate_required(kind: Kind) {
    let certs = Certs::generate();
    let mode = Tls::On {
        certs: &certs,
        require_client_cert: true,
    };
    let Some(receiver) = Receiver::start(kind, mode) else {
        return;
    };
    let sent = messages();
    let refused = match Client::tls(receiver.port, &certs.ca, None) {
        Err(_) => true,
        Ok(mut anonymous) => anonymous.send(&sent[..1]).is_err() || anonymous.closed_by_peer(),
    };
    assert!(refused, "{kind}: a client without a certificate was not refused");
    let identity = (certs.client_cert.as_path(), certs.client_key.as_path());
    let mut client = Client::tls(receiver.port, &certs.ca, Some(identity)).expect("our client certificate is accepted");
    client.send(&sent[1..3]).expect("the receiver takes the messages");
    // Only these two: the anonymous client's message was never written.
    assert_same(kind, &receiver.wait_for_lines(2, DEADLINE), &sent[1..3]);
    client.close();
}

/// A receiver presenting a certificate of another CA is refused by a
/// client trusting ours, and works for a client trusting that CA.
fn untrusted_server(kind: Kind) {
    let certs = Certs::generate();
    let Some(receiver) = Receiver::start(kind, Tls::Untrusted { certs: &certs }) else {
        return;
    };
    let refused = Client::tls(receiver.port, &certs.ca, None).err();
    assert!(
        refused.as_ref().is_some_and(bad_certificate),
        "{kind}: the untrusted server certificate was accepted: {refused:?}"
    );
    let sent = messages();
    let mut client = Client::tls(receiver.port, &certs.other_ca, None).expect("trusted by its own CA");
    client.send(&sent[..2]).expect("the receiver takes the messages");
    assert_same(kind, &receiver.wait_for_lines(2, DEADLINE), &sent[..2]);
    client.close();
}

#[test]
fn rsyslog_plain_tcp_across_a_graceful_restart() {
    round_trip(Kind::Rsyslog, false, false);
}

#[test]
fn rsyslog_tls_across_a_crash() {
    round_trip(Kind::Rsyslog, true, true);
}

#[test]
fn syslog_ng_plain_tcp_across_a_crash() {
    round_trip(Kind::SyslogNg, false, true);
}

#[test]
fn syslog_ng_tls_across_a_graceful_restart() {
    round_trip(Kind::SyslogNg, true, false);
}

#[test]
fn rsyslog_client_certificate_required() {
    client_certificate_required(Kind::Rsyslog);
}

#[test]
fn syslog_ng_client_certificate_required() {
    client_certificate_required(Kind::SyslogNg);
}

#[test]
fn rsyslog_untrusted_server_certificate() {
    untrusted_server(Kind::Rsyslog);
}

#[test]
fn syslog_ng_untrusted_server_certificate() {
    untrusted_server(Kind::SyslogNg);
}

//! TLS for connections to PostgreSQL, over the rustls already in the build
//! (see this crate's `Cargo.toml` for why the connector is ours).
//!
//! tokio-postgres negotiates TLS itself as `sslmode` says; this module only
//! supplies the handshake. Unlike libpq's `require`, which encrypts without
//! checking whom it talks to, every handshake here verifies the server's
//! certificate: it must chain to a trusted root and name the host of the
//! connection string (a DNS name, or an IP address in the certificate's
//! IP SANs). The roots are the system's, or, with `sslrootcert=<file>` in
//! the URL, only the certificates in that PEM file (as in libpq). This
//! holds under the default `sslmode=prefer` too: a server that offers TLS
//! with a certificate we cannot verify is refused, where libpq would
//! connect; trust its CA with `sslrootcert`, or set `sslmode=disable`.
//!
//! Channel binding: the stream reports `tls-server-end-point` (RFC 5929),
//! the hash of the server's certificate with the hash of its signature
//! algorithm. Finding that algorithm takes a few lines of DER reading and
//! ring's digests, both already here, so `channel_binding=require` works.

use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::future::BoxFuture;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::config::SslMode;
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect};

/// The ALPN protocol PostgreSQL 17 requires with `sslnegotiation=direct`;
/// older servers ignore it.
const ALPN: &[u8] = b"postgresql";

/// Where trusted roots come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Roots {
    /// The operating system's store (`sslrootcert` absent or `system`).
    System,
    /// Only the certificates in this PEM file.
    File(PathBuf),
}

/// What makes a TLS setup unusable; reported when the store starts.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("cannot read sslrootcert {}: {source}", path.display())]
    ReadRoots { path: PathBuf, source: io::Error },
    #[error("sslrootcert {} holds no PEM certificate", path.display())]
    NoRoots { path: PathBuf },
    #[error("sslrootcert {}: a certificate is not a usable root: {source}", path.display())]
    BadRoot { path: PathBuf, source: rustls::Error },
    #[error("TLS protocol versions: {0}")]
    Protocols(rustls::Error),
}

/// Why a TLS handshake with the server failed.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    #[error("{host:?} is neither a DNS name nor an IP address, so its certificate cannot be checked")]
    BadHostName { host: String },
    #[error(
        "the certificate of {host} is refused: {source} (it must chain to a trusted root, the system's or \
         those in sslrootcert, and name {host}; or connect with sslmode=disable)"
    )]
    Certificate { host: String, source: io::Error },
    #[error("with {host}: {source}")]
    Other { host: String, source: io::Error },
}

/// Makes TLS connectors for tokio-postgres; cheap to clone.
#[derive(Clone)]
pub struct MakeTls {
    /// `None` under `sslmode=disable`, where tokio-postgres never asks for
    /// a handshake: the roots are then not loaded at all.
    config: Option<Arc<ClientConfig>>,
}

impl std::fmt::Debug for MakeTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MakeTls")
            .field("enabled", &self.config.is_some())
            .finish()
    }
}

impl MakeTls {
    /// The connector for `mode`, trusting `roots`.
    pub fn new(mode: SslMode, roots: &Roots) -> Result<Self, SetupError> {
        if mode == SslMode::Disable {
            return Ok(Self { config: None });
        }
        Ok(Self {
            config: Some(Arc::new(client_config(roots)?)),
        })
    }
}

/// A rustls client configuration with its own ring provider, so the store
/// does not depend on a process-wide default being installed.
pub fn client_config(roots: &Roots) -> Result<ClientConfig, SetupError> {
    let store = match roots {
        Roots::System => system_roots(),
        Roots::File(path) => file_roots(path)?,
    };
    let mut config = ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(SetupError::Protocols)?
        .with_root_certificates(store)
        .with_no_client_auth();
    config.alpn_protocols = vec![ALPN.to_vec()];
    Ok(config)
}

fn system_roots() -> RootCertStore {
    let found = rustls_native_certs::load_native_certs();
    for e in &found.errors {
        tracing::warn!(error = %e, "reading the system's root certificates");
    }
    let mut store = RootCertStore::empty();
    let (added, ignored) = store.add_parsable_certificates(found.certs);
    if ignored > 0 {
        tracing::debug!(ignored, "system root certificates rustls cannot use");
    }
    if added == 0 {
        // Not fatal: with sslmode=prefer a server without TLS still works.
        tracing::warn!("no system root certificates: a PostgreSQL server offering TLS will be refused");
    }
    store
}

fn file_roots(path: &Path) -> Result<RootCertStore, SetupError> {
    let read_error = |source| SetupError::ReadRoots {
        path: path.to_owned(),
        source,
    };
    let bytes = std::fs::read(path).map_err(read_error)?;
    let mut store = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&bytes) {
        let cert = cert.map_err(|e| read_error(io::Error::new(io::ErrorKind::InvalidData, e.to_string())))?;
        store.add(cert).map_err(|source| SetupError::BadRoot {
            path: path.to_owned(),
            source,
        })?;
    }
    if store.is_empty() {
        return Err(SetupError::NoRoots { path: path.to_owned() });
    }
    Ok(store)
}

impl<S> MakeTlsConnect<S> for MakeTls
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = TlsStream<S>;
    type TlsConnect = Connect;
    type Error = HandshakeError;

    fn make_tls_connect(&mut self, host: &str) -> Result<Connect, HandshakeError> {
        // Called for every connection, Unix sockets included (host ""),
        // where tokio-postgres then never handshakes: the name is checked
        // only when a handshake starts.
        Ok(Connect {
            config: self.config.clone(),
            host: host.to_owned(),
        })
    }
}

/// One connection's handshake.
pub struct Connect {
    config: Option<Arc<ClientConfig>>,
    host: String,
}

impl<S> TlsConnect<S> for Connect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = TlsStream<S>;
    type Error = HandshakeError;
    type Future = BoxFuture<'static, Result<TlsStream<S>, HandshakeError>>;

    fn connect(self, stream: S) -> Self::Future {
        Box::pin(async move {
            let Connect { config, host } = self;
            let Some(config) = config else {
                // tokio-postgres does not handshake under sslmode=disable.
                return Err(HandshakeError::Other {
                    host,
                    source: io::Error::other("TLS is disabled (sslmode=disable)"),
                });
            };
            let name = server_name(&host)?;
            match tokio_rustls::TlsConnector::from(config).connect(name, stream).await {
                Ok(stream) => Ok(TlsStream(stream)),
                Err(source) if is_certificate_error(&source) => Err(HandshakeError::Certificate { host, source }),
                Err(source) => Err(HandshakeError::Other { host, source }),
            }
        })
    }
}

fn server_name(host: &str) -> Result<ServerName<'static>, HandshakeError> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(ServerName::IpAddress(ip.into()));
    }
    ServerName::try_from(host.to_owned()).map_err(|_| HandshakeError::BadHostName { host: host.to_owned() })
}

fn is_certificate_error(e: &io::Error) -> bool {
    matches!(
        e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()),
        Some(rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented)
    )
}

/// A TLS connection to the server.
pub struct TlsStream<S>(tokio_rustls::client::TlsStream<S>);

impl<S> tokio_postgres::tls::TlsStream for TlsStream<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    fn channel_binding(&self) -> ChannelBinding {
        let (_, session) = self.0.get_ref();
        session
            .peer_certificates()
            .and_then(|certs| certs.first())
            .and_then(|cert| tls_server_end_point(cert))
            .map_or_else(ChannelBinding::none, ChannelBinding::tls_server_end_point)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for TlsStream<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for TlsStream<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// RFC 5929's `tls-server-end-point`: the certificate hashed with its
/// signature's hash, SHA-256 standing in for MD5 and SHA-1. `None` where
/// the RFC defines nothing (Ed25519) or the hash sits in parameters we do
/// not read (RSA-PSS); SCRAM then runs without binding, and
/// `channel_binding=require` is refused.
pub fn tls_server_end_point(cert: &[u8]) -> Option<Vec<u8>> {
    let algorithm =
        match signature_algorithm(cert)? {
            // sha1/md5 with RSA, sha256WithRSAEncryption; ecdsa-with-SHA1/SHA256.
            [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x04 | 0x05 | 0x0b]
            | [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x01]
            | [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02] => &ring::digest::SHA256,
            [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0c]
            | [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03] => &ring::digest::SHA384,
            [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0d]
            | [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x04] => &ring::digest::SHA512,
            _ => return None,
        };
    Some(ring::digest::digest(algorithm, cert).as_ref().to_vec())
}

/// The OID (content bytes) of a DER certificate's `signatureAlgorithm`:
/// `Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm
/// SEQUENCE { algorithm OID, … }, signature }`.
fn signature_algorithm(cert: &[u8]) -> Option<&[u8]> {
    const SEQUENCE: u8 = 0x30;
    const OID: u8 = 0x06;
    let (certificate, _) = der(cert, SEQUENCE)?;
    let (_tbs, rest) = der(certificate, SEQUENCE)?;
    let (algorithm, _) = der(rest, SEQUENCE)?;
    let (oid, _) = der(algorithm, OID)?;
    Some(oid)
}

/// One DER element of type `tag` at the start of `input`: its contents and
/// what follows it.
fn der(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&first, rest) = input.split_first()?;
    if first != tag {
        return None;
    }
    let (&len, rest) = rest.split_first()?;
    let (len, rest) = if len < 0x80 {
        (usize::from(len), rest)
    } else {
        // Long form: the low bits count the length's bytes; four is plenty
        // for a certificate.
        let count = usize::from(len & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let (bytes, rest) = rest.split_at(count);
        (bytes.iter().fold(0usize, |n, b| (n << 8) | usize::from(*b)), rest)
    };
    (rest.len() >= len).then(|| rest.split_at(len))
}

/// A connection string with what tokio-postgres's parser does not know
/// taken out: `sslrootcert` (libpq's name for the roots to trust), and
/// `sslmode=verify-ca`/`verify-full`, which become `require` as every
/// handshake here verifies (`verify-ca` more strictly than libpq: the
/// certificate must name the host too). Only the URL form is read; in the
/// `key=value` form tokio-postgres rejects these keys itself.
pub fn split_url(url: &str) -> Result<(String, Roots), UrlError> {
    let is_url = url.starts_with("postgres://") || url.starts_with("postgresql://");
    let Some((base, query)) = url.split_once('?').filter(|_| is_url) else {
        return Ok((url.to_owned(), Roots::System));
    };
    let mut roots = Roots::System;
    let mut kept = Vec::new();
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match (percent_decode(key)?.as_str(), percent_decode(value)?.as_str()) {
            ("sslrootcert", "system") => roots = Roots::System,
            ("sslrootcert", "") => return Err(UrlError::EmptyRootCert),
            ("sslrootcert", path) => roots = Roots::File(PathBuf::from(path)),
            ("sslmode", "verify-ca" | "verify-full") => kept.push("sslmode=require"),
            _ => kept.push(pair),
        }
    }
    let url = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok((url, roots))
}

/// A connection URL this module cannot read.
#[derive(Debug, thiserror::Error)]
pub enum UrlError {
    #[error("a query parameter of the database URL is not valid percent-encoded UTF-8")]
    Encoding,
    #[error("sslrootcert is empty: name a PEM file of root certificates, or `system`")]
    EmptyRootCert,
}

/// Percent-decoding as tokio-postgres does it (`+` stays `+`).
fn percent_decode(s: &str) -> Result<String, UrlError> {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        if b == b'%' {
            let hex = [bytes.next(), bytes.next()];
            let [Some(hi), Some(lo)] = hex else {
                return Err(UrlError::Encoding);
            };
            let hex = std::str::from_utf8(&[hi, lo])
                .map_err(|_| UrlError::Encoding)?
                .to_owned();
            out.push(u8::from_str_radix(&hex, 16).map_err(|_| UrlError::Encoding)?);
        } else {
            out.push(b);
        }
    }
    String::from_utf8(out).map_err(|_| UrlError::Encoding)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sslrootcert_is_taken_out_and_verify_modes_become_require() {
        let (url, roots) = split_url(
            "postgres://u:p@db.example:5432/audit?sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem&application_name=x",
        )
        .unwrap();
        assert_eq!(
            url,
            "postgres://u:p@db.example:5432/audit?sslmode=require&application_name=x"
        );
        assert_eq!(roots, Roots::File(PathBuf::from("/etc/ca.pem")));

        let (url, roots) = split_url("postgresql://h/d?sslrootcert=system").unwrap();
        assert_eq!((url.as_str(), roots), ("postgresql://h/d", Roots::System));
        assert!(split_url("postgres://h/d?sslrootcert=").is_err());
        assert!(split_url("postgres://h/d?sslrootcert=%zz").is_err());
    }

    #[test]
    fn other_strings_pass_through() {
        for s in [
            "postgres://h/d",
            "postgres://h/d?sslmode=require",
            "host=h sslmode=require",
        ] {
            assert_eq!(split_url(s).unwrap(), (s.to_owned(), Roots::System));
        }
    }

    #[test]
    fn ip_addresses_are_checked_as_ip_addresses() {
        assert!(matches!(server_name("127.0.0.1"), Ok(ServerName::IpAddress(_))));
        assert!(matches!(server_name("::1"), Ok(ServerName::IpAddress(_))));
        assert!(matches!(server_name("db.example"), Ok(ServerName::DnsName(_))));
        assert!(server_name("not a name").is_err());
    }

    #[test]
    fn der_lengths_short_and_long() {
        assert_eq!(der(&[0x30, 0x01, 0xaa, 0xbb], 0x30), Some((&[0xaa][..], &[0xbb][..])));
        let mut long = vec![0x30, 0x82, 0x01, 0x00];
        long.extend([7; 256]);
        assert_eq!(der(&long, 0x30).map(|(c, r)| (c.len(), r.len())), Some((256, 0)));
        assert_eq!(der(&[0x30, 0x05, 0x00], 0x30), None, "truncated");
        assert_eq!(der(&[0x31, 0x00], 0x30), None, "another tag");
    }
}

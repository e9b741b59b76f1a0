//! Reaching a stream's receiver: the destination's rules (where a stream
//! may go, as for webhooks), the TLS settings checked when a stream is
//! saved, and the connection itself.
//!
//! Names are resolved here and every address is checked before it is
//! connected to, so a name that resolves to a private address later (DNS
//! rebinding) is still refused. The receiver's certificate must chain to
//! the stream's CA (or the system's roots) and name the host.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use auditlog_domain::sealed::SecretSealer;
use auditlog_domain::ssrf;
use auditlog_domain::stream::{Destination, TlsSettings, Transport};
use ipnet::IpNet;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_util::either::Either;

/// Where streams may go.
#[derive(Debug, Clone, Default)]
pub struct StreamPolicy {
    /// Subnets streamed to even though they are not public.
    pub allowed_subnets: Vec<IpNet>,
    /// Allow `syslog+tcp` (no TLS).
    pub allow_plaintext: bool,
}

impl StreamPolicy {
    /// Reads `syslog+tls://host[:port]` (or `syslog+tcp://`), as far as it
    /// can be checked without resolving the host.
    pub fn destination(&self, raw: &str) -> Result<Destination, String> {
        let url = url::Url::parse(raw).map_err(|e| format!("not a URL: {e}"))?;
        let transport = Transport::parse(url.scheme()).ok_or_else(|| {
            format!(
                "unknown transport {:?}; use syslog+tls (or syslog+tcp where the operator allows it)",
                url.scheme()
            )
        })?;
        if transport == Transport::SyslogTcp && !self.allow_plaintext {
            return Err("syslog+tcp sends entries in clear; the operator has not allowed it: use syslog+tls".into());
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("the URL must not carry credentials".into());
        }
        if !matches!(url.path(), "" | "/") || url.query().is_some() || url.fragment().is_some() {
            return Err("the URL is a host and a port, with no path, query or fragment".into());
        }
        let host = match url.host() {
            None => return Err("the URL has no host".into()),
            Some(url::Host::Ipv4(ip)) => self.check_ip(IpAddr::V4(ip)).map(|()| ip.to_string())?,
            Some(url::Host::Ipv6(ip)) => self.check_ip(IpAddr::V6(ip)).map(|()| ip.to_string())?,
            Some(url::Host::Domain(d)) if d.eq_ignore_ascii_case("localhost") || d.ends_with(".localhost") => {
                self.check_ip(IpAddr::from([127, 0, 0, 1])).map(|()| d.to_owned())?
            }
            // Hosts of URLs whose scheme the URL standard does not know
            // are left as text, addresses too: read them here.
            Some(url::Host::Domain(d)) => match d.parse::<IpAddr>() {
                Ok(ip) => self.check_ip(ip).map(|()| ip.to_string())?,
                Err(_) => d.to_owned(),
            },
        };
        Ok(Destination {
            transport,
            host,
            port: url.port().unwrap_or(transport.default_port()),
        })
    }

    fn check_ip(&self, ip: IpAddr) -> Result<(), String> {
        if ssrf::forbidden(ip, &self.allowed_subnets) {
            Err(format!("{ip} is not a public address; the operator has not allowed it"))
        } else {
            Ok(())
        }
    }

    /// The destination's addresses the policy allows; an error when it
    /// resolves to none.
    async fn resolve(&self, d: &Destination) -> io::Result<Vec<SocketAddr>> {
        let found: Vec<SocketAddr> = tokio::net::lookup_host((d.host.as_str(), d.port)).await?.collect();
        let allowed: Vec<SocketAddr> = found
            .into_iter()
            .filter(|a| !ssrf::forbidden(a.ip(), &self.allowed_subnets))
            .collect();
        if allowed.is_empty() {
            return Err(io::Error::other(format!(
                "refused: {} resolves only to addresses that are not public",
                d.host
            )));
        }
        Ok(allowed)
    }
}

/// Builds the TLS client settings of a stream: its CA or the system's
/// roots, and its client certificate, the key opened with `sealer`.
/// Called when a stream is saved, so bad PEM is refused there.
pub fn tls_config(tls: &TlsSettings, sealer: Option<&SecretSealer>) -> Result<Arc<ClientConfig>, String> {
    let roots = match &tls.ca_pem {
        Some(pem) => pem_roots(pem)?,
        None => system_roots(),
    };
    let builder = ClientConfig::builder().with_root_certificates(roots);
    let config = match (&tls.client_cert_pem, &tls.client_key) {
        (None, None) => builder.with_no_client_auth(),
        (Some(cert), Some(key)) => {
            let chain = CertificateDer::pem_slice_iter(cert.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("client certificate: not PEM: {e}"))?;
            if chain.is_empty() {
                return Err("client certificate: no PEM certificate in it".into());
            }
            let opened = match sealer {
                Some(s) => s.open(key).map_err(|e| format!("client key: {e}"))?,
                None => key.clone(),
            };
            let key = PrivateKeyDer::from_pem_slice(&opened).map_err(|e| format!("client key: not a PEM key: {e}"))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| format!("client certificate and key: {e}"))?
        }
        _ => return Err("a client certificate needs its key, and a key its certificate".into()),
    };
    Ok(Arc::new(config))
}

fn pem_roots(pem: &str) -> Result<RootCertStore, String> {
    let mut store = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
        let cert = cert.map_err(|e| format!("CA: not PEM: {e}"))?;
        store
            .add(cert)
            .map_err(|e| format!("CA: not a usable certificate: {e}"))?;
    }
    if store.is_empty() {
        return Err("CA: no PEM certificate in it".into());
    }
    Ok(store)
}

fn system_roots() -> RootCertStore {
    let found = rustls_native_certs::load_native_certs();
    let mut store = RootCertStore::empty();
    store.add_parsable_certificates(found.certs);
    store
}

/// A connection to a receiver, plain or TLS: tokio-util's `Either`
/// reads and writes through whichever it holds.
pub type Connection = Either<TcpStream, Box<TlsStream<TcpStream>>>;

/// Connects to the first allowed address of the destination that answers
/// within `timeout`, and shakes hands if the transport is TLS.
pub async fn connect(
    policy: &StreamPolicy,
    d: &Destination,
    tls: Option<Arc<ClientConfig>>,
    timeout: Duration,
) -> io::Result<Connection> {
    let addrs = policy.resolve(d).await?;
    let mut last = io::Error::other("no address to connect to");
    let mut tcp = None;
    for addr in addrs {
        match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => {
                tcp = Some(s);
                break;
            }
            Ok(Err(e)) => last = io::Error::new(e.kind(), format!("{addr}: {e}")),
            Err(_) => last = io::Error::new(io::ErrorKind::TimedOut, format!("{addr}: connect timed out")),
        }
    }
    let tcp = tcp.ok_or(last)?;
    tcp.set_nodelay(true)?;
    match (d.transport, tls) {
        (Transport::SyslogTcp, _) => Ok(Either::Left(tcp)),
        (Transport::SyslogTls, None) => Err(io::Error::other("TLS settings missing")),
        (Transport::SyslogTls, Some(config)) => {
            let name = ServerName::try_from(d.host.clone())
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("{}: {e}", d.host)))?;
            let handshake = tokio_rustls::TlsConnector::from(config).connect(name, tcp);
            match tokio::time::timeout(timeout, handshake).await {
                Ok(Ok(s)) => Ok(Either::Right(Box::new(s))),
                Ok(Err(e)) => Err(io::Error::new(e.kind(), format!("TLS handshake: {e}"))),
                Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open() -> StreamPolicy {
        StreamPolicy::default()
    }

    #[test]
    fn destinations_are_read_from_urls() {
        let d = open().destination("syslog+tls://siem.example.com").unwrap();
        assert_eq!(
            (d.transport, d.host.as_str(), d.port),
            (Transport::SyslogTls, "siem.example.com", 6514)
        );
        let d = open().destination("syslog+tls://[2001:4860::8888]:10514").unwrap();
        assert_eq!((d.host.as_str(), d.port), ("2001:4860::8888", 10514));
    }

    #[test]
    fn bad_destinations_say_why() {
        let p = open();
        let err = |u: &str| p.destination(u).unwrap_err();
        assert!(err("syslog+udp://a.example.com").contains("unknown transport"));
        assert!(err("https://a.example.com").contains("unknown transport"));
        assert!(err("syslog+tcp://a.example.com").contains("not allowed"));
        assert!(err("syslog+tls://127.0.0.1:6514").contains("not a public address"));
        assert!(err("syslog+tls://169.254.169.254").contains("not a public address"));
        assert!(err("syslog+tls://localhost").contains("not a public address"));
        assert!(err("syslog+tls://u:p@a.example.com").contains("credentials"));
        assert!(err("syslog+tls://a.example.com/x").contains("no path"));
        assert!(err("not a url").contains("not a URL"));
    }

    #[test]
    fn the_operator_opens_subnets_and_plaintext() {
        let p = StreamPolicy {
            allowed_subnets: vec!["127.0.0.0/8".parse().unwrap()],
            allow_plaintext: true,
        };
        assert_eq!(p.destination("syslog+tcp://127.0.0.1:5514").unwrap().port, 5514);
        assert!(p.destination("syslog+tls://10.0.0.1").is_err());
    }

    #[test]
    fn tls_settings_are_checked() {
        crate::workers::webhook_client::init_tls();
        assert!(tls_config(&TlsSettings::default(), None).is_ok());
        let bad_ca = TlsSettings {
            ca_pem: Some("hello".into()),
            ..TlsSettings::default()
        };
        assert!(tls_config(&bad_ca, None).unwrap_err().contains("CA"));
        let half = TlsSettings {
            client_cert_pem: Some("x".into()),
            ..TlsSettings::default()
        };
        assert!(tls_config(&half, None).unwrap_err().contains("needs its key"));
    }

    #[tokio::test]
    async fn names_resolving_to_forbidden_addresses_are_refused_when_connecting() {
        let d = Destination {
            transport: Transport::SyslogTcp,
            host: "localhost".into(),
            port: 9,
        };
        let e = connect(&open(), &d, None, Duration::from_secs(1)).await.err().unwrap();
        assert!(e.to_string().contains("not public"), "{e}");
    }
}

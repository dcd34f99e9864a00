//! Certificates for tests: a CA and leaves it signs, and a TLS listener on
//! loopback presenting one (DANE, MTA-STS and HTTPS GET tests).

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A certificate authority.
pub(crate) struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A leaf certificate and its key.
pub(crate) struct Leaf {
    pub cert: CertificateDer<'static>,
    pub key: PrivateKeyDer<'static>,
}

impl Leaf {
    /// The leaf's chain up to `ca` and its key, as a server presents them.
    pub(crate) fn with(self, ca: &Ca) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
        (vec![self.cert, ca.cert()], self.key)
    }
}

impl Ca {
    pub(crate) fn new(cn: &str) -> Self {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name.push(DnType::CommonName, cn);
        let issuer = CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap();
        Ca { issuer }
    }

    pub(crate) fn cert(&self) -> CertificateDer<'static> {
        self.issuer.der().clone()
    }

    /// A leaf for `names`; `expired` puts its validity in 2000.
    pub(crate) fn leaf(&self, names: &[&str], expired: bool) -> Leaf {
        let mut p = CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .unwrap();
        p.distinguished_name.push(DnType::CommonName, names[0]);
        if expired {
            p.not_before = rcgen::date_time_ymd(2000, 1, 1);
            p.not_after = rcgen::date_time_ymd(2000, 12, 31);
        }
        let key = KeyPair::generate().unwrap();
        let cert = p.signed_by(&key, &self.issuer).unwrap();
        Leaf {
            cert: cert.der().clone(),
            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        }
    }
}

/// A listener on a free loopback port and a TLS acceptor presenting
/// `chain` with `key`; the address it listens on.
pub(crate) async fn tls_listener(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> (
    tokio::net::TcpListener,
    tokio_rustls::TlsAcceptor,
    std::net::SocketAddr,
) {
    let config = rustls::ServerConfig::builder_with_provider(crate::net::tls::provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    (listener, acceptor, addr)
}

/// Reads an HTTP request's head (through the blank line) byte by byte, so
/// nothing after it is consumed; `None` when the peer closes first.
pub(crate) async fn read_request_head<S: tokio::io::AsyncRead + Unpin>(
    s: &mut S,
) -> Option<Vec<u8>> {
    use tokio::io::AsyncReadExt;
    let mut req = Vec::new();
    while !req.ends_with(b"\r\n\r\n") {
        let mut b = [0u8; 1];
        if s.read(&mut b).await.unwrap_or(0) == 0 {
            return None;
        }
        req.extend_from_slice(&b);
    }
    Some(req)
}

/// A self-signed leaf for `name`.
pub(crate) fn self_signed(name: &str) -> Leaf {
    let made = rcgen::generate_simple_self_signed(vec![name.to_string()]).unwrap();
    Leaf {
        cert: made.cert.der().clone(),
        key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(made.signing_key.serialize_der())),
    }
}

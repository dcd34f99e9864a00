//! Server-side TLS for SMTP listeners: the `[tls]` certificate (or the
//! generated development one, `net::tls`), optional client certificates for
//! connector recognition, and the facts we record about each session.

use crate::config::Config;
use crate::net::tls::{ensure_dev_cert, file_err, load_pair, provider, TlsError};
use crate::spool::TlsFacts;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::UnixTime;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use rustls::{RootCertStore, ServerConfig, ServerConnection};
use std::path::Path;
use std::sync::Arc;

/// The listeners' TLS set-up: the rustls config and, when connectors use
/// client certificates, the verifier that decides whether one is trusted.
pub struct ServerTls {
    /// Shared by every listener.
    pub config: Arc<ServerConfig>,
    client_verifier: Option<Arc<dyn ClientCertVerifier>>,
}

/// Asks for a client certificate but never fails a handshake over it: many
/// ordinary MTAs present self-signed certificates, and refusing them would
/// break inbound TLS. The handshake still proves the client holds the key;
/// whether the certificate is *trusted* is decided afterwards
/// ([`ServerTls::facts`]) and only a trusted one can match a connector.
#[derive(Debug)]
struct AskClientCert {
    inner: Arc<dyn ClientCertVerifier>,
}

impl ClientCertVerifier for AskClientCert {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

impl ServerTls {
    /// Builds the listeners' TLS configuration.
    pub fn new(config: &Config) -> Result<Self, TlsError> {
        let (cert_path, key_path) = match (&config.tls.cert_file, &config.tls.key_file) {
            (Some(c), Some(k)) => (c.clone(), k.clone()),
            _ => ensure_dev_cert(&config.server.data_dir, &config.server.hostname)?,
        };
        let (certs, key) = load_pair(&cert_path, &key_path)?;
        let builder = ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?;
        let wants_client_certs = config
            .connector
            .iter()
            .any(|c| !c.tls_client_names.is_empty());
        let (builder, client_verifier) = if wants_client_certs {
            let roots = client_roots(config.tls.client_ca_file.as_deref())?;
            let strict = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                .build()
                .map_err(|e| TlsError::Generate(format!("client verifier: {e}")))?;
            let ask = Arc::new(AskClientCert {
                inner: strict.clone(),
            });
            (builder.with_client_cert_verifier(ask), Some(strict))
        } else {
            (builder.with_no_client_auth(), None)
        };
        let mut sc = builder.with_single_cert(certs, key)?;
        sc.ignore_client_order = true;
        Ok(ServerTls {
            config: Arc::new(sc),
            client_verifier,
        })
    }

    /// Facts about an established TLS session; `client_names` are filled
    /// only for a client certificate that chains to the trusted roots.
    pub fn facts(&self, conn: &ServerConnection) -> TlsFacts {
        let version = match conn.protocol_version() {
            Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3".to_string(),
            Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2".to_string(),
            Some(v) => format!("{v:?}"),
            None => "unknown".into(),
        };
        let cipher = conn
            .negotiated_cipher_suite()
            .and_then(|s| s.suite().as_str())
            .unwrap_or("unknown")
            .to_string();
        let client_names = match (conn.peer_certificates(), &self.client_verifier) {
            (Some([leaf, chain @ ..]), Some(v)) => {
                match v.verify_client_cert(leaf, chain, UnixTime::now()) {
                    Ok(_) => cert_names(leaf.as_ref()),
                    Err(e) => {
                        tracing::debug!(error = %e, "client certificate not trusted; ignored for connector matching");
                        Vec::new()
                    }
                }
            }
            _ => Vec::new(),
        };
        TlsFacts {
            version,
            cipher,
            client_names,
        }
    }
}

fn client_roots(ca_file: Option<&Path>) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    match ca_file {
        Some(path) => {
            for c in CertificateDer::pem_file_iter(path).map_err(|e| file_err(path, e))? {
                roots.add(c.map_err(|e| file_err(path, e))?)?;
            }
        }
        None => {
            for c in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(c);
            }
        }
    }
    if roots.is_empty() {
        return Err(TlsError::Generate(
            "no trusted roots for client certificates (set tls.client_ca_file)".into(),
        ));
    }
    Ok(roots)
}

/// DNS SANs of a DER certificate, lower-cased; the subject CN only when
/// there are none (RFC 6125 §6.4.4).
pub fn cert_names(der: &[u8]) -> Vec<String> {
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) else {
        return Vec::new();
    };
    let mut names = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for n in &san.value.general_names {
            if let x509_parser::extensions::GeneralName::DNSName(d) = n {
                names.push(d.to_ascii_lowercase());
            }
        }
    }
    if names.is_empty() {
        names.extend(
            cert.subject()
                .iter_common_name()
                .filter_map(|cn| cn.as_str().ok())
                .map(|s| s.to_ascii_lowercase()),
        );
    }
    names.dedup();
    names
}

/// Whether a certificate name matches a configured pattern (`*.x` = one label).
pub fn name_matches(pattern: &str, name: &str) -> bool {
    let pattern = pattern.to_ascii_lowercase();
    match pattern.strip_prefix("*.") {
        Some(suffix) => name
            .split_once('.')
            .is_some_and(|(label, rest)| !label.is_empty() && label != "*" && rest == suffix),
        None => pattern == name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::tls::dev_cert_paths;

    #[test]
    fn wildcard_matching() {
        assert!(name_matches(
            "*.mail.protection.outlook.com",
            "contoso.mail.protection.outlook.com"
        ));
        assert!(!name_matches(
            "*.mail.protection.outlook.com",
            "a.b.mail.protection.outlook.com"
        ));
        assert!(!name_matches("*.example.com", "example.com"));
        assert!(name_matches("Relay.Example.com", "relay.example.com"));
    }

    #[test]
    fn only_forward_secret_suites() {
        for s in provider().cipher_suites.iter() {
            let name = s.suite().as_str().unwrap();
            assert!(
                name.starts_with("TLS13_") || name.starts_with("TLS_ECDHE_"),
                "{name}"
            );
        }
    }

    #[test]
    fn dev_cert_generated_once_and_names_read() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = Config::embedded();
        c.server.data_dir = dir.path().to_path_buf();
        c.server.hostname = "mx.example.test".into();
        ServerTls::new(&c).unwrap();
        let (cert, _) = dev_cert_paths(dir.path());
        let first = std::fs::read(&cert).unwrap();
        ServerTls::new(&c).unwrap();
        assert_eq!(first, std::fs::read(&cert).unwrap());
        let der = CertificateDer::from_pem_file(&cert).unwrap();
        assert!(cert_names(der.as_ref()).contains(&"mx.example.test".to_string()));
    }
}

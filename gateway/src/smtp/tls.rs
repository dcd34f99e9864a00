//! Server-side TLS for SMTP listeners: certificate loading (or a generated
//! development certificate), TLS 1.2/1.3 with forward-secret AEAD suites only,
//! optional client certificates for connector recognition, and the facts we
//! record about each session.

use crate::config::Config;
use crate::spool::TlsFacts;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::UnixTime;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use rustls::{RootCertStore, ServerConfig, ServerConnection};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// TLS set-up failures.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A certificate or key file could not be read or parsed.
    #[error("{path}: {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    /// The development certificate could not be generated.
    #[error("generating the development certificate: {0}")]
    Generate(String),
}

fn file_err(path: &Path, reason: impl ToString) -> TlsError {
    TlsError::File {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

/// The crypto provider: ring, with only ECDHE + AEAD suites (forward secrecy).
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    let mut p = rustls::crypto::ring::default_provider();
    p.cipher_suites.retain(|s| match s {
        rustls::SupportedCipherSuite::Tls13(_) => true,
        rustls::SupportedCipherSuite::Tls12(s) => {
            let name = s.common.suite.as_str().unwrap_or("");
            name.starts_with("TLS_ECDHE_") && (name.contains("GCM") || name.contains("CHACHA20"))
        }
    });
    Arc::new(p)
}

/// Paths of the generated development certificate and key.
pub fn dev_cert_paths(data_dir: &Path) -> (PathBuf, PathBuf) {
    let dir = data_dir.join("tls");
    (dir.join("dev-cert.pem"), dir.join("dev-key.pem"))
}

/// Creates a self-signed certificate for `hostname` unless one exists.
pub fn ensure_dev_cert(data_dir: &Path, hostname: &str) -> Result<(PathBuf, PathBuf), TlsError> {
    let (cert, key) = dev_cert_paths(data_dir);
    if cert.exists() && key.exists() {
        return Ok((cert, key));
    }
    let names = vec![hostname.to_string(), "localhost".into(), "127.0.0.1".into()];
    let made =
        rcgen::generate_simple_self_signed(names).map_err(|e| TlsError::Generate(e.to_string()))?;
    std::fs::create_dir_all(cert.parent().expect("has parent")).map_err(|e| file_err(&cert, e))?;
    std::fs::write(&cert, made.cert.pem()).map_err(|e| file_err(&cert, e))?;
    write_private(&key, made.signing_key.serialize_pem().as_bytes())?;
    tracing::warn!(path = %cert.display(), "generated a self-signed development certificate; set tls.cert_file for production");
    Ok((cert, key))
}

fn write_private(path: &Path, data: &[u8]) -> Result<(), TlsError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| file_err(path, e))?;
    f.write_all(data).map_err(|e| file_err(path, e))
}

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

/// A PEM certificate chain and its private key.
fn load_pair(
    cert_path: &Path,
    key_path: &Path,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_path)
        .map_err(|e| file_err(cert_path, e))?
        .collect::<Result<_, _>>()
        .map_err(|e| file_err(cert_path, e))?;
    if certs.is_empty() {
        return Err(file_err(cert_path, "no certificate in file"));
    }
    let key = PrivateKeyDer::from_pem_file(key_path).map_err(|e| file_err(key_path, e))?;
    Ok((certs, key))
}

/// A TLS 1.2/1.3 server configuration without client certificates (the portal's).
pub fn server_config_from_files(
    cert_path: &Path,
    key_path: &Path,
) -> Result<ServerConfig, TlsError> {
    let (certs, key) = load_pair(cert_path, key_path)?;
    Ok(ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_single_cert(certs, key)?)
}

/// The certificate and key of an HTTPS listener: its own pair when both are
/// set, else the `[tls]` pair, else the development certificate.
pub fn https_pair(
    config: &Config,
    cert_file: &Option<PathBuf>,
    key_file: &Option<PathBuf>,
) -> Result<(PathBuf, PathBuf), TlsError> {
    match (cert_file, key_file) {
        (Some(c), Some(k)) => Ok((c.clone(), k.clone())),
        _ => match (&config.tls.cert_file, &config.tls.key_file) {
            (Some(c), Some(k)) => Ok((c.clone(), k.clone())),
            _ => ensure_dev_cert(&config.server.data_dir, &config.server.hostname),
        },
    }
}

/// The rustls configuration of an HTTPS listener (portal, admin API).
pub fn https_server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    let mut sc = server_config_from_files(cert, key)?;
    sc.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(sc))
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

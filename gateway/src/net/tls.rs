//! TLS every listener and client shares: the crypto provider (ring, only
//! ECDHE suites with AEAD), certificate files (and the generated
//! development certificate), the HTTPS listeners' server configuration,
//! and the system's trust roots.

use crate::config::Config;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{RootCertStore, ServerConfig};
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
    /// A private key file others may read, or not ours.
    #[error(transparent)]
    Unsafe(#[from] crate::secret_file::SecretFileError),
    /// Neither the system store nor a configured file holds a trusted root.
    #[error("no trusted root certificates (system store empty and no CA file)")]
    NoRoots,
    /// The development certificate could not be generated.
    #[error("generating the development certificate: {0}")]
    Generate(String),
}

pub(crate) fn file_err(path: &Path, reason: impl ToString) -> TlsError {
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

/// A PEM certificate chain and its private key.
pub fn load_pair(
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
    crate::secret_file::check_key(key_path)?;
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

/// The system's trusted roots plus the certificates in `extra_pem`; an
/// error when the file cannot be read or no root at all is available.
pub fn trust_roots(extra_pem: Option<&Path>) -> Result<Arc<RootCertStore>, TlsError> {
    let mut roots = RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for e in &native.errors {
        tracing::debug!(error = %e, "some system trust roots could not be loaded");
    }
    // System stores carry the odd certificate webpki cannot use; skip those.
    let (_added, _ignored) = roots.add_parsable_certificates(native.certs);
    if let Some(path) = extra_pem {
        let certs = CertificateDer::pem_file_iter(path).map_err(|e| file_err(path, e))?;
        let mut n = 0;
        for c in certs {
            let c = c.map_err(|e| file_err(path, e))?;
            roots.add(c).map_err(|e| file_err(path, e))?;
            n += 1;
        }
        if n == 0 {
            return Err(file_err(path, "no certificate in file"));
        }
    }
    if roots.is_empty() {
        return Err(TlsError::NoRoots);
    }
    Ok(Arc::new(roots))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_roots_loaded_and_bad_files_reported() {
        let dir = tempfile::tempdir().unwrap();
        let made = rcgen::generate_simple_self_signed(vec!["ca.test".into()]).unwrap();
        let pem = dir.path().join("ca.pem");
        std::fs::write(&pem, made.cert.pem()).unwrap();
        let roots = trust_roots(Some(&pem)).unwrap();
        assert!(!roots.is_empty());
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        assert!(trust_roots(Some(&empty))
            .unwrap_err()
            .to_string()
            .contains("no certificate"));
        assert!(trust_roots(Some(&dir.path().join("missing.pem"))).is_err());
    }

    #[test]
    fn a_private_key_others_can_read_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let made = rcgen::generate_simple_self_signed(vec!["mx.test".into()]).unwrap();
        let (cert, key) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
        std::fs::write(&cert, made.cert.pem()).unwrap();
        std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = server_config_from_files(&cert, &key)
            .unwrap_err()
            .to_string();
        assert!(err.contains("k.pem") && err.contains("chmod 600"), "{err}");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        server_config_from_files(&cert, &key).unwrap();
    }
}

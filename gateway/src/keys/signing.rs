//! The organisation's own S/MIME signing identity, when it was installed
//! with `sealgate keys import FILE.p12`: its certificate and private key as
//! PEM under `<keystore_dir>/signing/`, the key readable by its owner only.
//! `[seal] smime_signing_cert`/`smime_signing_key`, when set, win.

use super::KeyStoreError;
use std::path::{Path, PathBuf};

/// Where an installed identity lives: (certificate, key).
pub fn smime_paths(keystore_dir: &Path) -> (PathBuf, PathBuf) {
    let dir = keystore_dir.join("signing");
    (dir.join("smime-cert.pem"), dir.join("smime-key.pem"))
}

/// Installs a signing identity (certificate chain and private key, PEM;
/// read from PKCS#12 and checked by `seal::smime::SmimeSigner`) as the
/// S/MIME signing identity; returns the directory it went to.
pub fn install_smime(keystore_dir: &Path, cert: &str, key: &str) -> Result<PathBuf, KeyStoreError> {
    let (cert_path, key_path) = smime_paths(keystore_dir);
    let dir = cert_path.parent().unwrap_or(keystore_dir).to_path_buf();
    let io = |p: &Path| {
        let p = p.display().to_string();
        move |source| KeyStoreError::Io { path: p, source }
    };
    std::fs::create_dir_all(&dir).map_err(io(&dir))?;
    crate::durable_file::replace(&key_path, key.as_bytes(), 0o600).map_err(io(&key_path))?;
    crate::durable_file::replace(&cert_path, cert.as_bytes(), 0o644).map_err(io(&cert_path))?;
    Ok(dir)
}

//! The connection pool from `[store]`: the URL, the password from its
//! file, TLS through rustls (the system's roots plus `ca_file`) when the
//! URL's `sslmode` asks for it, and connect and wait timeouts of
//! `commit_timeout`, so an unreachable database fails a caller rather than
//! hangs it.

use super::PgError;
use crate::config::StoreConfig;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use std::path::Path;

/// The pool of connections `store` describes.
pub fn build(store: &StoreConfig) -> Result<Pool, PgError> {
    let url = store.url.as_deref().ok_or(PgError::NoUrl)?;
    let mut pg: tokio_postgres::Config = url.parse().map_err(PgError::Url)?;
    if let Some(path) = &store.password_file {
        pg.password(read_password(path)?);
    }
    if pg.get_application_name().is_none() {
        pg.application_name("sealgate");
    }
    pg.connect_timeout(store.commit_timeout.0);
    let tls = tokio_postgres_rustls::MakeRustlsConnect::new(client_config(store)?);
    let manager = Manager::from_config(
        pg,
        tls,
        ManagerConfig {
            // A connection the server dropped (a restart, a failover) is
            // found out by a cheap query before it is handed out.
            recycling_method: RecyclingMethod::Verified,
        },
    );
    let wait = Some(store.commit_timeout.0);
    Ok(Pool::builder(manager)
        .max_size(store.pool_size)
        .runtime(Runtime::Tokio1)
        .wait_timeout(wait)
        .create_timeout(wait)
        .recycle_timeout(wait)
        .build()?)
}

/// The first line of the password file.
fn read_password(path: &Path) -> Result<String, PgError> {
    let text = std::fs::read_to_string(path).map_err(|source| PgError::PasswordFile {
        path: path.display().to_string(),
        source,
    })?;
    Ok(text.lines().next().unwrap_or("").to_string())
}

/// rustls for the database: the system's roots and those of `ca_file`.
fn client_config(store: &StoreConfig) -> Result<rustls::ClientConfig, PgError> {
    let mut roots = rustls::RootCertStore::empty();
    // The system store may carry certificates webpki cannot use; skip them.
    let native = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(native.certs);
    if let Some(path) = &store.ca_file {
        use rustls::pki_types::pem::PemObject;
        let bad = |reason: String| PgError::CaFile {
            path: path.display().to_string(),
            reason,
        };
        let certs = rustls::pki_types::CertificateDer::pem_file_iter(path)
            .map_err(|e| bad(e.to_string()))?;
        let mut n = 0;
        for cert in certs {
            roots
                .add(cert.map_err(|e| bad(e.to_string()))?)
                .map_err(|e| bad(e.to_string()))?;
            n += 1;
        }
        if n == 0 {
            return Err(bad("no certificate in file".into()));
        }
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports the default TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth())
}

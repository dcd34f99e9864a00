//! Every durable thing behind a trait, so the stages, the CLI and the API
//! say *what* they keep and a backend decides *where*: the embedded one
//! (`rocksdb/`: RocksDB, and plain files where a database would add
//! nothing) on one node, PostgreSQL for a cluster (issue "cluster").
//!
//! Each trait's doc says what it promises — when a write is durable,
//! what is atomic, what order reads see — and `conformance` holds one test
//! per trait that checks those promises against any implementation, so a
//! new backend is tested by the same suite.
//!
//! Behind a trait so far: API tokens (`tokens`), legal holds (`holds`),
//! the audit log (`audit_log`), TLS memory (`tls_memory`), the cache of
//! derived records (`cache`), recipients' key records (`keys`), the escrow
//! portal's messages and sign-in state (`escrow`; opened together by
//! `Stores::open_portal`) and the archive (`archive`; opened by
//! `rocksdb::archive::open_writable` and `open_read_only`, not `Stores`,
//! since it needs its key file and signing key and is opened read-only or
//! for writing) and the spool (`spool`: queued messages, the stages'
//! records about them, finished records; opened by the spool stage's
//! `Spool::open` with the TLS memory and cache kept beside it). Nothing
//! durable is opened by a stage directly any more. `keyring` seals
//! records at rest for every store.

pub mod archive;
pub mod audit_log;
pub mod cache;
#[cfg(test)]
pub mod conformance;
pub mod escrow;
pub mod holds;
pub mod keyring;
pub mod keys;
pub mod postgres;
pub mod rocksdb;
pub mod shred;
pub mod spool;
pub mod tls_memory;
pub mod tokens;

/// A store's backend failed; what it said is kept for the operator.
#[derive(Debug, thiserror::Error)]
#[error("{store}: {source}")]
pub struct BackendError {
    /// Which store.
    pub store: &'static str,
    /// The backend's error.
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

impl BackendError {
    /// Wraps `source` as a failure of `store`.
    pub fn new(
        store: &'static str,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        BackendError {
            store,
            source: source.into(),
        }
    }
}

/// The stores of one node, opened from its configuration: what the stages,
/// the API and the command line are handed instead of paths.
#[derive(Clone)]
pub struct Stores {
    /// API tokens.
    pub tokens: std::sync::Arc<dyn tokens::ApiTokens>,
    /// Legal holds.
    pub holds: std::sync::Arc<dyn holds::LegalHolds>,
    /// The audit log.
    pub audit: std::sync::Arc<dyn audit_log::AuditLog>,
    /// Recipients' key records.
    pub keys: std::sync::Arc<dyn keys::KeyRecords>,
}

impl std::fmt::Debug for Stores {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stores").finish_non_exhaustive()
    }
}

impl Stores {
    /// The stores of `config`'s node: the embedded backend under its data
    /// directory (the only backend so far).
    pub fn open(config: &crate::config::Config) -> Stores {
        let data = &config.server.data_dir;
        Stores {
            tokens: std::sync::Arc::new(rocksdb::tokens::TokenFile::new(data)),
            holds: std::sync::Arc::new(rocksdb::holds::HoldFile::new(data)),
            audit: std::sync::Arc::new(rocksdb::audit_file::AuditFile::new(data)),
            keys: std::sync::Arc::new(rocksdb::key_files::KeyFiles::new(&config.keystore_dir())),
        }
    }

    /// The escrow portal's stores of `config`'s node, for the gateway
    /// (made, with their key file, on first use).
    pub fn open_portal(
        config: &crate::config::Config,
    ) -> Result<escrow::PortalStores, escrow::EscrowError> {
        let keys = keyring::Keyring::load_or_create(&config.escrow_key_file())
            .map_err(|source| escrow_key_error(config, source))?;
        Ok(rocksdb::escrow::EscrowDb::open(&config.escrow_dir(), keys)?.stores())
    }

    /// The escrow portal's stores read-only (while the gateway may run),
    /// or `None` when the portal never held anything.
    pub fn open_portal_read_only(
        config: &crate::config::Config,
    ) -> Result<Option<escrow::PortalStores>, escrow::EscrowError> {
        let dir = config.escrow_dir();
        if !dir.join("CURRENT").exists() {
            return Ok(None);
        }
        let keys = keyring::Keyring::load(&config.escrow_key_file())
            .map_err(|source| escrow_key_error(config, source))?;
        Ok(Some(
            rocksdb::escrow::EscrowDb::open_read_only(&dir, keys)?.stores(),
        ))
    }
}

fn escrow_key_error(
    config: &crate::config::Config,
    source: keyring::KeyError,
) -> escrow::EscrowError {
    escrow::EscrowError::Key {
        what: config.escrow_key_file().display().to_string(),
        source,
    }
}

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
//! Behind a trait so far: API tokens (`tokens`), TLS memory
//! (`tls_memory`) and the cache of derived records (`cache`). Still opened
//! directly by the stage that owns them, to be moved behind traits in the
//! next slices: the spool's messages and records, the escrow store and the
//! portal's accounts, the archive and its holds, the keystore, the audit
//! log.

pub mod cache;
#[cfg(test)]
pub mod conformance;
pub mod rocksdb;
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

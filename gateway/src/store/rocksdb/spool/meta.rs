//! The embedded backend's stores in the spool database's `meta` table:
//! TLS memory (`tls-memory/<domain>` → RFC 3339 time, written through the
//! spool's group commit so it is synced when `remember` returns) and the
//! cache of derived records (`cache/<key>`, encrypted, not synced).

use super::commit::Op;
use super::{tls_memory_key, RocksSpool, CF_META, TLS_MEMORY_PREFIX};
use crate::store::cache::Cache;
use crate::store::spool::Durability;
use crate::store::tls_memory::{Remembered, TlsMemory};
use crate::store::BackendError;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rocksdb::IteratorMode;

fn backend(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> BackendError {
    BackendError::new("TLS memory", e)
}

fn parse_time(domain: &str, v: &[u8]) -> Result<DateTime<Utc>, BackendError> {
    DateTime::parse_from_rfc3339(&String::from_utf8_lossy(v))
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| backend(format!("{domain}: {e}")))
}

#[async_trait]
impl TlsMemory for RocksSpool {
    async fn remember(&self, domain: &str) -> Result<(), BackendError> {
        let key = tls_memory_key(domain);
        let known = self
            .0
            .db
            .get_pinned_cf(self.cf(CF_META), &key)
            .map_err(backend)?;
        if known.is_some() {
            return Ok(());
        }
        let value = Utc::now().to_rfc3339().into_bytes();
        self.committer()
            .map_err(backend)?
            .commit(
                vec![Op::Put {
                    cf: CF_META,
                    key,
                    value,
                }],
                Durability::Synced,
            )
            .await
            .map_err(backend)
    }

    async fn remembered(&self, domain: &str) -> Result<Option<DateTime<Utc>>, BackendError> {
        self.0
            .db
            .get_cf(self.cf(CF_META), tls_memory_key(domain))
            .map_err(backend)?
            .map(|v| parse_time(domain, &v))
            .transpose()
    }

    async fn forget(&self, domain: &str) -> Result<bool, BackendError> {
        if self.remembered(domain).await?.is_none() {
            return Ok(false);
        }
        self.committer()
            .map_err(backend)?
            .commit(
                vec![Op::Delete {
                    cf: CF_META,
                    key: tls_memory_key(domain),
                }],
                Durability::Synced,
            )
            .await
            .map_err(backend)?;
        Ok(true)
    }

    async fn list(&self) -> Result<Vec<Remembered>, BackendError> {
        let mut out = Vec::new();
        let it = self.0.db.iterator_cf(
            self.cf(CF_META),
            IteratorMode::From(TLS_MEMORY_PREFIX, rocksdb::Direction::Forward),
        );
        for item in it {
            let (k, v) = item.map_err(backend)?;
            let Some(d) = k.strip_prefix(TLS_MEMORY_PREFIX) else {
                break;
            };
            let domain = String::from_utf8_lossy(d).into_owned();
            let since = parse_time(&domain, &v)?;
            out.push(Remembered { domain, since });
        }
        Ok(out)
    }
}

#[async_trait]
impl Cache for RocksSpool {
    async fn put(&self, key: &str, value: &[u8]) -> Result<(), BackendError> {
        self.put_meta(key, value)
            .map_err(|e| BackendError::new("cache", e))
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, BackendError> {
        self.get_meta(key)
            .map_err(|e| BackendError::new("cache", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::keyring::Keyring;
    use crate::telemetry::metrics::Metrics;
    use std::sync::Arc;

    #[tokio::test]
    async fn the_spools_meta_stores_keep_the_promises() {
        let dir = tempfile::tempdir().unwrap();
        let keys = Keyring::load_or_create(&dir.path().join("spool.keys")).unwrap();
        let spool =
            RocksSpool::open(&dir.path().join("spool"), keys, Arc::new(Metrics::new())).unwrap();
        // One database, so "a fresh handle" is another handle on it.
        crate::store::conformance::tls_memory(&|| Box::new(spool.clone())).await;
        crate::store::conformance::cache(&|| Box::new(spool.clone())).await;
    }
}

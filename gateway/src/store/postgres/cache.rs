//! The cache of derived records in the `cache` table, each value sealed
//! with the spool's keyring (bound to its key) before it leaves Sealgate.
//! Puts commit without waiting for the WAL flush (`synchronous_commit`
//! off): the trait allows a crash to lose the latest, never half of one.

use super::{Database, PgError};
use crate::store::cache::Cache;
use crate::store::keyring::Keyring;
use crate::store::BackendError;
use async_trait::async_trait;
use std::sync::Arc;

/// The cache of a cluster.
pub struct PgCache {
    db: Database,
    keys: Arc<Keyring>,
}

impl PgCache {
    /// The cache kept in `db`, sealed with `keys`.
    pub fn new(db: Database, keys: Arc<Keyring>) -> Self {
        PgCache { db, keys }
    }
}

fn error(e: impl Into<PgError>) -> BackendError {
    BackendError::new("cache", e.into())
}

/// What a sealed value is bound to: its table and key, so a value moved
/// to another key does not open.
fn aad(key: &str) -> Vec<u8> {
    format!("cache/{key}").into_bytes()
}

#[async_trait]
impl Cache for PgCache {
    async fn put(&self, key: &str, value: &[u8]) -> Result<(), BackendError> {
        let sealed = self.keys.seal(&aad(key), value);
        let mut client = self.db.client().await.map_err(error)?;
        let tx = client.transaction().await.map_err(error)?;
        tx.batch_execute("SET LOCAL synchronous_commit TO OFF")
            .await
            .map_err(error)?;
        tx.execute(
            "INSERT INTO cache (key, value) VALUES ($1, $2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            &[&key, &sealed],
        )
        .await
        .map_err(error)?;
        tx.commit().await.map_err(error)
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, BackendError> {
        let client = self.db.client().await.map_err(error)?;
        let Some(row) = client
            .query_opt("SELECT value FROM cache WHERE key = $1", &[&key])
            .await
            .map_err(error)?
        else {
            return Ok(None);
        };
        let sealed: Vec<u8> = row.get(0);
        self.keys
            .open(&aad(key), &sealed)
            .map(Some)
            .map_err(|e| BackendError::new("cache", format!("{key}: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::postgres::test_server;

    #[tokio::test]
    async fn the_cache_table_keeps_the_promises_and_holds_no_clear_value() {
        let dir = tempfile::tempdir().unwrap();
        let keys = Arc::new(Keyring::load_or_create(&dir.path().join("spool.keys")).unwrap());
        let db = test_server::migrated().await;
        crate::store::conformance::cache(&|| Box::new(PgCache::new(db.reopen(), keys.clone())))
            .await;
        let stored: Vec<u8> = db
            .client()
            .await
            .unwrap()
            .query_one("SELECT value FROM cache WHERE key = 'mta-sts/a.test'", &[])
            .await
            .unwrap()
            .get(0);
        assert!(
            !stored.windows(11).any(|w| w == b"two, longer"),
            "sealed before it reaches the database"
        );
        let client = db.client().await.unwrap();
        client
            .execute(
                "UPDATE cache SET key = 'mta-sts/c.test' WHERE key = 'mta-sts/a.test'",
                &[],
            )
            .await
            .unwrap();
        assert!(
            PgCache::new(db.clone(), keys)
                .get("mta-sts/c.test")
                .await
                .is_err(),
            "a value moved to another key does not open"
        );
    }
}

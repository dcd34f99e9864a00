//! TLS memory in the `tls_memory` table (domains lower-case). Each change
//! is one statement, committed (and so synced) before it returns.

use super::{now, Database, PgError};
use crate::store::tls_memory::{Remembered, TlsMemory};
use crate::store::BackendError;
use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// The TLS memory of a cluster.
pub struct PgTlsMemory(Database);

impl PgTlsMemory {
    /// The TLS memory kept in `db`.
    pub fn new(db: Database) -> Self {
        PgTlsMemory(db)
    }
}

fn error(e: impl Into<PgError>) -> BackendError {
    BackendError::new("TLS memory", e.into())
}

#[async_trait]
impl TlsMemory for PgTlsMemory {
    async fn remember(&self, domain: &str) -> Result<(), BackendError> {
        let client = self.0.client().await.map_err(error)?;
        // The first time is kept: a known domain is left alone.
        client
            .execute(
                "INSERT INTO tls_memory (domain, since) VALUES ($1, $2)
                 ON CONFLICT (domain) DO NOTHING",
                &[&domain.to_ascii_lowercase(), &now()],
            )
            .await
            .map_err(error)?;
        Ok(())
    }

    async fn remembered(&self, domain: &str) -> Result<Option<DateTime<Utc>>, BackendError> {
        let client = self.0.client().await.map_err(error)?;
        Ok(client
            .query_opt(
                "SELECT since FROM tls_memory WHERE domain = $1",
                &[&domain.to_ascii_lowercase()],
            )
            .await
            .map_err(error)?
            .map(|r| r.get(0)))
    }

    async fn forget(&self, domain: &str) -> Result<bool, BackendError> {
        let client = self.0.client().await.map_err(error)?;
        let gone = client
            .execute(
                "DELETE FROM tls_memory WHERE domain = $1",
                &[&domain.to_ascii_lowercase()],
            )
            .await
            .map_err(error)?;
        Ok(gone > 0)
    }

    async fn list(&self) -> Result<Vec<Remembered>, BackendError> {
        let client = self.0.client().await.map_err(error)?;
        // Byte order, as the embedded backend's keys sort.
        let rows = client
            .query(
                "SELECT domain, since FROM tls_memory ORDER BY domain COLLATE \"C\"",
                &[],
            )
            .await
            .map_err(error)?;
        Ok(rows
            .iter()
            .map(|r| Remembered {
                domain: r.get(0),
                since: r.get(1),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::postgres::test_server;

    #[tokio::test]
    async fn the_tls_memory_table_keeps_the_promises() {
        let db = test_server::migrated().await;
        crate::store::conformance::tls_memory(&|| Box::new(PgTlsMemory::new(db.reopen()))).await;
    }
}

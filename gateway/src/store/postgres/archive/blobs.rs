//! The archive's contents in the `archive_blob` table: the first
//! [`BlobStore`], each put and delete its own committed transaction.

use super::super::Database;
use crate::store::archive::chain::Hash;
use crate::store::archive::{ArchiveError, BlobStore};
use async_trait::async_trait;

/// Contents in PostgreSQL (sealed by the archive before they come here).
pub struct PgBlobs(Database);

impl PgBlobs {
    /// The `archive_blob` table of `db`.
    pub fn new(db: Database) -> Self {
        PgBlobs(db)
    }
}

#[async_trait]
impl BlobStore for PgBlobs {
    async fn put(&self, sha: &Hash, sealed: &[u8]) -> Result<(), ArchiveError> {
        let client = self.0.client().await?;
        client
            .execute(
                "INSERT INTO archive_blob (sha256, data) VALUES ($1, $2) \
                 ON CONFLICT (sha256) DO NOTHING",
                &[&sha.as_slice(), &sealed],
            )
            .await?;
        Ok(())
    }

    async fn get(&self, sha: &Hash) -> Result<Option<Vec<u8>>, ArchiveError> {
        let client = self.0.client().await?;
        let row = client
            .query_opt(
                "SELECT data FROM archive_blob WHERE sha256 = $1",
                &[&sha.as_slice()],
            )
            .await?;
        Ok(row.map(|r| r.get(0)))
    }

    async fn delete(&self, sha: &Hash) -> Result<(), ArchiveError> {
        let client = self.0.client().await?;
        client
            .execute(
                "DELETE FROM archive_blob WHERE sha256 = $1",
                &[&sha.as_slice()],
            )
            .await?;
        Ok(())
    }
}

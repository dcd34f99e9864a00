//! Recipients' key records in the `key_records` table (public keys and
//! certificates: kept in clear), one per kind and id. Every change bumps
//! `key_records_stamp` in the same transaction, so the stamp moves on
//! every change from any node, at once (no clock involved).

use super::{Database, PgError};
use crate::model::key::{KeyEntry, KeyKind};
use crate::store::keys::{KeyRecords, Stamp};
use crate::store::BackendError;
use async_trait::async_trait;
use tokio_postgres::types::Json;

/// The key records of a cluster.
pub struct PgKeyRecords(Database);

impl PgKeyRecords {
    /// The key records kept in `db`.
    pub fn new(db: Database) -> Self {
        PgKeyRecords(db)
    }
}

fn error(e: impl Into<PgError>) -> BackendError {
    BackendError::new("key records", e.into())
}

const BUMP: &str = "UPDATE key_records_stamp SET changes = changes + 1";

#[async_trait]
impl KeyRecords for PgKeyRecords {
    async fn stamp(&self) -> Result<Option<Stamp>, BackendError> {
        let client = self.0.client().await.map_err(error)?;
        let changes: i64 = client
            .query_one("SELECT changes FROM key_records_stamp", &[])
            .await
            .map_err(error)?
            .get(0);
        Ok((changes > 0).then_some(Stamp(changes as u128)))
    }

    async fn all(&self) -> Result<Vec<KeyEntry>, BackendError> {
        let client = self.0.client().await.map_err(error)?;
        let rows = client
            .query("SELECT entry FROM key_records ORDER BY kind, id", &[])
            .await
            .map_err(error)?;
        Ok(rows
            .iter()
            .map(|r| r.get::<_, Json<KeyEntry>>(0).0)
            .collect())
    }

    async fn put(&self, entry: &KeyEntry) -> Result<(), BackendError> {
        let mut client = self.0.client().await.map_err(error)?;
        let tx = client.transaction().await.map_err(error)?;
        tx.execute(
            "INSERT INTO key_records (kind, id, entry) VALUES ($1, $2, $3)
             ON CONFLICT (kind, id) DO UPDATE SET entry = excluded.entry",
            &[&entry.kind.as_str(), &entry.id, &Json(entry)],
        )
        .await
        .map_err(error)?;
        tx.execute(BUMP, &[]).await.map_err(error)?;
        tx.commit().await.map_err(error)
    }

    async fn delete(&self, kind: KeyKind, id: &str) -> Result<bool, BackendError> {
        let mut client = self.0.client().await.map_err(error)?;
        let tx = client.transaction().await.map_err(error)?;
        let gone = tx
            .execute(
                "DELETE FROM key_records WHERE kind = $1 AND id = $2",
                &[&kind.as_str(), &id],
            )
            .await
            .map_err(error)?;
        if gone > 0 {
            tx.execute(BUMP, &[]).await.map_err(error)?;
        }
        tx.commit().await.map_err(error)?;
        Ok(gone > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::postgres::test_server;

    #[tokio::test]
    async fn the_key_table_keeps_the_promises() {
        let db = test_server::migrated().await;
        crate::store::conformance::key_records(&|| Box::new(PgKeyRecords::new(db.reopen()))).await;
    }
}

//! Legal holds in the `legal_holds` table, listed in placement order.

use super::{Database, PgError};
use crate::store::holds::{Hold, HoldStoreError, LegalHolds};
use crate::store::BackendError;
use async_trait::async_trait;
use tokio_postgres::Row;

/// The legal holds of a cluster.
pub struct PgHolds(Database);

impl PgHolds {
    /// The holds kept in `db`.
    pub fn new(db: Database) -> Self {
        PgHolds(db)
    }
}

fn error(e: impl Into<PgError>) -> HoldStoreError {
    HoldStoreError::Backend(BackendError::new("legal holds", e.into()))
}

fn hold(row: &Row) -> Hold {
    Hold {
        name: row.get("name"),
        query: row.get("query"),
        addresses: row.get("addresses"),
        created_at: row.get("created_at"),
    }
}

const COLUMNS: &str = "name, query, addresses, created_at";

#[async_trait]
impl LegalHolds for PgHolds {
    async fn list(&self) -> Result<Vec<Hold>, HoldStoreError> {
        let client = self.0.client().await.map_err(error)?;
        let rows = client
            .query(
                &format!("SELECT {COLUMNS} FROM legal_holds ORDER BY seq"),
                &[],
            )
            .await
            .map_err(error)?;
        Ok(rows.iter().map(hold).collect())
    }

    async fn place(&self, hold: Hold) -> Result<(), HoldStoreError> {
        let client = self.0.client().await.map_err(error)?;
        let added = client
            .execute(
                "INSERT INTO legal_holds (name, query, addresses, created_at)
                 VALUES ($1, $2, $3, $4) ON CONFLICT (name) DO NOTHING",
                &[&hold.name, &hold.query, &hold.addresses, &hold.created_at],
            )
            .await
            .map_err(error)?;
        if added == 0 {
            return Err(HoldStoreError::Exists(hold.name));
        }
        Ok(())
    }

    async fn release(&self, name: &str) -> Result<Hold, HoldStoreError> {
        let client = self.0.client().await.map_err(error)?;
        client
            .query_opt(
                &format!("DELETE FROM legal_holds WHERE name = $1 RETURNING {COLUMNS}"),
                &[&name],
            )
            .await
            .map_err(error)?
            .map(|row| hold(&row))
            .ok_or_else(|| HoldStoreError::Missing(name.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::postgres::test_server;

    #[tokio::test]
    async fn the_holds_table_keeps_the_promises() {
        let db = test_server::migrated().await;
        crate::store::conformance::legal_holds(&|| Box::new(PgHolds::new(db.reopen()))).await;
    }
}

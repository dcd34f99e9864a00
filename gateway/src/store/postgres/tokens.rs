//! API tokens in the `api_tokens` table: name, role, the token's SHA-256,
//! when it was made (never the token).

use super::{Database, PgError};
use crate::store::tokens::{ApiTokens, Role, TokenEntry, TokenError};
use crate::store::BackendError;
use async_trait::async_trait;
use tokio_postgres::Row;

/// The API tokens of a cluster.
pub struct PgTokens(Database);

impl PgTokens {
    /// The tokens kept in `db`.
    pub fn new(db: Database) -> Self {
        PgTokens(db)
    }
}

fn error(e: impl Into<PgError>) -> TokenError {
    TokenError::Backend(BackendError::new("API tokens", e.into()))
}

fn entry(row: &Row) -> Result<TokenEntry, TokenError> {
    let role: &str = row.get("role");
    Ok(TokenEntry {
        name: row.get("name"),
        role: role
            .parse::<Role>()
            .map_err(|e| TokenError::Backend(BackendError::new("API tokens", e)))?,
        sha256: row.get("sha256"),
        created_at: row.get("created_at"),
    })
}

const COLUMNS: &str = "name, role, sha256, created_at";

#[async_trait]
impl ApiTokens for PgTokens {
    async fn list(&self) -> Result<Vec<TokenEntry>, TokenError> {
        let client = self.0.client().await.map_err(error)?;
        let rows = client
            .query(
                &format!("SELECT {COLUMNS} FROM api_tokens ORDER BY seq"),
                &[],
            )
            .await
            .map_err(error)?;
        rows.iter().map(entry).collect()
    }

    async fn insert(&self, entry: TokenEntry) -> Result<(), TokenError> {
        let client = self.0.client().await.map_err(error)?;
        let added = client
            .execute(
                "INSERT INTO api_tokens (name, role, sha256, created_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (name) DO NOTHING",
                &[
                    &entry.name,
                    &entry.role.as_str(),
                    &entry.sha256,
                    &entry.created_at,
                ],
            )
            .await
            .map_err(error)?;
        if added == 0 {
            return Err(TokenError::Exists(entry.name));
        }
        Ok(())
    }

    async fn remove(&self, name: &str) -> Result<TokenEntry, TokenError> {
        let client = self.0.client().await.map_err(error)?;
        let row = client
            .query_opt(
                &format!("DELETE FROM api_tokens WHERE name = $1 RETURNING {COLUMNS}"),
                &[&name],
            )
            .await
            .map_err(error)?
            .ok_or_else(|| TokenError::Missing(name.to_string()))?;
        entry(&row)
    }

    async fn find_hash(&self, sha256: &str) -> Result<Option<TokenEntry>, TokenError> {
        let client = self.0.client().await.map_err(error)?;
        client
            .query_opt(
                &format!("SELECT {COLUMNS} FROM api_tokens WHERE sha256 = $1 ORDER BY seq LIMIT 1"),
                &[&sha256],
            )
            .await
            .map_err(error)?
            .as_ref()
            .map(entry)
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::postgres::test_server;

    #[tokio::test]
    async fn the_token_table_keeps_the_promises() {
        let db = test_server::migrated().await;
        crate::store::conformance::api_tokens(&|| Box::new(PgTokens::new(db.reopen()))).await;
    }
}

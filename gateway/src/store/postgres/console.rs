//! Console users in `console_user` and their sessions in `console_session`
//! (records as JSON; the TOTP secret inside is sealed before it gets here).
//! An update locks the user's row (`SELECT ... FOR UPDATE`), so failure
//! counts from every node add up.

use super::{Database, PgError};
use crate::store::console::{
    ConsoleSession, ConsoleStoreError, ConsoleUser, ConsoleUsers, UserChange,
};
use crate::store::BackendError;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio_postgres::types::Json;

/// The console users of a cluster.
pub struct PgConsoleUsers(Database);

impl PgConsoleUsers {
    /// The console users kept in `db`.
    pub fn new(db: Database) -> Self {
        PgConsoleUsers(db)
    }
}

fn error(e: impl Into<PgError>) -> ConsoleStoreError {
    ConsoleStoreError::Backend(BackendError::new("console users", e.into()))
}

#[async_trait]
impl ConsoleUsers for PgConsoleUsers {
    async fn list(&self) -> Result<Vec<ConsoleUser>, ConsoleStoreError> {
        let client = self.0.client().await.map_err(error)?;
        let rows = client
            .query("SELECT record FROM console_user ORDER BY seq", &[])
            .await
            .map_err(error)?;
        Ok(rows
            .iter()
            .map(|r| r.get::<_, Json<ConsoleUser>>(0).0)
            .collect())
    }

    async fn get(&self, name: &str) -> Result<Option<ConsoleUser>, ConsoleStoreError> {
        let client = self.0.client().await.map_err(error)?;
        Ok(client
            .query_opt("SELECT record FROM console_user WHERE name = $1", &[&name])
            .await
            .map_err(error)?
            .map(|r| r.get::<_, Json<ConsoleUser>>(0).0))
    }

    async fn insert(&self, user: ConsoleUser) -> Result<(), ConsoleStoreError> {
        let client = self.0.client().await.map_err(error)?;
        let added = client
            .execute(
                "INSERT INTO console_user (name, record) VALUES ($1, $2) \
                 ON CONFLICT (name) DO NOTHING",
                &[&user.name, &Json(&user)],
            )
            .await
            .map_err(error)?;
        if added == 0 {
            return Err(ConsoleStoreError::Exists(user.name));
        }
        Ok(())
    }

    async fn update(
        &self,
        name: &str,
        change: UserChange<'_>,
    ) -> Result<ConsoleUser, ConsoleStoreError> {
        let mut client = self.0.client().await.map_err(error)?;
        let tx = client.transaction().await.map_err(error)?;
        let mut user = tx
            .query_opt(
                "SELECT record FROM console_user WHERE name = $1 FOR UPDATE",
                &[&name],
            )
            .await
            .map_err(error)?
            .map(|r| r.get::<_, Json<ConsoleUser>>(0).0)
            .ok_or_else(|| ConsoleStoreError::Missing(name.to_string()))?;
        change(&mut user);
        tx.execute(
            "UPDATE console_user SET record = $2 WHERE name = $1",
            &[&name, &Json(&user)],
        )
        .await
        .map_err(error)?;
        tx.commit().await.map_err(error)?;
        Ok(user)
    }

    async fn remove(&self, name: &str) -> Result<ConsoleUser, ConsoleStoreError> {
        let client = self.0.client().await.map_err(error)?;
        // The sessions go with it (ON DELETE CASCADE).
        client
            .query_opt(
                "DELETE FROM console_user WHERE name = $1 RETURNING record",
                &[&name],
            )
            .await
            .map_err(error)?
            .map(|r| r.get::<_, Json<ConsoleUser>>(0).0)
            .ok_or_else(|| ConsoleStoreError::Missing(name.to_string()))
    }

    async fn put_session(
        &self,
        key: &str,
        session: &ConsoleSession,
    ) -> Result<(), ConsoleStoreError> {
        let client = self.0.client().await.map_err(error)?;
        client
            .execute(
                "INSERT INTO console_session (key, user_name, created_at, last_seen, record) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (key) DO UPDATE SET \
                 last_seen = EXCLUDED.last_seen, record = EXCLUDED.record",
                &[
                    &key,
                    &session.user,
                    &session.created_at,
                    &session.last_seen,
                    &Json(session),
                ],
            )
            .await
            .map_err(error)?;
        Ok(())
    }

    async fn session(&self, key: &str) -> Result<Option<ConsoleSession>, ConsoleStoreError> {
        let client = self.0.client().await.map_err(error)?;
        Ok(client
            .query_opt("SELECT record FROM console_session WHERE key = $1", &[&key])
            .await
            .map_err(error)?
            .map(|r| r.get::<_, Json<ConsoleSession>>(0).0))
    }

    async fn end_session(&self, key: &str) -> Result<(), ConsoleStoreError> {
        let client = self.0.client().await.map_err(error)?;
        client
            .execute("DELETE FROM console_session WHERE key = $1", &[&key])
            .await
            .map_err(error)?;
        Ok(())
    }

    async fn sweep_sessions(
        &self,
        idle_since: DateTime<Utc>,
        started_before: DateTime<Utc>,
    ) -> Result<usize, ConsoleStoreError> {
        let client = self.0.client().await.map_err(error)?;
        let n = client
            .execute(
                "DELETE FROM console_session WHERE last_seen < $1 OR created_at < $2",
                &[&idle_since, &started_before],
            )
            .await
            .map_err(error)?;
        Ok(n as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::postgres::test_server;

    #[tokio::test]
    async fn the_console_tables_keep_the_promises() {
        let db = test_server::migrated().await;
        crate::store::conformance::console_users(&|| Box::new(PgConsoleUsers::new(db.reopen())))
            .await;
    }
}

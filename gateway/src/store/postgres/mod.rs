//! The PostgreSQL backend, for a cluster: every node keeps its stores in one
//! shared database. [`Database`] is the pool of connections `[store]`
//! describes; `migrate` keeps the schema; one small module per store.
//!
//! What the database holds in clear and what is sealed by Sealgate first
//! is in ARCHITECTURE.md ("The PostgreSQL backend").

pub mod archive;
pub mod audit;
pub mod cache;
pub mod cluster;
pub mod console;
pub mod holds;
pub mod keys;
pub mod migrate;
pub mod pool;
pub mod spool;
#[cfg(test)]
pub mod test_server;
pub mod tls_memory;
pub mod tokens;

use deadpool_postgres::Pool;

/// Why the database could not be used.
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    /// `[store] url` does not parse.
    #[error("[store] url: {0}")]
    Url(#[source] tokio_postgres::Error),
    /// `[store] url` is missing.
    #[error("[store] url is required with backend = \"postgres\"")]
    NoUrl,
    /// The password file could not be read.
    #[error("[store] password_file {path}: {source}")]
    PasswordFile {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The database's TLS roots could not be read.
    #[error("[store] ca_file {path}: {reason}")]
    CaFile {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// The pool could not be built.
    #[error("database pool: {0}")]
    Pool(#[from] deadpool_postgres::BuildError),
    /// No connection could be had.
    #[error("cannot reach the database: {0}")]
    Connect(#[from] deadpool_postgres::PoolError),
    /// A statement failed.
    #[error("database: {0}")]
    Sql(#[from] tokio_postgres::Error),
    /// The schema is newer than this binary knows.
    #[error(
        "the database's schema is version {found}, newer than this sealgate knows ({known}): \
         upgrade sealgate on this node (never run an older binary against a newer schema)"
    )]
    SchemaNewer {
        /// The database's version.
        found: i32,
        /// The newest this binary knows.
        known: i32,
    },
    /// Every node number is taken.
    #[error(
        "63 node names are registered in the database (table `nodes`), each with a number \
         for its queue ids: reuse a name, or delete the row of a node that is gone for good"
    )]
    ClusterFull,
    /// The database did not answer in time.
    #[error("the database did not answer the {0} in time")]
    TimedOut(&'static str),
    /// A row holds what the schema does not allow.
    #[error("database row is damaged: {0}")]
    Damaged(String),
    /// The schema is older than this binary needs.
    #[error(
        "the database's schema is version {found}, older than this sealgate needs ({known}): \
         run `sealgate store init --config FILE` first"
    )]
    SchemaOlder {
        /// The database's version (0: no Sealgate schema at all).
        found: i32,
        /// The version this binary needs.
        known: i32,
    },
}

/// The shared database: a pool of connections to it.
#[derive(Clone)]
pub struct Database {
    pool: Pool,
    /// What the pool was made from, for another handle.
    settings: crate::config::StoreConfig,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The pool's settings hold the password.
        f.debug_struct("Database").finish_non_exhaustive()
    }
}

impl Database {
    /// The pool `store` describes; nothing is connected until first use.
    pub fn new(store: &crate::config::StoreConfig) -> Result<Database, PgError> {
        Ok(Database {
            pool: pool::build(store)?,
            settings: store.clone(),
        })
    }

    /// Another handle on the same database with a pool of its own, as
    /// another node has.
    pub fn reopen(&self) -> Database {
        Database::new(&self.settings).expect("the settings built a pool before")
    }

    /// The pool, and a check that the schema is the one this binary
    /// knows (`SchemaOlder` or `SchemaNewer` otherwise).
    pub async fn open(store: &crate::config::StoreConfig) -> Result<Database, PgError> {
        let db = Database::new(store)?;
        migrate::check(&**db.pool.get().await?).await?;
        Ok(db)
    }

    /// A connection from the pool.
    pub async fn client(&self) -> Result<deadpool_postgres::Client, PgError> {
        Ok(self.pool.get().await?)
    }
}

/// Now, to the microsecond PostgreSQL keeps, so a time read back equals
/// the one written.
fn now() -> chrono::DateTime<chrono::Utc> {
    let t = chrono::Utc::now();
    t - chrono::Duration::nanoseconds(i64::from(t.timestamp_subsec_nanos() % 1000))
}

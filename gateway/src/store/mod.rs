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
//! Behind a trait so far: API tokens (`tokens`), the web console's users
//! and sessions (`console`), legal holds (`holds`),
//! the audit log (`audit_log`), TLS memory (`tls_memory`), the cache of
//! derived records (`cache`), recipients' key records (`keys`), the escrow
//! portal's messages and sign-in state (`escrow`; opened together by
//! `Stores::open_portal`) and the archive (`archive`; opened in the
//! configured backend by `Stores::open_archive` and
//! `open_archive_read_only`, not as part of `Stores`, since it needs its
//! key file and signing key and is opened read-only or for writing) and
//! the spool (`spool`: queued messages, the stages'
//! records about them, finished records; opened by the spool stage's
//! `Spool::open` with the TLS memory and cache kept beside it). Nothing
//! durable is opened by a stage directly any more. `keyring` seals
//! records at rest for every store. `postgres/` keeps the tokens, holds,
//! audit log, key records, TLS memory, cache, archive and the spool (with
//! each node's claims on its messages, `postgres/cluster.rs`) in a shared
//! database (`[store] backend = "postgres"`).

pub mod archive;
pub mod audit_log;
pub mod cache;
#[cfg(test)]
pub mod conformance;
pub mod console;
pub mod escrow;
pub mod holds;
pub mod keyring;
pub mod keys;
pub mod postgres;
pub mod rocksdb;
pub mod shred;
pub mod spool;
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

/// The stores of one node, opened from its configuration: what the stages,
/// the API and the command line are handed instead of paths.
#[derive(Clone)]
pub struct Stores {
    /// API tokens.
    pub tokens: std::sync::Arc<dyn tokens::ApiTokens>,
    /// Legal holds.
    pub holds: std::sync::Arc<dyn holds::LegalHolds>,
    /// The audit log.
    pub audit: std::sync::Arc<dyn audit_log::AuditLog>,
    /// Recipients' key records.
    pub keys: std::sync::Arc<dyn keys::KeyRecords>,
    /// The web console's users and sessions.
    pub console: std::sync::Arc<dyn console::ConsoleUsers>,
    /// The TLS memory and cache where the backend keeps them itself
    /// (PostgreSQL); `None` where they live in the spool's own database
    /// (embedded), which hands them out.
    pub meta: Option<SpoolMeta>,
    /// The shared spool and this node's claims, for a node of a cluster
    /// (PostgreSQL); `None` on a single node, whose spool the spool stage
    /// opens under `data_dir`.
    pub cluster: Option<ClusterStores>,
}

/// What a node of a cluster works from besides the small stores.
#[derive(Clone)]
pub struct ClusterStores {
    /// The queue every node shares.
    pub spool: std::sync::Arc<dyn spool::SpoolStore>,
    /// This node's registration, heartbeats and leases.
    pub nodes: std::sync::Arc<postgres::cluster::PgCluster>,
}

/// The TLS memory and cache, kept beside the queue.
#[derive(Clone)]
pub struct SpoolMeta {
    /// Destinations that once took mail over TLS.
    pub tls_memory: std::sync::Arc<dyn tls_memory::TlsMemory>,
    /// Derived records (fetched MTA-STS policies).
    pub cache: std::sync::Arc<dyn cache::Cache>,
}

/// Why a node's stores could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The PostgreSQL database cannot be used (unreachable, or its schema
    /// is not this binary's: the error says what to run).
    #[error(transparent)]
    Postgres(#[from] postgres::PgError),
    /// The spool's key file, which seals the cache, could not be read.
    #[error("spool key file: {0}")]
    Key(#[from] keyring::KeyError),
}

impl std::fmt::Debug for Stores {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stores").finish_non_exhaustive()
    }
}

impl Stores {
    /// The stores of `config`'s node, in the backend `[store]` names; for
    /// PostgreSQL, once the database is reachable and its schema is this
    /// binary's.
    pub async fn open(config: &crate::config::Config) -> Result<Stores, OpenError> {
        use crate::config::StoreBackend;
        use std::sync::Arc;
        match config.store.backend {
            StoreBackend::Rocksdb => Ok(Stores::embedded(config)),
            StoreBackend::Postgres => {
                let db = postgres::Database::open(&config.store).await?;
                let keys = Arc::new(keyring::Keyring::load_or_create(&config.spool_key_file())?);
                Ok(Stores {
                    tokens: Arc::new(postgres::tokens::PgTokens::new(db.clone())),
                    holds: Arc::new(postgres::holds::PgHolds::new(db.clone())),
                    audit: Arc::new(postgres::audit::PgAudit::new(db.clone())),
                    keys: Arc::new(postgres::keys::PgKeyRecords::new(db.clone())),
                    console: Arc::new(postgres::console::PgConsoleUsers::new(db.clone())),
                    meta: Some(SpoolMeta {
                        tls_memory: Arc::new(postgres::tls_memory::PgTlsMemory::new(db.clone())),
                        cache: Arc::new(postgres::cache::PgCache::new(db.clone(), keys.clone())),
                    }),
                    cluster: Some(ClusterStores {
                        spool: Arc::new(
                            postgres::spool::PgSpool::new(db.clone(), keys, &config.cluster.node)
                                .with_lease(config.cluster.lease.0),
                        ),
                        nodes: Arc::new(postgres::cluster::PgCluster::new(
                            db,
                            &config.cluster.node,
                            config.cluster.lease.0,
                        )),
                    }),
                })
            }
        }
    }

    /// The embedded backend's stores under `config`'s data directory
    /// (whatever `[store]` says).
    pub fn embedded(config: &crate::config::Config) -> Stores {
        let data = &config.server.data_dir;
        Stores {
            tokens: std::sync::Arc::new(rocksdb::tokens::TokenFile::new(data)),
            holds: std::sync::Arc::new(rocksdb::holds::HoldFile::new(data)),
            audit: std::sync::Arc::new(rocksdb::audit_file::AuditFile::new(data)),
            keys: std::sync::Arc::new(rocksdb::key_files::KeyFiles::new(&config.keystore_dir())),
            console: std::sync::Arc::new(rocksdb::console::ConsoleFiles::new(data)),
            meta: None,
            cluster: None,
        }
    }

    /// The escrow portal's stores of `config`'s node, for the gateway
    /// (made, with their key file, on first use).
    pub fn open_portal(
        config: &crate::config::Config,
    ) -> Result<escrow::PortalStores, escrow::EscrowError> {
        let keys = keyring::Keyring::load_or_create(&config.escrow_key_file())
            .map_err(|source| escrow_key_error(config, source))?;
        Ok(rocksdb::escrow::EscrowDb::open(&config.escrow_dir(), keys)?.stores())
    }

    /// The escrow portal's stores read-only (while the gateway may run),
    /// or `None` when the portal never held anything.
    pub fn open_portal_read_only(
        config: &crate::config::Config,
    ) -> Result<Option<escrow::PortalStores>, escrow::EscrowError> {
        let dir = config.escrow_dir();
        if !dir.join("CURRENT").exists() {
            return Ok(None);
        }
        let keys = keyring::Keyring::load(&config.escrow_key_file())
            .map_err(|source| escrow_key_error(config, source))?;
        Ok(Some(
            rocksdb::escrow::EscrowDb::open_read_only(&dir, keys)?.stores(),
        ))
    }
}

impl Stores {
    /// `config`'s archive for writing, in the backend `[store]` names,
    /// with its key file (made on first use when `create_keys`, as the
    /// gateway does; the CLI only reads one) and signing key. With
    /// RocksDB a `Db` error is most often the running gateway holding it;
    /// with PostgreSQL, the database unreachable or its schema not this
    /// binary's (the error says which).
    pub async fn open_archive(
        config: &crate::config::Config,
        create_keys: bool,
    ) -> Result<std::sync::Arc<dyn archive::ArchiveStore>, archive::ArchiveError> {
        use crate::config::StoreBackend;
        match config.store.backend {
            StoreBackend::Rocksdb => rocksdb::archive::open_writable(config, create_keys),
            StoreBackend::Postgres => {
                // The database first: a refused open makes no key file.
                let db = postgres::Database::open(&config.store).await?;
                let key_file = config.archive_key_file();
                let keys = if create_keys {
                    keyring::Keyring::load_or_create(&key_file)?
                } else {
                    keyring::Keyring::load(&key_file)?
                };
                Ok(std::sync::Arc::new(postgres::archive::PgArchive::new(
                    db,
                    std::sync::Arc::new(keys),
                    rocksdb::archive::signer(config)?,
                    config.archive.checkpoint_every,
                )))
            }
        }
    }

    /// `config`'s archive read-only (beside a running gateway); `None`
    /// when the embedded one was never made (nothing journaled).
    pub async fn open_archive_read_only(
        config: &crate::config::Config,
    ) -> Result<Option<std::sync::Arc<dyn archive::ArchiveStore>>, archive::ArchiveError> {
        use crate::config::StoreBackend;
        match config.store.backend {
            StoreBackend::Rocksdb => rocksdb::archive::open_read_only(config),
            StoreBackend::Postgres => {
                let keys = keyring::Keyring::load(&config.archive_key_file())?;
                let db = postgres::Database::open(&config.store).await?;
                Ok(Some(std::sync::Arc::new(
                    postgres::archive::PgArchive::read_only(db, std::sync::Arc::new(keys)),
                )))
            }
        }
    }
}

fn escrow_key_error(
    config: &crate::config::Config,
    source: keyring::KeyError,
) -> escrow::EscrowError {
    escrow::EscrowError::Key {
        what: config.escrow_key_file().display().to_string(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, StoreBackend};

    #[tokio::test]
    async fn open_takes_the_configured_backend_and_refuses_a_schema_it_was_not_built_for() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::default();
        config.server.data_dir = dir.path().to_path_buf();
        config.store.backend = StoreBackend::Postgres;
        config.store.url = Some(postgres::test_server::database_url().await);
        let refused = Stores::open(&config).await.unwrap_err();
        assert!(
            matches!(
                refused,
                OpenError::Postgres(postgres::PgError::SchemaOlder { found: 0, .. })
            ),
            "{refused}"
        );
        assert!(refused.to_string().contains("sealgate store init"));

        let db = postgres::Database::new(&config.store).unwrap();
        postgres::migrate::migrate(&mut db.client().await.unwrap())
            .await
            .unwrap();
        let stores = Stores::open(&config).await.unwrap();
        assert!(
            stores.meta.is_some(),
            "TLS memory and cache in the database"
        );
        stores
            .holds
            .place(holds::Hold {
                name: "matter".into(),
                query: None,
                addresses: vec!["a@x.test".into()],
                created_at: chrono::Utc::now(),
            })
            .await
            .unwrap();
        let rows = postgres::test_server::rows(&db, "legal_holds").await;
        assert_eq!(rows, 1, "the hold went to PostgreSQL");

        config.store.backend = StoreBackend::Rocksdb;
        let embedded = Stores::open(&config).await.unwrap();
        assert!(embedded.meta.is_none(), "kept in the spool's database");
        assert!(
            embedded.holds.list().await.unwrap().is_empty(),
            "the embedded backend is another store"
        );
    }

    #[tokio::test]
    async fn the_archive_opens_in_the_configured_backend() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::default();
        config.server.data_dir = dir.path().to_path_buf();
        assert!(
            Stores::open_archive_read_only(&config)
                .await
                .unwrap()
                .is_none(),
            "nothing journaled in the embedded archive yet"
        );
        config.store.backend = StoreBackend::Postgres;
        config.store.url = Some(postgres::test_server::database_url().await);
        let refused = Stores::open_archive(&config, true).await.err().unwrap();
        assert!(
            refused.to_string().contains("sealgate store init"),
            "{refused}"
        );
        assert!(
            !config.archive_key_file().exists(),
            "a refused open makes no key"
        );
        let db = postgres::Database::new(&config.store).unwrap();
        postgres::migrate::migrate(&mut db.client().await.unwrap())
            .await
            .unwrap();
        let raw = b"Subject: x\r\n\r\nbody\r\n".to_vec();
        let a = Stores::open_archive(&config, true).await.unwrap();
        a.journal(archive::testing::capture("q1", &raw, &["b@x.test"]), &raw)
            .await
            .unwrap();
        let rows = postgres::test_server::rows(&db, "archive_event").await;
        assert_eq!(rows, 1, "journaled into PostgreSQL");
        let ro = Stores::open_archive_read_only(&config)
            .await
            .unwrap()
            .unwrap();
        assert!(ro.signer_public_key().is_none(), "read-only");
        assert_eq!(ro.head_seq().await, 1);
        assert!(ro.verify(1).await.unwrap().damaged.is_empty());
        assert!(
            !config.archive_dir().exists(),
            "nothing written to the embedded archive"
        );

        config.store.backend = StoreBackend::Rocksdb;
        let embedded = Stores::open_archive(&config, true).await.unwrap();
        assert_eq!(embedded.head_seq().await, 0, "another store");
        assert!(config.archive_dir().exists());
    }
}

//! `sealgate store`: the stores' database (`[store] backend = "postgres"`).

use super::{load, Outcome};
use clap::Subcommand;
use sealgate::config::StoreBackend;
use sealgate::store::postgres::{migrate, Database};
use std::path::PathBuf;

/// The store's subcommands.
#[derive(Subcommand)]
pub enum StoreCmd {
    /// Create or upgrade the PostgreSQL schema: apply the migrations the
    /// database lacks (safe to run again, and from two nodes at once) and
    /// print the schema version. Run it before a node's first start and
    /// after each upgrade.
    Init {
        /// Configuration file (its [store] section names the database).
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
}

/// Run a store subcommand.
pub async fn run(action: StoreCmd) -> super::Result {
    match action {
        StoreCmd::Init { config } => {
            let config = load(config.as_ref())?;
            if config.store.backend != StoreBackend::Postgres {
                eprintln!(
                    "sealgate: [store] backend is \"rocksdb\": the embedded stores need no init \
                     (set backend = \"postgres\" and url to use a database)"
                );
                return Ok(Outcome::Problem);
            }
            let db = Database::new(&config.store)?;
            let mut client = db.client().await?;
            let before = migrate::version(&client).await?;
            let after = migrate::migrate(&mut client).await?;
            if before == after {
                println!("schema version {after} (already current)");
            } else {
                println!("schema version {after} (was {before})");
            }
            Ok(Outcome::Done)
        }
    }
}

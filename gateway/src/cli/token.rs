//! `sealgate token`: bearer tokens for the archive and audit API.

use super::{Outcome, Where};
use clap::Subcommand;
use sealgate::admin::tokens::{self, Role};
use sealgate::audit::{self, Actor};

/// The tokens' subcommands.
#[derive(Subcommand)]
pub enum TokenCmd {
    /// Make a token (printed once; only its hash is stored).
    Create {
        /// archivist (search, read, export), auditor (audit log), admin (holds).
        #[arg(long)]
        role: Role,
        /// Who holds it.
        #[arg(long)]
        name: String,
    },
    /// Revoke a token.
    Revoke {
        /// Its name.
        name: String,
    },
    /// List tokens (names, roles, dates; never the tokens).
    Ls {
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
}

/// Run a token subcommand; making and revoking are audited.
pub async fn run(at: Where, action: TokenCmd) -> super::Result {
    let config = at.load()?;
    let stores = sealgate::store::Stores::open(&config).await?;
    let store = stores.tokens.as_ref();
    match action {
        TokenCmd::Create { role, name } => {
            let token = tokens::create(store, role, &name).await?;
            audit::record(
                stores.audit.as_ref(),
                Actor::Cli,
                "token.create",
                &name,
                role.as_str(),
            )
            .await?;
            println!("{token}");
            eprintln!(
                "token {name:?} ({}) made; it is shown only now",
                role.as_str()
            );
        }
        TokenCmd::Revoke { name } => {
            let gone = store.remove(&name).await?;
            audit::record(
                stores.audit.as_ref(),
                Actor::Cli,
                "token.revoke",
                &name,
                gone.role.as_str(),
            )
            .await?;
            println!("token {name:?} revoked");
        }
        TokenCmd::Ls { json } => {
            let all = store.list().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&all)?);
            } else {
                for t in all {
                    println!(
                        "{}\t{}\t{}",
                        t.name,
                        t.role.as_str(),
                        t.created_at.format("%Y-%m-%d %H:%M:%S")
                    );
                }
            }
        }
    }
    Ok(Outcome::Done)
}

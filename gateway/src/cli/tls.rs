//! `sealgate tls`: the outbound TLS memory.

use super::{Outcome, Where};
use clap::Subcommand;
use sealgate::admin::queue::{self, Change, Location};

/// The TLS memory's subcommands.
#[derive(Subcommand)]
pub enum TlsCmd {
    /// List remembered domains and since when.
    Ls,
    /// Forget a domain, allowing plain delivery to it again (if its level allows).
    Forget {
        /// The domain.
        domain: String,
    },
}

/// Run a TLS memory subcommand.
pub async fn run(at: Where, action: TlsCmd) -> super::Result {
    let config = at.load()?;
    let loc = Location::from_config(&config).await?;
    match action {
        TlsCmd::Ls => {
            for r in queue::tls_memory(&loc).await? {
                println!("{}\t{}", r.domain, r.since.to_rfc3339());
            }
        }
        TlsCmd::Forget { domain } => {
            let domain = sealgate::model::address::ascii_domain(&domain);
            print!("{}", queue::apply(&loc, Change::ForgetTls(domain)).await?);
        }
    }
    Ok(Outcome::Done)
}

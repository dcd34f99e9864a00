//! `sealgate portal`: messages held in the escrow portal.

use super::{Outcome, Where};
use clap::Subcommand;
use sealgate::admin::queue::{self, Change, Location};

/// The portal's subcommands.
#[derive(Subcommand)]
pub enum PortalCmd {
    /// List held messages: id, state, deposit and expiry, recipient, sender.
    Ls {
        /// JSON lines output.
        #[arg(long)]
        json: bool,
    },
    /// Withdraw a held message: its content and key are erased at once.
    Revoke {
        /// The portal message id (from `portal ls`).
        id: String,
    },
}

/// Run a portal subcommand.
pub async fn run(at: Where, action: PortalCmd) -> super::Result {
    let config = at.load()?;
    let text = match action {
        PortalCmd::Ls { json } => {
            sealgate::admin::portal::list(&sealgate::admin::portal::entries(&config).await?, json)
        }
        PortalCmd::Revoke { id } => {
            let loc = Location::from_config(&config).await?;
            queue::apply(&loc, Change::RevokePortal(id)).await?
        }
    };
    print!("{text}");
    Ok(Outcome::Done)
}

//! `sealgate quarantine`: messages held by a DLP policy.

use super::{Outcome, Where};
use clap::Subcommand;
use sealgate::admin::queue::{self, Change, Location};
use sealgate::model::verdict::Seal;
use sealgate::spool::QueueId;

/// The quarantine's subcommands.
#[derive(Subcommand)]
pub enum QuarantineCmd {
    /// List held messages: id, time, sender, held recipients, expiry, rule.
    Ls {
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Show a held message's envelope, DLP findings and verdicts.
    Show {
        /// Queue id.
        id: QueueId,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Release the held recipients: sealed with --seal, or by the configured
    /// method chain; refused (nothing changes) if that is impossible for one.
    Release {
        /// Queue id.
        id: QueueId,
        /// tls (verified), pgp, smime or portal.
        #[arg(long, value_parser = parse_seal)]
        seal: Option<Seal>,
    },
    /// Delete the held recipients; the sender gets a DSN naming the rule.
    Delete {
        /// Queue id.
        id: QueueId,
    },
}

/// A seal method by its configuration name, in any case.
fn parse_seal(s: &str) -> Result<Seal, String> {
    serde_json::from_value(serde_json::Value::String(s.to_ascii_lowercase()))
        .map_err(|_| format!("`{s}`: use tls, pgp, smime or portal"))
}

/// Run a quarantine subcommand.
pub async fn run(at: Where, action: QuarantineCmd) -> super::Result {
    let config = at.load()?;
    let loc = Location::from_config(&config).await?;
    let text = match action {
        QuarantineCmd::Ls { json } => queue::quarantined(&loc, json).await?,
        QuarantineCmd::Show { id, json } => {
            String::from_utf8_lossy(&queue::show(&loc, id, json, false).await?).into_owned()
        }
        QuarantineCmd::Release { id, seal } => {
            queue::apply(&loc, Change::Release(id, seal)).await?
        }
        QuarantineCmd::Delete { id } => queue::apply(&loc, Change::DeleteQuarantined(id)).await?,
    };
    print!("{text}");
    Ok(Outcome::Done)
}

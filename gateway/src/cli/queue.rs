//! `sealgate queue`: list, show, delete, retry and verify queued messages.

use super::{Outcome, Where};
use clap::Subcommand;
use sealgate::admin::queue::{self, Change, Location};
use sealgate::spool::QueueId;
use std::io::Write;

/// The queue's subcommands.
#[derive(Subcommand)]
pub enum QueueCmd {
    /// List queued messages.
    Ls {
        /// One JSON array, one object per message.
        #[arg(long)]
        json: bool,
    },
    /// Show one message's envelope and state.
    Show {
        /// Queue id.
        id: QueueId,
        /// JSON output.
        #[arg(long)]
        json: bool,
        /// Print the message itself (as it will be relayed) instead.
        #[arg(long)]
        body: bool,
    },
    /// Delete a message from the queue (no bounce is sent).
    Delete {
        /// Queue id.
        id: QueueId,
    },
    /// Try a message (or, with --all, every message) now, ignoring retry waits.
    Retry {
        /// Queue id.
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        id: Option<QueueId>,
        /// Every queued message.
        #[arg(long)]
        all: bool,
    },
    /// Check every message is intact and no partial message is left.
    Verify {
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
}

/// Run a queue subcommand; `verify` is a problem when it finds damage.
pub async fn run(at: Where, action: QueueCmd) -> super::Result {
    let config = at.load()?;
    let loc = Location::from_config(&config).await?;
    let mut out = std::io::stdout().lock();
    match action {
        QueueCmd::Ls { json } => out.write_all(queue::ls(&loc, json).await?.as_bytes())?,
        QueueCmd::Show { id, json, body } => {
            out.write_all(&queue::show(&loc, id, json, body).await?)?
        }
        QueueCmd::Delete { id } => {
            out.write_all(queue::apply(&loc, Change::Delete(id)).await?.as_bytes())?
        }
        QueueCmd::Retry { id, .. } => {
            let change = id.map_or(Change::RetryAll, Change::Retry);
            out.write_all(queue::apply(&loc, change).await?.as_bytes())?
        }
        QueueCmd::Verify { json } => {
            let (text, clean) = queue::verify(&loc, json).await?;
            out.write_all(text.as_bytes())?;
            return Ok(Outcome::problem_unless(clean));
        }
    }
    Ok(Outcome::Done)
}

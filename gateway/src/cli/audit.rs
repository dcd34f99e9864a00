//! `sealgate audit`: the hash-chained audit log.

use super::{Outcome, Where};
use clap::Subcommand;

/// The audit log's subcommands.
#[derive(Subcommand)]
pub enum AuditCmd {
    /// Walk the chain of the audit log; exit 1 naming the first line that
    /// does not follow from the one before.
    Verify {
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
}

/// Run an audit subcommand; `verify` is a problem when the chain breaks.
pub async fn run(at: Where, action: AuditCmd) -> super::Result {
    let config = at.load()?;
    match action {
        AuditCmd::Verify { json } => {
            let r = sealgate::store::Stores::open(&config)
                .await?
                .audit
                .verify()
                .await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                println!("{} lines chained", r.lines_ok);
                match &r.first_broken {
                    Some((n, why)) => println!("BROKEN at line {n}: {why}"),
                    None => println!("intact"),
                }
            }
            Ok(Outcome::problem_unless(r.first_broken.is_none()))
        }
    }
}

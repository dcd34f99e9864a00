//! `sealgate archive`: the journal archive, its legal holds and retention.

use super::{Outcome, Where};
use clap::Subcommand;
use sealgate::admin::archive::{self as admin_archive, ArchiveCmdError};
use sealgate::archive::export::Format;
use sealgate::archive::SearchError;
use sealgate::audit::{self, Actor};
use std::io::Write;
use std::path::PathBuf;

/// The archive's subcommands.
#[derive(Subcommand)]
pub enum ArchiveCmd {
    /// List archived items: id, received, direction, sender, envelope
    /// recipients (Bcc included), size, subject.
    Ls {
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Show an item: header facts and every relay's envelope and session.
    Show {
        /// Item id (from `archive ls`).
        id: u64,
        /// The message exactly as received, instead.
        #[arg(long)]
        raw: bool,
        /// Per recipient: verdict, seal and delivery evidence.
        #[arg(long)]
        evidence: bool,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Search: from:, to:, cc:, bcc:, rcpt:, subject:, body:, filename:,
    /// attachment:, after:, before:, has:attachment, larger:, smaller:,
    /// direction:, dlp:, seal:, message-id:, free text, "phrases", OR, -, ( ).
    Search {
        /// The query, as one argument (quote it); it may start with `-`.
        #[arg(allow_hyphen_values = true)]
        query: String,
        /// At most this many items (newest first).
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Export what a query finds: mbox or one .eml per item, with a
    /// manifest (id, SHA-256, envelope) signed by the archive's key.
    Export {
        /// The query, as one argument, as for `archive search` ("" exports everything).
        #[arg(allow_hyphen_values = true)]
        query: String,
        /// mbox or eml.
        #[arg(long, default_value = "mbox", value_parser = ["mbox", "eml"])]
        format: String,
        /// A new (or empty) directory.
        #[arg(long)]
        out: PathBuf,
    },
    /// Rebuild the search index from the archive (gateway stopped).
    Reindex,
    /// Sign a checkpoint of the chain head now (record the head it prints
    /// somewhere else: it proves nothing later was removed).
    Checkpoint {
        /// While the gateway runs: a file holding an admin or auditor token.
        #[arg(long)]
        token_file: Option<PathBuf>,
    },
    /// Legal holds: what they cover is never purged.
    Hold {
        #[command(subcommand)]
        action: HoldCmd,
    },
    /// Remove items past their retain-until date that no hold covers; the
    /// purge is recorded in the chain (gateway stopped).
    Purge {
        /// Only say what would be removed.
        #[arg(long)]
        dry_run: bool,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Walk the hash chain and every record; exit 1 and name the first
    /// broken item or link if anything was altered or removed.
    Verify {
        /// Start at this sequence number (trusting the link before it).
        #[arg(long, default_value_t = 1)]
        from: u64,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
}

/// The legal holds' subcommands.
#[derive(Subcommand)]
pub enum HoldCmd {
    /// Place a hold (a named matter) on what a query finds and/or on mail
    /// from or to addresses.
    Add {
        /// The matter's name.
        name: String,
        /// An archive query (as for `archive search`).
        #[arg(long, allow_hyphen_values = true)]
        query: Option<String>,
        /// An address (repeat for more).
        #[arg(long = "address")]
        addresses: Vec<String>,
    },
    /// List holds.
    Ls {
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Release a hold.
    Rm {
        /// The matter's name.
        name: String,
    },
}

/// Run an archive subcommand (a damaged chain is a problem, a bad query a usage error).
pub async fn run(at: Where, action: ArchiveCmd) -> super::Result {
    let config = at.load()?;
    let stores = sealgate::store::Stores::open(&config).await?;
    // Commands that do not read the store (or open it for writing).
    match action {
        ArchiveCmd::Hold { action } => {
            let text = match action {
                HoldCmd::Add {
                    name,
                    query,
                    addresses,
                } => admin_archive::hold_add(&stores, &name, query, addresses).await?,
                HoldCmd::Ls { json } => admin_archive::hold_ls(&stores, json).await?,
                HoldCmd::Rm { name } => admin_archive::hold_rm(&stores, &name).await?,
            };
            print!("{text}");
            Ok(Outcome::Done)
        }
        ArchiveCmd::Checkpoint { token_file } => {
            print!(
                "{}",
                admin_archive::checkpoint(&config, &stores, token_file.as_deref()).await?
            );
            Ok(Outcome::Done)
        }
        ArchiveCmd::Purge { dry_run, json } => {
            print!(
                "{}",
                admin_archive::purge(&config, &stores, dry_run, json).await?
            );
            Ok(Outcome::Done)
        }
        read => read_store(&config, &stores, read).await,
    }
}

/// The subcommands that read the store, opened read-only (the gateway may run).
async fn read_store(
    config: &sealgate::config::Config,
    stores: &sealgate::store::Stores,
    action: ArchiveCmd,
) -> super::Result {
    let archive = admin_archive::open_read_only(config).await?;
    match action {
        ArchiveCmd::Hold { .. } | ArchiveCmd::Purge { .. } | ArchiveCmd::Checkpoint { .. } => {
            unreachable!("handled by run")
        }
        ArchiveCmd::Ls { json } => print!("{}", admin_archive::ls(archive.as_ref(), json).await?),
        ArchiveCmd::Show {
            id,
            raw,
            evidence,
            json,
        } => {
            let out = admin_archive::show(archive.as_ref(), id, raw, evidence, json).await?;
            audit::record(
                stores.audit.as_ref(),
                Actor::Cli,
                if raw { "archive.read" } else { "archive.view" },
                &id.to_string(),
                "",
            )
            .await?;
            std::io::stdout().write_all(&out)?;
        }
        ArchiveCmd::Search { query, limit, json } => {
            match admin_archive::search(config, stores, archive.as_ref(), &query, limit, json).await
            {
                Ok(text) => print!("{text}"),
                Err(ArchiveCmdError::Search(SearchError::Query(e))) => {
                    eprintln!("{}", e.pointed(&query));
                    return Ok(Outcome::Usage);
                }
                Err(e) => return Err(e.into()),
            }
        }
        ArchiveCmd::Export { query, format, out } => {
            let format = if format == "eml" {
                Format::Eml
            } else {
                Format::Mbox
            };
            print!(
                "{}",
                admin_archive::export(config, stores, archive.as_ref(), &query, format, &out)
                    .await?
            );
        }
        ArchiveCmd::Reindex => print!(
            "{}",
            admin_archive::reindex(config, archive.as_ref()).await?
        ),
        ArchiveCmd::Verify { from, json } => {
            let key =
                sealgate::store::archive::chain::public_key_of(&config.archive_signing_key_file());
            let (text, ok) = admin_archive::verify(archive.as_ref(), from, json, key).await?;
            print!("{text}");
            return Ok(Outcome::problem_unless(ok));
        }
    }
    Ok(Outcome::Done)
}

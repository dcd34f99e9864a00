//! The `sealgate` binary: parses the command line and hands each command
//! group to its file under `cli/`, which says how it ended (the exit codes
//! are in `cli/mod.rs`).

mod cli;

use clap::{Parser, Subcommand};
use cli::{
    archive::ArchiveCmd, audit::AuditCmd, cluster::ClusterCmd, dlp::DlpCmd, explain::ExplainArgs,
    keys::KeysCmd, portal::PortalCmd, quarantine::QuarantineCmd, queue::QueueCmd, store::StoreCmd,
    tls::TlsCmd, token::TokenCmd, user::UserCmd, Where,
};
use std::path::PathBuf;
use std::process::ExitCode;

/// Sealgate secure email gateway.
#[derive(Parser)]
#[command(name = "sealgate", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the gateway (embedded defaults when no --config is given).
    Serve {
        /// Configuration file.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Check a configuration file and report every error.
    CheckConfig {
        /// Configuration file.
        file: PathBuf,
    },
    /// Inspect and manage the queue (works with the gateway running or stopped).
    Queue {
        #[command(flatten)]
        at: Where,
        #[command(subcommand)]
        action: QueueCmd,
    },
    /// Outbound TLS memory: domains once delivered to with TLS, which are
    /// refused plain delivery from then on.
    Tls {
        #[command(flatten)]
        at: Where,
        #[command(subcommand)]
        action: TlsCmd,
    },
    /// Messages held by a DLP policy: list, show, release (sealed as chosen) or delete.
    Quarantine {
        #[command(flatten)]
        at: Where,
        #[command(subcommand)]
        action: QuarantineCmd,
    },
    /// The escrow portal: list held messages and where they stand, or withdraw one.
    Portal {
        #[command(flatten)]
        at: Where,
        #[command(subcommand)]
        action: PortalCmd,
    },
    /// The journal archive: list, show and verify archived mail (read-only,
    /// works while the gateway runs).
    Archive {
        #[command(flatten)]
        at: Where,
        #[command(subcommand)]
        action: ArchiveCmd,
    },
    /// Bearer tokens for the archive and audit API, each bound to a role.
    Token {
        #[command(flatten)]
        at: Where,
        #[command(subcommand)]
        action: TokenCmd,
    },
    /// The web console's users: `user add NAME --role admin|archivist|auditor`.
    User {
        #[command(flatten)]
        at: Where,
        #[command(subcommand)]
        action: UserCmd,
    },
    /// The audit log (`<data_dir>/audit.log`, hash-chained).
    Audit {
        #[command(flatten)]
        at: Where,
        #[command(subcommand)]
        action: AuditCmd,
    },
    /// The keystore: recipients' OpenPGP keys and S/MIME certificates
    /// (works with the gateway running or stopped).
    Keys {
        #[command(flatten)]
        at: Where,
        #[command(subcommand)]
        action: KeysCmd,
    },
    /// Run inspect and policy on a message without sending it: per
    /// recipient, the verdict and why (DLP rules, tags, TLS level, the key
    /// that would seal it, the method chain, what happens if it fails).
    Explain(ExplainArgs),
    /// The stores' PostgreSQL database: `store init` creates or upgrades
    /// its schema.
    Store {
        #[command(subcommand)]
        action: StoreCmd,
    },
    /// The nodes sharing the PostgreSQL database: `cluster ls`.
    Cluster {
        #[command(subcommand)]
        action: ClusterCmd,
    },
    /// Data loss prevention: scan messages with the DLP rules, check the rules.
    Dlp {
        #[command(subcommand)]
        action: DlpCmd,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    cli::exit_code(run(Cli::parse()).await)
}

async fn run(cli: Cli) -> cli::Result {
    match cli.command {
        Cmd::Serve { config } => cli::serve::run(config.as_ref()).await,
        Cmd::CheckConfig { file } => cli::check_config::run(&file),
        Cmd::Queue { at, action } => cli::queue::run(at, action).await,
        Cmd::Tls { at, action } => cli::tls::run(at, action).await,
        Cmd::Quarantine { at, action } => cli::quarantine::run(at, action).await,
        Cmd::Portal { at, action } => cli::portal::run(at, action).await,
        Cmd::Archive { at, action } => cli::archive::run(at, action).await,
        Cmd::Token { at, action } => cli::token::run(at, action).await,
        Cmd::User { at, action } => cli::user::run(at, action).await,
        Cmd::Audit { at, action } => cli::audit::run(at, action).await,
        Cmd::Keys { at, action } => cli::keys::run(at, action).await,
        Cmd::Explain(args) => cli::explain::run(args).await,
        Cmd::Store { action } => cli::store::run(action).await,
        Cmd::Cluster { action } => cli::cluster::run(action).await,
        Cmd::Dlp { action } => cli::dlp::run(action),
    }
}

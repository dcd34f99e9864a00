//! `sealgate user`: the web console's users (add, list, remove).

use super::{Outcome, Where};
use clap::Subcommand;
use sealgate::audit::{self, Actor};
use sealgate::console::users;
use sealgate::store::keyring::Keyring;
use sealgate::store::tokens::Role;
use std::io::{BufRead, IsTerminal, Write};

/// The console users' subcommands.
#[derive(Subcommand)]
pub enum UserCmd {
    /// Add a user: the password is read from standard input (asked for,
    /// unechoed, on a terminal); the TOTP secret to enrol is shown once.
    Add {
        /// Sign-in name.
        name: String,
        /// admin (trace, dashboard; never archive content), archivist
        /// (archive), auditor (audit log, read-only).
        #[arg(long)]
        role: Role,
        /// Limit an admin to these domains' mail (comma-separated).
        #[arg(long, value_delimiter = ',')]
        domains: Vec<String>,
    },
    /// List users (names, roles, domains, dates; never secrets).
    Ls {
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Remove a user and end their sessions.
    Del {
        /// Sign-in name.
        name: String,
    },
}

/// Reads the password: asked for without echo on a terminal, else the
/// first line of standard input.
fn read_password() -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    let mut line = String::new();
    if stdin.is_terminal() {
        use rustix::termios::{tcgetattr, tcsetattr, LocalModes, OptionalActions};
        eprint!("Password (at least {} characters): ", users::MIN_PASSWORD);
        std::io::stderr().flush()?;
        let before = tcgetattr(&stdin)?;
        let mut quiet = before.clone();
        quiet.local_modes.remove(LocalModes::ECHO);
        tcsetattr(&stdin, OptionalActions::Now, &quiet)?;
        let read = stdin.lock().read_line(&mut line);
        tcsetattr(&stdin, OptionalActions::Now, &before)?;
        eprintln!();
        read?;
    } else {
        stdin.lock().read_line(&mut line)?;
    }
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

/// Run a user subcommand; adding and removing are audited.
pub async fn run(at: Where, action: UserCmd) -> super::Result {
    let config = at.load()?;
    let stores = sealgate::store::Stores::open(&config).await?;
    let store = stores.console.as_ref();
    match action {
        UserCmd::Add {
            name,
            role,
            domains,
        } => {
            let password = read_password()?;
            users::check_new(&name, role, &domains, &password)?;
            let keys = Keyring::load_or_create(&config.console_key_file())?;
            let detail = format!("{} {}", role.as_str(), domains.join(","));
            audit::record(
                stores.audit.as_ref(),
                Actor::Cli,
                "console.user.add",
                &name,
                detail.trim(),
            )
            .await?;
            let e = users::add(store, &keys, &name, role, &domains, &password).await?;
            println!("user {name:?} ({}) added", role.as_str());
            println!("Enrol this TOTP secret in an authenticator app now; it is shown only once.");
            println!("secret: {}", e.secret);
            println!("uri:    {}", e.uri);
            if !config.console.enabled {
                eprintln!("note: [console] enabled = false in this configuration");
            }
        }
        UserCmd::Ls { json } => {
            let all = store.list().await?;
            if json {
                let rows: Vec<_> = all
                    .iter()
                    .map(|u| {
                        serde_json::json!({
                            "name": u.name,
                            "role": u.role,
                            "domains": u.domains,
                            "totp": u.totp.is_some(),
                            "locked_until": u.locked_until,
                            "created_at": u.created_at,
                        })
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                for u in all {
                    println!(
                        "{}\t{}\t{}\t{}",
                        u.name,
                        u.role.as_str(),
                        if u.domains.is_empty() {
                            "*".to_string()
                        } else {
                            u.domains.join(",")
                        },
                        u.created_at.format("%Y-%m-%d %H:%M:%S")
                    );
                }
            }
        }
        UserCmd::Del { name } => {
            if store.get(&name).await?.is_none() {
                anyhow::bail!("no console user named {name:?}");
            }
            audit::record(
                stores.audit.as_ref(),
                Actor::Cli,
                "console.user.del",
                &name,
                "",
            )
            .await?;
            let gone = store.remove(&name).await?;
            println!("user {name:?} ({}) removed", gone.role.as_str());
        }
    }
    Ok(Outcome::Done)
}

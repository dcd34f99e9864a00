//! `sealgate keys`: the keystore and the organisation's signing identity.

use super::{read_input, Outcome, Where};
use anyhow::Context;
use clap::Subcommand;
use sealgate::admin::keys as admin_keys;
use std::path::PathBuf;

/// The keystore's subcommands.
#[derive(Subcommand)]
pub enum KeysCmd {
    /// Import OpenPGP keys (armoured or binary) or X.509 certificates (PEM
    /// or DER); or, from a PKCS#12 file (.p12/.pfx), the organisation's
    /// S/MIME signing identity.
    Import {
        /// The file; `-` reads standard input.
        file: PathBuf,
        /// For PKCS#12: a file whose first line is the password.
        #[arg(long)]
        password_file: Option<PathBuf>,
        /// Bind the file's one OpenPGP key to this address (repeatable): it
        /// seals for it, pinned, though no user ID names it (keys without an
        /// e-mail user ID).
        #[arg(long = "address", value_name = "ADDRESS")]
        address: Vec<String>,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// List stored keys: id, kind, state, source, addresses.
    Ls {
        /// JSON output (without key material).
        #[arg(long)]
        json: bool,
    },
    /// Show the keys of an address and which one would seal now, or why none.
    Show {
        /// The e-mail address.
        address: String,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Remove a key (by id, or an unambiguous prefix of at least 8 characters).
    Rm {
        /// Key id: OpenPGP fingerprint or certificate SHA-256.
        id: String,
    },
    /// Approve a pending key (one that replaced a known key for an address).
    Approve {
        /// Key id.
        id: String,
    },
}

/// Run a keystore subcommand.
pub async fn run(at: Where, action: KeysCmd) -> super::Result {
    let config = at.load()?;
    let keys =
        sealgate::keys::Keys::open(&config, sealgate::store::Stores::open(&config).await?.keys)
            .await?;
    let text = match action {
        KeysCmd::Import {
            file,
            password_file,
            address,
            json,
        } => {
            let bytes = read_input(&file).with_context(|| format!("{}", file.display()))?;
            let pkcs12 = password_file.is_some()
                || file.extension().and_then(|e| e.to_str()).is_some_and(|e| {
                    e.eq_ignore_ascii_case("p12") || e.eq_ignore_ascii_case("pfx")
                });
            if pkcs12 && !address.is_empty() {
                anyhow::bail!(
                    "{}: --address binds an OpenPGP key to an address; a PKCS#12 file is the organisation's signing identity",
                    file.display()
                );
            }
            if pkcs12 {
                let Some(pw) = password_file else {
                    anyhow::bail!(
                        "{}: a PKCS#12 file needs --password-file FILE (its first line is the password)",
                        file.display()
                    );
                };
                let password =
                    std::fs::read_to_string(&pw).with_context(|| format!("{}", pw.display()))?;
                let password = password.lines().next().unwrap_or_default();
                admin_keys::import_signing(&config, &bytes, password, json)
                    .with_context(|| format!("{}", file.display()))?
            } else {
                admin_keys::import(&keys.binding(&address)?, &bytes, json)
                    .await
                    .with_context(|| format!("{}", file.display()))?
            }
        }
        KeysCmd::Ls { json } => admin_keys::ls(&keys, json)?,
        KeysCmd::Show { address, json } => admin_keys::show(&keys, &address, json)?,
        KeysCmd::Rm { id } => admin_keys::rm(&keys, &id).await?,
        KeysCmd::Approve { id } => admin_keys::approve(&keys, &id).await?,
    };
    print!("{text}");
    Ok(Outcome::Done)
}

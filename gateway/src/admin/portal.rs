//! `sealgate portal ls`: what the escrow portal holds and where each
//! message stands, read-only (works while the gateway runs).

use crate::config::Config;
use crate::seal::escrow::{Escrow, EscrowEntry, EscrowError};
use crate::spool::Keyring;
use std::fmt::Write as _;

/// Every entry of the escrow store, oldest first.
pub fn entries(config: &Config) -> Result<Vec<EscrowEntry>, EscrowError> {
    let dir = config.escrow_dir();
    if !dir.join("CURRENT").exists() {
        return Ok(Vec::new());
    }
    let keys = Keyring::load(&config.escrow_key_file()).map_err(|source| EscrowError::Key {
        what: config.escrow_key_file().display().to_string(),
        source,
    })?;
    let mut list = Escrow::open_read_only(&dir, keys)?.list()?;
    list.sort_by_key(|e| e.created_at);
    Ok(list)
}

/// The listing: a table, or JSON lines.
pub fn list(entries: &[EscrowEntry], json: bool) -> String {
    let mut out = String::new();
    if json {
        for e in entries {
            let mut v = serde_json::to_value(e).expect("an entry serialises");
            // The wrapped key is useless without the key file, but it is no one's business.
            if let Some(o) = v.as_object_mut() {
                o.remove("wrapped_key");
            }
            let _ = writeln!(out, "{v}");
        }
        return out;
    }
    if entries.is_empty() {
        return "no messages in the portal\n".into();
    }
    let _ = writeln!(
        out,
        "{:<32}  {:<8}  {:<20}  {:<20}  {:<28}  sender",
        "ID", "STATE", "DEPOSITED", "EXPIRES", "RECIPIENT"
    );
    for e in entries {
        let state = serde_json::to_value(e.state)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "{:<32}  {:<8}  {:<20}  {:<20}  {:<28}  {}",
            e.id,
            state,
            e.created_at.format("%Y-%m-%d %H:%M:%S"),
            e.expires_at.format("%Y-%m-%d %H:%M:%S"),
            e.recipient,
            e.sender
        );
    }
    out
}

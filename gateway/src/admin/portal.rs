//! `sealgate portal ls`: what the escrow portal holds and where each
//! message stands, read-only (works while the gateway runs).

use crate::config::Config;
use crate::model::escrow::EscrowEntry;
use crate::store::escrow::EscrowError;
use crate::store::Stores;
use std::fmt::Write as _;

/// Every entry of the escrow store, oldest first.
pub async fn entries(config: &Config) -> Result<Vec<EscrowEntry>, EscrowError> {
    let Some(stores) = Stores::open_portal_read_only(config)? else {
        return Ok(Vec::new());
    };
    let mut list = stores.messages.list().await?;
    list.sort_by_key(|e| e.created_at);
    Ok(list)
}

/// The listing: a table, or JSON lines.
pub fn list(entries: &[EscrowEntry], json: bool) -> String {
    let mut out = String::new();
    if json {
        for e in entries {
            let v = serde_json::to_value(e).expect("an entry serialises");
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

//! The audit log: one JSON line per admin action or policy event that an
//! auditor would ask about (quarantine release, delete, expiry), appended
//! to `<data_dir>/audit.log` and synced, and mirrored to the log under the
//! `sealgate::audit` target. It names ids, actions and rule ids, never
//! addresses, subjects or content.

use chrono::Utc;
use std::io::Write;
use std::path::Path;

/// Who did it.
#[derive(Debug, Clone, Copy)]
pub enum Actor {
    /// The command line, with the gateway stopped.
    Cli,
    /// The admin API (the command line while the gateway runs).
    Api,
    /// The gateway itself (expiry).
    Gateway,
}

impl Actor {
    fn as_str(self) -> &'static str {
        match self {
            Actor::Cli => "cli",
            Actor::Api => "api",
            Actor::Gateway => "gateway",
        }
    }
}

/// Appends one event; a failure to write is logged, never fatal to the action.
pub fn record(data_dir: &Path, actor: Actor, action: &str, id: &str, detail: &str) {
    let line = serde_json::json!({
        "at": Utc::now().to_rfc3339(),
        "actor": actor.as_str(),
        "action": action,
        "id": id,
        "detail": detail,
    });
    tracing::info!(target: "sealgate::audit", actor = actor.as_str(), action, id, detail, "audit");
    let path = data_dir.join("audit.log");
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut f| {
            f.write_all(format!("{line}\n").as_bytes())?;
            f.sync_data()
        });
    if let Err(e) = written {
        tracing::error!(path = %path.display(), error = %e, "cannot write the audit log");
    }
}

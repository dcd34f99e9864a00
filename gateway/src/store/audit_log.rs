//! The audit log: admin actions, archive accesses and policy events an
//! auditor would ask about, each chained to the one before it by hash, so
//! an edited, removed or reordered entry breaks the chain at that point.

use super::BackendError;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Who did it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Actor {
    /// The command line, with the gateway stopped.
    Cli,
    /// The admin API (the command line while the gateway runs).
    Api,
    /// The gateway itself (expiry).
    Gateway,
    /// Someone using the escrow portal: a recipient, or a sender's withdraw link.
    Portal,
    /// A user of the web console (named in the entry's detail).
    Console,
}

impl Actor {
    /// Lower-case name, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Actor::Cli => "cli",
            Actor::Api => "api",
            Actor::Gateway => "gateway",
            Actor::Portal => "portal",
            Actor::Console => "console",
        }
    }
}

/// One entry as stored. Fields are in the order they are written (sorted
/// by name), since the chain hashes each entry's stored form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// What was done (`queue.delete`, `archive.search`, ...).
    pub action: String,
    /// Who did it (`cli`, `api`, `gateway`, `portal`, `console`).
    pub actor: String,
    /// When, RFC 3339.
    pub at: String,
    /// Addresses, search text, counts: the detail an auditor needs.
    pub detail: String,
    /// What it was done to (a queue id, a hold's name, ...).
    pub id: String,
    /// SHA-256 (hex) of the entry before, `genesis` for the first.
    pub prev: String,
}

/// What [`AuditLog::verify`] found.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct AuditReport {
    /// Entries whose `prev` matched.
    pub lines_ok: usize,
    /// Entries without a `prev` field (each one is damage).
    pub unchained: usize,
    /// The first entry (1-based) that does not follow from the one before, and why.
    pub first_broken: Option<(usize, String)>,
}

/// The audit log.
///
/// Promises: `append` is durable when it returns, and is chained after
/// every entry appended before it returned, from any process or node
/// sharing the store (appends are serialised). `read` gives entries in
/// chain order. `verify` walks the whole chain from the first entry.
#[async_trait]
pub trait AuditLog: Send + Sync {
    /// Appends one entry, stamped now and chained to the last.
    async fn append(
        &self,
        actor: Actor,
        action: &str,
        id: &str,
        detail: &str,
    ) -> Result<(), BackendError>;
    /// The last `tail` entries (all with `None`), oldest first; entries
    /// that do not parse are left out (`verify` names them).
    async fn read(&self, tail: Option<usize>) -> Result<Vec<AuditRecord>, BackendError>;
    /// Checks that every entry names the hash of the one before.
    async fn verify(&self) -> Result<AuditReport, BackendError>;
}

/// Walks the lines of an audit log, one entry per line as stored (either
/// backend): each must name the SHA-256 of the line before it.
pub fn verify_lines(text: &[u8]) -> AuditReport {
    let mut report = AuditReport::default();
    let mut prev: Option<&[u8]> = None;
    for (n, line) in text.split(|&b| b == b'\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        let broken = |why: &str| Some((n + 1, why.to_string()));
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(line) else {
            report.first_broken = broken("not a JSON line (edited?)");
            return report;
        };
        match v["prev"].as_str() {
            // Every line is chained: one without `prev` was inserted, or
            // the chain was stripped.
            None => {
                report.unchained += 1;
                report.first_broken = broken("no prev field (inserted, or the chain was stripped)");
                return report;
            }
            Some(claimed) => {
                let want = match prev {
                    Some(p) => hex::encode(Sha256::digest(p)),
                    None => "genesis".to_string(),
                };
                if claimed != want {
                    report.first_broken = broken(
                        "prev does not match the line before (edited, removed or reordered)",
                    );
                    return report;
                }
                report.lines_ok += 1;
            }
        }
        prev = Some(line);
    }
    report
}

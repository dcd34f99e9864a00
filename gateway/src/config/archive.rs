//! `[archive]`: what is journaled and how the archive is kept.

use crate::model::record::Direction;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// `[archive]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ArchiveConfig {
    /// Journal relayed mail into the archive (`<data_dir>/archive`).
    pub enabled: bool,
    /// Key file for encryption at rest; unset means
    /// `<data_dir>/keys/archive.keys`, created on first start.
    pub key_file: Option<PathBuf>,
    /// The archive's Ed25519 key (PKCS#8) that signs chain checkpoints;
    /// unset means `<data_dir>/keys/archive-signing.pk8`, created on first start.
    pub signing_key_file: Option<PathBuf>,
    /// Which directions are journaled.
    pub directions: Vec<Direction>,
    /// When not empty, only mail whose sender or a recipient is in one of
    /// these domains is journaled.
    pub domains: Vec<String>,
    /// A signed checkpoint of the chain head after this many events.
    pub checkpoint_every: u64,
    /// Days an item is kept when no retention rule matches it.
    pub retain_days: u32,
    /// Retention rules (`[[archive.retention]]`); of those that match an
    /// item, the longest decides its retain-until date, set at ingest.
    pub retention: Vec<RetentionRule>,
    /// How long an export made through the API waits for its download
    /// (sealed under a key held in memory) before it is deleted.
    pub export_ttl: super::Span,
}

/// `[[archive.retention]]`: how long the mail it matches is kept. Every
/// condition set must hold; an empty one holds for all.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionRule {
    /// Name (in the audit log and `archive show`).
    pub name: String,
    /// Days to keep, from reception.
    pub days: u32,
    /// Directions it applies to.
    pub directions: Vec<Direction>,
    /// Domains of the sender or a recipient.
    pub domains: Vec<String>,
    /// Addresses of the sender or a recipient.
    pub addresses: Vec<String>,
    /// DLP detector ids, any of which found something.
    pub dlp: Vec<String>,
    /// Locked: from the first start with it locked, the gateway refuses a
    /// configuration that shortens, unlocks or removes it (lengthening is fine).
    pub locked: bool,
}

impl Default for ArchiveConfig {
    fn default() -> Self {
        ArchiveConfig {
            enabled: true,
            key_file: None,
            signing_key_file: None,
            directions: vec![Direction::Inbound, Direction::Outbound],
            domains: Vec::new(),
            checkpoint_every: 1000,
            // Seven years, a common floor for healthcare and finance records.
            retain_days: 2557,
            retention: Vec::new(),
            export_ttl: super::Span::secs(24 * 3600),
        }
    }
}

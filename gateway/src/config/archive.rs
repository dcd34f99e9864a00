//! `[archive]`: what is journaled and how the archive is kept.

use crate::spool::Direction;
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
        }
    }
}

//! The archive stage: takes a finished message (every recipient final)
//! from delivery and journals it, if `[archive]` says this message is
//! journaled. Delivery retires the message from the spool only after this
//! returned, so a crash in between journals it again (idempotently).

use super::{Archive, ArchiveError, Capture, Journaled};
use crate::config::ArchiveConfig;
use crate::spool::{InspectionRecord, QueuedMessage};
use std::sync::Arc;

/// The journal the delivery stage hands finished messages to.
pub struct Journal {
    archive: Arc<Archive>,
    config: ArchiveConfig,
}

impl Journal {
    /// A journal into `archive` under `config`'s rules.
    pub fn new(archive: Arc<Archive>, config: ArchiveConfig) -> Self {
        Journal { archive, config }
    }

    /// The store, for the admin API.
    pub fn archive(&self) -> &Arc<Archive> {
        &self.archive
    }

    /// Whether `msg` is journaled: its direction is listed, and, when
    /// `domains` is set, its sender or a recipient is in one of them.
    pub fn wants(&self, msg: &QueuedMessage) -> bool {
        if !self.config.directions.contains(&msg.origin.direction) {
            return false;
        }
        if self.config.domains.is_empty() {
            return true;
        }
        let listed = |domain: &str| {
            let d = domain.to_ascii_lowercase();
            self.config
                .domains
                .iter()
                .any(|x| x.eq_ignore_ascii_case(&d))
        };
        let sender = msg.from.rsplit_once('@').map(|(_, d)| d).unwrap_or("");
        listed(sender)
            || msg
                .recipients
                .iter()
                .any(|r| listed(&r.address.domain_ascii()))
    }

    /// Journals `msg` (bytes `raw`, DLP findings `dlp`); `None` when the
    /// rules leave it out.
    pub async fn journal(
        &self,
        msg: &QueuedMessage,
        raw: Vec<u8>,
        dlp: Option<InspectionRecord>,
    ) -> Result<Option<Journaled>, ArchiveError> {
        if !self.wants(msg) {
            return Ok(None);
        }
        let capture = Capture::of(msg, &raw, dlp);
        let archive = self.archive.clone();
        // Compression, encryption and the synced write are blocking work.
        tokio::task::spawn_blocking(move || archive.journal(capture, &raw))
            .await
            .map_err(|e| ArchiveError::Corrupt("journal task".into(), e.to_string()))?
            .map(Some)
    }
}

//! The archive stage: takes a finished message (every recipient final)
//! from delivery and journals it, if `[archive]` says this message is
//! journaled. Delivery retires the message from the spool only after this
//! returned, so a crash in between journals it again (idempotently).

use super::{ArchiveError, ArchiveStore, Capture, Journaled, SearchIndex};
use crate::config::ArchiveConfig;
use crate::spool::{InspectionRecord, QueuedMessage};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Index commits are batched: at most this many items, or this long, wait.
const COMMIT_EVERY: u64 = 256;
const COMMIT_AFTER: Duration = Duration::from_secs(1);

/// The journal the delivery stage hands finished messages to.
pub struct Journal {
    archive: Arc<dyn ArchiveStore>,
    index: Arc<SearchIndex>,
    config: ArchiveConfig,
    /// Items indexed but not committed, when the index was last committed,
    /// and the first sequence number an index update failed for (the
    /// index's recorded progress stays below it, so the next start's
    /// catch-up retries it).
    pending: Mutex<(u64, Instant, Option<u64>)>,
    metrics: Arc<crate::telemetry::metrics::Metrics>,
}

impl Journal {
    /// A journal into `archive` and its search `index` under `config`'s rules.
    pub async fn new(
        archive: Arc<dyn ArchiveStore>,
        index: Arc<SearchIndex>,
        config: ArchiveConfig,
        metrics: Arc<crate::telemetry::metrics::Metrics>,
    ) -> Self {
        metrics.archive_head.set(archive.head_seq().await as i64);
        Journal {
            archive,
            index,
            config,
            pending: Mutex::new((0, Instant::now(), None)),
            metrics,
        }
    }

    /// The metrics registry (the API records search latency and verifies).
    pub fn metrics(&self) -> &crate::telemetry::metrics::Metrics {
        &self.metrics
    }

    /// Keeps the index's recorded progress below `seq`.
    fn index_failed(&self, seq: u64) {
        let mut p = crate::locks::lock(&self.pending);
        p.2 = Some(p.2.map_or(seq, |f| f.min(seq)));
        p.0 += 1;
    }

    /// Commits the search index if items wait (called every second),
    /// recording it indexed through `head` (the archive's head, read
    /// before) unless an update failed below it. Blocking.
    pub fn flush_index(&self, head: u64) {
        let mut p = crate::locks::lock(&self.pending);
        if p.0 == 0 {
            return;
        }
        let through = match p.2 {
            Some(failed) => failed - 1,
            None => head,
        };
        match self.index.commit(through) {
            Ok(()) => {
                p.0 = 0;
                p.1 = Instant::now();
            }
            Err(e) => tracing::error!(error = %e, "cannot commit the archive search index"),
        }
    }

    /// The store, for the admin API.
    pub fn archive(&self) -> &Arc<dyn ArchiveStore> {
        &self.archive
    }

    /// The search index, for the admin API.
    pub fn index(&self) -> &Arc<SearchIndex> {
        &self.index
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
    /// rules leave it out. From a journal listener (`journal_listener`), a
    /// Microsoft 365 journal report is unwrapped: its original is archived
    /// with the envelope it lists; anything else there is archived as is.
    pub async fn journal(
        &self,
        msg: &QueuedMessage,
        raw: Vec<u8>,
        dlp: Option<InspectionRecord>,
        journal_listener: bool,
    ) -> Result<Option<Journaled>, ArchiveError> {
        let report = journal_listener
            .then(|| super::journal_report::unwrap(&raw))
            .flatten();
        // Mail taken on a journal listener is for the archive alone: it
        // is archived whatever `directions` and `domains` say.
        if !journal_listener && !self.wants(msg) {
            return Ok(None);
        }
        let raw = if written_by_portal(msg, &raw) {
            redact_portal_secrets(&raw)
        } else {
            raw
        };
        let (mut capture, raw) = match report {
            Some(r) => (Capture::of_report(msg, &r, dlp), r.original),
            None => (Capture::of(msg, &raw, dlp), raw),
        };
        let (rule, until) = super::retention::retain_until(&self.config, &capture);
        capture.retain_until = Some(until);
        capture.retention_rule = rule;
        let started = Instant::now();
        let raw = Arc::new(raw);
        let indexed_as = capture.clone();
        let (journaled, stored) = self.archive.journal_sized(capture, raw.clone()).await?;
        let m = &self.metrics;
        m.archive_journal_seconds
            .observe(started.elapsed().as_secs_f64());
        let head = self.archive.head_seq().await;
        m.archive_head.set(head as i64);
        if !matches!(journaled, Journaled::Already(_)) {
            m.archive_raw_bytes.inc_by(raw.len() as u64);
            m.archive_stored_bytes.inc_by(stored);
            m.archive_journaled
                .with_label_values(&[if stored > 0 { "new" } else { "merged" }])
                .inc();
        }
        let (item, known) = match journaled {
            // A new item is just this capture: no need to read it back.
            Journaled::New(seq) => (
                seq,
                Some(crate::store::archive::Item {
                    id: seq,
                    captures: vec![(seq, indexed_as)],
                }),
            ),
            Journaled::Merged { item, .. } => (item, None),
            Journaled::Already(_) => return Ok(Some(journaled)),
        };
        let found = match known {
            Some(it) => Ok(Some(it)),
            None => self.archive.item(item).await,
        };
        // The index is derived: a failure here is logged, and the next
        // start's catch-up (or `archive reindex`) fills the gap.
        let indexed = match found {
            Ok(Some(it)) => {
                let index = self.index.clone();
                tokio::task::spawn_blocking(move || -> Result<(), super::SearchError> {
                    index.add(&it, &raw)?;
                    Ok(())
                })
                .await
            }
            Ok(None) => Ok(Ok(())),
            Err(e) => Ok(Err(e.into())),
        };
        match indexed {
            Ok(Ok(())) => {
                let due = {
                    let mut p = crate::locks::lock(&self.pending);
                    p.0 += 1;
                    p.0 >= COMMIT_EVERY || p.1.elapsed() >= COMMIT_AFTER
                };
                if due {
                    self.flush_index(head);
                }
            }
            Ok(Err(e)) => {
                tracing::error!(item, error = %e, "cannot index archived item; the next start retries");
                self.index_failed(item);
            }
            Err(e) => {
                tracing::error!(item, error = %e, "index task failed; the next start retries");
                self.index_failed(item);
            }
        }
        Ok(Some(journaled))
    }
}

/// Mail the portal wrote itself (notices, confirmations, codes, receipts),
/// not a recipient's reply: what it carries that matters is a secret.
fn written_by_portal(msg: &QueuedMessage, raw: &[u8]) -> bool {
    msg.origin.listener == crate::spool::PORTAL_ORIGIN
        && !crate::policy::worker::header_facts(raw, "").portal_reply
}

/// `raw` with the portal's secrets replaced by `[redacted]`: link and
/// withdraw tokens (64 hex digits) and one-time codes (8 digits), so that
/// no one who can search the archive can sign in as a recipient or withdraw
/// a message.
pub fn redact_portal_secrets(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let hex = raw[i..]
            .iter()
            .take_while(|b| b.is_ascii_hexdigit())
            .count();
        let digits = raw[i..].iter().take_while(|b| b.is_ascii_digit()).count();
        let run = hex.max(1);
        let secret = hex == 64 || (digits == 8 && hex == 8);
        if secret {
            out.extend_from_slice(b"[redacted]");
        } else {
            out.extend_from_slice(&raw[i..i + run]);
        }
        i += run;
    }
    out
}

impl crate::deliver::worker::Journaler for Journal {
    fn journal_finished<'a>(
        &'a self,
        msg: &'a QueuedMessage,
        raw: Vec<u8>,
        dlp: Option<InspectionRecord>,
        journal_listener: bool,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = crate::deliver::worker::Journaled> + Send + 'a>,
    > {
        Box::pin(async move {
            match self.journal(msg, raw, dlp, journal_listener).await {
                Ok(j) => Ok(j.map(|j| format!("{j:?}"))),
                Err(e) => Err(e.into()),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn portal_links_and_codes_are_redacted_and_the_rest_kept() {
        let token = "ab".repeat(32);
        let raw = format!(
            "Subject: Your code: 12345678\r\nDate: Mon, 7 Dec 2026 10:00:00 +0000\r\n\r\n\
             Open https://p.test/m/{token} or withdraw https://p.test/r/{token}.\r\n    \
             87654321\r\nRoom 123456789, ref deadbeef12345678, id 2026120712.\r\n"
        );
        let out = String::from_utf8(redact_portal_secrets(raw.as_bytes())).unwrap();
        assert!(!out.contains(&token), "{out}");
        assert!(
            !out.contains("12345678\r\n") && !out.contains("87654321"),
            "{out}"
        );
        assert!(out.contains("/m/[redacted] or withdraw https://p.test/r/[redacted]."));
        assert!(out.contains("Your code: [redacted]"));
        for kept in ["123456789", "deadbeef12345678", "2026120712", "10:00:00"] {
            assert!(out.contains(kept), "{kept} lost: {out}");
        }
    }
}

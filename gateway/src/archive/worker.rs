//! The archive stage: takes a finished message (every recipient final)
//! from delivery and journals it, if `[archive]` says this message is
//! journaled. Delivery retires the message from the spool only after this
//! returned, so a crash in between journals it again (idempotently).

use super::{ArchiveError, ArchiveStore, Capture, Journaled, SearchIndex};
use crate::config::ArchiveConfig;
use crate::spool::{InspectionRecord, QueuedMessage};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The search index follows the archive: it is committed at most this
/// often (each commit writes and syncs index files), or once this many
/// events wait, and reads at most this many events at a time.
const COMMIT_AFTER: Duration = Duration::from_secs(1);
const COMMIT_EVERY: u64 = 256;

/// The search index's follower's place in the archive.
struct Follower {
    /// The last sequence number in the index (maybe not committed yet).
    through: u64,
    /// Events applied since the last commit.
    uncommitted: u64,
    /// When the index was last committed.
    committed_at: Instant,
}

/// The journal the delivery stage hands finished messages to.
pub struct Journal {
    archive: Arc<dyn ArchiveStore>,
    index: Arc<SearchIndex>,
    config: ArchiveConfig,
    /// Woken when something was journaled, for the index's follower.
    journaled: tokio::sync::Notify,
    /// Where the index's follower is.
    follower: tokio::sync::Mutex<Follower>,
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
        let through = index.indexed_through();
        metrics.archive_indexed.set(through as i64);
        Journal {
            archive,
            index,
            config,
            journaled: tokio::sync::Notify::new(),
            follower: tokio::sync::Mutex::new(Follower {
                through,
                uncommitted: 0,
                committed_at: Instant::now(),
            }),
            metrics,
        }
    }

    /// The metrics registry (the API records search latency and verifies).
    pub fn metrics(&self) -> &crate::telemetry::metrics::Metrics {
        &self.metrics
    }

    /// Keeps the search index following the archive's sequence, off the
    /// delivery path: woken by each journal (and every second), it indexes
    /// what was journaled since, and commits at most every second. Runs
    /// until the gateway stops.
    pub async fn follow(self: Arc<Self>) {
        loop {
            tokio::select! {
                _ = self.journaled.notified() => {}
                _ = tokio::time::sleep(COMMIT_AFTER) => {}
            }
            self.index_step(false).await;
        }
    }

    /// Indexes what the archive holds beyond the index (everything, when
    /// `flush`, and then commits whatever waits: at shutdown).
    pub async fn index_step(&self, flush: bool) {
        let mut f = self.follower.lock().await;
        loop {
            let head = self.archive.head_seq().await;
            let to = head.min(f.through + COMMIT_EVERY);
            if to > f.through {
                let changes = super::search::Changes::read_parallel(
                    self.archive.clone(),
                    f.through + 1,
                    to,
                    8,
                )
                .await;
                let index = self.index.clone();
                match tokio::task::spawn_blocking(move || index.apply(changes)).await {
                    Ok(Ok(_)) => {
                        f.uncommitted += to - f.through;
                        f.through = to;
                    }
                    Ok(Err(e)) => {
                        // Tried again on the next wake-up; the committed
                        // progress stays below it meanwhile.
                        tracing::error!(from = f.through + 1, to, error = %e, "cannot index archived items");
                        return;
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "index task failed");
                        return;
                    }
                }
            }
            let due = f.uncommitted > 0
                && (flush
                    || f.uncommitted >= COMMIT_EVERY
                    || f.committed_at.elapsed() >= COMMIT_AFTER);
            if due {
                let (index, through) = (self.index.clone(), f.through);
                match tokio::task::spawn_blocking(move || index.commit(through)).await {
                    Ok(Ok(())) => {
                        f.uncommitted = 0;
                        f.committed_at = Instant::now();
                        self.metrics.archive_indexed.set(through as i64);
                    }
                    Ok(Err(e)) => {
                        tracing::error!(error = %e, "cannot commit the archive search index")
                    }
                    Err(e) => tracing::error!(error = %e, "index commit task failed"),
                }
            }
            if !flush || to >= head {
                return;
            }
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
        let (journaled, stored) = self.archive.journal_sized(capture, raw.clone()).await?;
        let m = &self.metrics;
        m.archive_journal_seconds
            .observe(started.elapsed().as_secs_f64());
        m.archive_head.set(self.archive.head_seq().await as i64);
        if !matches!(journaled, Journaled::Already(_)) {
            m.archive_raw_bytes.inc_by(raw.len() as u64);
            m.archive_stored_bytes.inc_by(stored);
            m.archive_journaled
                .with_label_values(&[if stored > 0 { "new" } else { "merged" }])
                .inc();
            self.journaled.notify_one();
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

    /// A journal over a fresh archive and index in `dir`.
    async fn journal(dir: &std::path::Path) -> Arc<Journal> {
        let archive = crate::store::rocksdb::archive::testing::open(dir, 100);
        let index = SearchIndex::open(&dir.join("index"), Default::default()).unwrap();
        let metrics = Arc::new(crate::telemetry::metrics::Metrics::new());
        Arc::new(
            Journal::new(
                Arc::new(archive),
                Arc::new(index),
                ArchiveConfig::default(),
                metrics,
            )
            .await,
        )
    }

    fn finished(id: u64, subject: &str) -> (QueuedMessage, Vec<u8>) {
        let mut msg = crate::store::spool::testing::message();
        msg.id = crate::spool::QueueId(id);
        let raw =
            format!("Subject: {subject}\r\nTo: c@d.test\r\n\r\nbody of {subject}\r\n").into_bytes();
        msg.size = raw.len() as u64;
        (msg, raw)
    }

    /// Delivery does not wait for the index: a journal returns before its
    /// message is searchable, the follower indexes it (a merge re-indexes
    /// its item) and commits with the sequence it covers, which a restart
    /// starts from.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_search_index_follows_the_archive_off_the_delivery_path() {
        let dir = tempfile::tempdir().unwrap();
        let j = journal(dir.path()).await;
        for (id, subject) in [(1, "strawberry"), (2, "raspberry")] {
            let (msg, raw) = finished(id, subject);
            assert!(j.journal(&msg, raw, None, false).await.unwrap().is_some());
        }
        assert_eq!(
            j.index().search("", 10).unwrap().total,
            0,
            "not indexed inline"
        );
        j.index_step(true).await;
        assert_eq!(j.index().search("strawberry", 10).unwrap().ids, [1]);
        assert_eq!(j.index().indexed_through(), 2);
        assert_eq!(j.metrics().archive_indexed.get(), 2);
        // Running, the follower picks up new journals by itself.
        let follower = tokio::spawn(j.clone().follow());
        let (mut msg, raw) = finished(3, "raspberry");
        msg.recipients[0].address = crate::model::address::Mailbox::parse("late@d.test").unwrap();
        let merged = j.journal(&msg, raw, None, false).await.unwrap();
        assert!(
            matches!(merged, Some(Journaled::Merged { item: 2, seq: 3 })),
            "{merged:?}"
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        while j.index().search("rcpt:late@d.test", 10).unwrap().ids != [2] {
            assert!(
                Instant::now() < deadline,
                "the follower never indexed the merge"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        follower.abort();
        assert_eq!(j.index().indexed_through(), 3);
        assert_eq!(j.index().search("", 10).unwrap().total, 2);
    }

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

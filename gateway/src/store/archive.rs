//! The archive's durable store: every relayed message journaled once, as
//! events in one hash chain (`chain`) with signed checkpoints, message
//! content stored once per SHA-256, and the removals a purge made. The
//! records it keeps (`Event`, `Capture`) are `model::archive`'s; the
//! archive stage decides what is journaled, kept and purged.

pub mod chain;
pub mod content;
pub mod walk;

use super::keyring::KeyError;
use crate::config::RetentionRule;
use crate::model::archive::{Capture, Event};
use async_trait::async_trait;
use chain::Checkpoint;
use serde::Serialize;
use std::sync::Arc;

/// Errors from the archive store.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// The database reported an error (including a checksum mismatch on
    /// disk, or the store held by another process).
    #[error("archive database: {0}")]
    Db(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A record did not decrypt.
    #[error("archive record {what}: {source}")]
    Key {
        /// Which record.
        what: String,
        /// Why.
        source: KeyError,
    },
    /// A record decrypted but is not what it should be.
    #[error("archive record {0} is damaged: {1}")]
    Corrupt(String, String),
    /// The store is open read-only.
    #[error("the archive is open read-only (the gateway writes it)")]
    ReadOnly,
    /// The archive's key file does not load.
    #[error("archive key file: {0}")]
    Keys(#[from] KeyError),
    /// A locked retention rule was shortened, unlocked or removed.
    #[error("retention rule {0:?} is locked at {1} days: it can be lengthened, never shortened, unlocked or removed")]
    Locked(String, u32),
    /// Creating the directory or the signing key failed.
    #[error("archive {path}: {source}")]
    Io {
        /// The file or directory.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
}

/// What [`ArchiveStore::journal`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Journaled {
    /// A new item, at this sequence number.
    New(u64),
    /// Bytes already archived: this relay's envelope merged into `item`.
    Merged {
        /// The item.
        item: u64,
        /// The merge event's sequence number.
        seq: u64,
    },
    /// This queue id was journaled before (a crash before the spool let go).
    Already(u64),
}

/// One archived item: the message and every relay of it.
#[derive(Debug, Clone, Serialize)]
pub struct Item {
    /// Its id: the sequence number of its ingest.
    pub id: u64,
    /// The first relay, then each later one, with their sequence numbers.
    pub captures: Vec<(u64, Capture)>,
}

/// What [`ArchiveStore::purge`] removed.
#[derive(Debug, Default, Serialize)]
pub struct PurgeReport {
    /// The purge event's sequence number (0 when nothing was removed).
    pub seq: u64,
    /// Items removed.
    pub items: Vec<u64>,
    /// Octets of message content removed (as received).
    pub bytes: u64,
}

/// What [`ArchiveStore::verify`] found.
#[derive(Debug, Default, Serialize)]
pub struct VerifyReport {
    /// Events whose record and link checked out.
    pub events_ok: u64,
    /// Events whose record a purge removed (their links still check out).
    pub events_purged: u64,
    /// Message contents decrypted, decompressed and matched their SHA-256.
    pub blobs_ok: u64,
    /// Checkpoints whose signature and head checked out.
    pub checkpoints_ok: u64,
    /// The last sequence number.
    pub head_seq: u64,
    /// Its link (hex).
    pub head: String,
    /// Problems, in chain order: (sequence number or item, what is wrong).
    pub damaged: Vec<(u64, String)>,
    /// Public keys (hex) that signed checkpoints.
    pub signers: Vec<String>,
}

impl VerifyReport {
    /// The first broken link, if any.
    pub fn first_broken(&self) -> Option<&(u64, String)> {
        self.damaged.first()
    }
}

/// The archive's store: an append-only chain of events, the content they
/// name, and signed checkpoints of the chain.
///
/// Promises:
/// - Appends (`journal`, `purge`) are atomic and serialised: each takes
///   sequence number head + 1, its chain entry links it to the entry
///   before (`chain::link` over the previous link, its sequence number and
///   the SHA-256 of the event's JSON), and all it writes (content, event,
///   indexes, a checkpoint due) is there or none of it is. It is durable
///   when the call returns: a handle opened afterwards, by this process or
///   another, sees it.
/// - A queue id is journaled once: journaling it again changes nothing and
///   answers `Journaled::Already` with the first journal's sequence number.
/// - Content is kept once per SHA-256 of its bytes: the same bytes again
///   are a `Merge` event adding their capture to the first item
///   (`Journaled::Merged`). The capture's `sha256` is set from the bytes
///   stored, whatever the caller put there.
/// - A checkpoint is signed every `checkpoint_every` events (as opened)
///   and on `checkpoint`.
/// - `purge` removes the items' content and their events' records, keeps
///   their chain entries, and appends one `Purge` event naming the items
///   and the event records removed, so `verify` still walks the whole
///   chain; their queue ids may be journaled again.
/// - A read-only handle (`signer_public_key` is `None`) refuses appends
///   and checkpoints with `ReadOnly`.
#[async_trait]
pub trait ArchiveStore: Send + Sync {
    /// Journals one relayed message: its bytes `raw` (stored once per
    /// content) and its capture, as one new event; answers what it did
    /// and the octets of content stored (0 unless new).
    async fn journal_sized(
        &self,
        capture: Capture,
        raw: Arc<Vec<u8>>,
    ) -> Result<(Journaled, u64), ArchiveError>;

    /// As [`ArchiveStore::journal_sized`], without the octets stored.
    async fn journal(&self, capture: Capture, raw: &[u8]) -> Result<Journaled, ArchiveError> {
        self.journal_sized(capture, Arc::new(raw.to_vec()))
            .await
            .map(|(j, _)| j)
    }

    /// The event at `seq` (`None` when there is none, or a purge removed it).
    async fn event(&self, seq: u64) -> Result<Option<Event>, ArchiveError>;

    /// Item `id` (the sequence number of its ingest) with every relay of it.
    async fn item(&self, id: u64) -> Result<Option<Item>, ArchiveError>;

    /// Every item, oldest first.
    async fn items(&self) -> Result<Vec<Item>, ArchiveError>;

    /// The message bytes stored under SHA-256 `sha_hex`, exactly as received.
    async fn raw(&self, sha_hex: &str) -> Result<Option<Vec<u8>>, ArchiveError>;

    /// Removes `items` (content and event records) and records that as one
    /// `Purge` event; items not there are skipped, and nothing is appended
    /// when none is (`PurgeReport::seq` 0). The caller decides what may go
    /// (retention past, no hold).
    async fn purge(&self, items: &[u64], reason: &str) -> Result<PurgeReport, ArchiveError>;

    /// Signs a checkpoint of the head now (`None` when empty or already covered).
    async fn checkpoint(&self) -> Result<Option<Checkpoint>, ArchiveError>;

    /// The last sequence number (0 when empty).
    async fn head_seq(&self) -> u64;

    /// The public key (hex) this handle signs checkpoints with; `None` when read-only.
    fn signer_public_key(&self) -> Option<String>;

    /// Walks the chain from `from` (1 = all): every event decrypts and
    /// hashes to its chain entry, every link follows from the one before,
    /// every item's content matches its SHA-256, every checkpoint is signed
    /// and names the link the chain has, every removed record is named by
    /// its purge event; with `expected_signer` (hex), a checkpoint signed
    /// by another key is damage too.
    async fn verify_signed_by(
        &self,
        from: u64,
        expected_signer: Option<&str>,
    ) -> Result<VerifyReport, ArchiveError>;

    /// As [`ArchiveStore::verify_signed_by`], any signer accepted.
    async fn verify(&self, from: u64) -> Result<VerifyReport, ArchiveError> {
        self.verify_signed_by(from, None).await
    }

    /// Refuses `rules` if they shorten, unlock or drop a rule locked
    /// before; remembers the locked ones (durable at return).
    async fn enforce_locks(&self, rules: &[RetentionRule]) -> Result<(), ArchiveError>;

    /// Moves what is durable in a log into its tables (for a quick next
    /// open); nothing a reader sees changes.
    async fn flush(&self) -> Result<(), ArchiveError>;
}

/// Where an archive keeps message contents, by the SHA-256 of their bytes
/// (a PostgreSQL table first; object storage may follow). It holds what
/// it is given (already compressed and sealed by the archive) and
/// decides nothing: the archive store says which contents exist.
#[async_trait]
pub trait BlobStore: Send + Sync {
    /// Stores `sealed` under `sha` unless something is there already;
    /// durable at return.
    async fn put(&self, sha: &chain::Hash, sealed: &[u8]) -> Result<(), ArchiveError>;

    /// What is stored under `sha`, if anything.
    async fn get(&self, sha: &chain::Hash) -> Result<Option<Vec<u8>>, ArchiveError>;

    /// Removes what is stored under `sha` (nothing there is no error);
    /// durable at return.
    async fn delete(&self, sha: &chain::Hash) -> Result<(), ArchiveError>;
}

/// Builders for tests of the archive, its store and its index.
#[cfg(test)]
pub(crate) mod testing {
    use super::chain;
    use crate::model::archive::{Capture, HeaderFacts, Outcome};
    use crate::model::record::Direction;

    /// A delivered outbound capture of `raw` to `to`.
    pub(crate) fn capture(qid: &str, raw: &[u8], to: &[&str]) -> Capture {
        Capture {
            queue_id: qid.into(),
            sha256: hex::encode(chain::sha256(raw)),
            size: raw.len() as u64,
            received_at: chrono::Utc::now(),
            journaled_at: chrono::Utc::now(),
            direction: Direction::Outbound,
            connector: Some("tenant".into()),
            listener: "default".into(),
            peer: "127.0.0.1:2525".into(),
            helo: "tenant.test".into(),
            tls: None,
            mail_from: "a@hospital.test".into(),
            recipients: to.iter().map(|a| Outcome::delivered(a)).collect(),
            dlp: None,
            headers: HeaderFacts::of(raw),
            from_journal_report: false,
            retain_until: None,
            retention_rule: None,
        }
    }

    /// DLP findings of one detector (as the inspect stage records them).
    pub(crate) fn dlp_found(detector: &str) -> crate::model::record::InspectionRecord {
        crate::model::record::InspectionRecord {
            inspected_at: chrono::Utc::now(),
            findings: vec![crate::model::record::FindingRecord {
                detector: detector.into(),
                confidence: "high".into(),
                count: 1,
            }],
            unscannable: vec![],
            action: None,
            policy_hits: vec![],
            extensions: Vec::new(),
        }
    }
}

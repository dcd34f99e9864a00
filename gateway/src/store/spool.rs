//! The spool's durable store: queued messages (an envelope record and the
//! message bytes in chunks), what the stages record about them (the
//! inspection, sealed copies, the updated envelope) and the records of
//! finished messages. The spool stage (`spool::Spool`) hands out ids,
//! cuts messages into chunks and announces what it accepted; this is
//! where they are kept.

use super::keyring::KeyError;
use crate::model::id::QueueId;
use crate::model::record::{InspectionRecord, QueuedMessage};
use async_trait::async_trait;

/// Message bytes are stored in chunks of this size, so a session holds at
/// most one chunk in memory however large the message.
pub const CHUNK_SIZE: usize = 256 * 1024;

/// Spool failures.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    /// The database reported an error (including a checksum mismatch on
    /// disk).
    #[error("spool database: {0}")]
    Db(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A record could not be decrypted.
    #[error("spool record {id}: {source}")]
    Key {
        /// Which record.
        id: String,
        /// Why.
        source: KeyError,
    },
    /// A record decrypted but is not what it should be.
    #[error("spool record {0} is damaged: {1}")]
    Corrupt(String, String),
    /// The synced write failed or was refused.
    #[error("spool commit failed: {0}")]
    Commit(#[from] CommitError),
    /// A file beside the database (its directory, the writer's lock) could
    /// not be made or locked.
    #[error("{}: {source}", path.display())]
    File {
        /// The path.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A blocking task doing spool work panicked or was cancelled.
    #[error("spool task: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// The store is open read-only.
    #[error("the spool is open read-only")]
    ReadOnly,
    /// Another process (a running gateway) has the spool open for writing.
    #[error("the spool at {0} is in use by another process (a running gateway)")]
    InUse(std::path::PathBuf),
}

/// Why a durable write was not made.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    /// The writer is gone (the gateway is stopping).
    #[error("spool committer has stopped")]
    Stopped,
    /// An envelope would overwrite one already accepted.
    #[error("envelope {0} already exists")]
    EnvelopeExists(String),
    /// An update found its message deleted meanwhile.
    #[error("record {0} no longer exists")]
    Gone(String),
    /// The synced write itself failed.
    #[error("{0}")]
    Sync(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// How durable a write is when it returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// On disk: synced (RocksDB's log fsynced, PostgreSQL's commit
    /// flushed).
    Synced,
    /// Ordered before every later synced write of the store, so on disk
    /// once any later write is; lost in a crash before that. For records a
    /// stage makes again when they are missing (a verdict decided again, a
    /// finished message journaled again, idempotently, and retired again),
    /// so the writer need not wait for the disk.
    Ordered,
}

/// Where a backend reports its synced writes (the gateway's metrics:
/// `spool` implements it for them).
pub trait CommitStats: Send + Sync {
    /// One sync took `seconds` and made `writes` callers' writes durable.
    fn synced(&self, seconds: f64, writes: usize);
}

/// What [`SpoolStore::verify`] found.
#[derive(Debug, Default, serde::Serialize)]
pub struct VerifyReport {
    /// Messages whose body decrypted and matched its SHA-256.
    pub ok: usize,
    /// Messages that failed, with the reason.
    pub damaged: Vec<(String, String)>,
    /// Chunks that belong to no message.
    pub orphan_chunks: usize,
}

/// The spool's messages and the records the stages keep about them.
///
/// A message is stored as chunks (`put_chunk`, while it streams in), then
/// its envelope is committed (`commit`): a message is queued exactly when
/// its envelope is there. Chunks of a message never committed are not
/// part of the queue and are removed (`discard`, or by the backend when it
/// opens).
///
/// Promises:
/// - `commit`, `update`, `put_sealed`, `delete` and `complete` are
///   atomic (all they write is there or none of it) and durable when they
///   return: synced to disk (a backend may sync many callers' writes at
///   once, but answers none before the sync that covers it), so they
///   survive a crash and a handle opened afterwards sees them. `commit`
///   makes durable the message's chunks stored before it too. `update`
///   and `complete` with [`Durability::Ordered`] return before the sync:
///   they are seen by every read at once, and durable with the next
///   synced write (or lost, in a crash before it, with nothing after them).
/// - An accepted envelope is never overwritten: `commit` of an id already
///   queued fails with [`CommitError::EnvelopeExists`].
/// - `update`, `put_sealed` and `complete` fail with [`CommitError::Gone`]
///   when the message was deleted (or completed) meanwhile, and write
///   nothing: a deleted message never comes back.
/// - Writes are serialised: each is checked against the store as the
///   writes before it left it, and a read that starts after a write
///   returned sees it.
/// - `put_chunk` and `put_inspection` are not durable by themselves: a
///   chunk becomes durable with its message's `commit`; an inspection is
///   derived data, and one lost in a crash leaves the message
///   `uninspected`, to be inspected again.
/// - Lists (`envelopes`, `uninspected`) are in queue-id order (oldest
///   first, ids being time-ordered).
/// - A read-only handle refuses every write with [`SpoolError::ReadOnly`].
#[async_trait]
pub trait SpoolStore: Send + Sync {
    /// Stores chunk `n` (from 0) of message `id`, still being received
    /// (not durable by itself).
    async fn put_chunk(&self, id: QueueId, n: u32, bytes: &[u8]) -> Result<(), SpoolError>;

    /// Removes the chunks `0..chunks` of a message that will not be
    /// committed (best effort: what is left is removed on the next open).
    async fn discard(&self, id: QueueId, chunks: u32);

    /// Accepts `msg` (its `chunks` chunks stored before, or the last one
    /// given here as `last_chunk`, stored with it), durably and atomically.
    async fn commit(
        &self,
        msg: &QueuedMessage,
        last_chunk: Option<&[u8]>,
    ) -> Result<(), SpoolError>;

    /// The queued message `id`'s record.
    async fn envelope(&self, id: QueueId) -> Result<Option<QueuedMessage>, SpoolError>;

    /// Every queued message's record, oldest first.
    async fn envelopes(&self) -> Result<Vec<QueuedMessage>, SpoolError>;

    /// The queued messages this node works, oldest first: all of them on a
    /// single node; in a cluster, those it holds the lease on.
    async fn owned(&self) -> Result<Vec<QueuedMessage>, SpoolError> {
        self.envelopes().await
    }

    /// Whether this node holds message `id`: always on a single node
    /// (without a read: the read that follows finds a message gone); in a
    /// cluster, false once another node took it (or it is gone).
    async fn owns(&self, _id: QueueId) -> Result<bool, SpoolError> {
        Ok(true)
    }

    /// The first `count` chunks of `msg`, joined.
    async fn read_chunks(&self, msg: &QueuedMessage, count: u32) -> Result<Vec<u8>, SpoolError>;

    /// The message bytes as received.
    async fn read_body(&self, msg: &QueuedMessage) -> Result<Vec<u8>, SpoolError> {
        self.read_chunks(msg, msg.chunks).await
    }

    /// The first chunk of the message (up to [`CHUNK_SIZE`] octets).
    async fn read_head(&self, msg: &QueuedMessage) -> Result<Vec<u8>, SpoolError> {
        self.read_chunks(msg, msg.chunks.min(1)).await
    }

    /// Replaces a queued message's record (durable as `durability` says);
    /// refused with [`CommitError::Gone`] when it was deleted meanwhile.
    async fn update(&self, msg: &QueuedMessage, durability: Durability) -> Result<(), SpoolError>;

    /// Removes message `id` with its chunks, inspection and sealed copies,
    /// durably; its record as it was, or `None` when it was not queued.
    async fn delete(&self, id: QueueId) -> Result<Option<QueuedMessage>, SpoolError>;

    /// Stores the sealed copies (recipient index, bytes as sent) with the
    /// updated record, durably and atomically; refused with
    /// [`CommitError::Gone`] when the message was deleted meanwhile.
    async fn put_sealed(
        &self,
        msg: &QueuedMessage,
        copies: Vec<(u32, Vec<u8>)>,
    ) -> Result<(), SpoolError>;

    /// The sealed copy for recipient `index` of `msg`.
    async fn read_sealed(&self, msg: &QueuedMessage, index: u32) -> Result<Vec<u8>, SpoolError>;

    /// Retires `msg`, whose every recipient is final: its record moves to
    /// the done set and its bytes, inspection and sealed copies go,
    /// atomically (durable as `durability` says); refused with
    /// [`CommitError::Gone`] when it was deleted meanwhile.
    async fn complete(&self, msg: &QueuedMessage, durability: Durability)
        -> Result<(), SpoolError>;

    /// A finished message's record, if it is still kept.
    async fn done(&self, id: QueueId) -> Result<Option<QueuedMessage>, SpoolError>;

    /// Finished records with `from <= id < to`, in queue-id order, at most
    /// `limit` (ids grow with time: a time range is an id range).
    async fn done_between(
        &self,
        from: QueueId,
        to: QueueId,
        limit: usize,
    ) -> Result<Vec<QueuedMessage>, SpoolError>;

    /// Forgets finished messages with ids before `cutoff`; how many went.
    async fn prune_done(&self, cutoff: QueueId) -> Result<usize, SpoolError>;

    /// Stores what the inspect stage found (not durable at return; ignored
    /// when the message is no longer queued).
    async fn put_inspection(
        &self,
        id: QueueId,
        record: &InspectionRecord,
    ) -> Result<(), SpoolError>;

    /// What the inspect stage found, if it has run.
    async fn inspection(&self, id: QueueId) -> Result<Option<InspectionRecord>, SpoolError>;

    /// Queued messages this node works (as `owned`) without an
    /// inspection, oldest first.
    async fn uninspected(&self) -> Result<Vec<QueueId>, SpoolError>;

    /// Queued message count and total octets.
    async fn totals(&self) -> Result<(u64, u64), SpoolError> {
        let list = self.envelopes().await?;
        Ok((list.len() as u64, list.iter().map(|m| m.size).sum()))
    }

    /// Checks what is stored: the backend's own checksums (a damaged table
    /// named as `table NAME`), then every message (all chunks there,
    /// decrypted, matching its size and SHA-256); counts orphan chunks.
    async fn verify(&self) -> Result<VerifyReport, SpoolError>;

    /// The highest queue id with an envelope, a chunk or a finished
    /// message's record stored, or found when the store was opened (0 when
    /// none), so new ids can be kept above every id on disk.
    async fn highest_id(&self) -> Result<u64, SpoolError>;

    /// Bytes free for new messages where the store keeps them.
    fn free_bytes(&self) -> std::io::Result<u64>;
}

/// Builders for tests of the spool and its stores.
#[cfg(test)]
pub(crate) mod testing {
    use crate::model::address::Mailbox;
    use crate::model::envelope::MailParams;
    use crate::model::id::QueueId;
    use crate::model::record::{Origin, QueuedMessage, QueuedRecipient};

    /// An outbound message to c@d.test, not yet stored (id, size, hash
    /// and chunks are the writer's to set).
    pub(crate) fn message() -> QueuedMessage {
        QueuedMessage {
            id: QueueId(0),
            received_at: chrono::Utc::now(),
            from: "a@b.test".into(),
            mail_params: MailParams::default(),
            recipients: vec![QueuedRecipient::new(
                Mailbox::parse("c@d.test").unwrap(),
                None,
                None,
            )],
            origin: Origin::test_outbound(),
            size: 0,
            body_sha256: String::new(),
            chunks: 0,
            received_header: "Received: x\r\n".into(),
            new_subject: None,
            decided: false,
            auth: None,
            scan: None,
        }
    }
}

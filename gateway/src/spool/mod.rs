//! The durable queue, as the stages use it: [`Spool`] hands out queue
//! ids (always above every id on disk), streams a message's bytes into the
//! store in chunks ([`MessageWriter`]), announces each accepted message to
//! the first stage (`subscribe`, through a counted `pipe::Handoff`) and
//! keeps the queue gauges; the bytes and records themselves are kept by a [`SpoolStore`] (`store::spool`; the
//! embedded one is `store::rocksdb::spool`), where what survives a crash
//! is promised.

pub mod pipe;
mod submit;

pub use crate::model::id::{NodeNumber, QueueId};
pub use crate::model::record::{
    self as record, DeliveryEvidence, Direction, DsnState, FindingRecord, InspectionRecord, Origin,
    OutboundTls, QueuedMessage, QueuedRecipient, RecipientState, SealRecord, TlsFacts, DSN_ORIGIN,
    PORTAL_ORIGIN,
};
pub use crate::store::keyring::{KeyError, Keyring};
pub use crate::store::spool::{
    CommitError, CommitStats, Durability, SpoolError, SpoolStore, VerifyReport, CHUNK_SIZE,
};
pub use submit::Submission;

use crate::store::cache::Cache;
use crate::store::rocksdb::spool::RocksSpool;
use crate::store::tls_memory::TlsMemory;
use crate::telemetry::metrics::Metrics;
use sha2::{Digest, Sha256};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

impl CommitStats for Metrics {
    fn synced(&self, seconds: f64, writes: usize) {
        self.fsync_seconds.observe(seconds);
        self.commit_batch.observe(writes as f64);
    }
}

/// What every handle on one spool shares, apart from its store.
struct Shared {
    /// The TLS memory kept beside the queue.
    tls_memory: Arc<dyn TlsMemory>,
    /// The cache of derived records kept beside the queue.
    cache: Arc<dyn Cache>,
    metrics: Arc<Metrics>,
    /// Highest id handed out or found on disk: ids only grow, so a clock
    /// stepping back can never reuse the id of a queued message.
    last_id: AtomicU64,
    /// The node number this spool's new ids carry.
    node: NodeNumber,
    /// Where accepted ids are announced, once a later stage subscribes.
    accepted: std::sync::Mutex<Option<pipe::Handoff>>,
    /// When the store last failed, if it has not taken a write since.
    trouble: std::sync::Mutex<Option<std::time::Instant>>,
    /// How often the store failed since the start (a cluster node hands
    /// its messages to their stages again once the database is back).
    failures: AtomicU64,
    /// For a store that can be away (a cluster's database): how long a
    /// commit may take before the sender is answered 451.
    commit_limit: std::sync::OnceLock<std::time::Duration>,
}

impl Shared {
    /// What a new handle shares: ids above `last_id`, made on `node`.
    fn new(
        tls_memory: Arc<dyn TlsMemory>,
        cache: Arc<dyn Cache>,
        metrics: Arc<Metrics>,
        last_id: u64,
        node: NodeNumber,
    ) -> Arc<Shared> {
        Arc::new(Shared {
            tls_memory,
            cache,
            metrics,
            last_id: AtomicU64::new(last_id),
            node,
            accepted: std::sync::Mutex::new(None),
            trouble: std::sync::Mutex::new(None),
            failures: AtomicU64::new(0),
            commit_limit: std::sync::OnceLock::new(),
        })
    }
}

/// How long after the store failed a write new transactions are deferred
/// before one is let through to try it again (a cluster's heartbeat keeps
/// a database that stays down marked down).
const RECHECK: std::time::Duration = std::time::Duration::from_secs(10);

/// A handle to the spool; cheap to clone.
#[derive(Clone)]
pub struct Spool {
    store: Arc<dyn SpoolStore>,
    shared: Arc<Shared>,
}

impl Spool {
    /// Opens (creating if needed) the embedded spool at `dir` for the
    /// gateway: orphan chunks swept, the group committer started.
    pub async fn open(
        dir: &Path,
        keys: Keyring,
        metrics: Arc<Metrics>,
    ) -> Result<Self, SpoolError> {
        let rocks = RocksSpool::open(dir, keys, metrics.clone())?;
        Spool::with_stores(
            Arc::new(rocks.clone()),
            Arc::new(rocks.clone()),
            Arc::new(rocks),
            metrics,
            NodeNumber::SINGLE,
        )
        .await
    }

    /// A spool for writing over `store` (and the TLS memory and cache kept
    /// beside it): new ids made on `node`, above every id on disk, the
    /// queue gauges set.
    pub async fn with_stores(
        store: Arc<dyn SpoolStore>,
        tls_memory: Arc<dyn TlsMemory>,
        cache: Arc<dyn Cache>,
        metrics: Arc<Metrics>,
        node: NodeNumber,
    ) -> Result<Self, SpoolError> {
        let last = store.highest_id().await?;
        let (count, bytes) = store.totals().await?;
        metrics.spool_messages.set(count as i64);
        metrics.spool_bytes.set(bytes as i64);
        Ok(Spool {
            store,
            shared: Shared::new(tls_memory, cache, metrics, last, node),
        })
    }

    /// Opens the embedded spool at `dir` read-only; works while the
    /// gateway has it open.
    pub fn open_read_only(dir: &Path, keys: Keyring) -> Result<Self, SpoolError> {
        let rocks = RocksSpool::open_read_only(dir, keys)?;
        Ok(Spool {
            store: Arc::new(rocks.clone()),
            shared: Shared::new(
                Arc::new(rocks.clone()),
                Arc::new(rocks),
                Arc::new(Metrics::new()),
                u64::MAX,
                NodeNumber::SINGLE,
            ),
        })
    }

    /// A handle for reading a spool other nodes write too (a cluster's,
    /// beside the running gateway): lists, reads and verify; it makes no ids.
    pub fn reader(store: Arc<dyn SpoolStore>, meta: &crate::store::SpoolMeta) -> Self {
        Spool {
            store,
            shared: Shared::new(
                meta.tls_memory.clone(),
                meta.cache.clone(),
                Arc::new(Metrics::new()),
                u64::MAX,
                NodeNumber::SINGLE,
            ),
        }
    }

    /// This spool with the TLS memory and cache of `meta` in place of
    /// its own, where the backend keeps them apart (`Stores::meta`);
    /// unchanged for `None`. Call it right after opening, before the
    /// handle is cloned or subscribed to.
    pub fn with_meta(self, meta: Option<&crate::store::SpoolMeta>) -> Spool {
        let Some(meta) = meta else {
            return self;
        };
        let shared = &self.shared;
        Spool {
            shared: Shared::new(
                meta.tls_memory.clone(),
                meta.cache.clone(),
                shared.metrics.clone(),
                shared.last_id.load(Ordering::SeqCst),
                shared.node,
            ),
            store: self.store,
        }
    }

    /// The remembered TLS domains, kept beside the queue.
    pub fn tls_memory(&self) -> Arc<dyn TlsMemory> {
        self.shared.tls_memory.clone()
    }

    /// The cache of derived records (fetched MTA-STS policies), kept
    /// beside the queue.
    pub fn cache(&self) -> Arc<dyn Cache> {
        self.shared.cache.clone()
    }

    /// Bytes free for an unprivileged writer on the spool's file system.
    pub fn free_bytes(&self) -> std::io::Result<u64> {
        self.store.free_bytes()
    }

    /// Announces every message accepted from now on to `to` (one
    /// subscriber, the first stage: `pipe::Pipe::accepted`).
    pub fn subscribe(&self, to: pipe::Handoff) {
        *crate::locks::lock(&self.shared.accepted) = Some(to);
    }

    /// Stores what the inspect stage found (not synced: derived data).
    pub async fn put_inspection(
        &self,
        id: QueueId,
        record: &InspectionRecord,
    ) -> Result<(), SpoolError> {
        self.seen(self.store.put_inspection(id, record).await)
    }

    /// What the inspect stage found, if it has run.
    pub async fn inspection(&self, id: QueueId) -> Result<Option<InspectionRecord>, SpoolError> {
        self.seen(self.store.inspection(id).await)
    }

    /// Queued messages the inspect stage has not recorded yet, oldest first.
    pub async fn uninspected(&self) -> Result<Vec<QueueId>, SpoolError> {
        self.seen(self.store.uninspected().await)
    }

    /// A fresh queue id made on this spool's node, greater than every id
    /// already in this spool.
    pub fn next_id(&self) -> QueueId {
        let node = self.shared.node;
        let candidate = QueueId::generate_on(node);
        // Above the last id, in this node's part of the id space.
        let next = |last: u64| match candidate.0 > last {
            true => candidate,
            false => QueueId(last).next_after(node),
        };
        let prev = self
            .shared
            .last_id
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |last| {
                Some(next(last).0)
            })
            .expect("closure always returns Some");
        next(prev)
    }

    /// Marks the store as one that can be away (a cluster's database):
    /// commits wait at most `commit_timeout` for an answer to the sender,
    /// and new transactions are deferred while the store fails. The
    /// embedded spool is never marked: it behaves as it always has.
    pub fn watch_store(&self, commit_timeout: std::time::Duration) {
        let _ = self.shared.commit_limit.set(commit_timeout);
    }

    /// How long a commit may take before the sender gets 451, for a
    /// watched store (`watch_store`).
    pub fn commit_limit(&self) -> Option<std::time::Duration> {
        self.shared.commit_limit.get().copied()
    }

    /// Whether new transactions may start: with a watched store, false for
    /// a while after it failed (or a cluster's heartbeat could not reach
    /// the database), until a write succeeds or it is time to try again.
    pub fn accepting(&self) -> bool {
        self.commit_limit().is_none()
            || crate::locks::lock(&self.shared.trouble).is_none_or(|t| t.elapsed() > RECHECK)
    }

    /// Notes that the store failed (a write, a read, a heartbeat): new
    /// transactions are deferred for a while.
    pub fn store_failed(&self) {
        *crate::locks::lock(&self.shared.trouble) = Some(std::time::Instant::now());
        self.shared.failures.fetch_add(1, Ordering::SeqCst);
    }

    /// How often the store failed since the start: a stage that failed on
    /// a message dropped it, so a change says work may wait to be resumed.
    pub fn failures(&self) -> u64 {
        self.shared.failures.load(Ordering::SeqCst)
    }

    /// `r`, noting a failure of the store itself (not a refused write or a
    /// damaged record).
    fn seen<T>(&self, r: Result<T, SpoolError>) -> Result<T, SpoolError> {
        if let Err(SpoolError::Db(_) | SpoolError::Commit(CommitError::Sync(_))) = &r {
            self.store_failed();
        }
        r
    }

    /// Notes that the store took a write (or answered a heartbeat).
    pub fn store_ok(&self) {
        *crate::locks::lock(&self.shared.trouble) = None;
    }

    /// The node number this spool's new ids carry.
    pub fn node(&self) -> NodeNumber {
        self.shared.node
    }

    /// Starts storing a new message under a fresh id.
    pub fn writer(&self) -> MessageWriter {
        let id = self.next_id();
        MessageWriter {
            spool: self.clone(),
            id,
            buf: Vec::with_capacity(CHUNK_SIZE.min(64 * 1024)),
            chunks: 0,
            size: 0,
            hash: Sha256::new(),
            committed: false,
        }
    }

    /// All queued messages, oldest first.
    pub async fn list(&self) -> Result<Vec<QueuedMessage>, SpoolError> {
        self.store.envelopes().await
    }

    /// The queued messages this node works, oldest first: all of them on a
    /// single node, those it holds the lease on in a cluster.
    pub async fn list_owned(&self) -> Result<Vec<QueuedMessage>, SpoolError> {
        self.seen(self.store.owned().await)
    }

    /// Whether this node holds message `id` (false once another node
    /// took it, or it is gone).
    pub async fn owns(&self, id: QueueId) -> Result<bool, SpoolError> {
        self.seen(self.store.owns(id).await)
    }

    /// One message's record.
    pub async fn get(&self, id: QueueId) -> Result<Option<QueuedMessage>, SpoolError> {
        self.seen(self.store.envelope(id).await)
    }

    /// The message bytes as received (without our `Received:` header).
    pub async fn read_body(&self, msg: &QueuedMessage) -> Result<Vec<u8>, SpoolError> {
        self.seen(self.store.read_body(msg).await)
    }

    /// The first chunk of the message (up to [`CHUNK_SIZE`] octets): enough
    /// for its header block without reading a large body.
    pub async fn read_head(&self, msg: &QueuedMessage) -> Result<Vec<u8>, SpoolError> {
        self.seen(self.store.read_head(msg).await)
    }

    /// Removes a message and its chunks, durably. Returns false if it was absent.
    pub async fn delete(&self, id: QueueId) -> Result<bool, SpoolError> {
        let Some(msg) = self.store.delete(id).await? else {
            return Ok(false);
        };
        self.shared.metrics.spool_messages.dec();
        self.shared.metrics.spool_bytes.sub(msg.size as i64);
        Ok(true)
    }

    /// Replaces a queued message's record (recipient states, evidence),
    /// durable as `durability` says. Fails if the message was deleted
    /// meanwhile.
    pub async fn update(
        &self,
        msg: &QueuedMessage,
        durability: Durability,
    ) -> Result<(), SpoolError> {
        self.seen(self.store.update(msg, durability).await)
    }

    /// Durably stores the sealed copies (recipient index, bytes as sent)
    /// together with the updated record, in one synced batch.
    pub async fn put_sealed(
        &self,
        msg: &QueuedMessage,
        copies: Vec<(u32, Vec<u8>)>,
    ) -> Result<(), SpoolError> {
        self.seen(self.store.put_sealed(msg, copies).await)
    }

    /// The sealed copy for recipient `index` of `msg`, as it is to be sent.
    pub async fn read_sealed(
        &self,
        msg: &QueuedMessage,
        index: u32,
    ) -> Result<Vec<u8>, SpoolError> {
        self.seen(self.store.read_sealed(msg, index).await)
    }

    /// Retires a message whose every recipient is final: its record moves
    /// to the done set (for `queue show` and the journal) and its bytes are
    /// deleted, in one batch, durable as `durability` says.
    pub async fn complete(
        &self,
        msg: &QueuedMessage,
        durability: Durability,
    ) -> Result<(), SpoolError> {
        self.seen(self.store.complete(msg, durability).await)?;
        self.shared.metrics.spool_messages.dec();
        self.shared.metrics.spool_bytes.sub(msg.size as i64);
        Ok(())
    }

    /// A finished message's record, if it is still kept.
    pub async fn done(&self, id: QueueId) -> Result<Option<QueuedMessage>, SpoolError> {
        self.store.done(id).await
    }

    /// Finished records accepted in `[from, to)` (ids are time-ordered),
    /// at most `limit`, oldest first.
    pub async fn done_between(
        &self,
        from: QueueId,
        to: QueueId,
        limit: usize,
    ) -> Result<Vec<QueuedMessage>, SpoolError> {
        self.store.done_between(from, to, limit).await
    }

    /// Forgets finished messages accepted before `cutoff` (ids are
    /// time-ordered). Returns how many went.
    pub async fn prune_done(&self, cutoff: QueueId) -> Result<usize, SpoolError> {
        self.store.prune_done(cutoff).await
    }

    /// Message count and total octets.
    pub async fn totals(&self) -> Result<(u64, u64), SpoolError> {
        self.store.totals().await
    }

    /// Checks every table's blocks against their checksums (a damaged one
    /// is named as `table NAME`), then every message: all chunks present,
    /// decryptable, and matching the recorded SHA-256; counts orphan chunks.
    pub async fn verify(&self) -> Result<VerifyReport, SpoolError> {
        self.store.verify().await
    }
}

/// Streams one message's bytes into the spool. Dropped without
/// [`MessageWriter::commit`], it removes what it wrote.
pub struct MessageWriter {
    spool: Spool,
    id: QueueId,
    buf: Vec<u8>,
    chunks: u32,
    size: u64,
    hash: Sha256,
    committed: bool,
}

impl MessageWriter {
    /// The message's id.
    pub fn id(&self) -> QueueId {
        self.id
    }

    /// Octets written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends message bytes; full chunks go to the store (not yet synced).
    pub async fn write(&mut self, mut data: &[u8]) -> Result<(), SpoolError> {
        self.hash.update(data);
        self.size += data.len() as u64;
        while !data.is_empty() {
            let room = CHUNK_SIZE - self.buf.len();
            let take = room.min(data.len());
            self.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.buf.len() == CHUNK_SIZE {
                self.flush_chunk().await?;
            }
        }
        Ok(())
    }

    async fn flush_chunk(&mut self) -> Result<(), SpoolError> {
        // Counted before it is written, so a writer dropped meanwhile
        // removes it too.
        let n = self.chunks;
        self.chunks += 1;
        let stored = self.spool.store.put_chunk(self.id, n, &self.buf).await;
        self.buf.clear();
        stored
    }

    /// Completes `msg` with size, hash and chunk count, and commits it with
    /// an fsync. When this returns `Ok`, the message is durable.
    pub async fn commit(mut self, mut msg: QueuedMessage) -> Result<QueuedMessage, SpoolError> {
        // The rest of the bytes (an empty chunk for an empty message) is
        // stored with the envelope.
        let last = !self.buf.is_empty() || self.chunks == 0;
        if last {
            self.chunks += 1;
        }
        msg.id = self.id;
        msg.size = self.size;
        msg.chunks = self.chunks;
        msg.body_sha256 = hex::encode(std::mem::take(&mut self.hash).finalize());
        let tail = last.then_some(&self.buf[..]);
        let spool = &self.spool;
        spool.seen(spool.store.commit(&msg, tail).await)?;
        spool.store_ok();
        self.committed = true;
        if let Some(to) = crate::locks::lock(&self.spool.shared.accepted).as_ref() {
            to.send(self.id);
        }
        let m = &self.spool.shared.metrics;
        m.spool_messages.inc();
        m.spool_bytes.add(self.size as i64);
        Ok(msg)
    }
}

impl Drop for MessageWriter {
    fn drop(&mut self) {
        if self.committed || self.chunks == 0 {
            return;
        }
        // Best effort; anything left is swept on the next open.
        let (store, id, chunks) = (self.spool.store.clone(), self.id, self.chunks);
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            drop(rt.spawn(async move { store.discard(id, chunks).await }));
        }
    }
}

/// Helpers for tests of the spool and the stages.
#[cfg(test)]
pub(crate) mod testing {
    use super::{Direction, QueueId, Spool, Submission, DSN_ORIGIN};
    use crate::model::address::Mailbox;

    /// Queues one small message from Sealgate itself; its id.
    pub(crate) async fn submit_one(spool: &Spool) -> QueueId {
        spool
            .submit(Submission {
                from: "",
                to: vec![Mailbox::parse("c@d.test").unwrap()],
                origin: DSN_ORIGIN,
                direction: Direction::Outbound,
                hostname: "h",
                bytes: b"Subject: x\r\n\r\nhi\r\n",
            })
            .await
            .unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::spool::testing::message;

    async fn open(dir: &Path) -> Spool {
        let keys = Keyring::load_or_create(&dir.join("keys")).unwrap();
        Spool::open(&dir.join("spool"), keys, Arc::new(Metrics::new()))
            .await
            .unwrap()
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn with_meta_hands_out_the_stores_tls_memory_and_cache() {
        let (here, there) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let elsewhere = open(there.path()).await;
        let meta = crate::store::SpoolMeta {
            tls_memory: elsewhere.tls_memory(),
            cache: elsewhere.cache(),
        };
        let spool = open(here.path()).await.with_meta(Some(&meta));
        spool.tls_memory().remember("a.test").await.unwrap();
        spool.cache().put("k", b"v").await.unwrap();
        assert!(elsewhere
            .tls_memory()
            .remembered("a.test")
            .await
            .unwrap()
            .is_some());
        assert_eq!(
            elsewhere.cache().get("k").await.unwrap().as_deref(),
            Some(&b"v"[..])
        );
        let id = spool.next_id();
        assert!(id > QueueId(0), "still the spool's ids");
        let third = tempfile::tempdir().unwrap();
        let unchanged = open(third.path()).await.with_meta(None);
        assert!(unchanged.tls_memory().list().await.unwrap().is_empty());
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn store_read_verify_delete() {
        let dir = tempfile::tempdir().unwrap();
        let spool = open(dir.path()).await;
        let big: Vec<u8> = (0..CHUNK_SIZE * 2 + 17).map(|i| (i % 251) as u8).collect();
        let mut w = spool.writer();
        w.write(&big[..1000]).await.unwrap();
        w.write(&big[1000..]).await.unwrap();
        let msg = w.commit(message()).await.unwrap();
        assert_eq!(msg.chunks, 3);
        assert_eq!(spool.read_body(&msg).await.unwrap(), big);
        let empty = spool.writer().commit(message()).await.unwrap();
        assert_eq!(spool.read_body(&empty).await.unwrap(), b"");
        let report = spool.verify().await.unwrap();
        assert_eq!(
            (report.ok, report.damaged.len(), report.orphan_chunks),
            (2, 0, 0)
        );
        assert!(spool.delete(msg.id).await.unwrap());
        assert!(!spool.delete(msg.id).await.unwrap());
        assert_eq!(spool.list().await.unwrap().len(), 1);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn ids_never_repeat_across_restarts_even_if_the_clock_goes_back() {
        let dir = tempfile::tempdir().unwrap();
        let far_future = {
            let spool = open(dir.path()).await;
            // A message whose id lies far ahead of the clock, as after a clock step back.
            let mut w = spool.writer();
            w.id = QueueId(u64::MAX - 10);
            w.commit(message()).await.unwrap().id
        };
        let spool = open(dir.path()).await;
        let next = spool.next_id();
        assert!(next > far_future);
        // And the committer refuses to overwrite an envelope in any case.
        let mut w = spool.writer();
        w.id = far_future;
        assert!(w.commit(message()).await.is_err());
        assert_eq!(spool.list().await.unwrap().len(), 1);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_failing_store_defers_new_transactions_until_it_takes_a_write() {
        let dir = tempfile::tempdir().unwrap();
        let spool = open(dir.path()).await;
        spool.store_failed();
        assert!(spool.accepting(), "the embedded spool is not watched");
        assert_eq!(spool.commit_limit(), None);
        let spool = open(tempfile::tempdir().unwrap().path()).await;
        spool.watch_store(std::time::Duration::from_secs(3));
        assert!(spool.accepting());
        assert_eq!(spool.failures(), 0);
        spool.store_failed();
        assert!(!spool.accepting(), "deferred while the store fails");
        assert_eq!(spool.failures(), 1);
        spool.writer().commit(message()).await.unwrap();
        assert!(spool.accepting(), "a commit that went through clears it");
        // A refused write (not a store failure) is not counted.
        let mut w = spool.writer();
        w.id = spool.list().await.unwrap()[0].id;
        assert!(w.commit(message()).await.is_err());
        assert!(spool.accepting());
        assert_eq!(spool.failures(), 1);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn abandoned_writer_leaves_no_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let spool = open(dir.path()).await;
        let mut w = spool.writer();
        w.write(&vec![b'x'; CHUNK_SIZE * 2]).await.unwrap();
        drop(w);
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        assert_eq!(spool.verify().await.unwrap().orphan_chunks, 0);
    }
}

//! The durable queue on RocksDB. A message is stored as encrypted chunks
//! written while DATA streams in, then its envelope record is committed in a
//! synced batch: a message exists in the spool exactly when its envelope does.
//! Chunks left without an envelope (a session that died mid-DATA, a crash)
//! are swept on open.

mod commit;
mod meta;
pub mod pipe;
mod submit;

pub use crate::model::id::QueueId;
pub use crate::model::record::{
    self as record, DeliveryEvidence, Direction, DsnState, FindingRecord, InspectionRecord, Origin,
    OutboundTls, QueuedMessage, QueuedRecipient, RecipientState, SealRecord, TlsFacts, DSN_ORIGIN,
    PORTAL_ORIGIN,
};
pub use crate::store::keyring::{KeyError, Keyring};
pub use submit::Submission;

use crate::telemetry::metrics::Metrics;
use commit::{Committer, Op};
use rocksdb::{ColumnFamilyDescriptor, IteratorMode, Options, WriteOptions, DB};
use sha2::{Digest, Sha256};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

const CF_ENVELOPE: &str = "envelope";
const CF_CHUNK: &str = "chunk";
const CF_META: &str = "meta";
const CF_INSPECTION: &str = "inspection";
/// Envelopes (with delivery evidence) of messages whose every recipient is
/// final; their bytes are gone. Kept for `queue show` and the journal.
const CF_DONE: &str = "done";
/// Per-recipient sealed copies (PGP/MIME, S/MIME) made by the seal stage.
const CF_SEALED: &str = "sealed";
const ALL_CFS: [&str; 6] = [
    CF_ENVELOPE,
    CF_CHUNK,
    CF_META,
    CF_INSPECTION,
    CF_DONE,
    CF_SEALED,
];
/// Message bytes are stored in chunks of this size, so a session holds at
/// most one chunk in memory however large the message.
pub const CHUNK_SIZE: usize = 256 * 1024;

/// Spool failures.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    /// RocksDB reported an error.
    #[error("spool database: {0}")]
    Db(#[from] rocksdb::Error),
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
    /// The synced write failed.
    #[error("spool commit failed: {0}")]
    Commit(#[from] commit::CommitError),
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

struct Inner {
    db: Arc<DB>,
    keys: Keyring,
    committer: Option<Committer>,
    metrics: Arc<Metrics>,
    /// Highest id handed out or found on disk: ids only grow, so a clock
    /// stepping back can never reuse the id of a queued message.
    last_id: AtomicU64,
    commit_thread: Option<std::thread::JoinHandle<()>>,
    /// Where accepted ids are announced, once a later stage subscribes.
    accepted: std::sync::Mutex<Option<tokio::sync::mpsc::UnboundedSender<QueueId>>>,
    /// The writer's lock on `sealgate.lock` ([`writer_lock`]); none when
    /// read-only. Last, so it is released after the database is closed.
    _writer: Option<std::fs::File>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Close the committer's queue and wait for it, so the database (and
        // its lock) is released when the last spool handle goes.
        self.committer = None;
        if let Some(t) = self.commit_thread.take() {
            let _ = t.join();
        }
    }
}

/// A handle to the spool; cheap to clone.
#[derive(Clone)]
pub struct Spool {
    inner: Arc<Inner>,
}

fn chunk_key(id: QueueId, n: u32) -> Vec<u8> {
    let mut k = id.to_key().to_vec();
    k.extend_from_slice(&n.to_be_bytes());
    k
}

const TLS_MEMORY_PREFIX: &[u8] = b"tls-memory/";

/// Keys of [`Spool::put_meta`] records, apart from the TLS memory's.
fn meta_key(key: &str) -> Vec<u8> {
    format!("cache/{key}").into_bytes()
}

fn tls_memory_key(domain: &str) -> Vec<u8> {
    let mut k = TLS_MEMORY_PREFIX.to_vec();
    k.extend_from_slice(domain.to_ascii_lowercase().as_bytes());
    k
}

fn aad(cf: &str, key: &[u8]) -> Vec<u8> {
    let mut a = cf.as_bytes().to_vec();
    a.push(0);
    a.extend_from_slice(key);
    a
}

fn db_options() -> Options {
    let mut o = Options::default();
    o.create_if_missing(true);
    o.create_missing_column_families(true);
    // Message data is encrypted and so incompressible.
    o.set_compression_type(rocksdb::DBCompressionType::None);
    o
}

fn descriptors() -> Vec<ColumnFamilyDescriptor> {
    ALL_CFS
        .into_iter()
        .map(|n| ColumnFamilyDescriptor::new(n, db_options()))
        .collect()
}

/// The highest queue id that has an envelope or a chunk on disk.
fn highest_id(db: &DB) -> Result<u64, SpoolError> {
    let mut high = 0;
    for cf in [CF_ENVELOPE, CF_CHUNK] {
        let handle = db.cf_handle(cf).expect("column family created on open");
        if let Some(item) = db.iterator_cf(handle, IteratorMode::End).next() {
            let (k, _) = item?;
            high = high.max(QueueId::from_key(&k).map(|i| i.0).unwrap_or(0));
        }
    }
    Ok(high)
}

/// What `Spool::verify` found.
#[derive(Debug, Default, serde::Serialize)]
pub struct VerifyReport {
    /// Messages whose body decrypted and matched its SHA-256.
    pub ok: usize,
    /// Messages that failed, with the reason.
    pub damaged: Vec<(String, String)>,
    /// Chunks that belong to no message.
    pub orphan_chunks: usize,
}

/// An exclusive lock on `<dir>/sealgate.lock`, held while the spool is
/// open for writing: a second writer (the CLI while the gateway runs) is
/// told [`SpoolError::InUse`] by type, before RocksDB's own lock refuses it
/// with a message only.
fn writer_lock(dir: &Path) -> Result<std::fs::File, SpoolError> {
    let path = dir.join("sealgate.lock");
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|source| SpoolError::File {
            path: path.clone(),
            source,
        })?;
    match f.try_lock() {
        Ok(()) => Ok(f),
        Err(std::fs::TryLockError::WouldBlock) => Err(SpoolError::InUse(dir.to_path_buf())),
        Err(std::fs::TryLockError::Error(e)) => Err(SpoolError::File { path, source: e }),
    }
}

impl Spool {
    /// Bytes free for an unprivileged writer on the spool's file system.
    pub fn free_bytes(&self) -> std::io::Result<u64> {
        let st = rustix::fs::statvfs(self.inner.db.path())?;
        Ok(st.f_bavail.saturating_mul(st.f_frsize))
    }

    /// Opens (creating if needed) the spool for the gateway, sweeps orphan
    /// chunks and starts the group committer.
    pub fn open(dir: &Path, keys: Keyring, metrics: Arc<Metrics>) -> Result<Self, SpoolError> {
        std::fs::create_dir_all(dir).map_err(|source| SpoolError::File {
            path: dir.to_path_buf(),
            source,
        })?;
        let writer = writer_lock(dir)?;
        let db = Arc::new(DB::open_cf_descriptors(&db_options(), dir, descriptors())?);
        let (committer, commit_thread) = Committer::start(db.clone(), metrics.clone());
        let last = highest_id(&db)?;
        let spool = Spool {
            inner: Arc::new(Inner {
                db,
                keys,
                committer: Some(committer),
                metrics,
                last_id: AtomicU64::new(last),
                commit_thread: Some(commit_thread),
                _writer: Some(writer),
                accepted: std::sync::Mutex::new(None),
            }),
        };
        let swept = spool.sweep_orphans()?;
        if swept > 0 {
            tracing::warn!(
                chunks = swept,
                "removed chunks of messages that were never accepted"
            );
        }
        let (count, bytes) = spool.totals()?;
        spool.inner.metrics.spool_messages.set(count as i64);
        spool.inner.metrics.spool_bytes.set(bytes as i64);
        Ok(spool)
    }

    /// Opens the spool read-only; works while the gateway has it open.
    pub fn open_read_only(dir: &Path, keys: Keyring) -> Result<Self, SpoolError> {
        // A spool written before the `done` family existed lacks it; a
        // read-only open cannot create it.
        let existing = DB::list_cf(&db_options(), dir)?;
        let cfs = ALL_CFS
            .into_iter()
            .filter(|c| existing.iter().any(|e| e == c));
        let db = DB::open_cf_for_read_only(&db_options(), dir, cfs, false)?;
        Ok(Spool {
            inner: Arc::new(Inner {
                db: Arc::new(db),
                keys,
                committer: None,
                metrics: Arc::new(Metrics::new()),
                last_id: AtomicU64::new(u64::MAX),
                commit_thread: None,
                accepted: std::sync::Mutex::new(None),
                _writer: None,
            }),
        })
    }

    fn cf(&self, name: &str) -> &rocksdb::ColumnFamily {
        self.inner
            .db
            .cf_handle(name)
            .expect("column family created on open")
    }

    fn committer(&self) -> Result<&Committer, SpoolError> {
        self.inner.committer.as_ref().ok_or(SpoolError::ReadOnly)
    }

    /// Announces every message accepted from now on to the returned
    /// receiver (one subscriber: the next stage).
    pub fn subscribe(&self) -> tokio::sync::mpsc::UnboundedReceiver<QueueId> {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        *crate::locks::lock(&self.inner.accepted) = Some(tx);
        rx
    }

    /// Stores what the inspect stage found.
    pub async fn put_inspection(
        &self,
        id: QueueId,
        record: &InspectionRecord,
    ) -> Result<(), SpoolError> {
        let key = id.to_key().to_vec();
        let value = self.seal_json(CF_INSPECTION, &key, record)?;
        let spool = self.clone();
        // Not synced: an inspection is derived data. One lost in a crash is
        // simply redone, because the message then shows up as uninspected.
        tokio::task::spawn_blocking(move || {
            let db = &spool.inner.db;
            if db.get_pinned_cf(spool.cf(CF_ENVELOPE), &key)?.is_none() {
                return Ok(()); // deleted meanwhile
            }
            db.put_cf(spool.cf(CF_INSPECTION), key, value)
        })
        .await?
        .map_err(SpoolError::Db)
    }

    /// What the inspect stage found, if it has run.
    pub fn inspection(&self, id: QueueId) -> Result<Option<InspectionRecord>, SpoolError> {
        let key = id.to_key();
        match self.inner.db.get_cf(self.cf(CF_INSPECTION), key)? {
            Some(v) => self.open_json(CF_INSPECTION, &key, &v).map(Some),
            None => Ok(None),
        }
    }

    /// Queued messages the inspect stage has not recorded yet, oldest first.
    pub fn uninspected(&self) -> Result<Vec<QueueId>, SpoolError> {
        let mut out = Vec::new();
        for item in self
            .inner
            .db
            .iterator_cf(self.cf(CF_ENVELOPE), IteratorMode::Start)
        {
            let (k, _) = item?;
            if self
                .inner
                .db
                .get_pinned_cf(self.cf(CF_INSPECTION), &k)?
                .is_none()
            {
                out.extend(QueueId::from_key(&k));
            }
        }
        Ok(out)
    }

    /// A fresh queue id, greater than every id already in this spool.
    pub fn next_id(&self) -> QueueId {
        let candidate = QueueId::generate().0;
        let prev = self
            .inner
            .last_id
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |last| {
                Some(candidate.max(last.saturating_add(1)))
            })
            .expect("closure always returns Some");
        QueueId(candidate.max(prev.saturating_add(1)))
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
    pub fn list(&self) -> Result<Vec<QueuedMessage>, SpoolError> {
        let cf = self.cf(CF_ENVELOPE);
        let mut out = Vec::new();
        for item in self.inner.db.iterator_cf(&cf, IteratorMode::Start) {
            let (k, v) = item?;
            out.push(self.decode_envelope(&k, &v)?);
        }
        Ok(out)
    }

    fn decode_envelope(&self, key: &[u8], value: &[u8]) -> Result<QueuedMessage, SpoolError> {
        self.open_json(CF_ENVELOPE, key, value)
    }

    /// One message's record.
    pub fn get(&self, id: QueueId) -> Result<Option<QueuedMessage>, SpoolError> {
        let key = id.to_key();
        match self.inner.db.get_cf(&self.cf(CF_ENVELOPE), key)? {
            Some(v) => self.decode_envelope(&key, &v).map(Some),
            None => Ok(None),
        }
    }

    /// The message bytes as received (without our `Received:` header).
    pub fn read_body(&self, msg: &QueuedMessage) -> Result<Vec<u8>, SpoolError> {
        self.read_chunks(msg, msg.chunks)
    }

    /// The first chunk of the message (up to [`CHUNK_SIZE`] octets): enough
    /// for its header block without reading a large body.
    pub fn read_head(&self, msg: &QueuedMessage) -> Result<Vec<u8>, SpoolError> {
        self.read_chunks(msg, msg.chunks.min(1))
    }

    fn read_chunks(&self, msg: &QueuedMessage, count: u32) -> Result<Vec<u8>, SpoolError> {
        let cf = self.cf(CF_CHUNK);
        let mut body = Vec::with_capacity((msg.size as usize).min(count as usize * CHUNK_SIZE));
        for n in 0..count {
            let key = chunk_key(msg.id, n);
            let v = self.inner.db.get_cf(&cf, &key)?.ok_or_else(|| {
                SpoolError::Corrupt(msg.id.to_string(), format!("chunk {n} is missing"))
            })?;
            let plain = self
                .inner
                .keys
                .open(&aad(CF_CHUNK, &key), &v)
                .map_err(|source| SpoolError::Key {
                    id: msg.id.to_string(),
                    source,
                })?;
            body.extend_from_slice(&plain);
        }
        Ok(body)
    }

    /// Removes a message and its chunks, durably. Returns false if it was absent.
    pub async fn delete(&self, id: QueueId) -> Result<bool, SpoolError> {
        let Some(msg) = self.get(id)? else {
            return Ok(false);
        };
        self.committer()?
            .commit(vec![
                Op::Delete {
                    cf: CF_ENVELOPE,
                    key: id.to_key().to_vec(),
                },
                Op::Delete {
                    cf: CF_INSPECTION,
                    key: id.to_key().to_vec(),
                },
                Op::DeleteRange {
                    cf: CF_CHUNK,
                    from: chunk_key(id, 0),
                    to: chunk_key(id, u32::MAX),
                },
                Op::DeleteRange {
                    cf: CF_SEALED,
                    from: chunk_key(id, 0),
                    to: chunk_key(id, u32::MAX),
                },
            ])
            .await
            .map_err(SpoolError::Commit)?;
        self.inner.metrics.spool_messages.dec();
        self.inner.metrics.spool_bytes.sub(msg.size as i64);
        Ok(true)
    }

    /// Durably replaces a queued message's record (recipient states,
    /// evidence). Fails if the message was deleted meanwhile.
    pub async fn update(&self, msg: &QueuedMessage) -> Result<(), SpoolError> {
        let key = msg.id.to_key().to_vec();
        let value = self.seal_json(CF_ENVELOPE, &key, msg)?;
        self.committer()?
            .commit(vec![Op::Replace {
                cf: CF_ENVELOPE,
                key,
                value,
            }])
            .await
            .map_err(SpoolError::Commit)
    }

    /// Durably stores the sealed copies (recipient index, bytes as sent)
    /// together with the updated record, in one synced batch.
    pub async fn put_sealed(
        &self,
        msg: &QueuedMessage,
        copies: Vec<(u32, Vec<u8>)>,
    ) -> Result<(), SpoolError> {
        let key = msg.id.to_key().to_vec();
        let mut ops = Vec::with_capacity(copies.len() + 1);
        for (i, bytes) in copies {
            let k = chunk_key(msg.id, i);
            let value = self.inner.keys.seal(&aad(CF_SEALED, &k), &bytes);
            ops.push(Op::Put {
                cf: CF_SEALED,
                key: k,
                value,
            });
        }
        // Last, so a message deleted meanwhile fails the whole batch.
        ops.push(Op::Replace {
            cf: CF_ENVELOPE,
            value: self.seal_json(CF_ENVELOPE, &key, msg)?,
            key,
        });
        self.committer()?
            .commit(ops)
            .await
            .map_err(SpoolError::Commit)
    }

    /// The sealed copy for recipient `index` of `msg`, as it is to be sent.
    pub fn read_sealed(&self, msg: &QueuedMessage, index: u32) -> Result<Vec<u8>, SpoolError> {
        let key = chunk_key(msg.id, index);
        let v = self
            .inner
            .db
            .get_cf(&self.cf(CF_SEALED), &key)?
            .ok_or_else(|| {
                SpoolError::Corrupt(
                    msg.id.to_string(),
                    format!("sealed copy for recipient {index} is missing"),
                )
            })?;
        self.inner
            .keys
            .open(&aad(CF_SEALED, &key), &v)
            .map_err(|source| SpoolError::Key {
                id: msg.id.to_string(),
                source,
            })
    }

    /// Durably retires a message whose every recipient is final: its record
    /// moves to the done set (for `queue show` and the journal) and its
    /// bytes are deleted, in one synced batch.
    pub async fn complete(&self, msg: &QueuedMessage) -> Result<(), SpoolError> {
        let key = msg.id.to_key().to_vec();
        let value = self.seal_json(CF_DONE, &key, msg)?;
        let envelope = self.seal_json(CF_ENVELOPE, &key, msg)?;
        self.committer()?
            .commit(vec![
                // Fails the commit if an admin deleted the message meanwhile,
                // so a deleted message does not come back as finished.
                Op::Replace {
                    cf: CF_ENVELOPE,
                    key: key.clone(),
                    value: envelope,
                },
                Op::Put {
                    cf: CF_DONE,
                    key: key.clone(),
                    value,
                },
                Op::Delete {
                    cf: CF_ENVELOPE,
                    key: key.clone(),
                },
                Op::Delete {
                    cf: CF_INSPECTION,
                    key,
                },
                Op::DeleteRange {
                    cf: CF_CHUNK,
                    from: chunk_key(msg.id, 0),
                    to: chunk_key(msg.id, u32::MAX),
                },
                Op::DeleteRange {
                    cf: CF_SEALED,
                    from: chunk_key(msg.id, 0),
                    to: chunk_key(msg.id, u32::MAX),
                },
            ])
            .await
            .map_err(SpoolError::Commit)?;
        self.inner.metrics.spool_messages.dec();
        self.inner.metrics.spool_bytes.sub(msg.size as i64);
        Ok(())
    }

    /// A finished message's record, if it is still kept.
    pub fn done(&self, id: QueueId) -> Result<Option<QueuedMessage>, SpoolError> {
        let Some(cf) = self.inner.db.cf_handle(CF_DONE) else {
            return Ok(None);
        };
        let key = id.to_key();
        match self.inner.db.get_cf(cf, key)? {
            Some(v) => self.open_json(CF_DONE, &key, &v).map(Some),
            None => Ok(None),
        }
    }

    /// Forgets finished messages accepted before `cutoff` (ids are
    /// time-ordered, so this is a range scan). Returns how many went.
    pub fn prune_done(&self, cutoff: QueueId) -> Result<usize, SpoolError> {
        let cf = self.cf(CF_DONE);
        let mut n = 0;
        for item in self.inner.db.iterator_cf(cf, IteratorMode::Start) {
            let (k, _) = item?;
            match QueueId::from_key(&k) {
                Some(id) if id < cutoff => n += 1,
                _ => break,
            }
        }
        if n > 0 {
            self.inner
                .db
                .delete_range_cf(cf, QueueId(0).to_key(), cutoff.to_key())?;
        }
        Ok(n)
    }

    fn seal_json<T: serde::Serialize>(
        &self,
        cf: &str,
        key: &[u8],
        value: &T,
    ) -> Result<Vec<u8>, SpoolError> {
        let plain = serde_json::to_vec(value)
            .map_err(|e| SpoolError::Corrupt(hex::encode(key), e.to_string()))?;
        Ok(self.inner.keys.seal(&aad(cf, key), &plain))
    }

    fn open_json<T: serde::de::DeserializeOwned>(
        &self,
        cf: &str,
        key: &[u8],
        value: &[u8],
    ) -> Result<T, SpoolError> {
        let name = QueueId::from_key(key)
            .map(|i| i.to_string())
            .unwrap_or_else(|| hex::encode(key));
        let plain = self
            .inner
            .keys
            .open(&aad(cf, key), value)
            .map_err(|source| SpoolError::Key {
                id: name.clone(),
                source,
            })?;
        serde_json::from_slice(&plain).map_err(|e| SpoolError::Corrupt(name, e.to_string()))
    }

    /// Stores a small derived record (a cache entry) under `key`, encrypted,
    /// without fsync: losing one in a crash only means fetching it again.
    fn put_meta(&self, key: &str, value: &[u8]) -> Result<(), SpoolError> {
        let k = meta_key(key);
        let sealed = self.inner.keys.seal(&aad(CF_META, &k), value);
        Ok(self.inner.db.put_cf(self.cf(CF_META), k, sealed)?)
    }

    /// A record stored with [`Spool::put_meta`].
    fn get_meta(&self, key: &str) -> Result<Option<Vec<u8>>, SpoolError> {
        let k = meta_key(key);
        match self.inner.db.get_cf(self.cf(CF_META), &k)? {
            Some(v) => self
                .inner
                .keys
                .open(&aad(CF_META, &k), &v)
                .map(Some)
                .map_err(|source| SpoolError::Key {
                    id: key.to_string(),
                    source,
                }),
            None => Ok(None),
        }
    }

    /// Message count and total octets.
    pub fn totals(&self) -> Result<(u64, u64), SpoolError> {
        let list = self.list()?;
        Ok((list.len() as u64, list.iter().map(|m| m.size).sum()))
    }

    /// Deletes chunks that belong to no envelope. Only safe when no session is
    /// writing, i.e. on open.
    fn sweep_orphans(&self) -> Result<usize, SpoolError> {
        let orphans = self.orphan_ids()?;
        let mut count = 0;
        for (id, n) in orphans {
            self.inner.db.delete_range_cf(
                &self.cf(CF_CHUNK),
                chunk_key(id, 0),
                chunk_key(id, u32::MAX),
            )?;
            count += n;
        }
        if count > 0 {
            self.inner.db.flush_wal(true)?;
        }
        Ok(count)
    }

    fn orphan_ids(&self) -> Result<Vec<(QueueId, usize)>, SpoolError> {
        let chunks = self.cf(CF_CHUNK);
        let envelopes = self.cf(CF_ENVELOPE);
        let mut out: Vec<(QueueId, usize)> = Vec::new();
        for item in self.inner.db.iterator_cf(&chunks, IteratorMode::Start) {
            let (k, _) = item?;
            let Some(id) = QueueId::from_key(&k) else {
                continue;
            };
            match out.last_mut() {
                Some((last, n)) if *last == id => *n += 1,
                _ => {
                    if self
                        .inner
                        .db
                        .get_pinned_cf(&envelopes, id.to_key())?
                        .is_none()
                    {
                        out.push((id, 1));
                    }
                }
            }
        }
        Ok(out)
    }

    /// Checks every table's blocks against their checksums (a damaged one
    /// is named as `table NAME`), then every message: all chunks present,
    /// decryptable, and matching the recorded SHA-256; counts orphan chunks.
    pub fn verify(&self) -> Result<VerifyReport, SpoolError> {
        let mut report = VerifyReport::default();
        for (table, why) in crate::store::rocksdb::scan::scan(&self.inner.db, &ALL_CFS) {
            report.damaged.push((format!("table {table}"), why));
        }
        let list = match self.list() {
            Ok(list) => list,
            Err(e) => {
                report.damaged.push(("queue".into(), e.to_string()));
                return Ok(report);
            }
        };
        for msg in list {
            match self.read_body(&msg) {
                Ok(body)
                    if hex::encode(Sha256::digest(&body)) == msg.body_sha256
                        && body.len() as u64 == msg.size =>
                {
                    report.ok += 1
                }
                Ok(_) => report
                    .damaged
                    .push((msg.id.to_string(), "body does not match its SHA-256".into())),
                Err(e) => report.damaged.push((msg.id.to_string(), e.to_string())),
            }
        }
        report.orphan_chunks = self.orphan_ids()?.iter().map(|(_, n)| n).sum();
        Ok(report)
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

    fn seal_chunk(&mut self) -> (Vec<u8>, Vec<u8>) {
        let key = chunk_key(self.id, self.chunks);
        let value = self.spool.inner.keys.seal(&aad(CF_CHUNK, &key), &self.buf);
        self.buf.clear();
        self.chunks += 1;
        (key, value)
    }

    async fn flush_chunk(&mut self) -> Result<(), SpoolError> {
        let (key, value) = self.seal_chunk();
        let spool = self.spool.clone();
        // Not synced here: the envelope's synced write later syncs the WAL,
        // and with it every chunk written before it.
        tokio::task::spawn_blocking(move || {
            let mut o = WriteOptions::default();
            o.set_sync(false);
            spool
                .inner
                .db
                .put_cf_opt(&spool.cf(CF_CHUNK), key, value, &o)
        })
        .await??;
        Ok(())
    }

    /// Completes `msg` with size, hash and chunk count, and commits it with
    /// an fsync. When this returns `Ok`, the message is durable.
    pub async fn commit(mut self, mut msg: QueuedMessage) -> Result<QueuedMessage, SpoolError> {
        let mut ops = Vec::with_capacity(2);
        if !self.buf.is_empty() || self.chunks == 0 {
            let (key, value) = self.seal_chunk();
            ops.push(Op::Put {
                cf: CF_CHUNK,
                key,
                value,
            });
        }
        msg.id = self.id;
        msg.size = self.size;
        msg.chunks = self.chunks;
        msg.body_sha256 = hex::encode(std::mem::take(&mut self.hash).finalize());
        let key = self.id.to_key().to_vec();
        let plain = serde_json::to_vec(&msg)
            .map_err(|e| SpoolError::Corrupt(self.id.to_string(), e.to_string()))?;
        let value = self.spool.inner.keys.seal(&aad(CF_ENVELOPE, &key), &plain);
        ops.push(Op::Put {
            cf: CF_ENVELOPE,
            key,
            value,
        });
        self.spool
            .committer()?
            .commit(ops)
            .await
            .map_err(SpoolError::Commit)?;
        self.committed = true;
        if let Some(tx) = crate::locks::lock(&self.spool.inner.accepted).as_ref() {
            let _ = tx.send(self.id);
        }
        let m = &self.spool.inner.metrics;
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
        // Best effort, and off the async worker; anything left is swept on the next open.
        let (spool, id, chunks) = (self.spool.clone(), self.id, self.chunks);
        let cleanup = move || {
            let db = &spool.inner.db;
            if let Some(cf) = db.cf_handle(CF_CHUNK) {
                for n in 0..chunks {
                    let _ = db.delete_cf(cf, chunk_key(id, n));
                }
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => drop(rt.spawn_blocking(cleanup)),
            Err(_) => cleanup(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::address::Mailbox;
    use crate::model::envelope::MailParams;

    fn message() -> QueuedMessage {
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
            origin: Origin {
                listener: "smtp".into(),
                peer: "127.0.0.1:1".parse().unwrap(),
                helo: "h".into(),
                tls: None,
                connector: None,
                direction: Direction::Outbound,
            },
            size: 0,
            body_sha256: String::new(),
            chunks: 0,
            received_header: "Received: x\r\n".into(),
            new_subject: None,
            decided: false,
        }
    }

    fn open(dir: &Path) -> Spool {
        let keys = Keyring::load_or_create(&dir.join("keys")).unwrap();
        Spool::open(&dir.join("spool"), keys, Arc::new(Metrics::new())).unwrap()
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn store_read_verify_delete() {
        let dir = tempfile::tempdir().unwrap();
        let spool = open(dir.path());
        let big: Vec<u8> = (0..CHUNK_SIZE * 2 + 17).map(|i| (i % 251) as u8).collect();
        let mut w = spool.writer();
        w.write(&big[..1000]).await.unwrap();
        w.write(&big[1000..]).await.unwrap();
        let msg = w.commit(message()).await.unwrap();
        assert_eq!(msg.chunks, 3);
        assert_eq!(spool.read_body(&msg).unwrap(), big);
        let empty = spool.writer().commit(message()).await.unwrap();
        assert_eq!(spool.read_body(&empty).unwrap(), b"");
        let report = spool.verify().unwrap();
        assert_eq!(
            (report.ok, report.damaged.len(), report.orphan_chunks),
            (2, 0, 0)
        );
        assert!(spool.delete(msg.id).await.unwrap());
        assert!(!spool.delete(msg.id).await.unwrap());
        assert_eq!(spool.list().unwrap().len(), 1);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_flipped_byte_in_the_queue_table_is_found_and_named() {
        let dir = tempfile::tempdir().unwrap();
        let table = {
            let spool = open(dir.path());
            for _ in 0..20 {
                let mut w = spool.writer();
                w.write(b"Subject: x\r\n\r\nhello\r\n").await.unwrap();
                w.commit(message()).await.unwrap();
            }
            crate::store::rocksdb::scan::table_file(&spool.inner.db, CF_ENVELOPE)
        };
        crate::store::rocksdb::scan::flip_byte(&table);
        let keys = Keyring::load_or_create(&dir.path().join("keys")).unwrap();
        let spool = Spool::open_read_only(&dir.path().join("spool"), keys).unwrap();
        let report = spool.verify().unwrap();
        assert!(
            report
                .damaged
                .iter()
                .any(|(what, why)| what == "table envelope"
                    && why.to_lowercase().contains("corruption")),
            "{:?}",
            report.damaged
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn ids_never_repeat_across_restarts_even_if_the_clock_goes_back() {
        let dir = tempfile::tempdir().unwrap();
        let far_future = {
            let spool = open(dir.path());
            // A message whose id lies far ahead of the clock, as after a clock step back.
            let mut w = spool.writer();
            w.id = QueueId(u64::MAX - 10);
            w.commit(message()).await.unwrap().id
        };
        let spool = open(dir.path());
        let next = spool.next_id();
        assert!(next > far_future);
        // And the committer refuses to overwrite an envelope in any case.
        let mut w = spool.writer();
        w.id = far_future;
        assert!(w.commit(message()).await.is_err());
        assert_eq!(spool.list().unwrap().len(), 1);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn abandoned_writer_leaves_no_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let spool = open(dir.path());
        let mut w = spool.writer();
        w.write(&vec![b'x'; CHUNK_SIZE * 2]).await.unwrap();
        drop(w);
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        assert_eq!(spool.verify().unwrap().orphan_chunks, 0);
    }
}

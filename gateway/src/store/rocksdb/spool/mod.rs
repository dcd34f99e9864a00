//! The spool on RocksDB (`<data_dir>/spool`). A message is stored as
//! encrypted chunks written while DATA streams in, then its envelope record
//! is committed in a synced batch: a message exists in the spool exactly
//! when its envelope does. Chunks left without an envelope (a session that
//! died mid-DATA, a crash) are swept on open. Every synced write goes
//! through one thread (`commit`: group commit); reads are made inline,
//! on the caller's thread.

mod commit;
mod meta;

use crate::model::id::QueueId;
use crate::model::record::{InspectionRecord, QueuedMessage};
use crate::store::keyring::Keyring;
use crate::store::spool::{
    CommitStats, Durability, SpoolError, SpoolStore, VerifyReport, CHUNK_SIZE,
};
use async_trait::async_trait;
use commit::{Committer, Op};
use rocksdb::{IteratorMode, WriteOptions, DB};
use sha2::{Digest, Sha256};
use std::path::Path;
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

impl From<rocksdb::Error> for SpoolError {
    fn from(e: rocksdb::Error) -> Self {
        SpoolError::Db(Box::new(e))
    }
}

/// The spool's RocksDB database, with its group committer (none when
/// read-only); a handle, cheap to clone.
#[derive(Clone)]
pub struct RocksSpool(Arc<Inner>);

/// What every handle shares; the database closes when the last goes.
struct Inner {
    db: Arc<DB>,
    keys: Keyring,
    committer: Option<Committer>,
    commit_thread: Option<std::thread::JoinHandle<()>>,
    /// The highest id found on disk when opened, before orphan chunks
    /// were swept (see [`SpoolStore::highest_id`]).
    highest_at_open: u64,
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

fn chunk_key(id: QueueId, n: u32) -> Vec<u8> {
    let mut k = id.to_key().to_vec();
    k.extend_from_slice(&n.to_be_bytes());
    k
}

const TLS_MEMORY_PREFIX: &[u8] = b"tls-memory/";

/// Deletes of everything `msg` has in the spool: its envelope, inspection,
/// chunks and sealed copies. Point deletes, not range deletes: every read of
/// a column family then rebuilt the memtable's list of range tombstones,
/// which made each spool read cost more the more messages had finished
/// since the last flush (the relay benchmark's profile: a third of the
/// spool's reads).
fn message_deletes(msg: &QueuedMessage) -> impl Iterator<Item = Op> + '_ {
    let key = msg.id.to_key().to_vec();
    let records = [CF_ENVELOPE, CF_INSPECTION].map(move |cf| Op::Delete {
        cf,
        key: key.clone(),
    });
    let chunks = (0..msg.chunks).map(move |n| Op::Delete {
        cf: CF_CHUNK,
        key: chunk_key(msg.id, n),
    });
    let sealed = (0..msg.recipients.len() as u32).map(move |i| Op::Delete {
        cf: CF_SEALED,
        key: chunk_key(msg.id, i),
    });
    records.into_iter().chain(chunks).chain(sealed)
}

/// Keys of [`RocksSpool::put_meta`] records, apart from the TLS memory's.
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

/// The highest queue id that has an envelope, a chunk or a done record on disk.
fn highest_id(db: &DB) -> Result<u64, SpoolError> {
    let mut high = 0;
    for cf in [CF_ENVELOPE, CF_CHUNK, CF_DONE] {
        let Some(handle) = db.cf_handle(cf) else {
            continue;
        };
        if let Some(item) = db.iterator_cf(handle, IteratorMode::End).next() {
            let (k, _) = item?;
            high = high.max(QueueId::from_key(&k).map(|i| i.0).unwrap_or(0));
        }
    }
    Ok(high)
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

impl RocksSpool {
    /// Opens (creating if needed) the spool at `dir` for writing, sweeps
    /// orphan chunks and starts the group committer (which reports its
    /// syncs to `stats`).
    pub fn open(
        dir: &Path,
        keys: Keyring,
        stats: Arc<dyn CommitStats>,
    ) -> Result<Self, SpoolError> {
        std::fs::create_dir_all(dir).map_err(|source| SpoolError::File {
            path: dir.to_path_buf(),
            source,
        })?;
        let writer = writer_lock(dir)?;
        let db = Arc::new(super::open_writable(dir, &ALL_CFS)?);
        let (committer, commit_thread) = Committer::start(db.clone(), stats);
        let highest_at_open = highest_id(&db)?;
        let spool = RocksSpool(Arc::new(Inner {
            db,
            keys,
            committer: Some(committer),
            commit_thread: Some(commit_thread),
            highest_at_open,
            _writer: Some(writer),
        }));
        let swept = spool.sweep_orphans()?;
        if swept > 0 {
            tracing::warn!(
                chunks = swept,
                "removed chunks of messages that were never accepted"
            );
        }
        Ok(spool)
    }

    /// Opens the spool at `dir` read-only; works while the gateway has it
    /// open.
    pub fn open_read_only(dir: &Path, keys: Keyring) -> Result<Self, SpoolError> {
        // A spool written before the `done` family existed lacks it.
        let db = super::open_existing_read_only(dir, &ALL_CFS)?;
        Ok(RocksSpool(Arc::new(Inner {
            db: Arc::new(db),
            keys,
            committer: None,
            commit_thread: None,
            highest_at_open: 0,
            _writer: None,
        })))
    }

    fn cf(&self, name: &str) -> &rocksdb::ColumnFamily {
        self.0
            .db
            .cf_handle(name)
            .expect("column family created on open")
    }

    fn committer(&self) -> Result<&Committer, SpoolError> {
        self.0.committer.as_ref().ok_or(SpoolError::ReadOnly)
    }

    fn decode_envelope(&self, key: &[u8], value: &[u8]) -> Result<QueuedMessage, SpoolError> {
        self.open_json(CF_ENVELOPE, key, value)
    }

    fn list(&self) -> Result<Vec<QueuedMessage>, SpoolError> {
        let cf = self.cf(CF_ENVELOPE);
        let mut out = Vec::new();
        for item in self.0.db.iterator_cf(&cf, IteratorMode::Start) {
            let (k, v) = item?;
            out.push(self.decode_envelope(&k, &v)?);
        }
        Ok(out)
    }

    fn get(&self, id: QueueId) -> Result<Option<QueuedMessage>, SpoolError> {
        let key = id.to_key();
        match self.0.db.get_cf(&self.cf(CF_ENVELOPE), key)? {
            Some(v) => self.decode_envelope(&key, &v).map(Some),
            None => Ok(None),
        }
    }

    fn read(&self, msg: &QueuedMessage, count: u32) -> Result<Vec<u8>, SpoolError> {
        let cf = self.cf(CF_CHUNK);
        let mut body = Vec::with_capacity((msg.size as usize).min(count as usize * CHUNK_SIZE));
        for n in 0..count {
            let key = chunk_key(msg.id, n);
            let v = self.0.db.get_cf(&cf, &key)?.ok_or_else(|| {
                SpoolError::Corrupt(msg.id.to_string(), format!("chunk {n} is missing"))
            })?;
            let plain = self
                .0
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

    fn seal_json<T: serde::Serialize>(
        &self,
        cf: &str,
        key: &[u8],
        value: &T,
    ) -> Result<Vec<u8>, SpoolError> {
        let plain = serde_json::to_vec(value)
            .map_err(|e| SpoolError::Corrupt(hex::encode(key), e.to_string()))?;
        Ok(self.0.keys.seal(&aad(cf, key), &plain))
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
            .0
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
        let sealed = self.0.keys.seal(&aad(CF_META, &k), value);
        Ok(self.0.db.put_cf(self.cf(CF_META), k, sealed)?)
    }

    /// A record stored with [`RocksSpool::put_meta`].
    fn get_meta(&self, key: &str) -> Result<Option<Vec<u8>>, SpoolError> {
        let k = meta_key(key);
        match self.0.db.get_cf(self.cf(CF_META), &k)? {
            Some(v) => self
                .0
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

    /// Deletes chunks that belong to no envelope. Only safe when no session is
    /// writing, i.e. on open.
    fn sweep_orphans(&self) -> Result<usize, SpoolError> {
        let orphans = self.orphan_ids()?;
        let mut count = 0;
        for (id, n) in orphans {
            self.0.db.delete_range_cf(
                &self.cf(CF_CHUNK),
                chunk_key(id, 0),
                chunk_key(id, u32::MAX),
            )?;
            count += n;
        }
        if count > 0 {
            self.0.db.flush_wal(true)?;
        }
        Ok(count)
    }

    fn orphan_ids(&self) -> Result<Vec<(QueueId, usize)>, SpoolError> {
        let chunks = self.cf(CF_CHUNK);
        let envelopes = self.cf(CF_ENVELOPE);
        let mut out: Vec<(QueueId, usize)> = Vec::new();
        for item in self.0.db.iterator_cf(&chunks, IteratorMode::Start) {
            let (k, _) = item?;
            let Some(id) = QueueId::from_key(&k) else {
                continue;
            };
            match out.last_mut() {
                Some((last, n)) if *last == id => *n += 1,
                _ => {
                    if self.0.db.get_pinned_cf(&envelopes, id.to_key())?.is_none() {
                        out.push((id, 1));
                    }
                }
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl SpoolStore for RocksSpool {
    async fn put_chunk(&self, id: QueueId, n: u32, bytes: &[u8]) -> Result<(), SpoolError> {
        let key = chunk_key(id, n);
        let value = self.0.keys.seal(&aad(CF_CHUNK, &key), bytes);
        // The task holds the whole handle, so the writer's lock outlives
        // the write even if the caller lets go meanwhile.
        let spool = self.clone();
        // Not synced here: the envelope's synced write later syncs the WAL,
        // and with it every chunk written before it.
        tokio::task::spawn_blocking(move || {
            let db = &spool.0.db;
            let mut o = WriteOptions::default();
            o.set_sync(false);
            let cf = db
                .cf_handle(CF_CHUNK)
                .expect("column family created on open");
            db.put_cf_opt(cf, key, value, &o)
        })
        .await??;
        Ok(())
    }

    async fn discard(&self, id: QueueId, chunks: u32) {
        // The task holds the whole handle, so the writer's lock outlives
        // the write even if the caller lets go meanwhile.
        let spool = self.clone();
        // Off the async worker; anything left is swept on the next open.
        let _ = tokio::task::spawn_blocking(move || {
            let db = &spool.0.db;
            if let Some(cf) = db.cf_handle(CF_CHUNK) {
                for n in 0..chunks {
                    let _ = db.delete_cf(cf, chunk_key(id, n));
                }
            }
        })
        .await;
    }

    async fn commit(
        &self,
        msg: &QueuedMessage,
        last_chunk: Option<&[u8]>,
    ) -> Result<(), SpoolError> {
        let mut ops = Vec::with_capacity(2);
        if let Some(bytes) = last_chunk {
            let key = chunk_key(msg.id, msg.chunks.saturating_sub(1));
            let value = self.0.keys.seal(&aad(CF_CHUNK, &key), bytes);
            ops.push(Op::Put {
                cf: CF_CHUNK,
                key,
                value,
            });
        }
        let key = msg.id.to_key().to_vec();
        let plain = serde_json::to_vec(msg)
            .map_err(|e| SpoolError::Corrupt(msg.id.to_string(), e.to_string()))?;
        let value = self.0.keys.seal(&aad(CF_ENVELOPE, &key), &plain);
        ops.push(Op::Put {
            cf: CF_ENVELOPE,
            key,
            value,
        });
        Ok(self.committer()?.commit(ops, Durability::Synced).await?)
    }

    async fn envelope(&self, id: QueueId) -> Result<Option<QueuedMessage>, SpoolError> {
        self.get(id)
    }

    async fn envelopes(&self) -> Result<Vec<QueuedMessage>, SpoolError> {
        self.list()
    }

    async fn read_chunks(&self, msg: &QueuedMessage, count: u32) -> Result<Vec<u8>, SpoolError> {
        self.read(msg, count)
    }

    async fn update(&self, msg: &QueuedMessage, durability: Durability) -> Result<(), SpoolError> {
        let key = msg.id.to_key().to_vec();
        let value = self.seal_json(CF_ENVELOPE, &key, msg)?;
        Ok(self
            .committer()?
            .commit(
                vec![Op::Replace {
                    cf: CF_ENVELOPE,
                    key,
                    value,
                }],
                durability,
            )
            .await?)
    }

    async fn delete(&self, id: QueueId) -> Result<Option<QueuedMessage>, SpoolError> {
        let Some(msg) = self.get(id)? else {
            return Ok(None);
        };
        self.committer()?
            .commit(message_deletes(&msg).collect(), Durability::Synced)
            .await?;
        Ok(Some(msg))
    }

    async fn put_sealed(
        &self,
        msg: &QueuedMessage,
        copies: Vec<(u32, Vec<u8>)>,
    ) -> Result<(), SpoolError> {
        let key = msg.id.to_key().to_vec();
        let mut ops = Vec::with_capacity(copies.len() + 1);
        for (i, bytes) in copies {
            let k = chunk_key(msg.id, i);
            let value = self.0.keys.seal(&aad(CF_SEALED, &k), &bytes);
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
        Ok(self.committer()?.commit(ops, Durability::Synced).await?)
    }

    async fn read_sealed(&self, msg: &QueuedMessage, index: u32) -> Result<Vec<u8>, SpoolError> {
        let key = chunk_key(msg.id, index);
        let v = self
            .0
            .db
            .get_cf(&self.cf(CF_SEALED), &key)?
            .ok_or_else(|| {
                SpoolError::Corrupt(
                    msg.id.to_string(),
                    format!("sealed copy for recipient {index} is missing"),
                )
            })?;
        self.0
            .keys
            .open(&aad(CF_SEALED, &key), &v)
            .map_err(|source| SpoolError::Key {
                id: msg.id.to_string(),
                source,
            })
    }

    async fn complete(
        &self,
        msg: &QueuedMessage,
        durability: Durability,
    ) -> Result<(), SpoolError> {
        let key = msg.id.to_key().to_vec();
        let value = self.seal_json(CF_DONE, &key, msg)?;
        self.committer()?
            .commit(
                vec![
                    // Fails the commit if an admin deleted the message meanwhile,
                    // so a deleted message does not come back as finished.
                    Op::Expect {
                        cf: CF_ENVELOPE,
                        key: key.clone(),
                    },
                    Op::Put {
                        cf: CF_DONE,
                        key,
                        value,
                    },
                ]
                .into_iter()
                .chain(message_deletes(msg))
                .collect(),
                durability,
            )
            .await?;
        Ok(())
    }

    async fn done(&self, id: QueueId) -> Result<Option<QueuedMessage>, SpoolError> {
        let Some(cf) = self.0.db.cf_handle(CF_DONE) else {
            return Ok(None);
        };
        let key = id.to_key();
        match self.0.db.get_cf(cf, key)? {
            Some(v) => self.open_json(CF_DONE, &key, &v).map(Some),
            None => Ok(None),
        }
    }

    async fn done_between(
        &self,
        from: QueueId,
        to: QueueId,
        limit: usize,
    ) -> Result<Vec<QueuedMessage>, SpoolError> {
        let Some(cf) = self.0.db.cf_handle(CF_DONE) else {
            return Ok(Vec::new());
        };
        let start = from.to_key();
        let mut out = Vec::new();
        let walk = IteratorMode::From(&start, rocksdb::Direction::Forward);
        for item in self.0.db.iterator_cf(cf, walk) {
            let (k, v) = item?;
            match QueueId::from_key(&k) {
                Some(id) if id < to && out.len() < limit => {
                    out.push(self.open_json(CF_DONE, &k, &v)?)
                }
                _ => break,
            }
        }
        Ok(out)
    }

    async fn prune_done(&self, cutoff: QueueId) -> Result<usize, SpoolError> {
        let cf = self.cf(CF_DONE);
        let mut n = 0;
        for item in self.0.db.iterator_cf(cf, IteratorMode::Start) {
            let (k, _) = item?;
            match QueueId::from_key(&k) {
                Some(id) if id < cutoff => n += 1,
                _ => break,
            }
        }
        if n > 0 {
            self.0
                .db
                .delete_range_cf(cf, QueueId(0).to_key(), cutoff.to_key())?;
        }
        Ok(n)
    }

    async fn put_inspection(
        &self,
        id: QueueId,
        record: &InspectionRecord,
    ) -> Result<(), SpoolError> {
        let key = id.to_key().to_vec();
        let value = self.seal_json(CF_INSPECTION, &key, record)?;
        // The task holds the whole handle, so the writer's lock outlives
        // the write even if the caller lets go meanwhile.
        let spool = self.clone();
        // Not synced: an inspection is derived data. One lost in a crash is
        // simply redone, because the message then shows up as uninspected.
        tokio::task::spawn_blocking(move || {
            let db = &spool.0.db;
            let envelopes = db
                .cf_handle(CF_ENVELOPE)
                .expect("column family created on open");
            if db.get_pinned_cf(envelopes, &key)?.is_none() {
                return Ok(()); // deleted meanwhile
            }
            let inspections = db
                .cf_handle(CF_INSPECTION)
                .expect("column family created on open");
            db.put_cf(inspections, key, value)
        })
        .await?
        .map_err(SpoolError::from)
    }

    async fn inspection(&self, id: QueueId) -> Result<Option<InspectionRecord>, SpoolError> {
        let key = id.to_key();
        match self.0.db.get_cf(self.cf(CF_INSPECTION), key)? {
            Some(v) => self.open_json(CF_INSPECTION, &key, &v).map(Some),
            None => Ok(None),
        }
    }

    async fn uninspected(&self) -> Result<Vec<QueueId>, SpoolError> {
        let mut out = Vec::new();
        for item in self
            .0
            .db
            .iterator_cf(self.cf(CF_ENVELOPE), IteratorMode::Start)
        {
            let (k, _) = item?;
            if self
                .0
                .db
                .get_pinned_cf(self.cf(CF_INSPECTION), &k)?
                .is_none()
            {
                out.extend(QueueId::from_key(&k));
            }
        }
        Ok(out)
    }

    async fn verify(&self) -> Result<VerifyReport, SpoolError> {
        let mut report = VerifyReport::default();
        for (table, why) in super::scan::scan(&self.0.db, &ALL_CFS) {
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
            match self.read(&msg, msg.chunks) {
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

    async fn highest_id(&self) -> Result<u64, SpoolError> {
        Ok(highest_id(&self.0.db)?.max(self.0.highest_at_open))
    }

    fn free_bytes(&self) -> std::io::Result<u64> {
        let st = rustix::fs::statvfs(self.0.db.path())?;
        Ok(st.f_bavail.saturating_mul(st.f_frsize))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spool::Spool;
    use crate::store::spool::testing::message;
    use crate::telemetry::metrics::Metrics;

    fn keys(dir: &Path) -> Keyring {
        Keyring::load_or_create(&dir.join("keys")).unwrap()
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn the_rocksdb_spool_keeps_the_promises() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spool");
        crate::store::conformance::spool_store(&|| {
            Box::new(RocksSpool::open(&path, keys(dir.path()), Arc::new(Metrics::new())).unwrap())
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_flipped_byte_in_the_queue_table_is_found_and_named() {
        let dir = tempfile::tempdir().unwrap();
        let table = {
            let rocks = RocksSpool::open(
                &dir.path().join("spool"),
                keys(dir.path()),
                Arc::new(Metrics::new()),
            )
            .unwrap();
            let spool = Spool::with_stores(
                Arc::new(rocks.clone()),
                Arc::new(rocks.clone()),
                Arc::new(rocks.clone()),
                Arc::new(Metrics::new()),
                crate::model::id::NodeNumber::SINGLE,
            )
            .await
            .unwrap();
            for _ in 0..20 {
                let mut w = spool.writer();
                w.write(b"Subject: x\r\n\r\nhello\r\n").await.unwrap();
                w.commit(message()).await.unwrap();
            }
            crate::store::rocksdb::scan::table_file(&rocks.0.db, CF_ENVELOPE)
        };
        crate::store::rocksdb::scan::flip_byte(&table);
        let keys = Keyring::load_or_create(&dir.path().join("keys")).unwrap();
        let spool = Spool::open_read_only(&dir.path().join("spool"), keys).unwrap();
        let report = spool.verify().await.unwrap();
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
}

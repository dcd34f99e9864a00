//! The archive's store ([`ArchiveStore`]) in RocksDB under
//! `<data_dir>/archive`, separate from the spool. Column families:
//!
//! - `events`: sequence number → the event (JSON), encrypted;
//! - `chain`: sequence number → SHA-256 of the event's plaintext ‖ its link;
//! - `blobs`: SHA-256 of the message → the message, zstd then encrypted
//!   (identical bytes are stored once);
//! - `items`: SHA-256 of the message → the item (its ingest's sequence number);
//! - `merges`: item ‖ sequence number of each later relay of the same bytes;
//! - `queue`: spool queue id → sequence number (journaling is idempotent);
//! - `checkpoints`: sequence number → signed checkpoint (JSON);
//! - `purged`: sequence number of a removed event record → the purge event's;
//! - `meta`: locked retention rules (`lock:<name>` → days).
//!
//! Journals are appended under one lock so the chain has one order; those
//! that arrive together are written as one synced batch (`journal.rs`).
//!
//! `ArchiveDb` does the work, blocking; `RocksArchive`, the trait's
//! implementation, runs it off the async workers. `verify` (the chain walk)
//! is in `archive/verify.rs`.

mod journal;
mod verify;

use crate::config::{Config, RetentionRule};
use crate::model::archive::{Capture, Event};
use crate::store::archive::chain::{self, Checkpoint, Hash, GENESIS};
use crate::store::archive::content;
use crate::store::archive::{
    ArchiveError, ArchiveStore, Item, Journaled, PurgeReport, VerifyReport,
};
use crate::store::keyring::Keyring;
use async_trait::async_trait;
use ring::signature::Ed25519KeyPair;
use rocksdb::{IteratorMode, WriteBatch, WriteOptions, DB};
use std::path::Path;
use std::sync::{Arc, Mutex};

const CF_EVENTS: &str = "events";
const CF_CHAIN: &str = "chain";
const CF_BLOBS: &str = "blobs";
const CF_ITEMS: &str = "items";
const CF_MERGES: &str = "merges";
const CF_QUEUE: &str = "queue";
const CF_CHECKPOINTS: &str = "checkpoints";
const CF_PURGED: &str = "purged";
const CF_META: &str = "meta";
const ALL_CFS: [&str; 9] = [
    CF_EVENTS,
    CF_CHAIN,
    CF_BLOBS,
    CF_ITEMS,
    CF_MERGES,
    CF_QUEUE,
    CF_CHECKPOINTS,
    CF_PURGED,
    CF_META,
];

impl From<rocksdb::Error> for ArchiveError {
    fn from(e: rocksdb::Error) -> Self {
        ArchiveError::Db(Box::new(e))
    }
}

struct Head {
    seq: u64,
    link: Hash,
    since_checkpoint: u64,
}

/// The archive database, opened: every operation, blocking.
struct ArchiveDb {
    db: DB,
    keys: Keyring,
    signer: Option<Ed25519KeyPair>,
    checkpoint_every: u64,
    head: Mutex<Head>,
    /// Journals waiting for the head (`journal.rs`).
    queue: journal::Queue,
    /// `head.seq`, readable without waiting for a group's fsync.
    head_seq: std::sync::atomic::AtomicU64,
    /// Why the chain's head could not be read (read-only opens go on, so
    /// `verify` can say where the damage is).
    head_error: Option<String>,
}

fn seq_key(seq: u64) -> [u8; 8] {
    seq.to_be_bytes()
}

fn seq_of(key: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(key.try_into().ok()?))
}

impl ArchiveDb {
    /// Opens (creating if needed) the archive for writing; `signer` signs a
    /// checkpoint every `checkpoint_every` events.
    pub fn open(
        dir: &Path,
        keys: Keyring,
        signer: Ed25519KeyPair,
        checkpoint_every: u64,
    ) -> Result<Self, ArchiveError> {
        std::fs::create_dir_all(dir).map_err(|source| ArchiveError::Io {
            path: dir.display().to_string(),
            source,
        })?;
        let db = super::open_writable(dir, &ALL_CFS)?;
        Self::with_db(db, keys, Some(signer), checkpoint_every.max(1))
    }

    /// Opens the archive read-only; works while the gateway has it open.
    pub fn open_read_only(dir: &Path, keys: Keyring) -> Result<Self, ArchiveError> {
        let db = DB::open_cf_for_read_only(&super::db_options(), dir, ALL_CFS, false)?;
        Self::with_db(db, keys, None, u64::MAX)
    }

    fn with_db(
        db: DB,
        keys: Keyring,
        signer: Option<Ed25519KeyPair>,
        checkpoint_every: u64,
    ) -> Result<Self, ArchiveError> {
        let mut head = Head {
            seq: 0,
            link: GENESIS,
            since_checkpoint: 0,
        };
        let chain = db
            .cf_handle(CF_CHAIN)
            .expect("column family created on open");
        let read_head = || -> Result<Option<(u64, Hash)>, ArchiveError> {
            let Some(item) = db.iterator_cf(chain, IteratorMode::End).next() else {
                return Ok(None);
            };
            let (k, v) = item?;
            let seq = seq_of(&k).unwrap_or(0);
            let link = v
                .get(32..64)
                .and_then(|l| l.try_into().ok())
                .ok_or_else(|| {
                    ArchiveError::Corrupt(format!("chain {seq}"), "short link".into())
                })?;
            Ok(Some((seq, link)))
        };
        let mut head_error = None;
        match read_head() {
            Ok(Some((seq, link))) => {
                head.seq = seq;
                head.link = link;
            }
            Ok(None) => {}
            // Never append to a chain whose head cannot be read.
            Err(e) if signer.is_some() => return Err(e),
            // Read-only (verify): walk as far as the events go, and say why.
            Err(e) => {
                let events = db
                    .cf_handle(CF_EVENTS)
                    .expect("column family created on open");
                head.seq = db
                    .iterator_cf(events, IteratorMode::End)
                    .next()
                    .and_then(|kv| kv.ok())
                    .and_then(|(k, _)| seq_of(&k))
                    .unwrap_or(0);
                head_error = Some(e.to_string());
            }
        }
        let cps = db
            .cf_handle(CF_CHECKPOINTS)
            .expect("column family created on open");
        let last_cp = match db.iterator_cf(cps, IteratorMode::End).next() {
            Some(item) => seq_of(&item?.0).unwrap_or(0),
            None => 0,
        };
        head.since_checkpoint = head.seq.saturating_sub(last_cp);
        Ok(ArchiveDb {
            db,
            keys,
            signer,
            checkpoint_every,
            head_seq: head.seq.into(),
            head: Mutex::new(head),
            queue: Default::default(),
            head_error,
        })
    }

    fn cf(&self, name: &str) -> &rocksdb::ColumnFamily {
        self.db
            .cf_handle(name)
            .expect("column family created on open")
    }

    /// Writes every column family's memtable to its table files (the data
    /// is already durable in the log; this only spares the next start a replay).
    pub fn flush(&self) -> Result<(), ArchiveError> {
        for name in ALL_CFS {
            self.db.flush_cf(self.cf(name))?;
        }
        Ok(())
    }

    /// The public key (hex) this archive signs checkpoints with, when open for writing.
    pub fn signer_public_key(&self) -> Option<String> {
        use ring::signature::KeyPair as _;
        self.signer
            .as_ref()
            .map(|k| hex::encode(k.public_key().as_ref()))
    }

    /// The last sequence number (0 when empty).
    pub fn head_seq(&self) -> u64 {
        self.head_seq.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Moves the head on to `next`, once its events are durable.
    fn advance(&self, head: &mut Head, next: Head) {
        self.head_seq
            .store(next.seq, std::sync::atomic::Ordering::Release);
        *head = next;
    }

    /// Journals one relayed message: its bytes (stored once per content)
    /// and its capture, as one new event linked into the chain, in one
    /// synced write. Idempotent per queue id.
    #[cfg(test)]
    pub fn journal(&self, capture: Capture, raw: &[u8]) -> Result<Journaled, ArchiveError> {
        self.journal_sized(capture, Arc::new(raw.to_vec()))
            .map(|(j, _)| j)
    }

    /// Signs a checkpoint of the current head now (nothing when empty or
    /// already covered).
    pub fn checkpoint(&self) -> Result<Option<Checkpoint>, ArchiveError> {
        let signer = self.signer.as_ref().ok_or(ArchiveError::ReadOnly)?;
        let mut head = crate::locks::lock(&self.head);
        if head.seq == 0 || head.since_checkpoint == 0 {
            return Ok(None);
        }
        let cp = Checkpoint::sign(signer, head.seq, &head.link);
        let json = serde_json::to_vec(&cp).expect("a checkpoint serialises");
        let mut batch = WriteBatch::default();
        batch.put_cf(self.cf(CF_CHECKPOINTS), seq_key(head.seq), json);
        self.write_synced(batch)?;
        head.since_checkpoint = 0;
        Ok(Some(cp))
    }

    /// Refuses `rules` if they shorten, unlock or drop a rule locked
    /// before; remembers the locked ones (their longest length).
    pub fn enforce_locks(
        &self,
        rules: &[crate::config::RetentionRule],
    ) -> Result<(), ArchiveError> {
        let mut batch = WriteBatch::default();
        for kv in self.db.prefix_iterator_cf(self.cf(CF_META), b"lock:") {
            let (k, v) = kv?;
            let Some(name) = k.strip_prefix(b"lock:") else {
                break;
            };
            let name = String::from_utf8_lossy(name).into_owned();
            let days = v
                .get(..4)
                .and_then(|b| b.try_into().ok())
                .map(u32::from_be_bytes)
                .unwrap_or(0);
            match rules.iter().find(|r| r.name == name) {
                Some(r) if r.locked && r.days >= days => {}
                _ => return Err(ArchiveError::Locked(name, days)),
            }
        }
        for r in rules.iter().filter(|r| r.locked) {
            batch.put_cf(
                self.cf(CF_META),
                format!("lock:{}", r.name),
                r.days.to_be_bytes(),
            );
        }
        self.write_synced(batch)
    }

    /// Removes `items` (their content, and the records of their ingest and
    /// merge events) and records that as one `Purge` event in the chain.
    /// The caller decides what may go (retention past, no hold).
    pub fn purge(&self, items: &[u64], reason: &str) -> Result<PurgeReport, ArchiveError> {
        if self.signer.is_none() {
            return Err(ArchiveError::ReadOnly);
        }
        let mut report = PurgeReport::default();
        let mut events = Vec::new();
        let mut batch = WriteBatch::default();
        for &id in items {
            let Some(item) = self.item(id)? else {
                continue;
            };
            let first = &item.captures[0].1;
            report.bytes += first.size;
            if let Ok(sha) = hex::decode(&first.sha256) {
                batch.delete_cf(self.cf(CF_BLOBS), &sha);
                batch.delete_cf(self.cf(CF_ITEMS), &sha);
            }
            for (seq, c) in &item.captures {
                events.push(*seq);
                batch.delete_cf(self.cf(CF_EVENTS), seq_key(*seq));
                batch.delete_cf(self.cf(CF_QUEUE), c.queue_id.as_bytes());
                if *seq != id {
                    let mut k = seq_key(id).to_vec();
                    k.extend_from_slice(&seq_key(*seq));
                    batch.delete_cf(self.cf(CF_MERGES), k);
                }
            }
            report.items.push(id);
        }
        if report.items.is_empty() {
            return Ok(report);
        }
        let mut head = crate::locks::lock(&self.head);
        let seq = head.seq + 1;
        for e in &events {
            batch.put_cf(self.cf(CF_PURGED), seq_key(*e), seq_key(seq));
        }
        let event = Event::Purge {
            items: report.items.clone(),
            events,
            at: chrono::Utc::now(),
            reason: reason.to_string(),
        };
        let link = self.put_event(&mut batch, &head.link, seq, &event)?;
        self.write_synced(batch)?;
        let since_checkpoint = head.since_checkpoint + 1;
        self.advance(
            &mut head,
            Head {
                seq,
                link,
                since_checkpoint,
            },
        );
        report.seq = seq;
        Ok(report)
    }

    /// Puts event `seq` (encrypted) and its chain entry (its hash and the
    /// link that follows `prev`) into `batch`; returns the link.
    fn put_event(
        &self,
        batch: &mut WriteBatch,
        prev: &Hash,
        seq: u64,
        event: &Event,
    ) -> Result<Hash, ArchiveError> {
        let plain = serde_json::to_vec(event)
            .map_err(|e| ArchiveError::Corrupt(format!("event {seq}"), e.to_string()))?;
        let event_hash = chain::sha256(&plain);
        let link = chain::link(prev, seq, &event_hash);
        let mut chain_value = event_hash.to_vec();
        chain_value.extend_from_slice(&link);
        batch.put_cf(
            self.cf(CF_EVENTS),
            seq_key(seq),
            self.keys.seal(&seq_key(seq), &plain),
        );
        batch.put_cf(self.cf(CF_CHAIN), seq_key(seq), chain_value);
        Ok(link)
    }

    /// Writes `batch` and syncs the log before returning.
    fn write_synced(&self, batch: WriteBatch) -> Result<(), ArchiveError> {
        let mut wo = WriteOptions::default();
        wo.set_sync(true);
        self.db.write_opt(batch, &wo)?;
        Ok(())
    }

    /// The event at `seq`.
    pub fn event(&self, seq: u64) -> Result<Option<Event>, ArchiveError> {
        self.event_plain(seq)?
            .map(|p| serde_json::from_slice(&p))
            .transpose()
            .map_err(|e| ArchiveError::Corrupt(format!("event {seq}"), e.to_string()))
    }

    fn event_plain(&self, seq: u64) -> Result<Option<Vec<u8>>, ArchiveError> {
        let Some(sealed) = self.db.get_cf(self.cf(CF_EVENTS), seq_key(seq))? else {
            return Ok(None);
        };
        self.keys
            .open(&seq_key(seq), &sealed)
            .map(Some)
            .map_err(|source| ArchiveError::Key {
                what: format!("event {seq}"),
                source,
            })
    }

    /// Item `id` (the sequence number of its ingest) with every relay of it.
    pub fn item(&self, id: u64) -> Result<Option<Item>, ArchiveError> {
        let Some(Event::Ingest(first)) = self.event(id)? else {
            return Ok(None);
        };
        let mut captures = vec![(id, *first)];
        let prefix = seq_key(id);
        for kv in self.db.prefix_iterator_cf(self.cf(CF_MERGES), prefix) {
            let (k, _) = kv?;
            if !k.starts_with(&prefix) {
                break;
            }
            let Some(seq) = k.get(8..).and_then(seq_of) else {
                continue;
            };
            if let Some(Event::Merge { capture, .. }) = self.event(seq)? {
                captures.push((seq, *capture));
            }
        }
        Ok(Some(Item { id, captures }))
    }

    /// Every item, oldest first.
    pub fn items(&self) -> Result<Vec<Item>, ArchiveError> {
        let mut out = Vec::new();
        for kv in self.db.iterator_cf(self.cf(CF_ITEMS), IteratorMode::Start) {
            let (_, v) = kv?;
            if let Some(item) = seq_of(&v).map(|id| self.item(id)).transpose()?.flatten() {
                out.push(item);
            }
        }
        out.sort_by_key(|i| i.id);
        Ok(out)
    }

    /// The message bytes stored under SHA-256 `sha` (hex), exactly as received.
    pub fn raw(&self, sha_hex: &str) -> Result<Option<Vec<u8>>, ArchiveError> {
        let sha: Hash = match hex::decode(sha_hex).ok().and_then(|b| b.try_into().ok()) {
            Some(h) => h,
            None => return Ok(None),
        };
        self.blob(&sha)
    }

    fn blob(&self, sha: &Hash) -> Result<Option<Vec<u8>>, ArchiveError> {
        let Some(sealed) = self.db.get_cf(self.cf(CF_BLOBS), sha)? else {
            return Ok(None);
        };
        content::unpack(&self.keys, sha, &sealed).map(Some)
    }

    /// Test and repair access: the raw database.
    #[cfg(test)]
    fn db(&self) -> &DB {
        &self.db
    }
}

/// The archive in RocksDB: the embedded backend of [`ArchiveStore`].
pub struct RocksArchive(Arc<ArchiveDb>);

impl RocksArchive {
    /// Opens (creating if needed) the archive in `dir` for writing;
    /// `signer` signs a checkpoint every `checkpoint_every` events.
    pub fn open(
        dir: &Path,
        keys: Keyring,
        signer: Ed25519KeyPair,
        checkpoint_every: u64,
    ) -> Result<Self, ArchiveError> {
        ArchiveDb::open(dir, keys, signer, checkpoint_every).map(|db| RocksArchive(Arc::new(db)))
    }

    /// Opens the archive in `dir` read-only; works while the gateway has it open.
    pub fn open_read_only(dir: &Path, keys: Keyring) -> Result<Self, ArchiveError> {
        ArchiveDb::open_read_only(dir, keys).map(|db| RocksArchive(Arc::new(db)))
    }

    /// Runs `f` on the database off the async workers (`what` names it
    /// if the task dies).
    async fn blocking<T: Send + 'static>(
        &self,
        what: &str,
        f: impl FnOnce(&ArchiveDb) -> Result<T, ArchiveError> + Send + 'static,
    ) -> Result<T, ArchiveError> {
        let db = self.0.clone();
        tokio::task::spawn_blocking(move || f(&db))
            .await
            .map_err(|e| ArchiveError::Corrupt(format!("{what} task"), e.to_string()))?
    }
}

#[async_trait]
impl ArchiveStore for RocksArchive {
    async fn journal_sized(
        &self,
        capture: Capture,
        raw: Arc<Vec<u8>>,
    ) -> Result<(Journaled, u64), ArchiveError> {
        // Compression, encryption and the synced write are blocking work.
        self.blocking("journal", move |db| db.journal_sized(capture, raw))
            .await
    }

    async fn event(&self, seq: u64) -> Result<Option<Event>, ArchiveError> {
        self.blocking("event", move |db| db.event(seq)).await
    }

    async fn item(&self, id: u64) -> Result<Option<Item>, ArchiveError> {
        self.blocking("item", move |db| db.item(id)).await
    }

    async fn items(&self) -> Result<Vec<Item>, ArchiveError> {
        self.blocking("items", |db| db.items()).await
    }

    async fn raw(&self, sha_hex: &str) -> Result<Option<Vec<u8>>, ArchiveError> {
        let sha = sha_hex.to_string();
        self.blocking("raw", move |db| db.raw(&sha)).await
    }

    async fn purge(&self, items: &[u64], reason: &str) -> Result<PurgeReport, ArchiveError> {
        let (items, reason) = (items.to_vec(), reason.to_string());
        self.blocking("purge", move |db| db.purge(&items, &reason))
            .await
    }

    async fn checkpoint(&self) -> Result<Option<Checkpoint>, ArchiveError> {
        self.blocking("checkpoint", |db| db.checkpoint()).await
    }

    async fn head_seq(&self) -> u64 {
        self.0.head_seq()
    }

    fn signer_public_key(&self) -> Option<String> {
        self.0.signer_public_key()
    }

    async fn verify_signed_by(
        &self,
        from: u64,
        expected_signer: Option<&str>,
    ) -> Result<VerifyReport, ArchiveError> {
        let signer = expected_signer.map(str::to_string);
        self.blocking("verify", move |db| {
            db.verify_signed_by(from, signer.as_deref())
        })
        .await
    }

    async fn enforce_locks(&self, rules: &[RetentionRule]) -> Result<(), ArchiveError> {
        let rules = rules.to_vec();
        self.blocking("retention locks", move |db| db.enforce_locks(&rules))
            .await
    }

    async fn flush(&self) -> Result<(), ArchiveError> {
        self.blocking("flush", |db| db.flush()).await
    }
}

/// The archive's Ed25519 signing key named by `config`, created (mode
/// 0600) on first use.
pub fn signer(config: &Config) -> Result<Ed25519KeyPair, ArchiveError> {
    let path = config.archive_signing_key_file();
    chain::load_or_create_signer(&path).map_err(|source| ArchiveError::Io {
        path: path.display().to_string(),
        source,
    })
}

/// Opens `config`'s archive for writing, with its key file (made on first
/// use when `create_keys`, as the gateway does; the CLI only reads one).
/// A `Db` error is most often the running gateway holding it.
pub fn open_writable(
    config: &Config,
    create_keys: bool,
) -> Result<Arc<dyn ArchiveStore>, ArchiveError> {
    let key_file = config.archive_key_file();
    let keys = if create_keys {
        Keyring::load_or_create(&key_file)?
    } else {
        Keyring::load(&key_file)?
    };
    let archive = RocksArchive::open(
        &config.archive_dir(),
        keys,
        signer(config)?,
        config.archive.checkpoint_every,
    )?;
    Ok(Arc::new(archive))
}

/// Opens `config`'s archive read-only (it works while the gateway runs);
/// `None` when there is none yet (nothing journaled).
pub fn open_read_only(config: &Config) -> Result<Option<Arc<dyn ArchiveStore>>, ArchiveError> {
    let dir = config.archive_dir();
    if !dir.join("CURRENT").exists() {
        return Ok(None);
    }
    let keys = Keyring::load(&config.archive_key_file())?;
    Ok(Some(Arc::new(RocksArchive::open_read_only(&dir, keys)?)))
}

#[cfg(test)]
pub(crate) mod testing {
    use super::{chain, ArchiveDb, RocksArchive};
    use crate::store::keyring::Keyring;

    /// A fresh archive under `dir`, a checkpoint every `every` events.
    pub(crate) fn open(dir: &std::path::Path, every: u64) -> RocksArchive {
        RocksArchive(std::sync::Arc::new(open_db(dir, every)))
    }

    /// As [`open`], the database itself (blocking, and its tables at hand).
    pub(super) fn open_db(dir: &std::path::Path, every: u64) -> ArchiveDb {
        let keys = Keyring::load_or_create(&dir.join("archive.keys")).unwrap();
        let signer = chain::load_or_create_signer(&dir.join("archive.pk8")).unwrap();
        ArchiveDb::open(&dir.join("db"), keys, signer, every).unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::testing::open_db as open;
    use super::*;
    use crate::store::archive::testing::capture;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_rocksdb_archive_keeps_the_promises() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_path_buf();
        let tamper = |seq: u64| {
            let a = open(&path, 100);
            let mut v = a
                .db()
                .get_cf(a.cf(CF_EVENTS), seq_key(seq))
                .unwrap()
                .unwrap();
            v[20] ^= 1;
            a.db().put_cf(a.cf(CF_EVENTS), seq_key(seq), v).unwrap();
        };
        crate::store::conformance::archive_store(
            &|| Box::new(super::testing::open(&path, 100)),
            Some(&tamper),
        )
        .await;
    }

    #[test]
    fn journal_dedups_merges_and_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let a = open(dir.path(), 2);
        let m1 = b"Subject: one\r\nMessage-ID: <1@x>\r\n\r\nbody one\r\n".to_vec();
        let m2 = b"Subject: two\r\n\r\nbody two\r\n".to_vec();
        assert_eq!(
            a.journal(capture("q1", &m1, &["b@x.test"]), &m1).unwrap(),
            Journaled::New(1)
        );
        assert_eq!(
            a.journal(capture("q2", &m2, &["c@x.test"]), &m2).unwrap(),
            Journaled::New(2)
        );
        // The same bytes again (another relay, a Bcc copy): merged, stored once.
        assert_eq!(
            a.journal(capture("q3", &m1, &["d@x.test"]), &m1).unwrap(),
            Journaled::Merged { item: 1, seq: 3 }
        );
        // The same queue id again (a crash before the spool let go): nothing new.
        assert_eq!(
            a.journal(capture("q3", &m1, &["d@x.test"]), &m1).unwrap(),
            Journaled::Already(3)
        );
        let item = a.item(1).unwrap().unwrap();
        let rcpts: Vec<&str> = item
            .captures
            .iter()
            .flat_map(|(_, c)| c.recipients.iter().map(|r| r.address.as_str()))
            .collect();
        assert_eq!(rcpts, ["b@x.test", "d@x.test"]);
        assert_eq!(
            item.captures[0].1.headers.message_id.as_deref(),
            Some("1@x")
        );
        assert_eq!(a.raw(&item.captures[0].1.sha256).unwrap().unwrap(), m1);
        assert_eq!(a.items().unwrap().len(), 2);
        let blobs = a
            .db()
            .iterator_cf(a.cf(CF_BLOBS), IteratorMode::Start)
            .count();
        assert_eq!(blobs, 2);
        let r = a.verify(1).unwrap();
        assert_eq!((r.events_ok, r.blobs_ok, r.head_seq), (3, 2, 3));
        assert_eq!(r.checkpoints_ok, 1, "one checkpoint every 2 events");
        assert!(r.damaged.is_empty(), "{:?}", r.damaged);
        // Reopened, the head is where it was.
        drop(a);
        let a = open(dir.path(), 2);
        assert_eq!(a.head_seq(), 3);
        assert_eq!(a.checkpoint().unwrap().map(|c| c.covers), Some(3));
        assert_eq!(a.verify(1).unwrap().checkpoints_ok, 2);
    }

    #[test]
    fn purge_removes_content_keeps_the_chain_and_verify_tells_a_forged_removal() {
        let dir = tempfile::tempdir().unwrap();
        let a = open(dir.path(), 100);
        let m1 = b"Subject: 1\r\n\r\none\r\n".to_vec();
        let m2 = b"Subject: 2\r\n\r\ntwo\r\n".to_vec();
        a.journal(capture("q1", &m1, &["b@x.test"]), &m1).unwrap();
        a.journal(capture("q2", &m2, &["b@x.test"]), &m2).unwrap();
        a.journal(capture("q3", &m1, &["c@x.test"]), &m1).unwrap(); // merge into 1
        let r = a.purge(&[1], "retention").unwrap();
        assert_eq!(
            (r.seq, r.items.clone(), r.bytes),
            (4, vec![1], m1.len() as u64)
        );
        assert!(a.item(1).unwrap().is_none());
        assert_eq!(a.items().unwrap().len(), 1);
        let sha = hex::encode(chain::sha256(&m1));
        assert!(a.raw(&sha).unwrap().is_none(), "the content is gone");
        assert!(
            matches!(a.event(4).unwrap(), Some(Event::Purge { ref events, .. }) if events == &[1, 3])
        );
        let v = a.verify(1).unwrap();
        assert!(v.damaged.is_empty(), "{:?}", v.damaged);
        assert_eq!((v.events_ok, v.events_purged), (4, 2));
        // Removing an event record and claiming a purge that did not name it is caught.
        a.db().delete_cf(a.cf(CF_EVENTS), seq_key(2)).unwrap();
        a.db()
            .put_cf(a.cf(CF_PURGED), seq_key(2), seq_key(4))
            .unwrap();
        let v = a.verify(1).unwrap();
        assert_eq!(v.damaged.len(), 1, "{:?}", v.damaged);
        assert!(
            v.damaged[0].1.contains("does not name it"),
            "{:?}",
            v.damaged
        );
    }

    #[test]
    fn a_locked_rule_can_grow_but_not_shrink_unlock_or_go() {
        let dir = tempfile::tempdir().unwrap();
        let a = open(dir.path(), 100);
        let rule = |days: u32, locked: bool| crate::config::RetentionRule {
            name: "sec17a4".into(),
            days,
            locked,
            ..Default::default()
        };
        a.enforce_locks(&[rule(2190, true)]).unwrap();
        a.enforce_locks(&[rule(2555, true)]).unwrap();
        assert!(matches!(
            a.enforce_locks(&[rule(2190, true)]),
            Err(ArchiveError::Locked(_, 2555))
        ));
        assert!(matches!(
            a.enforce_locks(&[rule(3000, false)]),
            Err(ArchiveError::Locked(..))
        ));
        assert!(matches!(
            a.enforce_locks(&[]),
            Err(ArchiveError::Locked(..))
        ));
    }

    #[test]
    fn a_flipped_byte_in_the_items_table_is_found_and_named() {
        let dir = tempfile::tempdir().unwrap();
        let table = {
            let a = open(dir.path(), 100);
            for i in 1..=20u8 {
                let m = format!("Subject: {i}\r\n\r\nbody {i}\r\n").into_bytes();
                a.journal(capture(&format!("q{i}"), &m, &["b@x.test"]), &m)
                    .unwrap();
            }
            a.flush().unwrap();
            crate::store::rocksdb::scan::table_file(a.db(), CF_ITEMS)
        };
        crate::store::rocksdb::scan::flip_byte(&table);
        let keys = Keyring::load_or_create(&dir.path().join("archive.keys")).unwrap();
        let a = ArchiveDb::open_read_only(&dir.path().join("db"), keys).unwrap();
        let r = a.verify(1).unwrap();
        assert!(
            r.damaged.iter().any(|(_, w)| w.starts_with("table items:")),
            "{:?}",
            r.damaged
        );
    }

    #[test]
    fn a_wrong_items_index_entry_is_found() {
        let dir = tempfile::tempdir().unwrap();
        let a = open(dir.path(), 100);
        for i in 1..=3u8 {
            let m = format!("Subject: {i}\r\n\r\nbody {i}\r\n").into_bytes();
            a.journal(capture(&format!("q{i}"), &m, &["b@x.test"]), &m)
                .unwrap();
        }
        let item1 = a.item(1).unwrap().unwrap();
        let sha = hex::decode(&item1.captures[0].1.sha256).unwrap();
        a.db().put_cf(a.cf(CF_ITEMS), &sha, seq_key(2)).unwrap();
        let r = a.verify(1).unwrap();
        assert!(
            r.damaged
                .iter()
                .any(|(s, w)| *s == 2 && w.contains("items index")),
            "{:?}",
            r.damaged
        );
    }

    #[test]
    fn verify_names_the_damaged_event_content_and_link() {
        let dir = tempfile::tempdir().unwrap();
        let a = open(dir.path(), 100);
        for i in 1..=5u8 {
            let m = format!("Subject: {i}\r\n\r\nbody {i}\r\n").into_bytes();
            a.journal(capture(&format!("q{i}"), &m, &["b@x.test"]), &m)
                .unwrap();
        }
        let flip = |cf: &str, key: &[u8], at: usize| {
            let mut v = a.db().get_cf(a.cf(cf), key).unwrap().unwrap();
            v[at] ^= 1;
            a.db().put_cf(a.cf(cf), key, v).unwrap();
        };
        // A byte of event 2's record, of event 4's chain link, of item 5's content.
        flip(CF_EVENTS, &seq_key(2), 20);
        flip(CF_CHAIN, &seq_key(4), 40);
        let item5 = a.item(5).unwrap().unwrap();
        let sha = hex::decode(&item5.captures[0].1.sha256).unwrap();
        flip(CF_BLOBS, &sha, 30);
        let r = a.verify(1).unwrap();
        let seqs: Vec<u64> = r.damaged.iter().map(|(s, _)| *s).collect();
        assert_eq!(seqs, [2, 4, 5], "{:?}", r.damaged);
        assert!(r.damaged[0].1.contains("event 2"), "{:?}", r.damaged);
        assert!(r.damaged[1].1.contains("chain link"), "{:?}", r.damaged);
        assert!(r.damaged[2].1.contains("item 5"), "{:?}", r.damaged);
        assert_eq!(r.first_broken().map(|(s, _)| *s), Some(2));
        assert_eq!(r.events_ok, 2);
        // A removed event breaks the chain where it was.
        a.db().delete_cf(a.cf(CF_CHAIN), seq_key(3)).unwrap();
        let r = a.verify(1).unwrap();
        assert!(
            r.damaged
                .iter()
                .any(|(s, w)| *s == 3 && w.contains("missing")),
            "{:?}",
            r.damaged
        );
    }
}

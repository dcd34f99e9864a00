//! The archive in PostgreSQL (`archive_*` tables, migration 0003): one
//! sequence and one hash chain for every node of a cluster.
//!
//! Every append (a group of journals, a purge, a checkpoint) is one
//! transaction that first locks `archive_head`'s one row, so appends from
//! all nodes are serialised and each links to the head the one before
//! left; the head moves in the same commit, which waits for the WAL flush.
//! Within a node, journals waiting together go in one transaction
//! (`journal.rs`). Events are sealed with the archive keyring (bound to
//! their sequence number) and contents compressed and sealed (bound to
//! their SHA-256) before they are written, as the embedded backend does;
//! contents go to a [`BlobStore`] (`blobs.rs`: the `archive_blob` table).
//! `verify` (the chain walk) is in `verify.rs`.

mod blobs;
mod journal;
mod verify;

pub use blobs::PgBlobs;

use super::{Database, PgError};
use crate::config::RetentionRule;
use crate::model::archive::{Capture, Event};
use crate::store::archive::chain::{self, Checkpoint, Hash};
use crate::store::archive::content;
use crate::store::archive::{
    ArchiveError, ArchiveStore, BlobStore, Item, Journaled, PurgeReport, VerifyReport,
};
use crate::store::keyring::Keyring;
use async_trait::async_trait;
use ring::signature::Ed25519KeyPair;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio_postgres::GenericClient;

impl From<PgError> for ArchiveError {
    fn from(e: PgError) -> Self {
        ArchiveError::Db(Box::new(e))
    }
}

impl From<tokio_postgres::Error> for ArchiveError {
    fn from(e: tokio_postgres::Error) -> Self {
        ArchiveError::Db(Box::new(PgError::Sql(e)))
    }
}

/// The archive of a cluster, as one node uses it.
pub struct PgArchive {
    db: Database,
    keys: Arc<Keyring>,
    blobs: Arc<dyn BlobStore>,
    /// `None`: a read-only handle.
    signer: Option<Ed25519KeyPair>,
    checkpoint_every: u64,
    /// Journals waiting for the head (`journal.rs`).
    queue: journal::Queue,
    /// Held by the one task of this node committing a group.
    leader: tokio::sync::Mutex<()>,
    /// The last head this handle saw (when the database cannot be asked).
    head_seq: AtomicU64,
}

/// The chain's end as `archive_head` holds it.
struct Head {
    seq: u64,
    link: Hash,
    since_checkpoint: u64,
    purges: i64,
}

/// A sequence number as the database keeps it.
fn sql(seq: u64) -> i64 {
    i64::try_from(seq).unwrap_or(i64::MAX)
}

fn seq_of(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn hash_of(b: &[u8]) -> Option<Hash> {
    b.try_into().ok()
}

impl PgArchive {
    /// The archive kept in `db`, sealed with `keys`, for writing: `signer`
    /// signs a checkpoint every `checkpoint_every` events; contents go to
    /// the `archive_blob` table.
    pub fn new(
        db: Database,
        keys: Arc<Keyring>,
        signer: Ed25519KeyPair,
        checkpoint_every: u64,
    ) -> Self {
        let mut a = Self::read_only(db, keys);
        a.signer = Some(signer);
        a.checkpoint_every = checkpoint_every.max(1);
        a
    }

    /// The archive kept in `db`, read-only (appends answer `ReadOnly`).
    pub fn read_only(db: Database, keys: Arc<Keyring>) -> Self {
        PgArchive {
            blobs: Arc::new(PgBlobs::new(db.clone())),
            db,
            keys,
            signer: None,
            checkpoint_every: u64::MAX,
            queue: Default::default(),
            leader: Default::default(),
            head_seq: AtomicU64::new(0),
        }
    }

    /// The same archive with contents kept in `blobs` instead.
    pub fn with_blobs(mut self, blobs: Arc<dyn BlobStore>) -> Self {
        self.blobs = blobs;
        self
    }

    async fn client(&self) -> Result<deadpool_postgres::Client, ArchiveError> {
        Ok(self.db.client().await?)
    }

    /// Locks the chain's head for the rest of `tx`.
    async fn lock_head(tx: &tokio_postgres::Transaction<'_>) -> Result<Head, ArchiveError> {
        let row = tx
            .query_one(
                "SELECT seq, link, since_checkpoint, purges FROM archive_head FOR UPDATE",
                &[],
            )
            .await?;
        let link: Vec<u8> = row.get(1);
        Ok(Head {
            seq: seq_of(row.get(0)),
            link: hash_of(&link).ok_or_else(|| {
                ArchiveError::Corrupt("archive_head".into(), "link is not 32 bytes".into())
            })?,
            since_checkpoint: seq_of(row.get(2)),
            purges: row.get(3),
        })
    }

    /// Moves the head to `head` in `tx`.
    async fn store_head(
        tx: &tokio_postgres::Transaction<'_>,
        head: &Head,
    ) -> Result<(), ArchiveError> {
        tx.execute(
            "UPDATE archive_head SET seq = $1, link = $2, since_checkpoint = $3, purges = $4",
            &[
                &sql(head.seq),
                &head.link.as_slice(),
                &sql(head.since_checkpoint),
                &head.purges,
            ],
        )
        .await?;
        Ok(())
    }

    /// Event `seq`'s records: its JSON sealed (bound to its sequence
    /// number, as the embedded backend binds it), the hash of the JSON and
    /// the link that follows `prev`.
    fn seal_event(
        &self,
        prev: &Hash,
        seq: u64,
        event: &Event,
    ) -> Result<(Vec<u8>, Hash, Hash), ArchiveError> {
        let plain = serde_json::to_vec(event)
            .map_err(|e| ArchiveError::Corrupt(format!("event {seq}"), e.to_string()))?;
        let event_hash = chain::sha256(&plain);
        let link = chain::link(prev, seq, &event_hash);
        Ok((self.keys.seal(&seq.to_be_bytes(), &plain), event_hash, link))
    }

    /// Writes event `seq` and its chain entry in `tx`.
    async fn put_event(
        tx: &tokio_postgres::Transaction<'_>,
        seq: u64,
        sealed: &[u8],
        event_hash: &Hash,
        link: &Hash,
    ) -> Result<(), ArchiveError> {
        tx.execute(
            "INSERT INTO archive_chain (seq, event_hash, link) VALUES ($1, $2, $3)",
            &[&sql(seq), &event_hash.as_slice(), &link.as_slice()],
        )
        .await?;
        tx.execute(
            "INSERT INTO archive_event (seq, record) VALUES ($1, $2)",
            &[&sql(seq), &sealed],
        )
        .await?;
        Ok(())
    }

    /// A checkpoint of `head` signed and written in `tx`, if one is due.
    async fn checkpoint_if_due(
        &self,
        tx: &tokio_postgres::Transaction<'_>,
        head: &mut Head,
    ) -> Result<(), ArchiveError> {
        if head.since_checkpoint < self.checkpoint_every {
            return Ok(());
        }
        if let Some(k) = &self.signer {
            let cp = Checkpoint::sign(k, head.seq, &head.link);
            put_checkpoint(tx, &cp).await?;
            head.since_checkpoint = 0;
        }
        Ok(())
    }

    fn open_event(&self, seq: u64, sealed: &[u8]) -> Result<Vec<u8>, ArchiveError> {
        self.keys
            .open(&seq.to_be_bytes(), sealed)
            .map_err(|source| ArchiveError::Key {
                what: format!("event {seq}"),
                source,
            })
    }

    fn parse_event(seq: u64, plain: &[u8]) -> Result<Event, ArchiveError> {
        serde_json::from_slice(plain)
            .map_err(|e| ArchiveError::Corrupt(format!("event {seq}"), e.to_string()))
    }

    /// `raw` compressed with zstd, then sealed under its content key (off
    /// the async workers: it may be megabytes).
    async fn pack(&self, sha: Hash, raw: Arc<Vec<u8>>) -> Result<Vec<u8>, ArchiveError> {
        let keys = self.keys.clone();
        tokio::task::spawn_blocking(move || content::pack(&keys, &sha, &raw))
            .await
            .map_err(|e| ArchiveError::Corrupt("compression task".into(), e.to_string()))?
    }

    /// The content stored under `sha`, opened, decompressed and checked
    /// against its hash.
    async fn blob(&self, sha: &Hash) -> Result<Option<Vec<u8>>, ArchiveError> {
        let Some(sealed) = self.blobs.get(sha).await? else {
            return Ok(None);
        };
        let (keys, sha) = (self.keys.clone(), *sha);
        tokio::task::spawn_blocking(move || content::unpack(&keys, &sha, &sealed).map(Some))
            .await
            .map_err(|e| ArchiveError::Corrupt("decompression task".into(), e.to_string()))?
    }

    /// The plaintext of event `seq`, if its record is there.
    async fn event_plain(
        &self,
        client: &(impl GenericClient + Sync),
        seq: u64,
    ) -> Result<Option<Vec<u8>>, ArchiveError> {
        let row = client
            .query_opt(
                "SELECT record FROM archive_event WHERE seq = $1",
                &[&sql(seq)],
            )
            .await?;
        row.map(|r| self.open_event(seq, r.get(0))).transpose()
    }

    /// Item `id` read through `client` (a purge reads it in its transaction).
    async fn item_in(
        &self,
        client: &(impl GenericClient + Sync),
        id: u64,
    ) -> Result<Option<Item>, ArchiveError> {
        let rows = client
            .query(
                "SELECT seq, record FROM archive_event WHERE seq = $1 \
                 OR seq IN (SELECT seq FROM archive_merge WHERE item = $1) ORDER BY seq",
                &[&sql(id)],
            )
            .await?;
        let mut item: Option<Item> = None;
        for row in rows {
            let seq = seq_of(row.get(0));
            let event = Self::parse_event(seq, &self.open_event(seq, row.get(1))?)?;
            match (event, &mut item) {
                (Event::Ingest(c), None) if seq == id => {
                    item = Some(Item {
                        id,
                        captures: vec![(seq, *c)],
                    })
                }
                (Event::Merge { capture, .. }, Some(it)) => it.captures.push((seq, *capture)),
                // Not an item (no ingest at `id`), or a merge without one.
                _ => return Ok(None),
            }
        }
        Ok(item)
    }
}

/// Writes checkpoint `cp` in `tx`.
async fn put_checkpoint(
    tx: &tokio_postgres::Transaction<'_>,
    cp: &Checkpoint,
) -> Result<(), ArchiveError> {
    let json = serde_json::to_string(cp).expect("a checkpoint serialises");
    tx.execute(
        "INSERT INTO archive_checkpoint (seq, checkpoint) VALUES ($1, $2) \
         ON CONFLICT (seq) DO UPDATE SET checkpoint = EXCLUDED.checkpoint",
        &[&sql(cp.covers), &json],
    )
    .await?;
    Ok(())
}

#[async_trait]
impl ArchiveStore for PgArchive {
    async fn journal_sized(
        &self,
        capture: Capture,
        raw: Arc<Vec<u8>>,
    ) -> Result<(Journaled, u64), ArchiveError> {
        self.journal_grouped(capture, raw).await
    }

    async fn event(&self, seq: u64) -> Result<Option<Event>, ArchiveError> {
        let client = self.client().await?;
        self.event_plain(&**client, seq)
            .await?
            .map(|p| Self::parse_event(seq, &p))
            .transpose()
    }

    async fn item(&self, id: u64) -> Result<Option<Item>, ArchiveError> {
        let client = self.client().await?;
        self.item_in(&**client, id).await
    }

    async fn items(&self) -> Result<Vec<Item>, ArchiveError> {
        let client = self.client().await?;
        // Every item's ingest and merges in one read, in sequence order
        // (an ingest before its merges).
        let rows = client
            .query(
                "SELECT e.seq, e.record FROM archive_event e \
                 WHERE e.seq IN (SELECT item FROM archive_item) \
                    OR e.seq IN (SELECT m.seq FROM archive_merge m \
                                 JOIN archive_item i ON i.item = m.item) \
                 ORDER BY e.seq",
                &[],
            )
            .await?;
        let mut items: Vec<Item> = Vec::new();
        let mut at: std::collections::HashMap<u64, usize> = Default::default();
        for row in rows {
            let seq = seq_of(row.get(0));
            match Self::parse_event(seq, &self.open_event(seq, row.get(1))?)? {
                Event::Ingest(c) => {
                    at.insert(seq, items.len());
                    items.push(Item {
                        id: seq,
                        captures: vec![(seq, *c)],
                    });
                }
                Event::Merge { item, capture } => {
                    if let Some(&i) = at.get(&item) {
                        items[i].captures.push((seq, *capture));
                    }
                }
                Event::Purge { .. } => {}
            }
        }
        Ok(items)
    }

    async fn raw(&self, sha_hex: &str) -> Result<Option<Vec<u8>>, ArchiveError> {
        match hex::decode(sha_hex).ok().and_then(|b| hash_of(&b)) {
            Some(sha) => self.blob(&sha).await,
            None => Ok(None),
        }
    }

    async fn purge(&self, items: &[u64], reason: &str) -> Result<PurgeReport, ArchiveError> {
        if self.signer.is_none() {
            return Err(ArchiveError::ReadOnly);
        }
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let mut head = Self::lock_head(&tx).await?;
        let mut report = PurgeReport::default();
        let (mut events, mut shas, mut queue_ids) = (Vec::new(), Vec::new(), Vec::new());
        for &id in items {
            // Read under the lock: no journal merges into it meanwhile.
            let Some(item) = self.item_in(&*tx, id).await? else {
                continue;
            };
            let first = &item.captures[0].1;
            report.bytes += first.size;
            if let Some(sha) = hex::decode(&first.sha256).ok().and_then(|b| hash_of(&b)) {
                shas.push(sha);
            }
            for (seq, c) in &item.captures {
                events.push(*seq);
                queue_ids.push(c.queue_id.clone());
            }
            report.items.push(id);
        }
        if report.items.is_empty() {
            return Ok(report);
        }
        let seq = head.seq + 1;
        let ev: Vec<i64> = events.iter().map(|&s| sql(s)).collect();
        let ids: Vec<i64> = report.items.iter().map(|&s| sql(s)).collect();
        let sha_cols: Vec<&[u8]> = shas.iter().map(|s| s.as_slice()).collect();
        tx.execute("DELETE FROM archive_event WHERE seq = ANY($1)", &[&ev])
            .await?;
        tx.execute(
            "DELETE FROM archive_queue WHERE queue_id = ANY($1)",
            &[&queue_ids],
        )
        .await?;
        tx.execute("DELETE FROM archive_merge WHERE item = ANY($1)", &[&ids])
            .await?;
        tx.execute(
            "DELETE FROM archive_item WHERE sha256 = ANY($1)",
            &[&sha_cols],
        )
        .await?;
        tx.execute(
            "INSERT INTO archive_purged (seq, purge) SELECT unnest($1::bigint[]), $2",
            &[&ev, &sql(seq)],
        )
        .await?;
        let event = Event::Purge {
            items: report.items.clone(),
            events,
            at: chrono::Utc::now(),
            reason: reason.to_string(),
        };
        let (sealed, event_hash, link) = self.seal_event(&head.link, seq, &event)?;
        Self::put_event(&tx, seq, &sealed, &event_hash, &link).await?;
        head.seq = seq;
        head.link = link;
        head.since_checkpoint += 1;
        // A journal that stored its content before this commit stores it
        // again (`journal.rs`): the content may be removed below.
        head.purges += 1;
        self.checkpoint_if_due(&tx, &mut head).await?;
        Self::store_head(&tx, &head).await?;
        // The contents go while the head is held, so no journal of the
        // same bytes links to them meanwhile. Should the commit then fail,
        // the items stay without content (verify names them; purging them
        // again finishes the work) rather than content outliving its purge.
        for sha in &shas {
            self.blobs.delete(sha).await?;
        }
        tx.commit().await?;
        self.head_seq.store(seq, Ordering::Release);
        report.seq = seq;
        Ok(report)
    }

    async fn checkpoint(&self) -> Result<Option<Checkpoint>, ArchiveError> {
        let signer = self.signer.as_ref().ok_or(ArchiveError::ReadOnly)?;
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let mut head = Self::lock_head(&tx).await?;
        if head.seq == 0 || head.since_checkpoint == 0 {
            return Ok(None);
        }
        let cp = Checkpoint::sign(signer, head.seq, &head.link);
        put_checkpoint(&tx, &cp).await?;
        head.since_checkpoint = 0;
        Self::store_head(&tx, &head).await?;
        tx.commit().await?;
        Ok(Some(cp))
    }

    async fn head_seq(&self) -> u64 {
        // The cluster's head; the last one seen if the database is away.
        let asked = async {
            let client = self.client().await?;
            let row = client
                .query_one("SELECT seq FROM archive_head", &[])
                .await?;
            Ok::<_, ArchiveError>(seq_of(row.get(0)))
        };
        match asked.await {
            Ok(seq) => {
                self.head_seq.fetch_max(seq, Ordering::AcqRel);
                seq
            }
            Err(_) => self.head_seq.load(Ordering::Acquire),
        }
    }

    fn signer_public_key(&self) -> Option<String> {
        use ring::signature::KeyPair as _;
        self.signer
            .as_ref()
            .map(|k| hex::encode(k.public_key().as_ref()))
    }

    async fn verify_signed_by(
        &self,
        from: u64,
        expected_signer: Option<&str>,
    ) -> Result<VerifyReport, ArchiveError> {
        self.walk(from, expected_signer).await
    }

    async fn enforce_locks(&self, rules: &[RetentionRule]) -> Result<(), ArchiveError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        // Two nodes starting together check and record one after the other.
        tx.batch_execute("LOCK TABLE archive_lock IN EXCLUSIVE MODE")
            .await?;
        for row in tx.query("SELECT name, days FROM archive_lock", &[]).await? {
            let (name, days): (String, i32) = (row.get(0), row.get(1));
            let days = u32::try_from(days).unwrap_or(0);
            match rules.iter().find(|r| r.name == name) {
                Some(r) if r.locked && r.days >= days => {}
                _ => return Err(ArchiveError::Locked(name, days)),
            }
        }
        let locked: Vec<&RetentionRule> = rules.iter().filter(|r| r.locked).collect();
        if locked.is_empty() {
            return Ok(());
        }
        if self.signer.is_none() {
            return Err(ArchiveError::ReadOnly);
        }
        for r in locked {
            tx.execute(
                "INSERT INTO archive_lock (name, days) VALUES ($1, $2) ON CONFLICT (name) \
                 DO UPDATE SET days = greatest(archive_lock.days, EXCLUDED.days)",
                &[&r.name, &i32::try_from(r.days).unwrap_or(i32::MAX)],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn flush(&self) -> Result<(), ArchiveError> {
        // Committed is in the tables already.
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    /// A writable archive in `db` with the keys under `dir` (made on first use).
    pub(crate) fn open(db: &Database, dir: &std::path::Path, every: u64) -> PgArchive {
        let keys = Arc::new(Keyring::load_or_create(&dir.join("archive.keys")).unwrap());
        let signer = chain::load_or_create_signer(&dir.join("archive.pk8")).unwrap();
        PgArchive::new(db.reopen(), keys, signer, every)
    }
}

#[cfg(test)]
mod tests;

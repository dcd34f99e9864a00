//! Journaling with group commit, across nodes. Each caller compresses,
//! seals and stores its message's content (unless the archive has it)
//! before it queues; whoever of this node leads next takes every queued
//! journal and, in one transaction that locks the chain's head (so other
//! nodes wait), links them in queue order and commits once. Nobody is
//! answered before that commit.
//!
//! Content is stored outside the head's lock, so a purge may remove it
//! between the store and the link: a purge counts itself in the head
//! (`purges`), and a journal that sees the count moved since it stored its
//! content stores it again under the lock. Content stored for a journal
//! whose transaction then fails stays unreferenced (sealed); the same bytes
//! journaled later find it there.

use super::*;
use std::collections::HashMap;
use tokio::sync::oneshot;

/// A journal ready to be linked into the chain.
pub(super) struct Prepared {
    capture: Capture,
    sha: Hash,
    /// The octets of content this journal stored, if it stored it.
    stored: Option<u64>,
    raw: Arc<Vec<u8>>,
    /// The head's purge count before the content was stored.
    purges: i64,
}

type Answer = Result<(Journaled, u64), ArchiveError>;

/// Journals waiting for this node's leader.
#[derive(Default)]
pub(super) struct Queue(std::sync::Mutex<Vec<(Prepared, oneshot::Sender<Answer>)>>);

impl Queue {
    /// How many journals wait (for tests that make a group).
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        crate::locks::lock(&self.0).len()
    }
}

/// Rows a group adds, one column per vector (written with `unnest`).
#[derive(Default)]
struct Rows {
    chain: (Vec<i64>, Vec<Vec<u8>>, Vec<Vec<u8>>),
    events: (Vec<i64>, Vec<Vec<u8>>),
    items: (Vec<Vec<u8>>, Vec<i64>),
    merges: (Vec<i64>, Vec<i64>),
    queue: (Vec<String>, Vec<i64>),
}

fn abandoned() -> ArchiveError {
    ArchiveError::Db("the journal's group was abandoned before it committed".into())
}

impl PgArchive {
    /// [`ArchiveStore::journal_sized`]: durable at return, idempotent per
    /// queue id; the octets of content stored (0 for a merge).
    pub(super) async fn journal_grouped(&self, capture: Capture, raw: Arc<Vec<u8>>) -> Answer {
        if self.signer.is_none() {
            return Err(ArchiveError::ReadOnly);
        }
        let prepared = self.prepare(capture, raw).await?;
        let (tx, mut rx) = oneshot::channel();
        crate::locks::lock(&self.queue.0).push((prepared, tx));
        let leader = self.leader.lock().await;
        // An earlier leader may have taken ours with its group.
        match rx.try_recv() {
            Ok(done) => return done,
            Err(oneshot::error::TryRecvError::Closed) => return Err(abandoned()),
            Err(oneshot::error::TryRecvError::Empty) => {}
        }
        let group = std::mem::take(&mut *crate::locks::lock(&self.queue.0));
        let (prepared, senders): (Vec<_>, Vec<_>) = group.into_iter().unzip();
        match self.commit_group(prepared).await {
            Ok(answers) => {
                for (tx, a) in senders.into_iter().zip(answers) {
                    let _ = tx.send(a);
                }
            }
            Err(e) => {
                // Nothing of the group is in the chain; each journal is
                // told so (and retried by the spool later).
                let why = e.to_string();
                for tx in senders {
                    let _ = tx.send(Err(ArchiveError::Db(why.clone().into())));
                }
            }
        }
        drop(leader);
        rx.await.unwrap_or_else(|_| Err(abandoned()))
    }

    /// The work done before the lock: the content key, and the content
    /// compressed, sealed and stored unless the archive has it.
    pub(super) async fn prepare(
        &self,
        mut capture: Capture,
        raw: Arc<Vec<u8>>,
    ) -> Result<Prepared, ArchiveError> {
        let sha = chain::sha256(&raw);
        // The content key is what was stored, whatever the caller computed.
        capture.sha256 = hex::encode(sha);
        let row = {
            let client = self.client().await?;
            client
                .query_one(
                    "SELECT purges, EXISTS (SELECT 1 FROM archive_item WHERE sha256 = $1) \
                     FROM archive_head",
                    &[&sha.as_slice()],
                )
                .await?
        };
        let (purges, known): (i64, bool) = (row.get(0), row.get(1));
        let stored = if known {
            None
        } else {
            Some(self.store_content(sha, raw.clone()).await?)
        };
        Ok(Prepared {
            capture,
            sha,
            stored,
            raw,
            purges,
        })
    }

    /// Packs `raw` and puts it in the blob store; the octets stored.
    async fn store_content(&self, sha: Hash, raw: Arc<Vec<u8>>) -> Result<u64, ArchiveError> {
        let sealed = self.pack(sha, raw).await?;
        self.blobs.put(&sha, &sealed).await?;
        Ok(sealed.len() as u64)
    }

    /// Links `group` after the head in one transaction and commits it;
    /// one answer per journal, in order.
    pub(super) async fn commit_group(
        &self,
        group: Vec<Prepared>,
    ) -> Result<Vec<Answer>, ArchiveError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let mut head = Self::lock_head(&tx).await?;
        let qids: Vec<&str> = group.iter().map(|p| p.capture.queue_id.as_str()).collect();
        let shas: Vec<&[u8]> = group.iter().map(|p| p.sha.as_slice()).collect();
        // What the chain holds of this group's queue ids and contents;
        // earlier journals of the group are added as they are linked.
        let mut queued: HashMap<String, u64> = tx
            .query(
                "SELECT queue_id, seq FROM archive_queue WHERE queue_id = ANY($1)",
                &[&qids],
            )
            .await?
            .iter()
            .map(|r| (r.get(0), seq_of(r.get(1))))
            .collect();
        let mut items: HashMap<Hash, u64> = HashMap::new();
        for r in tx
            .query(
                "SELECT sha256, item FROM archive_item WHERE sha256 = ANY($1)",
                &[&shas],
            )
            .await?
        {
            let sha: Vec<u8> = r.get(0);
            if let Some(sha) = hash_of(&sha) {
                items.insert(sha, seq_of(r.get(1)));
            }
        }
        let mut rows = Rows::default();
        let mut checkpoints = Vec::new();
        let mut answers = Vec::with_capacity(group.len());
        for p in group {
            let Prepared {
                capture,
                sha,
                stored,
                raw,
                purges,
            } = p;
            if let Some(seq) = queued.get(&capture.queue_id) {
                answers.push(Ok((Journaled::Already(*seq), 0)));
                continue;
            }
            let seq = head.seq + 1;
            let (event, outcome, octets) = match items.get(&sha) {
                Some(&item) => {
                    rows.merges.0.push(sql(item));
                    rows.merges.1.push(sql(seq));
                    let ev = Event::Merge {
                        item,
                        capture: Box::new(capture.clone()),
                    };
                    (ev, Journaled::Merged { item, seq }, 0)
                }
                None => {
                    // Stored before a purge committed (which may have
                    // removed it), or known then and purged since: now.
                    let octets = match stored {
                        Some(n) if purges == head.purges => n,
                        _ => self.store_content(sha, raw).await?,
                    };
                    rows.items.0.push(sha.to_vec());
                    rows.items.1.push(sql(seq));
                    items.insert(sha, seq);
                    let ev = Event::Ingest(Box::new(capture.clone()));
                    (ev, Journaled::New(seq), octets)
                }
            };
            let (sealed, event_hash, link) = self.seal_event(&head.link, seq, &event)?;
            rows.chain.0.push(sql(seq));
            rows.chain.1.push(event_hash.to_vec());
            rows.chain.2.push(link.to_vec());
            rows.events.0.push(sql(seq));
            rows.events.1.push(sealed);
            rows.queue.0.push(capture.queue_id.clone());
            rows.queue.1.push(sql(seq));
            queued.insert(capture.queue_id, seq);
            head.seq = seq;
            head.link = link;
            head.since_checkpoint += 1;
            if head.since_checkpoint >= self.checkpoint_every {
                if let Some(k) = &self.signer {
                    checkpoints.push(Checkpoint::sign(k, seq, &link));
                    head.since_checkpoint = 0;
                }
            }
            answers.push(Ok((outcome, octets)));
        }
        if !rows.chain.0.is_empty() {
            Self::write_rows(&tx, &rows).await?;
            for cp in &checkpoints {
                put_checkpoint(&tx, cp).await?;
            }
            Self::store_head(&tx, &head).await?;
        }
        // Durable at return: the commit waits for the WAL flush.
        tx.commit().await?;
        self.head_seq.fetch_max(head.seq, Ordering::AcqRel);
        Ok(answers)
    }

    /// Inserts a group's rows, one statement per table.
    async fn write_rows(
        tx: &tokio_postgres::Transaction<'_>,
        r: &Rows,
    ) -> Result<(), ArchiveError> {
        tx.execute(
            "INSERT INTO archive_chain (seq, event_hash, link) \
             SELECT * FROM unnest($1::bigint[], $2::bytea[], $3::bytea[])",
            &[&r.chain.0, &r.chain.1, &r.chain.2],
        )
        .await?;
        tx.execute(
            "INSERT INTO archive_event (seq, record) \
             SELECT * FROM unnest($1::bigint[], $2::bytea[])",
            &[&r.events.0, &r.events.1],
        )
        .await?;
        tx.execute(
            "INSERT INTO archive_item (sha256, item) \
             SELECT * FROM unnest($1::bytea[], $2::bigint[])",
            &[&r.items.0, &r.items.1],
        )
        .await?;
        tx.execute(
            "INSERT INTO archive_merge (item, seq) \
             SELECT * FROM unnest($1::bigint[], $2::bigint[])",
            &[&r.merges.0, &r.merges.1],
        )
        .await?;
        tx.execute(
            "INSERT INTO archive_queue (queue_id, seq) \
             SELECT * FROM unnest($1::text[], $2::bigint[])",
            &[&r.queue.0, &r.queue.1],
        )
        .await?;
        Ok(())
    }
}

//! Journaling with group commit: each caller compresses and encrypts its
//! message on its own thread, then queues it; whoever holds the chain's
//! head next takes every queued journal, links them into the chain in
//! queue order and writes them as one synced batch (one fsync for the
//! group). Before, each journal held the head across its own fsync, so the
//! archive took one message per fsync however many deliveries finished
//! together. Nobody is answered before the sync that covers them.

use super::*;
use std::collections::HashMap;

/// A journal ready to be linked into the chain.
pub(super) struct Prepared {
    capture: Capture,
    sha: Hash,
    /// The message compressed and sealed, unless its bytes were already
    /// archived when it was prepared.
    blob: Option<Vec<u8>>,
    raw: Arc<Vec<u8>>,
}

/// Where the head's holder leaves one queued journal's outcome.
type Slot = Arc<Mutex<Option<Result<(Journaled, u64), ArchiveError>>>>;

/// Journals waiting for the head.
#[derive(Default)]
pub(super) struct Queue(Mutex<Vec<(Prepared, Slot)>>);

impl ArchiveDb {
    /// Journals one relayed message: its bytes (stored once per content)
    /// and its capture, as one new event linked into the chain, durable
    /// when it returns. Idempotent per queue id. Returns the octets of
    /// content written (0 for a merge), for the metrics.
    pub fn journal_sized(
        &self,
        capture: Capture,
        raw: Arc<Vec<u8>>,
    ) -> Result<(Journaled, u64), ArchiveError> {
        if self.signer.is_none() {
            return Err(ArchiveError::ReadOnly);
        }
        let prepared = self.prepare(capture, raw)?;
        let slot: Slot = Arc::default();
        crate::locks::lock(&self.queue.0).push((prepared, slot.clone()));
        let mut head = crate::locks::lock(&self.head);
        // An earlier holder of the head may have taken ours with its group.
        if let Some(done) = crate::locks::lock(&slot).take() {
            return done;
        }
        let group = std::mem::take(&mut *crate::locks::lock(&self.queue.0));
        self.commit_group(&mut head, group);
        let done = crate::locks::lock(&slot).take();
        done.expect("the group holding this journal answered it")
    }

    /// The work that needs no lock: the content key, and the content
    /// compressed and sealed unless it is archived already.
    fn prepare(&self, capture: Capture, raw: Arc<Vec<u8>>) -> Result<Prepared, ArchiveError> {
        let sha = chain::sha256(&raw);
        // The content key is what was stored, whatever the caller computed.
        let mut capture = capture;
        capture.sha256 = hex::encode(sha);
        let blob = match self.db.get_cf(self.cf(CF_ITEMS), sha)? {
            Some(_) => None,
            None => Some(content::pack(&self.keys, &sha, &raw)?),
        };
        Ok(Prepared {
            capture,
            sha,
            blob,
            raw,
        })
    }

    /// Links `group` into the chain after `head` and writes it as one
    /// synced batch; answers every journal in it, and moves `head` on only
    /// when the batch is durable.
    fn commit_group(&self, head: &mut Head, group: Vec<(Prepared, Slot)>) {
        let mut batch = WriteBatch::default();
        let mut next = Head {
            seq: head.seq,
            link: head.link,
            since_checkpoint: head.since_checkpoint,
        };
        // Queue ids and contents journaled earlier in this group, which
        // the database does not show yet.
        let mut queued: HashMap<String, u64> = HashMap::new();
        let mut items: HashMap<Hash, u64> = HashMap::new();
        let mut outcomes = Vec::with_capacity(group.len());
        for (prepared, slot) in group {
            let outcome = self.link_one(&mut batch, &mut next, &mut queued, &mut items, prepared);
            outcomes.push((slot, outcome));
        }
        let written = if batch.is_empty() {
            Ok(())
        } else {
            self.write_synced(batch)
        };
        match written {
            Ok(()) => {
                self.advance(head, next);
                for (slot, outcome) in outcomes {
                    *crate::locks::lock(&slot) = Some(outcome);
                }
            }
            Err(e) => {
                // Nothing of the group is in the chain; each journal is
                // told so (and retried by the spool later).
                let why = e.to_string();
                for (slot, _) in outcomes {
                    *crate::locks::lock(&slot) = Some(Err(ArchiveError::Db(why.clone().into())));
                }
            }
        }
    }

    /// Puts one journal's records into `batch` after `head`.
    fn link_one(
        &self,
        batch: &mut WriteBatch,
        head: &mut Head,
        queued: &mut HashMap<String, u64>,
        items: &mut HashMap<Hash, u64>,
        prepared: Prepared,
    ) -> Result<(Journaled, u64), ArchiveError> {
        let Prepared {
            capture,
            sha,
            blob,
            raw,
        } = prepared;
        if let Some(seq) = queued.get(&capture.queue_id) {
            return Ok((Journaled::Already(*seq), 0));
        }
        if let Some(v) = self
            .db
            .get_cf(self.cf(CF_QUEUE), capture.queue_id.as_bytes())?
        {
            return Ok((Journaled::Already(seq_of(&v).unwrap_or(0)), 0));
        }
        let seq = head.seq + 1;
        let existing = match items.get(&sha) {
            Some(item) => Some(*item),
            None => self
                .db
                .get_cf(self.cf(CF_ITEMS), sha)?
                .and_then(|v| seq_of(&v)),
        };
        let mut stored = 0u64;
        let mut entries = Vec::new();
        let (event, outcome) = match existing {
            Some(item) => {
                let mut k = seq_key(item).to_vec();
                k.extend_from_slice(&seq_key(seq));
                entries.push((CF_MERGES, k, Vec::new()));
                let ev = Event::Merge {
                    item,
                    capture: Box::new(capture.clone()),
                };
                (ev, Journaled::Merged { item, seq })
            }
            None => {
                // Prepared as archived, then purged before the head was
                // ours: packed now.
                let sealed = match blob {
                    Some(b) => b,
                    None => content::pack(&self.keys, &sha, &raw)?,
                };
                stored = sealed.len() as u64;
                entries.push((CF_BLOBS, sha.to_vec(), sealed));
                entries.push((CF_ITEMS, sha.to_vec(), seq_key(seq).to_vec()));
                items.insert(sha, seq);
                (
                    Event::Ingest(Box::new(capture.clone())),
                    Journaled::New(seq),
                )
            }
        };
        // The event goes in first: it is the one part that can fail, and
        // fails before it puts anything.
        let link = self.put_event(batch, &head.link, seq, &event)?;
        for (cf, k, v) in entries {
            batch.put_cf(self.cf(cf), k, v);
        }
        batch.put_cf(self.cf(CF_QUEUE), capture.queue_id.as_bytes(), seq_key(seq));
        queued.insert(capture.queue_id.clone(), seq);
        head.seq = seq;
        head.link = link;
        head.since_checkpoint += 1;
        if head.since_checkpoint >= self.checkpoint_every {
            if let Some(k) = &self.signer {
                let cp = Checkpoint::sign(k, seq, &link);
                let json = serde_json::to_vec(&cp).expect("a checkpoint serialises");
                batch.put_cf(self.cf(CF_CHECKPOINTS), seq_key(seq), json);
                head.since_checkpoint = 0;
            }
        }
        Ok((outcome, stored))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::open_db;
    use super::*;
    use crate::store::archive::testing::capture;

    /// One group holding a repeated queue id, repeated content and a
    /// checkpoint boundary: each is what it would be journaled alone, and
    /// the whole group is one chain that verifies.
    #[test]
    fn a_group_links_as_if_journaled_one_by_one() {
        let dir = tempfile::tempdir().unwrap();
        let db = open_db(dir.path(), 3);
        let m1 = b"Subject: one\r\n\r\nbody one\r\n".to_vec();
        let m2 = b"Subject: two\r\n\r\nbody two\r\n".to_vec();
        let journals = [("q1", &m1), ("q1", &m1), ("q2", &m1), ("q3", &m2)];
        let group: Vec<(Prepared, Slot)> = journals
            .iter()
            .map(|(q, m)| {
                let p = db
                    .prepare(capture(q, m, &["b@x.test"]), Arc::new(m.to_vec()))
                    .unwrap();
                (p, Slot::default())
            })
            .collect();
        let slots: Vec<Slot> = group.iter().map(|(_, s)| s.clone()).collect();
        let mut head = crate::locks::lock(&db.head);
        db.commit_group(&mut head, group);
        drop(head);
        let got: Vec<Journaled> = slots
            .iter()
            .map(|s| crate::locks::lock(s).take().unwrap().unwrap().0)
            .collect();
        assert_eq!(
            got,
            [
                Journaled::New(1),
                Journaled::Already(1),
                Journaled::Merged { item: 1, seq: 2 },
                Journaled::New(3),
            ]
        );
        assert_eq!(db.head_seq(), 3);
        let r = db.verify(1).unwrap();
        assert!(r.damaged.is_empty(), "{:?}", r.damaged);
        assert_eq!(r.events_ok, 3);
        assert_eq!(r.checkpoints_ok, 1, "the third event was checkpointed");
        let ids: Vec<usize> = db
            .items()
            .unwrap()
            .iter()
            .map(|i| i.captures.len())
            .collect();
        assert_eq!(ids, [2, 1], "q2 merged into the first item");
        // Journaled again later, alone: still the same answers.
        let again = db
            .journal_sized(capture("q2", &m1, &["b@x.test"]), Arc::new(m1.clone()))
            .unwrap();
        assert_eq!(again.0, Journaled::Already(2));
    }
}

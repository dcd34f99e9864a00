//! The chain walk of [`ArchiveStore::verify_signed_by`] in PostgreSQL:
//! events, links, contents, checkpoints, purge records, the content index,
//! and the head row against the chain, all read in one snapshot.

use super::*;
use crate::store::archive::walk::{check_record, content_key, Checked, EventCheck, Walk};
use std::collections::{BTreeMap, HashMap, HashSet};

/// Chain entries read per query.
const PAGE: i64 = 1000;

/// One sequence number as stored: its chain entry and its record.
struct Stored {
    seq: u64,
    chain: Option<(Vec<u8>, Vec<u8>)>,
    record: Option<Vec<u8>>,
}

impl PgArchive {
    /// Walks the chain from `from` (1 = all); see the trait.
    pub(super) async fn walk(
        &self,
        from: u64,
        expected_signer: Option<&str>,
    ) -> Result<VerifyReport, ArchiveError> {
        let mut client = self.client().await?;
        // One snapshot: appends by any node meanwhile are not half seen.
        let tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await?;
        let head = tx
            .query_one("SELECT seq, link FROM archive_head", &[])
            .await?;
        let (head_seq, head_link): (u64, Vec<u8>) = (seq_of(head.get(0)), head.get(1));
        let mut report = VerifyReport {
            head_seq,
            ..Default::default()
        };
        let from = from.max(1);
        // The link before `from` is trusted as stored (a partial walk).
        let mut prev = chain::GENESIS;
        if from > 1 {
            if let Some(r) = tx
                .query_opt(
                    "SELECT link FROM archive_chain WHERE seq = $1",
                    &[&sql(from - 1)],
                )
                .await?
            {
                let l: Vec<u8> = r.get(0);
                prev = hash_of(&l).unwrap_or(prev);
            }
        }
        let mut checkpoints: BTreeMap<u64, Checkpoint> = BTreeMap::new();
        for r in tx
            .query("SELECT seq, checkpoint FROM archive_checkpoint", &[])
            .await?
        {
            let (seq, text): (i64, String) = (r.get(0), r.get(1));
            match serde_json::from_str(&text) {
                Ok(cp) => {
                    checkpoints.insert(seq_of(seq), cp);
                }
                Err(e) => report
                    .damaged
                    .push((seq_of(seq), format!("checkpoint does not parse: {e}"))),
            }
        }
        // Removed event records: each must be named by the purge event
        // that `archive_purged` points at, checked when the walk reaches it.
        let unconfirmed: BTreeMap<u64, u64> = tx
            .query("SELECT seq, purge FROM archive_purged", &[])
            .await?
            .iter()
            .map(|r| (seq_of(r.get(0)), seq_of(r.get(1))))
            .collect();
        // The contents each item holds, for the content index's check.
        let mut holds: HashMap<u64, HashSet<String>> = HashMap::new();
        let mut head_stored: Option<Vec<u8>> = None;
        let mut walk = Walk::new(report, prev, unconfirmed, checkpoints, expected_signer);
        let mut lo = from;
        while lo <= head_seq {
            let hi = head_seq.min(lo.saturating_add(PAGE as u64 - 1));
            let page = tx
                .query(
                    "SELECT s.seq, c.event_hash, c.link, e.record \
                     FROM generate_series($1::bigint, $2::bigint) AS s(seq) \
                     LEFT JOIN archive_chain c ON c.seq = s.seq \
                     LEFT JOIN archive_event e ON e.seq = s.seq ORDER BY s.seq",
                    &[&sql(lo), &sql(hi)],
                )
                .await?;
            for r in page {
                let stored = Stored {
                    seq: seq_of(r.get(0)),
                    chain: r
                        .get::<_, Option<Vec<u8>>>(1)
                        .zip(r.get::<_, Option<Vec<u8>>>(2)),
                    record: r.get(3),
                };
                let seq = stored.seq;
                if seq == head_seq {
                    head_stored = stored.chain.as_ref().map(|(_, l)| l.clone());
                }
                let check = self
                    .check_event(&stored, &walk.prev, walk.purged(seq), &mut holds)
                    .await;
                walk.event(seq, check);
            }
            lo = hi + 1;
        }
        let (mut report, head) = walk.finish(from);
        // The head row against the chain: events cut from the end (with
        // the head left alone) or appended past it show.
        if head_seq > 0 && head_seq >= from {
            if let Some(l) = head_stored.filter(|l| *l != head_link) {
                report.damaged.push((
                    head_seq,
                    format!(
                        "the head names link {}, the chain has {}",
                        hex::encode(&head_link),
                        hex::encode(l)
                    ),
                ));
            }
        }
        let last: Option<i64> = tx
            .query_one("SELECT max(seq) FROM archive_chain", &[])
            .await?
            .get(0);
        if let Some(last) = last.map(seq_of).filter(|&l| l > head_seq) {
            report
                .damaged
                .push((last, format!("chain entries after the head ({head_seq})")));
        }
        self.verify_items(&tx, from, &mut holds, &mut report)
            .await?;
        tx.commit().await?;
        report.damaged.sort_by_key(|(s, _)| *s);
        report.head = hex::encode(head);
        Ok(report)
    }

    /// Checks the content index: each entry names an item that holds that
    /// content (a wrong entry would merge new mail into the wrong item).
    async fn verify_items(
        &self,
        tx: &tokio_postgres::Transaction<'_>,
        from: u64,
        holds: &mut HashMap<u64, HashSet<String>>,
        report: &mut VerifyReport,
    ) -> Result<(), ArchiveError> {
        let known: HashSet<u64> = report.damaged.iter().map(|(s, _)| *s).collect();
        for r in tx
            .query("SELECT sha256, item FROM archive_item ORDER BY item", &[])
            .await?
        {
            let (sha, item): (Vec<u8>, u64) = (r.get(0), seq_of(r.get(1)));
            let sha = hex::encode(sha);
            if item < from && !holds.contains_key(&item) {
                // Before a partial walk: read that item alone.
                let set = match self.item_in(tx, item).await {
                    Ok(Some(it)) => it.captures.into_iter().map(|(_, c)| c.sha256).collect(),
                    _ => HashSet::new(),
                };
                holds.insert(item, set);
            }
            let ok = holds.get(&item).is_some_and(|s| s.contains(&sha));
            if !ok && !known.contains(&item) {
                report.damaged.push((
                    item,
                    format!("items index: content {sha} is not in item {item}"),
                ));
            }
        }
        Ok(())
    }

    /// Checks one event against the chain; returns its link and what was
    /// checked, or the problem and the stored link (to go on from).
    async fn check_event(
        &self,
        stored: &Stored,
        prev: &Hash,
        purged: bool,
        holds: &mut HashMap<u64, HashSet<String>>,
    ) -> EventCheck {
        let seq = stored.seq;
        let Some((ev_hash, link)) = &stored.chain else {
            return Err(("chain entry missing (event removed)".into(), None));
        };
        let (Some(ev_hash), Some(stored_link)) = (hash_of(ev_hash), hash_of(link)) else {
            return Err((
                format!("chain {seq}: entry is not two 32-byte hashes"),
                None,
            ));
        };
        let broken = |why: String| Err((why, Some(stored_link)));
        let plain = stored
            .record
            .as_ref()
            .map(|r| self.open_event(seq, r))
            .transpose()
            .map_err(|e| e.to_string());
        let event = match check_record(seq, prev, (ev_hash, stored_link), plain, purged)? {
            Some(e) => e,
            None => return Ok((stored_link, Checked::Purged)),
        };
        match event {
            Event::Ingest(c) => {
                holds.entry(seq).or_default().insert(c.sha256.clone());
                let sha = match content_key(seq, &c.sha256) {
                    Ok(sha) => sha,
                    Err(why) => return broken(why),
                };
                match self.blob(&sha).await {
                    Ok(Some(_)) => Ok((stored_link, Checked::Content)),
                    Ok(None) => broken(format!("item {seq}: content missing")),
                    Err(e) => broken(format!("item {seq}: {e}")),
                }
            }
            Event::Merge { item, capture } => {
                holds.entry(item).or_default().insert(capture.sha256);
                Ok((stored_link, Checked::Plain))
            }
            Event::Purge { events, .. } => Ok((stored_link, Checked::PurgeOf(events))),
        }
    }
}

//! The chain walk of [`ArchiveDb::verify`]: events, links, contents,
//! checkpoints, purge records, the content index, and every table's
//! block checksums.

use super::*;
use crate::store::archive::walk::{check_record, content_key, Checked, EventCheck, Walk};

impl ArchiveDb {
    /// Walks the chain from `from` (1 = all): every event decrypts and
    /// hashes to its chain entry, every link follows from the one before,
    /// every item's content decrypts and matches its SHA-256, every
    /// checkpoint is signed and names the link the chain has.
    #[cfg(test)]
    pub fn verify(&self, from: u64) -> Result<VerifyReport, ArchiveError> {
        self.verify_signed_by(from, None)
    }

    /// As [`ArchiveDb::verify`]; a checkpoint signed by any key but
    /// `expected_signer` (hex) is damage: a chain rewritten with the
    /// records' key alone cannot carry the archive's signatures.
    pub fn verify_signed_by(
        &self,
        from: u64,
        expected_signer: Option<&str>,
    ) -> Result<VerifyReport, ArchiveError> {
        let head_seq = self.head_seq();
        let mut report = VerifyReport {
            head_seq,
            ..Default::default()
        };
        let from = from.max(1);
        // The link before `from` is trusted as stored (a partial walk).
        let prev = if from == 1 {
            GENESIS
        } else {
            self.chain_entry(from - 1)
                .ok()
                .flatten()
                .map(|(_, l)| l)
                .unwrap_or(GENESIS)
        };
        // A checkpoint that does not read or parse is damage too.
        let mut checkpoints: std::collections::BTreeMap<u64, Checkpoint> = Default::default();
        for kv in self
            .db
            .iterator_cf(self.cf(CF_CHECKPOINTS), IteratorMode::Start)
        {
            match kv {
                Ok((k, v)) => {
                    let seq = seq_of(&k).unwrap_or(0);
                    match serde_json::from_slice(&v) {
                        Ok(cp) => {
                            checkpoints.insert(seq, cp);
                        }
                        Err(e) => report
                            .damaged
                            .push((seq, format!("checkpoint does not parse: {e}"))),
                    }
                }
                Err(e) => {
                    report
                        .damaged
                        .push((0, format!("checkpoints unreadable: {e}")));
                    break;
                }
            }
        }
        // Removed event records: each must be named by the purge event
        // the `purged` family points at, checked when the walk reaches it.
        let unconfirmed: std::collections::BTreeMap<u64, u64> = self
            .db
            .iterator_cf(self.cf(CF_PURGED), IteratorMode::Start)
            .filter_map(|kv| kv.ok())
            .filter_map(|(k, v)| Some((seq_of(&k)?, seq_of(&v)?)))
            .collect();
        let mut walk = Walk::new(report, prev, unconfirmed, checkpoints, expected_signer);
        for seq in from..=head_seq {
            let check = self.check_event(seq, &walk.prev, walk.purged(seq));
            walk.event(seq, check);
        }
        let (mut report, head) = walk.finish(from);
        if let Some(e) = &self.head_error {
            report
                .damaged
                .push((head_seq, format!("chain head unreadable: {e}")));
        }
        self.verify_items(&mut report);
        report.damaged.sort_by_key(|(s, _)| *s);
        // Every table read whole with its block checksums: damage the walk
        // above did not read (an index, a purged range) is found too. Listed
        // after the sequence numbers, so the first break stays the first
        // damaged event where there is one.
        for (table, why) in crate::store::rocksdb::scan::scan(&self.db, &ALL_CFS) {
            report.damaged.push((0, format!("table {table}: {why}")));
        }
        report.head = hex::encode(head);
        Ok(report)
    }

    /// Checks the content index: each entry names an item that holds that
    /// content (a wrong entry would merge new mail into the wrong item).
    fn verify_items(&self, report: &mut VerifyReport) {
        let known: std::collections::HashSet<u64> =
            report.damaged.iter().map(|(s, _)| *s).collect();
        for kv in self.db.iterator_cf(self.cf(CF_ITEMS), IteratorMode::Start) {
            // An unreadable table is reported by the scan.
            let Ok((sha, v)) = kv else { break };
            let seq = seq_of(&v);
            let holds = seq.is_some_and(|seq| {
                matches!(self.item(seq), Ok(Some(it)) if it.captures.iter().any(|(_, c)| {
                    hex::decode(&c.sha256).is_ok_and(|h| h[..] == sha[..])
                }))
            });
            let seq = seq.unwrap_or(0);
            if !holds && !known.contains(&seq) {
                report.damaged.push((
                    seq,
                    format!(
                        "items index: content {} is not in item {seq}",
                        hex::encode(&sha)
                    ),
                ));
            }
        }
    }

    fn chain_entry(&self, seq: u64) -> Result<Option<(Hash, Hash)>, ArchiveError> {
        let Some(v) = self.db.get_cf(self.cf(CF_CHAIN), seq_key(seq))? else {
            return Ok(None);
        };
        let ev: Option<Hash> = v.get(..32).and_then(|b| b.try_into().ok());
        let link: Option<Hash> = v.get(32..64).and_then(|b| b.try_into().ok());
        match (ev, link, v.len()) {
            (Some(e), Some(l), 64) => Ok(Some((e, l))),
            _ => Err(ArchiveError::Corrupt(
                format!("chain {seq}"),
                format!("{} bytes, not 64", v.len()),
            )),
        }
    }

    /// Checks event `seq` against the chain; returns its link and whether
    /// it brought content that was checked, or the problem and the stored
    /// link (to go on from).
    fn check_event(&self, seq: u64, prev: &Hash, purged: bool) -> EventCheck {
        let (ev_hash, stored_link) = match self.chain_entry(seq) {
            Ok(Some(e)) => e,
            Ok(None) => return Err(("chain entry missing (event removed)".into(), None)),
            Err(e) => return Err((e.to_string(), None)),
        };
        let broken = |why: String| Err((why, Some(stored_link)));
        let plain = self.event_plain(seq).map_err(|e| e.to_string());
        let event = match check_record(seq, prev, (ev_hash, stored_link), plain, purged)? {
            Some(e) => e,
            None => return Ok((stored_link, Checked::Purged)),
        };
        match event {
            Event::Ingest(c) => {
                let sha = match content_key(seq, &c.sha256) {
                    Ok(sha) => sha,
                    Err(why) => return broken(why),
                };
                match self.blob(&sha) {
                    Ok(Some(_)) => Ok((stored_link, Checked::Content)),
                    Ok(None) => broken(format!("item {seq}: content missing")),
                    Err(e) => broken(format!("item {seq}: {e}")),
                }
            }
            Event::Merge { .. } => Ok((stored_link, Checked::Plain)),
            Event::Purge { events, .. } => Ok((stored_link, Checked::PurgeOf(events))),
        }
    }
}

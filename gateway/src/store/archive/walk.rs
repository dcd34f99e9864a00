//! The part of an archive verify every backend shares: tallying each
//! event's check, carrying the chain link on, checking the checkpoints the
//! walk reaches and the purge records it confirms. A backend reads its
//! records and checks each event; this keeps the count.

use super::chain::{Checkpoint, Hash};
use super::VerifyReport;
use crate::model::archive::Event;
use std::collections::BTreeMap;

/// What checking one event found, when it was intact.
pub enum Checked {
    /// An ingest whose content was checked too.
    Content,
    /// A merge.
    Plain,
    /// A record a purge removed (confirmed when its purge event is reached).
    Purged,
    /// A purge event naming these removed records.
    PurgeOf(Vec<u64>),
}

/// One event's check: its link and what it was, or what is wrong with it
/// and the link stored for it (if one could be read).
pub type EventCheck = Result<(Hash, Checked), (String, Option<Hash>)>;

/// A verify walk in progress, in sequence order.
pub struct Walk<'a> {
    /// The report being filled.
    pub report: VerifyReport,
    /// The link the next event must follow.
    pub prev: Hash,
    /// Removed event records and the purge event that removed each, not
    /// yet confirmed by that purge event naming them.
    pub unconfirmed: BTreeMap<u64, u64>,
    checkpoints: BTreeMap<u64, Checkpoint>,
    expected_signer: Option<&'a str>,
}

impl<'a> Walk<'a> {
    /// A walk starting after link `prev`, checking `checkpoints` signed by
    /// `expected_signer` (any key when `None`).
    pub fn new(
        report: VerifyReport,
        prev: Hash,
        unconfirmed: BTreeMap<u64, u64>,
        checkpoints: BTreeMap<u64, Checkpoint>,
        expected_signer: Option<&'a str>,
    ) -> Self {
        Walk {
            report,
            prev,
            unconfirmed,
            checkpoints,
            expected_signer,
        }
    }

    /// Whether event `seq`'s record was removed by a purge.
    pub fn purged(&self, seq: u64) -> bool {
        self.unconfirmed.contains_key(&seq)
    }

    /// Counts event `seq`'s check, then checks a checkpoint taken at it.
    pub fn event(&mut self, seq: u64, check: EventCheck) {
        let report = &mut self.report;
        match check {
            Ok((link, checked)) => {
                match checked {
                    Checked::Content => report.blobs_ok += 1,
                    Checked::Purged => report.events_purged += 1,
                    Checked::PurgeOf(events) => {
                        for e in events {
                            if self.unconfirmed.get(&e) == Some(&seq) {
                                self.unconfirmed.remove(&e);
                            }
                        }
                    }
                    Checked::Plain => {}
                }
                report.events_ok += 1;
                self.prev = link;
            }
            Err((problem, link)) => {
                report.damaged.push((seq, problem));
                // Carry on from the stored link, so one damaged event is
                // reported once, not as every later link.
                self.prev = link.unwrap_or(self.prev);
                return;
            }
        }
        if let Some(cp) = self.checkpoints.get(&seq) {
            let signer_ok = self.expected_signer.is_none_or(|k| k == cp.public_key);
            match cp.verify(&self.prev) {
                Ok(()) if !signer_ok => report.damaged.push((
                    seq,
                    format!("checkpoint signed by another key ({})", cp.public_key),
                )),
                Ok(()) => {
                    report.checkpoints_ok += 1;
                    if !report.signers.contains(&cp.public_key) {
                        report.signers.push(cp.public_key.clone());
                    }
                }
                Err(e) => report.damaged.push((seq, e.to_string())),
            }
        }
    }

    /// Ends the walk from `from`: removed records no purge event named are
    /// damage. Returns the report and the link the walk ended on.
    pub fn finish(mut self, from: u64) -> (VerifyReport, Hash) {
        for (e, by) in std::mem::take(&mut self.unconfirmed) {
            if e >= from {
                self.report.damaged.push((
                    e,
                    format!("event record removed, but purge event {by} does not name it"),
                ));
            }
        }
        (self.report, self.prev)
    }
}

/// Checks event `seq`'s chain entry (`ev_hash`, `stored_link`) against the
/// link before it and its record's plaintext `plain`, read once: the event
/// when it is intact, `None` when a purge removed its record, or the
/// problem and the link to go on from.
pub fn check_record(
    seq: u64,
    prev: &Hash,
    (ev_hash, stored_link): (Hash, Hash),
    plain: Result<Option<Vec<u8>>, String>,
    purged: bool,
) -> Result<Option<Event>, (String, Option<Hash>)> {
    let broken = |why: String| Err((why, Some(stored_link)));
    let expected = super::chain::link(prev, seq, &ev_hash);
    if expected != stored_link {
        // If the event still hashes to its entry, only the link bytes
        // changed: go on from the link they should hold, so the next event
        // is not blamed too. Else the entry's hash changed: the stored link
        // is the original.
        let intact = matches!(&plain, Ok(Some(p)) if super::chain::sha256(p) == ev_hash);
        return Err((
            "chain link does not follow from the previous one".into(),
            Some(if intact { expected } else { stored_link }),
        ));
    }
    let plain = match plain {
        Ok(Some(p)) => p,
        Ok(None) if purged => return Ok(None),
        Ok(None) => return broken("event record missing".into()),
        Err(e) => return broken(e),
    };
    if super::chain::sha256(&plain) != ev_hash {
        return broken("event record does not match its chain entry".into());
    }
    match serde_json::from_slice(&plain) {
        Ok(e) => Ok(Some(e)),
        Err(e) => broken(format!("event does not parse: {e}")),
    }
}

/// The content key an ingest of item `seq` names, or why it is unusable.
pub fn content_key(seq: u64, sha256: &str) -> Result<Hash, String> {
    hex::decode(sha256)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| format!("item {seq}: bad content hash {sha256}"))
}

//! Group commit: one thread owns the synced writes. Sessions hand it their
//! batches; it gathers whatever is waiting, writes it as one RocksDB batch,
//! answers the writers that asked only for order ([`Durability::Ordered`]),
//! then syncs the log once (one fsync of the WAL) and answers the rest.
//! Nobody who asked for a synced write is answered before the sync that
//! covers them.

use crate::store::spool::{CommitError, CommitStats, Durability};
use rocksdb::{WriteBatch, WriteOptions, DB};
use std::collections::HashMap;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::oneshot;

/// The most commits gathered into one sync.
const MAX_GROUP: usize = 256;

/// One write the committer applies.
pub enum Op {
    /// Put `value` at `key` in column family `cf`.
    Put {
        /// Column family name.
        cf: &'static str,
        /// Key.
        key: Vec<u8>,
        /// Value.
        value: Vec<u8>,
    },
    /// Overwrite the existing value at `key` in `cf`; fails the batch when
    /// the key is absent, so a record deleted meanwhile is not brought back.
    Replace {
        /// Column family name.
        cf: &'static str,
        /// Key.
        key: Vec<u8>,
        /// Value.
        value: Vec<u8>,
    },
    /// Write nothing, but fail the batch when `key` is absent from `cf`
    /// (a record deleted meanwhile).
    Expect {
        /// Column family name.
        cf: &'static str,
        /// Key.
        key: Vec<u8>,
    },
    /// Delete `key` in `cf`.
    Delete {
        /// Column family name.
        cf: &'static str,
        /// Key.
        key: Vec<u8>,
    },
}

struct Request {
    ops: Vec<Op>,
    durability: Durability,
    done: oneshot::Sender<Result<(), CommitError>>,
}

/// Handle to the committer thread.
#[derive(Clone)]
pub struct Committer {
    tx: mpsc::Sender<Request>,
}

impl Committer {
    /// Starts the committer thread for `db`.
    pub fn start(db: Arc<DB>, stats: Arc<dyn CommitStats>) -> (Self, std::thread::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel::<Request>();
        let thread = std::thread::Builder::new()
            .name("spool-commit".into())
            .spawn(move || run(db, rx, stats))
            .expect("spawn spool committer");
        (Committer { tx }, thread)
    }

    /// Applies `ops` atomically; returns once they are as durable as
    /// `durability` asks (synced to disk, or written in order before the
    /// next sync).
    pub async fn commit(&self, ops: Vec<Op>, durability: Durability) -> Result<(), CommitError> {
        let (done, wait) = oneshot::channel();
        self.tx
            .send(Request {
                ops,
                durability,
                done,
            })
            .map_err(|_| CommitError::Stopped)?;
        wait.await.map_err(|_| CommitError::Stopped)?
    }
}

fn run(db: Arc<DB>, rx: mpsc::Receiver<Request>, stats: Arc<dyn CommitStats>) {
    // The log is synced by `flush_wal` below, once the writers that need
    // no sync have been answered.
    let mut unsynced = WriteOptions::default();
    unsynced.set_sync(false);
    while let Ok(first) = rx.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(r) => group.push(r),
                Err(_) => break,
            }
        }
        let mut batch = WriteBatch::default();
        // Each request is checked on its own, against the store as this
        // batch will leave it (`exists` overlays the keys earlier requests in
        // the group put or deleted): one bad request (an update racing an
        // admin's delete) fails alone instead of failing its whole group,
        // and a delete and an update in one group cannot resurrect a record.
        let mut exists: HashMap<(&'static str, Vec<u8>), bool> = HashMap::new();
        let mut verdicts: Vec<Result<(), CommitError>> = Vec::with_capacity(group.len());
        for r in group.iter_mut() {
            let ops = std::mem::take(&mut r.ops);
            let verdict = check(&db, &ops, &mut exists);
            if verdict.is_ok() {
                for op in ops {
                    apply(&db, &mut batch, op);
                }
            }
            verdicts.push(verdict);
        }
        let started = Instant::now();
        let written = db.write_opt(batch, &unsynced);
        let (ordered, synced): (Vec<_>, Vec<_>) = group
            .into_iter()
            .zip(verdicts)
            .partition(|(r, _)| r.durability == Durability::Ordered);
        answer(ordered, &written);
        if synced.is_empty() {
            continue;
        }
        let result = written.and_then(|()| db.flush_wal(true));
        stats.synced(started.elapsed().as_secs_f64(), synced.len());
        if let Err(e) = &result {
            tracing::error!(error = %e, "spool sync failed");
        }
        answer(synced, &result);
    }
}

/// Answers each request with its own check's verdict, or the write's error.
fn answer(requests: Vec<(Request, Result<(), CommitError>)>, written: &Result<(), rocksdb::Error>) {
    for (r, verdict) in requests {
        let answer = match written {
            Ok(()) => verdict,
            Err(e) => Err(CommitError::Sync(Box::new(e.clone()))),
        };
        let _ = r.done.send(answer);
    }
}

fn cf_of(op: &Op) -> &'static str {
    match op {
        Op::Put { cf, .. }
        | Op::Replace { cf, .. }
        | Op::Expect { cf, .. }
        | Op::Delete { cf, .. } => cf,
    }
}

/// Whether one request's ops may be applied, given what earlier requests in
/// the group did; records the effect of its ops in `exists` when they may.
fn check(
    db: &DB,
    ops: &[Op],
    exists: &mut HashMap<(&'static str, Vec<u8>), bool>,
) -> Result<(), CommitError> {
    let mut mine: HashMap<(&'static str, Vec<u8>), bool> = HashMap::new();
    for op in ops {
        let name = cf_of(op);
        let Some(cf) = db.cf_handle(name) else {
            return Err(CommitError::Sync(
                format!("spool has no column family {name}").into(),
            ));
        };
        let present = |key: &Vec<u8>| -> bool {
            let k = (name, key.clone());
            if let Some(v) = mine.get(&k).or_else(|| exists.get(&k)) {
                return *v;
            }
            matches!(db.get_pinned_cf(&cf, key), Ok(Some(_)))
        };
        match op {
            // The committer is the only writer of envelopes, so this check
            // cannot race: an accepted message is never overwritten.
            Op::Put {
                cf: super::CF_ENVELOPE,
                key,
                ..
            } if present(key) => {
                return Err(CommitError::EnvelopeExists(hex::encode(key)));
            }
            Op::Replace { key, .. } | Op::Expect { key, .. } if !present(key) => {
                return Err(CommitError::Gone(hex::encode(key)));
            }
            Op::Expect { .. } => {}
            Op::Put { key, .. } | Op::Replace { key, .. } => {
                mine.insert((name, key.clone()), true);
            }
            Op::Delete { key, .. } => {
                mine.insert((name, key.clone()), false);
            }
        }
    }
    exists.extend(mine);
    Ok(())
}

fn apply(db: &DB, batch: &mut WriteBatch, op: Op) {
    let cf = db.cf_handle(cf_of(&op)).expect("checked by check()");
    match op {
        Op::Put { key, value, .. } | Op::Replace { key, value, .. } => {
            batch.put_cf(&cf, key, value)
        }
        Op::Delete { key, .. } => batch.delete_cf(&cf, key),
        Op::Expect { .. } => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_checked_against_the_group_so_far() {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::store::rocksdb::open_writable(dir.path(), &super::super::ALL_CFS).unwrap();
        let env = super::super::CF_ENVELOPE;
        db.put_cf(db.cf_handle(env).unwrap(), b"k1", b"v").unwrap();
        let mut exists = HashMap::new();
        let delete = [Op::Delete {
            cf: env,
            key: b"k1".to_vec(),
        }];
        let update = [Op::Replace {
            cf: env,
            key: b"k1".to_vec(),
            value: b"v2".to_vec(),
        }];
        let expect = [Op::Expect {
            cf: env,
            key: b"k1".to_vec(),
        }];
        assert!(check(&db, &expect, &mut HashMap::new()).is_ok());
        // An update (or an expectation) after a delete in the same group
        // fails alone...
        assert!(check(&db, &delete, &mut exists).is_ok());
        assert!(check(&db, &update, &mut exists).is_err());
        assert!(check(&db, &expect, &mut exists).is_err());
        // ...and a new envelope under a key deleted earlier in the group is fine,
        // while one that already exists is refused.
        let put = |k: &[u8]| {
            [Op::Put {
                cf: env,
                key: k.to_vec(),
                value: b"v".to_vec(),
            }]
        };
        assert!(check(&db, &put(b"k1"), &mut exists).is_ok());
        assert!(check(&db, &put(b"k1"), &mut exists).is_err());
        let mut fresh = HashMap::new();
        assert!(check(&db, &update, &mut fresh).is_ok());
    }
}

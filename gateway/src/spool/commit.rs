//! Group commit: one thread owns the synced writes. Sessions hand it their
//! batches; it gathers whatever is waiting, writes it as one RocksDB batch
//! with `sync = true` (one fsync of the WAL), and only then answers every
//! waiting session. Nobody is answered before the sync that covers them.

use crate::admin::metrics::Metrics;
use rocksdb::{WriteBatch, WriteOptions, DB};
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
    /// Delete `key` in `cf`.
    Delete {
        /// Column family name.
        cf: &'static str,
        /// Key.
        key: Vec<u8>,
    },
    /// Delete keys in `[from, to)` in `cf`.
    DeleteRange {
        /// Column family name.
        cf: &'static str,
        /// First key.
        from: Vec<u8>,
        /// Key after the last.
        to: Vec<u8>,
    },
}

struct Request {
    ops: Vec<Op>,
    done: oneshot::Sender<Result<(), String>>,
}

/// Handle to the committer thread.
#[derive(Clone)]
pub struct Committer {
    tx: mpsc::Sender<Request>,
}

impl Committer {
    /// Starts the committer thread for `db`.
    pub fn start(db: Arc<DB>, metrics: Arc<Metrics>) -> (Self, std::thread::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel::<Request>();
        let thread = std::thread::Builder::new()
            .name("spool-commit".into())
            .spawn(move || run(db, rx, metrics))
            .expect("spawn spool committer");
        (Committer { tx }, thread)
    }

    /// Applies `ops` durably; returns once they are synced to disk.
    pub async fn commit(&self, ops: Vec<Op>) -> Result<(), String> {
        let (done, wait) = oneshot::channel();
        self.tx
            .send(Request { ops, done })
            .map_err(|_| "spool committer has stopped".to_string())?;
        wait.await
            .map_err(|_| "spool committer has stopped".to_string())?
    }
}

fn run(db: Arc<DB>, rx: mpsc::Receiver<Request>, metrics: Arc<Metrics>) {
    let mut sync = WriteOptions::default();
    sync.set_sync(true);
    while let Ok(first) = rx.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(r) => group.push(r),
                Err(_) => break,
            }
        }
        let mut batch = WriteBatch::default();
        let mut bad: Option<String> = None;
        for op in group.iter_mut().flat_map(|r| r.ops.drain(..)) {
            let name = match &op {
                Op::Put { cf, .. }
                | Op::Replace { cf, .. }
                | Op::Delete { cf, .. }
                | Op::DeleteRange { cf, .. } => *cf,
            };
            let Some(cf) = db.cf_handle(name) else {
                bad = Some(format!("spool has no column family {name}"));
                break;
            };
            match op {
                // The committer is the only writer of envelopes, so this check
                // cannot race: an accepted message is never overwritten.
                Op::Put {
                    cf: super::CF_ENVELOPE,
                    key,
                    ..
                } if matches!(db.get_pinned_cf(&cf, &key), Ok(Some(_))) => {
                    bad = Some(format!("envelope {} already exists", hex::encode(&key)));
                    break;
                }
                Op::Put { key, value, .. } => batch.put_cf(&cf, key, value),
                Op::Replace { key, .. } if !matches!(db.get_pinned_cf(&cf, &key), Ok(Some(_))) => {
                    bad = Some(format!("record {} no longer exists", hex::encode(&key)));
                    break;
                }
                Op::Replace { key, value, .. } => batch.put_cf(&cf, key, value),
                Op::Delete { key, .. } => batch.delete_cf(&cf, key),
                Op::DeleteRange { from, to, .. } => batch.delete_range_cf(&cf, from, to),
            }
        }
        let started = Instant::now();
        let result = match bad {
            Some(why) => Err(why),
            None => db.write_opt(batch, &sync).map_err(|e| e.to_string()),
        };
        metrics
            .fsync_seconds
            .observe(started.elapsed().as_secs_f64());
        metrics.commit_batch.observe(group.len() as f64);
        if let Err(e) = &result {
            tracing::error!(error = %e, "spool sync failed");
        }
        for r in group {
            let _ = r.done.send(result.clone());
        }
    }
}

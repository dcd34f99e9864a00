//! The spool in PostgreSQL (`spool_*` tables): chunks, envelope records,
//! inspections, sealed copies and finished records, each sealed with the
//! spool keyring (bound to its table, id and index) before it is written.
//!
//! Durability is PostgreSQL's: every promised write is one transaction
//! whose commit waits for the WAL flush (the server groups concurrent
//! commits into one flush). Chunks and inspections commit without waiting
//! (`synchronous_commit` off): the message's own commit flushes the WAL
//! past its chunks. Writes that must find their message lock its row first,
//! so a delete and an update never interleave.
//!
//! Chunks of messages never committed are swept on a handle's first use,
//! but only this node's (another node may be receiving a message now).
//! A message is committed owned by the node that accepted it, with a
//! lease (`cluster.rs` renews and takes leases); the node's own work
//! lists (`owned`, `uninspected`) hold only the messages it owns.

use super::{Database, PgError};
use crate::model::id::QueueId;
use crate::model::record::{InspectionRecord, QueuedMessage};
use crate::store::keyring::Keyring;
use crate::store::spool::{CommitError, Durability, SpoolError, SpoolStore, VerifyReport};
use async_trait::async_trait;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use tokio::sync::OnceCell;
use tokio_postgres::error::SqlState;

/// The spool of a cluster, as one node uses it.
pub struct PgSpool {
    db: Database,
    keys: Arc<Keyring>,
    /// The node whose orphan chunks this handle may sweep.
    node: String,
    /// How long the lease of a message this node accepts lasts unrenewed.
    lease: std::time::Duration,
    /// The highest id on disk when first used, before the sweep.
    highest_at_open: OnceCell<u64>,
}

impl PgSpool {
    /// The spool kept in `db`, sealed with `keys`, used by `node`.
    pub fn new(db: Database, keys: Arc<Keyring>, node: &str) -> Self {
        PgSpool {
            db,
            keys,
            node: node.to_string(),
            lease: std::time::Duration::from_secs(60),
            highest_at_open: OnceCell::new(),
        }
    }

    /// This spool with leases of `lease` on the messages it accepts.
    pub fn with_lease(mut self, lease: std::time::Duration) -> Self {
        self.lease = lease;
        self
    }

    /// Sweeps this node's orphan chunks once, remembering the highest id
    /// seen before (a message cut off still counts for new ids).
    async fn opened(&self) -> Result<u64, SpoolError> {
        self.highest_at_open
            .get_or_try_init(|| async {
                let highest = self.highest_now().await?;
                let client = self.client().await?;
                client
                    .execute(
                        "DELETE FROM spool_chunk c WHERE node = $1 AND NOT EXISTS \
                         (SELECT 1 FROM spool_message m WHERE m.id = c.id)",
                        &[&self.node],
                    )
                    .await
                    .map_err(db)?;
                Ok(highest)
            })
            .await
            .copied()
    }

    async fn client(&self) -> Result<deadpool_postgres::Client, SpoolError> {
        self.db.client().await.map_err(db)
    }

    async fn highest_now(&self) -> Result<u64, SpoolError> {
        let client = self.client().await?;
        let max: Option<i64> = client
            .query_one(
                "SELECT greatest((SELECT max(id) FROM spool_message), \
                 (SELECT max(id) FROM spool_chunk), (SELECT max(id) FROM spool_done))",
                &[],
            )
            .await
            .map_err(db)?
            .get(0);
        Ok(max.map_or(0, |m| m as u64))
    }

    fn seal_record(&self, table: &str, msg: &QueuedMessage) -> Result<Vec<u8>, SpoolError> {
        let json = serde_json::to_vec(msg)
            .map_err(|e| SpoolError::Corrupt(msg.id.to_string(), e.to_string()))?;
        Ok(self.keys.seal(&aad(table, msg.id, 0), &json))
    }

    fn open_record(
        &self,
        table: &str,
        id: QueueId,
        sealed: &[u8],
    ) -> Result<QueuedMessage, SpoolError> {
        let json = self.open(table, id, 0, sealed)?;
        serde_json::from_slice(&json)
            .map_err(|e| SpoolError::Corrupt(id.to_string(), e.to_string()))
    }

    fn open(&self, table: &str, id: QueueId, n: u32, sealed: &[u8]) -> Result<Vec<u8>, SpoolError> {
        self.keys
            .open(&aad(table, id, n), sealed)
            .map_err(|source| SpoolError::Key {
                id: id.to_string(),
                source,
            })
    }

    /// The first `count` chunks of message `id`, opened and joined.
    async fn chunks(&self, id: QueueId, count: u32) -> Result<Vec<u8>, SpoolError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT n, data FROM spool_chunk WHERE id = $1 AND n < $2 ORDER BY n",
                &[&key(id)?, &(count as i32)],
            )
            .await
            .map_err(db)?;
        // Numbers are unique and below `count`: all there means 0..count.
        if rows.len() != count as usize {
            return Err(SpoolError::Corrupt(
                id.to_string(),
                format!("{} of {count} chunks are there", rows.len()),
            ));
        }
        let mut body = Vec::new();
        for row in &rows {
            let n: i32 = row.get(0);
            body.extend(self.open("chunk", id, n as u32, row.get(1))?);
        }
        Ok(body)
    }
}

/// What a sealed value is bound to: its table, message and index.
fn aad(table: &str, id: QueueId, n: u32) -> Vec<u8> {
    format!("spool/{table}/{id}/{n}").into_bytes()
}

/// The id as the database keeps it (ids are milliseconds << 16: far below
/// 2^63, so the order is kept).
fn key(id: QueueId) -> Result<i64, SpoolError> {
    i64::try_from(id.0)
        .map_err(|_| SpoolError::Corrupt(id.to_string(), "id beyond the database's range".into()))
}

fn db(e: impl Into<PgError>) -> SpoolError {
    SpoolError::Db(Box::new(e.into()))
}

fn gone(id: QueueId) -> SpoolError {
    SpoolError::Commit(CommitError::Gone(id.to_string()))
}

/// For [`Durability::Ordered`], commits `tx` without waiting for its WAL
/// flush (PostgreSQL's asynchronous commit: in order, and flushed with the
/// next synchronous commit at the latest).
async fn relax(
    tx: &tokio_postgres::Transaction<'_>,
    durability: Durability,
) -> Result<(), SpoolError> {
    if durability == Durability::Ordered {
        tx.batch_execute("SET LOCAL synchronous_commit TO off")
            .await
            .map_err(db)?;
    }
    Ok(())
}

#[async_trait]
impl SpoolStore for PgSpool {
    async fn put_chunk(&self, id: QueueId, n: u32, bytes: &[u8]) -> Result<(), SpoolError> {
        self.opened().await?;
        let sealed = self.keys.seal(&aad("chunk", id, n), bytes);
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db)?;
        tx.batch_execute("SET LOCAL synchronous_commit TO OFF")
            .await
            .map_err(db)?;
        tx.execute(
            "INSERT INTO spool_chunk (id, n, node, data) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (id, n) DO UPDATE SET data = excluded.data",
            &[&key(id)?, &(n as i32), &self.node, &sealed],
        )
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)
    }

    async fn discard(&self, id: QueueId, chunks: u32) {
        let Ok(id) = key(id) else { return };
        if let Ok(client) = self.client().await {
            // Best effort: what is left goes with this node's next sweep.
            let _ = client
                .execute(
                    "DELETE FROM spool_chunk c WHERE id = $1 AND n < $2 AND NOT EXISTS \
                     (SELECT 1 FROM spool_message m WHERE m.id = c.id)",
                    &[&id, &(chunks as i32)],
                )
                .await;
        }
    }

    async fn commit(
        &self,
        msg: &QueuedMessage,
        last_chunk: Option<&[u8]>,
    ) -> Result<(), SpoolError> {
        self.opened().await?;
        let id = key(msg.id)?;
        let record = self.seal_record("message", msg)?;
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db)?;
        let added = tx
            .execute(
                "INSERT INTO spool_message (id, size, record, owner, lease_until) \
                 VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5::float8)) \
                 ON CONFLICT (id) DO NOTHING",
                &[
                    &id,
                    &(msg.size as i64),
                    &record,
                    &self.node,
                    &self.lease.as_secs_f64(),
                ],
            )
            .await
            .map_err(db)?;
        if added == 0 {
            return Err(SpoolError::Commit(CommitError::EnvelopeExists(
                msg.id.to_string(),
            )));
        }
        if let Some(bytes) = last_chunk {
            let n = msg.chunks.saturating_sub(1);
            let sealed = self.keys.seal(&aad("chunk", msg.id, n), bytes);
            tx.execute(
                "INSERT INTO spool_chunk (id, n, node, data) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (id, n) DO UPDATE SET data = excluded.data",
                &[&id, &(n as i32), &self.node, &sealed],
            )
            .await
            .map_err(db)?;
        }
        tx.commit().await.map_err(db)
    }

    async fn envelope(&self, id: QueueId) -> Result<Option<QueuedMessage>, SpoolError> {
        let client = self.client().await?;
        client
            .query_opt(
                "SELECT record FROM spool_message WHERE id = $1",
                &[&key(id)?],
            )
            .await
            .map_err(db)?
            .map(|r| self.open_record("message", id, r.get(0)))
            .transpose()
    }

    async fn envelopes(&self) -> Result<Vec<QueuedMessage>, SpoolError> {
        self.opened().await?;
        let client = self.client().await?;
        let rows = client
            .query("SELECT id, record FROM spool_message ORDER BY id", &[])
            .await
            .map_err(db)?;
        rows.iter()
            .map(|r| self.open_record("message", QueueId(r.get::<_, i64>(0) as u64), r.get(1)))
            .collect()
    }

    async fn owned(&self) -> Result<Vec<QueuedMessage>, SpoolError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT id, record FROM spool_message WHERE owner = $1 ORDER BY id",
                &[&self.node],
            )
            .await
            .map_err(db)?;
        rows.iter()
            .map(|r| self.open_record("message", QueueId(r.get::<_, i64>(0) as u64), r.get(1)))
            .collect()
    }

    async fn owns(&self, id: QueueId) -> Result<bool, SpoolError> {
        let client = self.client().await?;
        let owner: Option<String> = client
            .query_opt(
                "SELECT owner FROM spool_message WHERE id = $1",
                &[&key(id)?],
            )
            .await
            .map_err(db)?
            .map(|r| r.get(0));
        Ok(owner.is_some_and(|o| o == self.node))
    }

    async fn read_chunks(&self, msg: &QueuedMessage, count: u32) -> Result<Vec<u8>, SpoolError> {
        self.chunks(msg.id, count).await
    }

    async fn update(&self, msg: &QueuedMessage, durability: Durability) -> Result<(), SpoolError> {
        let record = self.seal_record("message", msg)?;
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db)?;
        relax(&tx, durability).await?;
        let changed = tx
            .execute(
                "UPDATE spool_message SET record = $2, size = $3 WHERE id = $1",
                &[&key(msg.id)?, &record, &(msg.size as i64)],
            )
            .await
            .map_err(db)?;
        if changed == 0 {
            return Err(gone(msg.id));
        }
        tx.commit().await.map_err(db)
    }

    async fn delete(&self, id: QueueId) -> Result<Option<QueuedMessage>, SpoolError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db)?;
        // Inspection and sealed copies go with the row (ON DELETE CASCADE).
        let row = tx
            .query_opt(
                "DELETE FROM spool_message WHERE id = $1 RETURNING record",
                &[&key(id)?],
            )
            .await
            .map_err(db)?;
        let Some(row) = row else {
            return Ok(None);
        };
        tx.execute("DELETE FROM spool_chunk WHERE id = $1", &[&key(id)?])
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        self.open_record("message", id, row.get(0)).map(Some)
    }

    async fn put_sealed(
        &self,
        msg: &QueuedMessage,
        copies: Vec<(u32, Vec<u8>)>,
    ) -> Result<(), SpoolError> {
        let id = key(msg.id)?;
        let record = self.seal_record("message", msg)?;
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db)?;
        let changed = tx
            .execute(
                "UPDATE spool_message SET record = $2, size = $3 WHERE id = $1",
                &[&id, &record, &(msg.size as i64)],
            )
            .await
            .map_err(db)?;
        if changed == 0 {
            return Err(gone(msg.id));
        }
        for (index, bytes) in copies {
            let sealed = self.keys.seal(&aad("sealed", msg.id, index), &bytes);
            tx.execute(
                "INSERT INTO spool_sealed (id, idx, data) VALUES ($1, $2, $3) \
                 ON CONFLICT (id, idx) DO UPDATE SET data = excluded.data",
                &[&id, &(index as i32), &sealed],
            )
            .await
            .map_err(db)?;
        }
        tx.commit().await.map_err(db)
    }

    async fn read_sealed(&self, msg: &QueuedMessage, index: u32) -> Result<Vec<u8>, SpoolError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT data FROM spool_sealed WHERE id = $1 AND idx = $2",
                &[&key(msg.id)?, &(index as i32)],
            )
            .await
            .map_err(db)?
            .ok_or_else(|| {
                SpoolError::Corrupt(
                    msg.id.to_string(),
                    format!("sealed copy for recipient {index} is missing"),
                )
            })?;
        self.open("sealed", msg.id, index, row.get(0))
    }

    async fn complete(
        &self,
        msg: &QueuedMessage,
        durability: Durability,
    ) -> Result<(), SpoolError> {
        let id = key(msg.id)?;
        let record = self.seal_record("done", msg)?;
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db)?;
        relax(&tx, durability).await?;
        let gone_now = tx
            .execute("DELETE FROM spool_message WHERE id = $1", &[&id])
            .await
            .map_err(db)?;
        if gone_now == 0 {
            return Err(gone(msg.id));
        }
        tx.execute("DELETE FROM spool_chunk WHERE id = $1", &[&id])
            .await
            .map_err(db)?;
        tx.execute(
            "INSERT INTO spool_done (id, record) VALUES ($1, $2) \
             ON CONFLICT (id) DO UPDATE SET record = excluded.record",
            &[&id, &record],
        )
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)
    }

    async fn done(&self, id: QueueId) -> Result<Option<QueuedMessage>, SpoolError> {
        let client = self.client().await?;
        client
            .query_opt("SELECT record FROM spool_done WHERE id = $1", &[&key(id)?])
            .await
            .map_err(db)?
            .map(|r| self.open_record("done", id, r.get(0)))
            .transpose()
    }

    async fn done_between(
        &self,
        from: QueueId,
        to: QueueId,
        limit: usize,
    ) -> Result<Vec<QueuedMessage>, SpoolError> {
        let client = self.client().await?;
        let to = i64::try_from(to.0).unwrap_or(i64::MAX);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = client
            .query(
                "SELECT id, record FROM spool_done WHERE id >= $1 AND id < $2 ORDER BY id LIMIT $3",
                &[&key(from)?, &to, &limit],
            )
            .await
            .map_err(db)?;
        rows.iter()
            .map(|r| self.open_record("done", QueueId(r.get::<_, i64>(0) as u64), r.get(1)))
            .collect()
    }

    async fn prune_done(&self, cutoff: QueueId) -> Result<usize, SpoolError> {
        let client = self.client().await?;
        let cutoff = i64::try_from(cutoff.0).unwrap_or(i64::MAX);
        let n = client
            .execute("DELETE FROM spool_done WHERE id < $1", &[&cutoff])
            .await
            .map_err(db)?;
        Ok(n as usize)
    }

    async fn put_inspection(
        &self,
        id: QueueId,
        record: &InspectionRecord,
    ) -> Result<(), SpoolError> {
        let json = serde_json::to_vec(record)
            .map_err(|e| SpoolError::Corrupt(id.to_string(), e.to_string()))?;
        let sealed = self.keys.seal(&aad("inspection", id, 0), &json);
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db)?;
        tx.batch_execute("SET LOCAL synchronous_commit TO OFF")
            .await
            .map_err(db)?;
        let put = tx
            .execute(
                "INSERT INTO spool_inspection (id, record) \
                 SELECT $1, $2 WHERE EXISTS (SELECT 1 FROM spool_message WHERE id = $1) \
                 ON CONFLICT (id) DO UPDATE SET record = excluded.record",
                &[&key(id)?, &sealed],
            )
            .await;
        match put {
            Ok(_) => tx.commit().await.map_err(db),
            // Deleted meanwhile: nothing to record it for.
            Err(e) if e.code() == Some(&SqlState::FOREIGN_KEY_VIOLATION) => Ok(()),
            Err(e) => Err(db(e)),
        }
    }

    async fn inspection(&self, id: QueueId) -> Result<Option<InspectionRecord>, SpoolError> {
        let client = self.client().await?;
        let Some(row) = client
            .query_opt(
                "SELECT record FROM spool_inspection WHERE id = $1",
                &[&key(id)?],
            )
            .await
            .map_err(db)?
        else {
            return Ok(None);
        };
        let json = self.open("inspection", id, 0, row.get(0))?;
        serde_json::from_slice(&json)
            .map(Some)
            .map_err(|e| SpoolError::Corrupt(id.to_string(), e.to_string()))
    }

    async fn uninspected(&self) -> Result<Vec<QueueId>, SpoolError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT m.id FROM spool_message m LEFT JOIN spool_inspection i USING (id) \
                 WHERE i.id IS NULL AND m.owner = $1 ORDER BY m.id",
                &[&self.node],
            )
            .await
            .map_err(db)?;
        Ok(rows
            .iter()
            .map(|r| QueueId(r.get::<_, i64>(0) as u64))
            .collect())
    }

    async fn totals(&self) -> Result<(u64, u64), SpoolError> {
        self.opened().await?;
        let client = self.client().await?;
        let row = client
            .query_one(
                "SELECT count(*), coalesce(sum(size), 0)::bigint FROM spool_message",
                &[],
            )
            .await
            .map_err(db)?;
        Ok((row.get::<_, i64>(0) as u64, row.get::<_, i64>(1) as u64))
    }

    async fn verify(&self) -> Result<VerifyReport, SpoolError> {
        let mut report = VerifyReport::default();
        let list = match self.envelopes().await {
            Ok(list) => list,
            Err(e) => {
                report.damaged.push(("queue".into(), e.to_string()));
                return Ok(report);
            }
        };
        for msg in list {
            match self.chunks(msg.id, msg.chunks).await {
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
        let client = self.client().await?;
        let orphans: i64 = client
            .query_one(
                "SELECT count(*) FROM spool_chunk c WHERE NOT EXISTS \
                 (SELECT 1 FROM spool_message m WHERE m.id = c.id)",
                &[],
            )
            .await
            .map_err(db)?
            .get(0);
        report.orphan_chunks = orphans as usize;
        Ok(report)
    }

    async fn highest_id(&self) -> Result<u64, SpoolError> {
        let at_open = self.opened().await?;
        Ok(self.highest_now().await?.max(at_open))
    }

    fn free_bytes(&self) -> std::io::Result<u64> {
        // The database's disk is the database's to watch (and to refuse
        // writes on, which fail the commit); nothing to measure here.
        Ok(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::postgres::test_server;

    #[tokio::test]
    async fn the_spool_tables_keep_the_promises_and_hold_no_clear_content() {
        let dir = tempfile::tempdir().unwrap();
        let keys = Arc::new(Keyring::load_or_create(&dir.path().join("spool.keys")).unwrap());
        let db = test_server::migrated().await;
        crate::store::conformance::spool_store(&|| {
            Box::new(PgSpool::new(db.reopen(), keys.clone(), "mx1"))
        })
        .await;

        let spool = PgSpool::new(db.clone(), keys.clone(), "mx1");
        let mut msg = crate::store::spool::testing::message();
        let body = b"Subject: lab results\r\n\r\nPatient 4711 is positive\r\n";
        msg.id = QueueId(7000);
        msg.size = body.len() as u64;
        msg.chunks = 1;
        msg.body_sha256 = hex::encode(Sha256::digest(body));
        msg.new_subject = Some("lab results".into());
        spool.commit(&msg, Some(body)).await.unwrap();
        let client = db.client().await.unwrap();
        for table in ["spool_chunk", "spool_message"] {
            let rows = client
                .query(&format!("SELECT t::text FROM {table} t"), &[])
                .await
                .unwrap();
            for r in rows {
                let text: String = r.get(0);
                let hexed = hex::encode("lab results");
                assert!(
                    !text.contains("lab results") && !text.contains(&hexed),
                    "{table} holds the subject in clear"
                );
                assert!(!text.contains(&hex::encode("Patient 4711")));
            }
        }

        // Another node's chunks in flight are not swept by this node.
        let other = PgSpool::new(db.reopen(), keys.clone(), "mx2");
        other
            .put_chunk(QueueId(8000), 0, b"in flight")
            .await
            .unwrap();
        // Each node works what it accepted: another node's message is in
        // the queue, not in this node's lists.
        let mut theirs = crate::store::spool::testing::message();
        theirs.id = QueueId(9000);
        theirs.chunks = 1;
        other.commit(&theirs, Some(b"x")).await.unwrap();
        assert!(other.owns(theirs.id).await.unwrap());
        assert!(!spool.owns(theirs.id).await.unwrap());
        assert!(spool.envelope(theirs.id).await.unwrap().is_some());
        assert!(spool
            .owned()
            .await
            .unwrap()
            .iter()
            .all(|m| m.id != theirs.id));
        assert!(!spool.uninspected().await.unwrap().contains(&theirs.id));
        assert_eq!(other.owned().await.unwrap().len(), 1);
        assert_eq!(other.uninspected().await.unwrap(), [theirs.id]);
        other.delete(theirs.id).await.unwrap();
        let again = PgSpool::new(db.reopen(), keys, "mx1");
        assert!(again.highest_id().await.unwrap() >= 8000);
        assert_eq!(
            again.verify().await.unwrap().orphan_chunks,
            1,
            "mx2's message being received stays"
        );
    }
}

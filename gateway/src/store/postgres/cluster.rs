//! The nodes of a cluster (`nodes`) and their claims on queued messages
//! (`spool_message.owner`, `lease_until`): registration (a node number for
//! the ids a node makes), heartbeats that renew a node's leases, the
//! take-over of messages whose node stopped renewing, and the operator's
//! retry reaching every node.
//!
//! Every time is the database's (`now()`), so a node whose clock is off
//! neither loses its leases early nor keeps another's.

use super::{Database, PgError};
use crate::model::id::{NodeNumber, QueueId};
use std::time::Duration;

/// Grace after a lease has run out before another node takes the message:
/// a node late with one renewal (a pause, a slow commit) keeps its work.
pub const TAKEOVER_GRACE: Duration = Duration::from_secs(10);

/// Key of the advisory lock held while a node is numbered ("nodes" in ASCII).
const NUMBERING: i64 = 0x006e_6f64_6573;

/// One node's claims and heartbeats in the shared database.
#[derive(Clone)]
pub struct PgCluster {
    db: Database,
    node: String,
    lease: Duration,
}

/// What registering found.
#[derive(Debug, Clone, Copy)]
pub struct Registered {
    /// The number this node's queue ids carry.
    pub number: NodeNumber,
    /// This name's last heartbeat before now, when it ran before (a recent
    /// one may be another process running under the same name).
    pub last_heartbeat: Option<chrono::DateTime<chrono::Utc>>,
}

/// What a heartbeat found.
#[derive(Debug, Clone, Copy)]
pub struct Beat {
    /// How often an operator has asked this node to retry all its mail
    /// (it retries when this moves).
    pub retry_asked: i64,
    /// Messages this node holds leases on.
    pub leases: u64,
}

/// A message taken from a node whose lease ran out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TakenOver {
    /// The message.
    pub id: QueueId,
    /// The node that held it ("" for none: queued before nodes had leases).
    pub from: String,
}

/// A node as `sealgate cluster ls` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct NodeRow {
    /// The node's name (`[cluster] node`).
    pub node: String,
    /// The number in its queue ids.
    pub number: i16,
    /// When it last started.
    pub started: chrono::DateTime<chrono::Utc>,
    /// Its last heartbeat.
    pub last_heartbeat: chrono::DateTime<chrono::Utc>,
    /// Its Sealgate version.
    pub version: String,
    /// The hash of its configuration, without what is each node's own.
    pub config_hash: String,
    /// Messages it holds unexpired leases on.
    pub leases: i64,
    /// The archive sequence its search index has followed to.
    pub index_seq: i64,
}

impl PgCluster {
    /// `node`'s handle on the cluster kept in `db`, leases lasting `lease`.
    pub fn new(db: Database, node: &str, lease: Duration) -> Self {
        PgCluster {
            db,
            node: node.to_string(),
            lease,
        }
    }

    /// This node's name.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Records this node's start (version, configuration hash) and its
    /// number: the one its name had, or the lowest free one.
    pub async fn register(&self, version: &str, config_hash: &str) -> Result<Registered, PgError> {
        let mut client = self.db.client().await?;
        let tx = client.transaction().await?;
        // Two nodes registering at once would pick the same free number.
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&NUMBERING])
            .await?;
        let before = tx
            .query_opt(
                "SELECT number, last_heartbeat FROM nodes WHERE node = $1",
                &[&self.node],
            )
            .await?;
        let (number, last_heartbeat) = match before {
            Some(row) => (row.get::<_, i16>(0), Some(row.get(1))),
            None => {
                let free = tx
                    .query_opt(
                        "SELECT n::smallint FROM generate_series(1, $1::int) n \
                         WHERE n NOT IN (SELECT number FROM nodes) ORDER BY n LIMIT 1",
                        &[&i32::from(NodeNumber::MAX.get())],
                    )
                    .await?
                    .ok_or(PgError::ClusterFull)?;
                (free.get(0), None)
            }
        };
        tx.execute(
            "INSERT INTO nodes (node, number, started, last_heartbeat, version, config_hash) \
             VALUES ($1, $2, now(), now(), $3, $4) \
             ON CONFLICT (node) DO UPDATE SET started = now(), last_heartbeat = now(), \
             version = excluded.version, config_hash = excluded.config_hash",
            &[&self.node, &number, &version, &config_hash],
        )
        .await?;
        tx.commit().await?;
        Ok(Registered {
            number: NodeNumber::try_from(i64::from(number))
                .map_err(|e| PgError::Damaged(e.to_string()))?,
            last_heartbeat,
        })
    }

    /// Says this node is alive (with its search index's place), renews its
    /// leases that are half gone, and reads what operators asked of it.
    pub async fn heartbeat(&self, index_seq: u64) -> Result<Beat, PgError> {
        let client = self.db.client().await?;
        let retry_asked: i64 = client
            .query_opt(
                "UPDATE nodes SET last_heartbeat = now(), index_seq = $2 WHERE node = $1 \
                 RETURNING retry_asked",
                &[&self.node, &(index_seq.min(i64::MAX as u64) as i64)],
            )
            .await?
            .map_or(0, |r| r.get(0));
        // Renewed once half gone, so each row is written twice a lease, not
        // on every beat.
        client
            .execute(
                "UPDATE spool_message SET lease_until = now() + make_interval(secs => $2::float8) \
                 WHERE owner = $1 AND lease_until < now() + make_interval(secs => $2::float8 / 2)",
                &[&self.node, &self.lease.as_secs_f64()],
            )
            .await?;
        let leases: i64 = client
            .query_one(
                "SELECT count(*) FROM spool_message WHERE owner = $1",
                &[&self.node],
            )
            .await?
            .get(0);
        Ok(Beat {
            retry_asked,
            leases: leases as u64,
        })
    }

    /// Takes up to `limit` messages whose lease ran out more than
    /// [`TAKEOVER_GRACE`] ago (their node stopped renewing: it died or lost
    /// the database), oldest first; rows another node is taking now are
    /// skipped, so two nodes never take the same message.
    pub async fn take_over(&self, limit: i64) -> Result<Vec<TakenOver>, PgError> {
        let client = self.db.client().await?;
        let rows = client
            .query(
                "WITH lapsed AS ( \
                   SELECT id, owner FROM spool_message \
                   WHERE lease_until < now() - make_interval(secs => $3::float8) \
                   ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED) \
                 UPDATE spool_message m SET owner = $1, \
                   lease_until = now() + make_interval(secs => $4::float8) \
                 FROM lapsed WHERE m.id = lapsed.id \
                 RETURNING m.id, lapsed.owner",
                &[
                    &self.node,
                    &limit,
                    &TAKEOVER_GRACE.as_secs_f64(),
                    &self.lease.as_secs_f64(),
                ],
            )
            .await?;
        let mut taken: Vec<TakenOver> = rows
            .iter()
            .map(|r| TakenOver {
                id: QueueId(r.get::<_, i64>(0) as u64),
                from: r.get(1),
            })
            .collect();
        taken.sort_by_key(|t| t.id);
        Ok(taken)
    }

    /// Removes the chunks of messages a node was receiving when it stopped
    /// for good (its heartbeat older than its lease and the grace): never
    /// committed, so never acknowledged; that node would sweep them itself
    /// only on its next start. How many went.
    pub async fn sweep_dead_chunks(&self) -> Result<u64, PgError> {
        let client = self.db.client().await?;
        Ok(client
            .execute(
                "DELETE FROM spool_chunk c WHERE c.node <> $1 \
                 AND c.node IN (SELECT node FROM nodes \
                   WHERE last_heartbeat < now() - make_interval(secs => $2::float8)) \
                 AND NOT EXISTS (SELECT 1 FROM spool_message m WHERE m.id = c.id)",
                &[&self.node, &(self.lease + TAKEOVER_GRACE).as_secs_f64()],
            )
            .await?)
    }

    /// Asks every node (or, for `Some(id)`, the node holding `id`) to
    /// retry its queued mail now; how many nodes were asked.
    pub async fn ask_retry(&self, id: Option<QueueId>) -> Result<u64, PgError> {
        let client = self.db.client().await?;
        let n = match id {
            None => {
                client
                    .execute("UPDATE nodes SET retry_asked = retry_asked + 1", &[])
                    .await?
            }
            Some(id) => {
                client
                    .execute(
                        "UPDATE nodes SET retry_asked = retry_asked + 1 WHERE node = \
                         (SELECT owner FROM spool_message WHERE id = $1)",
                        &[&(id.0 as i64)],
                    )
                    .await?
            }
        };
        Ok(n)
    }

    /// Makes this node the holder of queued message `id` (an operator's
    /// change made here, such as a quarantine release, is worked here);
    /// false when it is not queued.
    pub async fn claim(&self, id: QueueId) -> Result<bool, PgError> {
        let client = self.db.client().await?;
        let n = client
            .execute(
                "UPDATE spool_message SET owner = $2, \
                 lease_until = now() + make_interval(secs => $3::float8) WHERE id = $1",
                &[&(id.0 as i64), &self.node, &self.lease.as_secs_f64()],
            )
            .await?;
        Ok(n == 1)
    }

    /// Every registered node, by name.
    pub async fn all(&self) -> Result<Vec<NodeRow>, PgError> {
        nodes(&self.db).await
    }

    /// The node holding message `id`, if it is queued.
    pub async fn owner(&self, id: QueueId) -> Result<Option<String>, PgError> {
        let client = self.db.client().await?;
        Ok(client
            .query_opt(
                "SELECT owner FROM spool_message WHERE id = $1",
                &[&(id.0 as i64)],
            )
            .await?
            .map(|r| r.get(0)))
    }
}

/// Every node registered in `db`, by name.
pub async fn nodes(db: &Database) -> Result<Vec<NodeRow>, PgError> {
    let client = db.client().await?;
    let rows = client
        .query(
            "SELECT n.node, n.number, n.started, n.last_heartbeat, n.version, n.config_hash, \
               (SELECT count(*) FROM spool_message m \
                WHERE m.owner = n.node AND m.lease_until > now()), n.index_seq \
             FROM nodes n ORDER BY n.node",
            &[],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| NodeRow {
            node: r.get(0),
            number: r.get(1),
            started: r.get(2),
            last_heartbeat: r.get(3),
            version: r.get(4),
            config_hash: r.get(5),
            leases: r.get(6),
            index_seq: r.get(7),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::postgres::test_server;

    #[tokio::test]
    async fn nodes_get_distinct_numbers_and_keep_them() {
        let db = test_server::migrated().await;
        let lease = Duration::from_secs(60);
        let a = PgCluster::new(db.clone(), "mx1", lease);
        let b = PgCluster::new(db.reopen(), "mx2", lease);
        let (ra, rb) = tokio::join!(a.register("1", "h"), b.register("1", "h"));
        let (ra, rb) = (ra.unwrap(), rb.unwrap());
        assert_ne!(ra.number, rb.number, "two nodes, two numbers");
        assert!(ra.number > NodeNumber::SINGLE && rb.number > NodeNumber::SINGLE);
        assert!(ra.last_heartbeat.is_none(), "first start");
        let again = a.register("2", "h2").await.unwrap();
        assert_eq!(again.number, ra.number, "a name keeps its number");
        assert!(again.last_heartbeat.is_some());
        let rows = nodes(&db).await.unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(
            (rows[0].version.as_str(), rows[0].config_hash.as_str()),
            ("2", "h2")
        );

        // 63 numbers, then the database says the cluster is full.
        for i in 3..=63 {
            PgCluster::new(db.clone(), &format!("mx{i}"), lease)
                .register("1", "h")
                .await
                .unwrap();
        }
        let full = PgCluster::new(db.clone(), "mx64", lease)
            .register("1", "h")
            .await
            .unwrap_err();
        assert!(matches!(full, PgError::ClusterFull), "{full}");
    }

    /// A queued message owned by `node` whose lease ran out `ago` seconds
    /// ago (negative: still running that long).
    async fn queued(db: &Database, id: i64, node: &str, ago: f64) {
        db.client()
            .await
            .unwrap()
            .execute(
                "INSERT INTO spool_message (id, size, record, owner, lease_until) \
                 VALUES ($1, 0, '\\x00', $2, now() - make_interval(secs => $3::float8))",
                &[&id, &node, &ago],
            )
            .await
            .unwrap();
    }

    async fn lease_left(db: &Database, id: i64) -> f64 {
        db.client()
            .await
            .unwrap()
            .query_one(
                "SELECT extract(epoch FROM lease_until - now())::float8 FROM spool_message \
                 WHERE id = $1",
                &[&id],
            )
            .await
            .unwrap()
            .get(0)
    }

    #[tokio::test]
    async fn leases_are_renewed_by_their_node_and_taken_only_once_lapsed() {
        let db = test_server::migrated().await;
        let lease = Duration::from_secs(60);
        let a = PgCluster::new(db.clone(), "mx1", lease);
        let b = PgCluster::new(db.reopen(), "mx2", lease);
        a.register("1", "h").await.unwrap();
        b.register("1", "h").await.unwrap();
        // mx1's: one nearly run out (renewed), one fresh (left alone).
        queued(&db, 1, "mx1", -5.0).await;
        queued(&db, 2, "mx1", -55.0).await;
        // mx3 died: one lapsed past the grace, one within it.
        queued(&db, 3, "mx3", 11.0).await;
        queued(&db, 4, "mx3", 5.0).await;
        // Queued before leases: no owner, lapsed.
        queued(&db, 5, "", 1e6).await;

        let beat = a.heartbeat(42).await.unwrap();
        assert_eq!(beat.leases, 2);
        assert!(lease_left(&db, 1).await > 55.0, "renewed once half gone");
        assert!(
            lease_left(&db, 2).await < 56.0,
            "a fresh lease is not rewritten"
        );

        // Two nodes take at once: each lapsed message goes to exactly one.
        let (ta, tb) = tokio::join!(a.take_over(10), b.take_over(10));
        let mut all: Vec<TakenOver> = ta.unwrap().into_iter().chain(tb.unwrap()).collect();
        all.sort_by_key(|t| t.id);
        let ids: Vec<u64> = all.iter().map(|t| t.id.0).collect();
        assert_eq!(ids, [3, 5], "past lease + grace only, each once");
        assert_eq!(all[0].from, "mx3");
        assert_eq!(all[1].from, "");
        assert!(
            a.take_over(10).await.unwrap().is_empty(),
            "taken leases are fresh"
        );
        let rows = a.all().await.unwrap();
        let mx1 = rows.iter().find(|r| r.node == "mx1").unwrap();
        assert_eq!(mx1.index_seq, 42);

        // A batch is bounded.
        for id in 10..15 {
            queued(&db, id, "mx3", 60.0).await;
        }
        assert_eq!(b.take_over(3).await.unwrap().len(), 3);
        assert_eq!(b.take_over(3).await.unwrap().len(), 2);

        // Retry asks: every node, or the holder of one message.
        let before = a.heartbeat(0).await.unwrap().retry_asked;
        assert_eq!(b.ask_retry(None).await.unwrap(), 2);
        assert_eq!(a.heartbeat(0).await.unwrap().retry_asked, before + 1);
        assert_eq!(b.ask_retry(Some(QueueId(1))).await.unwrap(), 1);
        assert_eq!(a.heartbeat(0).await.unwrap().retry_asked, before + 2);
        assert_eq!(b.heartbeat(0).await.unwrap().retry_asked, 1);

        // Chunks a dead node was receiving go; a live node's stay.
        let client = db.client().await.unwrap();
        for (id, node) in [(100i64, "mx3"), (101, "mx2"), (102, "ghost")] {
            client
                .execute(
                    "INSERT INTO spool_chunk (id, n, node, data) VALUES ($1, 0, $2, '\\x00')",
                    &[&id, &node],
                )
                .await
                .unwrap();
        }
        client
            .execute(
                "INSERT INTO nodes (node, number, started, last_heartbeat, version, config_hash) \
                 VALUES ('mx3', 60, now() - interval '1 hour', now() - interval '1 hour', '1', 'h') \
                 ON CONFLICT (node) DO UPDATE SET last_heartbeat = excluded.last_heartbeat",
                &[],
            )
            .await
            .unwrap();
        assert_eq!(a.sweep_dead_chunks().await.unwrap(), 1, "mx3's only");
        let left: i64 = client
            .query_one("SELECT count(*) FROM spool_chunk", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(left, 2, "a live node's and an unknown node's stay");

        // A claim moves a message to the claiming node.
        assert!(b.claim(QueueId(1)).await.unwrap());
        assert_eq!(a.owner(QueueId(1)).await.unwrap().as_deref(), Some("mx2"));
        assert!(!b.claim(QueueId(999)).await.unwrap(), "not queued");
    }
}

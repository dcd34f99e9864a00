//! The audit log in the `audit_log` table: each entry as the JSON line the
//! file backend would write, naming the SHA-256 of the line before. An
//! append locks `audit_head`'s one row in its transaction, so appends from
//! every node are serialised and the chain never forks; the head also
//! names the last entry, so `verify` finds entries cut from the end.

use super::{Database, PgError};
use crate::store::audit_log::{verify_lines, Actor, AuditLog, AuditRecord, AuditReport};
use crate::store::BackendError;
use async_trait::async_trait;
use sha2::{Digest, Sha256};

/// The audit log of a cluster.
pub struct PgAudit(Database);

impl PgAudit {
    /// The audit log kept in `db`.
    pub fn new(db: Database) -> Self {
        PgAudit(db)
    }

    async fn append_line(
        &self,
        actor: Actor,
        action: &str,
        id: &str,
        detail: &str,
    ) -> Result<(), PgError> {
        let mut client = self.0.client().await?;
        let tx = client.transaction().await?;
        let head = tx
            .query_one("SELECT seq, hash FROM audit_head FOR UPDATE", &[])
            .await?;
        let (seq, prev): (i64, String) = (head.get(0), head.get(1));
        let record = AuditRecord {
            action: action.to_string(),
            actor: actor.as_str().to_string(),
            at: chrono::Utc::now().to_rfc3339(),
            detail: detail.to_string(),
            id: id.to_string(),
            prev,
        };
        let line = serde_json::to_string(&record).expect("an audit record serialises");
        let hash = hex::encode(Sha256::digest(line.as_bytes()));
        tx.execute(
            "INSERT INTO audit_log (seq, line) VALUES ($1, $2)",
            &[&(seq + 1), &line],
        )
        .await?;
        tx.execute(
            "UPDATE audit_head SET seq = $1, hash = $2",
            &[&(seq + 1), &hash],
        )
        .await?;
        // Durable at return: the commit waits for the WAL flush.
        tx.commit().await?;
        Ok(())
    }

    async fn lines(&self, tail: Option<usize>) -> Result<Vec<String>, PgError> {
        let client = self.0.client().await?;
        let limit = tail.map_or(i64::MAX, |n| i64::try_from(n).unwrap_or(i64::MAX));
        let rows = client
            .query(
                "SELECT line FROM (SELECT seq, line FROM audit_log ORDER BY seq DESC LIMIT $1) t
                 ORDER BY seq",
                &[&limit],
            )
            .await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    async fn walk(&self) -> Result<AuditReport, PgError> {
        let client = self.0.client().await?;
        // One snapshot for the lines and the head.
        let rows = client
            .query(
                "SELECT (SELECT string_agg(line, E'\\n' ORDER BY seq) FROM audit_log),
                        (SELECT count(*) FROM audit_log), seq, hash FROM audit_head",
                &[],
            )
            .await?;
        let row = &rows[0];
        let text: Option<String> = row.get(0);
        let text = text.unwrap_or_default();
        let mut report = verify_lines(text.as_bytes());
        let (count, head_seq, head_hash): (i64, i64, String) = (row.get(1), row.get(2), row.get(3));
        if report.first_broken.is_none() {
            let last = text.rsplit('\n').next().unwrap_or("");
            let last_hash = if text.is_empty() {
                "genesis".to_string()
            } else {
                hex::encode(Sha256::digest(last.as_bytes()))
            };
            if head_seq != count || head_hash != last_hash {
                report.first_broken = Some((
                    count as usize + 1,
                    "the head names an entry that is not there (entries removed from the end)"
                        .into(),
                ));
            }
        }
        Ok(report)
    }
}

fn error(e: PgError) -> BackendError {
    BackendError::new("audit log", e)
}

#[async_trait]
impl AuditLog for PgAudit {
    async fn append(
        &self,
        actor: Actor,
        action: &str,
        id: &str,
        detail: &str,
    ) -> Result<(), BackendError> {
        self.append_line(actor, action, id, detail)
            .await
            .map_err(error)
    }

    async fn read(&self, tail: Option<usize>) -> Result<Vec<AuditRecord>, BackendError> {
        Ok(self
            .lines(tail)
            .await
            .map_err(error)?
            .iter()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect())
    }

    async fn verify(&self) -> Result<AuditReport, BackendError> {
        self.walk().await.map_err(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::postgres::test_server;

    #[tokio::test]
    async fn the_audit_table_keeps_the_promises() {
        let db = test_server::migrated().await;
        crate::store::conformance::audit_log(&|| Box::new(PgAudit::new(db.reopen()))).await;
    }

    #[tokio::test]
    async fn appends_from_two_nodes_at_once_make_one_chain() {
        let db = test_server::migrated().await;
        let node = |n: usize| {
            let log = PgAudit::new(db.reopen());
            tokio::spawn(async move {
                for i in 0..25 {
                    log.append(Actor::Gateway, "node.event", &format!("{n}-{i}"), "")
                        .await
                        .unwrap();
                }
            })
        };
        let (a, b) = (node(1), node(2));
        a.await.unwrap();
        b.await.unwrap();
        let log = PgAudit::new(db.reopen());
        let r = log.verify().await.unwrap();
        assert_eq!((r.lines_ok, r.first_broken), (50, None), "no fork");
        let mut prevs: Vec<String> = log
            .read(None)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.prev)
            .collect();
        prevs.sort();
        prevs.dedup();
        assert_eq!(prevs.len(), 50, "no two entries chain to the same one");
    }

    #[tokio::test]
    async fn an_edit_and_a_cut_tail_are_found() {
        let db = test_server::migrated().await;
        let log = PgAudit::new(db.clone());
        for i in 0..4 {
            log.append(Actor::Cli, "test.action", &i.to_string(), "")
                .await
                .unwrap();
        }
        let client = db.client().await.unwrap();
        client
            .execute(
                "UPDATE audit_log SET line = replace(line, '\"id\":\"1\"', '\"id\":\"9\"') \
                 WHERE seq = 2",
                &[],
            )
            .await
            .unwrap();
        assert_eq!(
            log.verify().await.unwrap().first_broken.map(|(n, _)| n),
            Some(3),
            "the entry after the edit no longer follows"
        );
        client
            .execute("DELETE FROM audit_log WHERE seq >= 2", &[])
            .await
            .unwrap();
        let r = log.verify().await.unwrap();
        assert_eq!(r.lines_ok, 1);
        assert_eq!(r.first_broken.map(|(n, _)| n), Some(2), "cut from the end");
    }
}

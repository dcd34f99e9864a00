//! How the stages are joined. Every running stage takes its work from a
//! [`Pipe`] and starts the same way: first the catch-up scan
//! ([`Pipe::backlog`]: the messages a previous run left that are ready for
//! it and that it has not done), then each id the stage before hands on.
//! Whether the stage before is done with a message is read from what that
//! stage stored in the spool (an inspection record, verdicts, sealed
//! copies), so after a restart every message is found where it was.

use super::{QueueId, QueuedMessage, Spool, SpoolError};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

/// How far the earlier stages must have taken a message before the stage
/// a pipe feeds may take it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Committed to the spool.
    Accepted,
    /// Its inspection record is stored.
    Inspected,
    /// Its verdicts are stored.
    Decided,
    /// Decided, and no recipient waits for a sealed copy any more.
    Sealed,
}

/// Whether a queued message is ready for a stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readiness {
    /// The earlier stages are done with it: the stage may take it.
    Ready,
    /// An earlier stage still has work on it (or it is gone): it comes
    /// down the pipe once that stage is done.
    Waiting,
}

/// The way into a stage: the ids the stage before hands on, and which of
/// the spool's messages count as handed on (for the scans a stage makes
/// itself: the catch-up on start, an operator's retry).
pub struct Pipe {
    /// Ids the stage before is done with, as it finishes them.
    pub input: UnboundedReceiver<QueueId>,
    after: Progress,
    spool: Spool,
}

impl Pipe {
    /// A pipe for messages that reached `after`, and its sending end (for
    /// the stage before, and anything else that hands it work).
    pub fn new(spool: &Spool, after: Progress) -> (UnboundedSender<QueueId>, Pipe) {
        let (tx, input) = unbounded_channel();
        let pipe = Pipe {
            input,
            after,
            spool: spool.clone(),
        };
        (tx, pipe)
    }

    /// The spool's own pipe: every message it commits from now on (the
    /// spool announces to one subscriber, the first stage).
    pub fn accepted(spool: &Spool) -> Pipe {
        Pipe {
            input: spool.subscribe(),
            after: Progress::Accepted,
            spool: spool.clone(),
        }
    }

    /// Whether queued message `id` is ready for the stage this pipe feeds.
    pub async fn ready(&self, id: QueueId) -> Readiness {
        match self.after {
            // No message read: the first stage's catch-up asks for every id.
            Progress::Accepted => Readiness::Ready,
            Progress::Inspected => self.inspected(id).await,
            Progress::Decided | Progress::Sealed => match self.spool.get(id).await {
                Ok(Some(msg)) => self.ready_message(&msg).await,
                _ => Readiness::Waiting,
            },
        }
    }

    /// Whether message `id`'s inspection record is stored.
    async fn inspected(&self, id: QueueId) -> Readiness {
        ready_if(matches!(self.spool.inspection(id).await, Ok(Some(_))))
    }

    /// Whether `msg`, as read from the spool, is ready for the stage.
    async fn ready_message(&self, msg: &QueuedMessage) -> Readiness {
        match self.after {
            Progress::Accepted => Readiness::Ready,
            Progress::Inspected => self.inspected(msg.id).await,
            Progress::Decided => ready_if(msg.decided),
            Progress::Sealed => ready_if(msg.decided && !msg.awaits_seal()),
        }
    }

    /// The catch-up scan a stage makes on start, before it reads
    /// [`Pipe::input`]: the queued messages ready for it for which `todo`
    /// (the stage's own "not done yet") holds, in queue order.
    pub async fn backlog(
        &self,
        todo: impl Fn(&QueuedMessage) -> bool,
    ) -> Result<Vec<QueuedMessage>, SpoolError> {
        let mut out = Vec::new();
        for m in self.spool.list().await? {
            if todo(&m) && self.ready_message(&m).await == Readiness::Ready {
                out.push(m);
            }
        }
        Ok(out)
    }
}

fn ready_if(done: bool) -> Readiness {
    match done {
        true => Readiness::Ready,
        false => Readiness::Waiting,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::address::Mailbox;
    use crate::model::verdict::{Seal, Verdict};
    use crate::spool::{Direction, InspectionRecord, Keyring, Submission, DSN_ORIGIN};
    use crate::telemetry::metrics::Metrics;
    use std::sync::Arc;

    #[tokio::test(flavor = "multi_thread")]
    async fn a_message_is_ready_once_the_stage_before_stored_its_work() {
        let dir = tempfile::tempdir().unwrap();
        let keys = Keyring::load_or_create(&dir.path().join("keys")).unwrap();
        let spool = Spool::open(&dir.path().join("spool"), keys, Arc::new(Metrics::new()))
            .await
            .unwrap();
        let id = spool
            .submit(Submission {
                from: "",
                to: vec![Mailbox::parse("c@d.test").unwrap()],
                origin: DSN_ORIGIN,
                direction: Direction::Outbound,
                hostname: "h",
                bytes: b"Subject: x\r\n\r\nhi\r\n",
            })
            .await
            .unwrap();
        let pipe = |after| Pipe::new(&spool, after).1;
        let ready = |after| async move { pipe(after).ready(id).await };
        assert_eq!(ready(Progress::Accepted).await, Readiness::Ready);
        for after in [Progress::Inspected, Progress::Decided, Progress::Sealed] {
            assert_eq!(ready(after).await, Readiness::Waiting, "{after:?}");
        }
        let record = InspectionRecord {
            inspected_at: chrono::Utc::now(),
            findings: Vec::new(),
            unscannable: Vec::new(),
            action: None,
            policy_hits: Vec::new(),
        };
        spool.put_inspection(id, &record).await.unwrap();
        assert_eq!(ready(Progress::Inspected).await, Readiness::Ready);
        // Decided with a PGP copy still to make: ready for seal, not for delivery.
        let mut msg = spool.get(id).await.unwrap().unwrap();
        msg.decided = true;
        msg.recipients[0].verdict = Some(Verdict::Deliver {
            seal: Seal::Pgp,
            escalated: true,
            why: Vec::new(),
            key: Some("k".into()),
            fallback: None,
        });
        spool.update(&msg).await.unwrap();
        assert_eq!(ready(Progress::Decided).await, Readiness::Ready);
        assert_eq!(ready(Progress::Sealed).await, Readiness::Waiting);
        let undecided = |m: &QueuedMessage| !m.decided;
        assert!(pipe(Progress::Decided)
            .backlog(undecided)
            .await
            .unwrap()
            .is_empty());
        assert_eq!(
            pipe(Progress::Decided)
                .backlog(|_| true)
                .await
                .unwrap()
                .len(),
            1
        );
        assert!(pipe(Progress::Sealed)
            .backlog(|_| true)
            .await
            .unwrap()
            .is_empty());
        msg.recipients[0].verdict = Some(Verdict::Block { reason: "r".into() });
        spool.update(&msg).await.unwrap();
        assert_eq!(ready(Progress::Sealed).await, Readiness::Ready);
        spool.delete(id).await.unwrap();
        assert_eq!(ready(Progress::Sealed).await, Readiness::Waiting);
    }
}

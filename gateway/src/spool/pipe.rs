//! How the stages are joined. Every running stage takes its work from a
//! [`Pipe`] and starts the same way: first the catch-up scan
//! ([`Pipe::backlog`]: the messages a previous run left that are ready for
//! it and that it has not done), then each id the stage before hands on
//! ([`Handoff::send`], taken with [`Pipe::next`]). Whether the stage before
//! is done with a message is read from what that stage stored in the spool
//! (an inspection record, verdicts, sealed copies), so after a restart
//! every message is found where it was.
//!
//! Every id handed on is counted while it waits for its stage
//! (`sealgate_stage_waiting_messages`), and timed twice: how long it
//! waited (`sealgate_stage_wait_seconds`) and how long the stage worked on
//! it ([`Taken`], `sealgate_stage_work_seconds`), so an operator sees which
//! stage is behind.

use super::{QueueId, QueuedMessage, Spool, SpoolError};
use prometheus::{Histogram, IntGauge};
use std::time::Instant;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

/// The stage a pipe feeds: the `stage` label of its metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// DLP inspection.
    Inspect,
    /// A verdict per recipient.
    Policy,
    /// Sealed copies and portal deposits.
    Seal,
    /// Delivery (and the archive, which delivery hands finished messages to).
    Deliver,
}

impl Stage {
    /// The stage's name, as its metrics' `stage` label.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Inspect => "inspect",
            Stage::Policy => "policy",
            Stage::Seal => "seal",
            Stage::Deliver => "deliver",
        }
    }
}

/// An id on its way to a stage, counted among the ids waiting for it until
/// the stage takes it or it is dropped (a stage stopped, a send refused).
struct Waiting {
    id: QueueId,
    since: Instant,
    gauge: IntGauge,
}

impl Waiting {
    /// Counts `id` as waiting on `gauge` from now.
    fn new(id: QueueId, gauge: &IntGauge) -> Waiting {
        gauge.inc();
        Waiting {
            id,
            since: Instant::now(),
            gauge: gauge.clone(),
        }
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        self.gauge.dec();
    }
}

/// The sending end of a [`Pipe`]: hands ids on to the stage it feeds,
/// stamped with the time and counted until that stage takes them.
#[derive(Clone)]
pub struct Handoff {
    tx: UnboundedSender<Waiting>,
    waiting: IntGauge,
}

impl Handoff {
    /// Hands `id` on; false when the stage has stopped (or never ran), and
    /// then it is not counted.
    pub fn send(&self, id: QueueId) -> bool {
        // Refused, the id comes back and is dropped: its count too.
        self.tx.send(Waiting::new(id, &self.waiting)).is_ok()
    }
}

/// An id a stage took from its pipe. The stage's work on it is timed
/// until it is dropped (or [`Taken::done`]), whether the stage handed it
/// on, dropped it or failed on it.
pub struct Taken {
    id: QueueId,
    started: Instant,
    work: Histogram,
}

impl Taken {
    /// The message's queue id.
    pub fn id(&self) -> QueueId {
        self.id
    }

    /// Ends the stage's work on it (as dropping it does).
    pub fn done(self) {}
}

impl Drop for Taken {
    fn drop(&mut self) {
        self.work.observe(self.started.elapsed().as_secs_f64());
    }
}

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
    /// Ids the stage before is done with, as it finishes them (dropped
    /// with the pipe, which uncounts those still waiting).
    input: UnboundedReceiver<Waiting>,
    after: Progress,
    spool: Spool,
    /// Time from hand-on to take, for this stage.
    wait: Histogram,
    /// Time from take to done, for this stage.
    work: Histogram,
}

impl Pipe {
    /// A pipe into `stage` for messages that reached `after`, and its
    /// sending end (for the stage before, and anything else that hands it
    /// work).
    pub fn new(spool: &Spool, after: Progress, stage: Stage) -> (Handoff, Pipe) {
        let (tx, input) = unbounded_channel();
        let m = &spool.shared.metrics;
        let label = [stage.name()];
        // Each series exists (at 0) from the start, before any traffic.
        let handoff = Handoff {
            tx,
            waiting: m.stage_waiting.with_label_values(&label),
        };
        let pipe = Pipe {
            input,
            after,
            spool: spool.clone(),
            wait: m.stage_wait_seconds.with_label_values(&label),
            work: m.stage_work_seconds.with_label_values(&label),
        };
        (handoff, pipe)
    }

    /// The spool's own pipe into `stage`: every message it commits from now
    /// on (the spool announces to one subscriber, the first stage).
    pub fn accepted(spool: &Spool, stage: Stage) -> Pipe {
        let (handoff, pipe) = Pipe::new(spool, Progress::Accepted, stage);
        spool.subscribe(handoff);
        pipe
    }

    /// The next id handed on, once there is one; `None` once every sending
    /// end is gone (the gateway stops). Cancel-safe (`select!`).
    pub async fn next(&mut self) -> Option<Taken> {
        let waiting = self.input.recv().await?;
        self.wait.observe(waiting.since.elapsed().as_secs_f64());
        Some(Taken {
            id: waiting.id,
            started: Instant::now(),
            work: self.work.clone(),
        })
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

    /// The catch-up scan a stage makes on start, before it takes ids with
    /// [`Pipe::next`] (not counted nor timed): the queued messages ready for it for which `todo`
    /// (the stage's own "not done yet") holds, in queue order.
    pub async fn backlog(
        &self,
        todo: impl Fn(&QueuedMessage) -> bool,
    ) -> Result<Vec<QueuedMessage>, SpoolError> {
        let mut out = Vec::new();
        // Only this node's: in a cluster, another node works the rest.
        for m in self.spool.list_owned().await? {
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
    use crate::model::verdict::{Seal, Verdict};
    use crate::spool::{Durability, InspectionRecord, Keyring};
    use crate::telemetry::metrics::Metrics;
    use std::sync::Arc;

    #[tokio::test(flavor = "multi_thread")]
    async fn handed_on_ids_are_counted_while_they_wait_and_timed_twice() {
        let dir = tempfile::tempdir().unwrap();
        let keys = Keyring::load_or_create(&dir.path().join("keys")).unwrap();
        let metrics = Arc::new(Metrics::new());
        let spool = Spool::open(&dir.path().join("spool"), keys, metrics.clone())
            .await
            .unwrap();
        let waiting = |stage: &str| metrics.stage_waiting.with_label_values(&[stage]).get();
        let counts = |stage: &str| {
            (
                metrics
                    .stage_wait_seconds
                    .with_label_values(&[stage])
                    .get_sample_count(),
                metrics
                    .stage_work_seconds
                    .with_label_values(&[stage])
                    .get_sample_count(),
            )
        };
        let (to_seal, mut seal) = Pipe::new(&spool, Progress::Decided, Stage::Seal);
        // The series exist before any traffic.
        assert!(metrics
            .render()
            .contains("sealgate_stage_waiting_messages{stage=\"seal\"} 0"));
        let more = to_seal.clone();
        for id in 1..=3 {
            assert!(to_seal.send(QueueId(id)));
        }
        assert!(more.send(QueueId(4)));
        assert_eq!(waiting("seal"), 4);
        let mut held = Vec::new();
        for id in 1..=4 {
            let t = seal.next().await.unwrap();
            assert_eq!(t.id(), QueueId(id));
            assert_eq!(waiting("seal"), 4 - id as i64);
            held.push(t);
        }
        assert_eq!(counts("seal"), (4, 0));
        // Done explicitly, or dropped (a stage that failed on it): timed.
        held.pop().unwrap().done();
        drop(held);
        assert_eq!(counts("seal"), (4, 4));
        assert_eq!(waiting("seal"), 0);

        // A stage that stops: what waited for it, and what comes after,
        // is not left counted.
        assert!(to_seal.send(QueueId(5)));
        assert_eq!(waiting("seal"), 1);
        drop(seal);
        assert_eq!(waiting("seal"), 0);
        assert!(!to_seal.send(QueueId(6)));
        assert_eq!(waiting("seal"), 0);
        assert_eq!(counts("seal"), (4, 4));

        // The spool's announcements are counted for the first stage.
        let mut first = Pipe::accepted(&spool, Stage::Inspect);
        let id = submit_one(&spool).await;
        assert_eq!(waiting("inspect"), 1);
        // Catch-up is neither counted nor timed.
        assert_eq!(first.backlog(|_| true).await.unwrap().len(), 1);
        assert_eq!(waiting("inspect"), 1);
        let t = first.next().await.unwrap();
        assert_eq!((t.id(), waiting("inspect")), (id, 0));
        drop(t);
        assert_eq!(counts("inspect"), (1, 1));
    }

    use crate::spool::testing::submit_one;

    #[tokio::test(flavor = "multi_thread")]
    async fn a_message_is_ready_once_the_stage_before_stored_its_work() {
        let dir = tempfile::tempdir().unwrap();
        let keys = Keyring::load_or_create(&dir.path().join("keys")).unwrap();
        let spool = Spool::open(&dir.path().join("spool"), keys, Arc::new(Metrics::new()))
            .await
            .unwrap();
        let id = submit_one(&spool).await;
        let pipe = |after| Pipe::new(&spool, after, Stage::Seal).1;
        let ready = |after| async move { pipe(after).ready(id).await };
        assert_eq!(ready(Progress::Accepted).await, Readiness::Ready);
        for after in [Progress::Inspected, Progress::Decided, Progress::Sealed] {
            assert_eq!(ready(after).await, Readiness::Waiting, "{after:?}");
        }
        let record = InspectionRecord::clean();
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
        spool.update(&msg, Durability::Synced).await.unwrap();
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
        spool.update(&msg, Durability::Synced).await.unwrap();
        assert_eq!(ready(Progress::Sealed).await, Readiness::Ready);
        spool.delete(id).await.unwrap();
        assert_eq!(ready(Progress::Sealed).await, Readiness::Waiting);
    }
}

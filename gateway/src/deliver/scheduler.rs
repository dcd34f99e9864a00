//! The deliver stage's scheduler: keeps, per queued message, the time of
//! its next attempt and starts the attempt (`worker.rs`) when it falls due.
//! Messages arrive on the stage's pipe once sealed; on start the queue is
//! scanned for what a previous run left; an operator's retry comes over the
//! command channel; housekeeping closes idle connections, sets the queue
//! gauges and prunes finished records.

use super::worker::{next_due, Stage};
use crate::spool::pipe::{Pipe, Readiness, Taken};
use crate::spool::{QueueId, RecipientState};
use chrono::{DateTime, Utc};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

/// What an operator can ask of the running stage.
#[derive(Debug, Clone, Copy)]
pub enum Command {
    /// Try this message now.
    Retry(QueueId),
    /// Try every queued message now.
    RetryAll,
    /// Take over this message (from a node of the cluster whose lease ran
    /// out, or after the database was back): its next attempt when its
    /// recipients' retry schedule says.
    Adopt(QueueId),
}

/// Handle for sending [`Command`]s to the running stage.
pub type Commands = UnboundedSender<Command>;

/// Runs until `pipe` closes. The pipe brings ids of messages the earlier
/// stages are done with; on start the queue is scanned for messages a
/// previous run left (those not ready yet come down the pipe later).
pub async fn run(stage: Arc<Stage>, mut pipe: Pipe, mut commands: UnboundedReceiver<Command>) {
    let mut due: BTreeSet<(DateTime<Utc>, QueueId)> = BTreeSet::new();
    let mut when: HashMap<QueueId, DateTime<Utc>> = HashMap::new();
    let mut running: std::collections::HashSet<QueueId> = Default::default();
    // Ids an operator asked to retry now: their recipients' waits are ignored once.
    let mut forced: std::collections::HashSet<QueueId> = Default::default();
    let (done_tx, mut done_rx) = unbounded_channel::<(QueueId, Option<DateTime<Utc>>)>();
    // Ids taken from the pipe whose first attempt has not ended: the
    // stage's work on an id is timed from the take to the end of that
    // attempt (delivered, deferred or bounced; journaled if finished).
    let mut taken: HashMap<QueueId, Taken> = HashMap::new();

    fn schedule(
        due: &mut BTreeSet<(DateTime<Utc>, QueueId)>,
        when: &mut HashMap<QueueId, DateTime<Utc>>,
        id: QueueId,
        at: DateTime<Utc>,
    ) {
        if let Some(old) = when.insert(id, at) {
            due.remove(&(old, id));
        }
        due.insert((at, id));
    }

    match pipe.backlog(|_| true).await {
        Ok(list) => {
            let mut n = 0;
            for m in list {
                if let Some(at) = next_due(&m) {
                    schedule(&mut due, &mut when, m.id, at);
                    n += 1;
                }
            }
            if n > 0 {
                tracing::info!(
                    messages = n,
                    "delivery resumes for messages queued before this start"
                );
            }
        }
        Err(e) => tracing::error!(error = %e, "cannot list the queue for delivery"),
    }

    // Often enough to close idle connections near their idle_timeout.
    let mut housekeeping = tokio::time::interval(std::time::Duration::from_secs(1));
    housekeeping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut ticks: u64 = 0;
    loop {
        let sleep = match due.first() {
            Some((at, _)) => (*at - Utc::now()).to_std().unwrap_or_default(),
            None => std::time::Duration::from_secs(3600),
        };
        tokio::select! {
            t = pipe.next() => match t {
                Some(t) => {
                    let id = t.id();
                    schedule(&mut due, &mut when, id, Utc::now());
                    // Handed on twice: the earlier take's timing ends here.
                    taken.insert(id, t);
                }
                None => break,
            },
            Some(cmd) = commands.recv() => {
                let now = Utc::now();
                let ids: Vec<QueueId> = match cmd {
                    Command::Adopt(id) => {
                        if !running.contains(&id) {
                            if let Ok(Some(m)) = stage.spool.get(id).await {
                                if let Some(at) = next_due(&m) {
                                    schedule(&mut due, &mut when, id, at);
                                }
                            }
                        }
                        continue;
                    }
                    Command::Retry(id) => vec![id],
                    Command::RetryAll => stage.spool.list_owned().await.map(|l| l.iter().map(|m| m.id).collect()).unwrap_or_default(),
                };
                for id in ids {
                    if pipe.ready(id).await != Readiness::Ready {
                        continue;
                    }
                    forced.insert(id);
                    if !running.contains(&id) {
                        schedule(&mut due, &mut when, id, now);
                    }
                }
            }
            Some((id, next)) = done_rx.recv() => {
                running.remove(&id);
                // Taken while this attempt ran: the attempt covered it.
                taken.remove(&id);
                // Asked to retry while it ran: once more, now.
                let next = match (next, forced.contains(&id)) {
                    (Some(_), true) => Some(Utc::now()),
                    (n, _) => {
                        forced.remove(&id);
                        n
                    }
                };
                if let Some(at) = next {
                    schedule(&mut due, &mut when, id, at);
                }
            }
            _ = housekeeping.tick() => {
                ticks += 1;
                housekeep(&stage, when.len(), ticks % 30 == 1);
            }
            _ = tokio::time::sleep(sleep) => {
                let now = Utc::now();
                while let Some(&(at, id)) = due.first() {
                    if at > now {
                        break;
                    }
                    due.pop_first();
                    when.remove(&id);
                    if !running.insert(id) {
                        continue;
                    }
                    let (stage, done) = (stage.clone(), done_tx.clone());
                    let force = forced.remove(&id);
                    let timing = taken.remove(&id);
                    tokio::spawn(async move {
                        // A panic inside an attempt must not leave the id
                        // marked running (and so never scheduled again).
                        let next = tokio::spawn(async move { stage.attempt(id, force).await })
                            .await
                            .unwrap_or_else(|e| {
                                tracing::error!(id = %id, error = %e, "delivery attempt failed; retrying later");
                                Some(Utc::now() + chrono::Duration::minutes(5))
                            });
                        drop(timing);
                        let _ = done.send((id, next));
                    });
                }
            }
        }
    }
}

/// Queue gauges, idle connections, and pruning of finished records.
/// The queue scan (`full`) decrypts every envelope, so it runs less often
/// and off the async workers.
fn housekeep(stage: &Arc<Stage>, scheduled: usize, full: bool) {
    let s = stage.clone();
    tokio::spawn(async move { s.deliverer.pool.reap().await });
    if full {
        let s = stage.clone();
        // A scan of the whole queue: on the blocking pool.
        let rt = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || rt.block_on(scan(&s, scheduled)));
    }
}

/// Queue gauges and pruning of finished records.
async fn scan(stage: &Stage, scheduled: usize) {
    let spool = &stage.spool;
    let metrics = &stage.deliverer.metrics;
    if let Ok(list) = spool.list().await {
        let now = Utc::now();
        let oldest = list.iter().map(|m| m.received_at).min();
        metrics
            .queue_oldest_seconds
            .set(oldest.map_or(0, |t| (now - t).num_seconds().max(0)));
        let deferred = list
            .iter()
            .flat_map(|m| &m.recipients)
            .filter(|r| r.state == RecipientState::Deferred)
            .count();
        metrics.queue_deferred.set(deferred as i64);
    }
    let keep = chrono::Duration::from_std(stage.deliverer.config.delivery.keep_finished.0)
        .unwrap_or(chrono::Duration::days(7));
    let cutoff = QueueId::at(Utc::now() - keep);
    match spool.prune_done(cutoff).await {
        Ok(n) if n > 0 => tracing::info!(records = n, "finished message records pruned"),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "cannot prune finished message records"),
    }
    tracing::debug!(scheduled, "delivery scheduler");
}

//! A node of a cluster at work: registered in the shared database (its
//! number for the ids it makes; named when its configuration differs from
//! the other nodes'), its heartbeat renewing its leases, and the messages
//! of nodes whose leases ran out taken into its own pipeline at the stage
//! their recorded progress says.

use super::ServeError;
use crate::config::Config;
use crate::deliver::scheduler::{Command, Commands};
use crate::model::id::NodeNumber;
use crate::spool::pipe::{Handoff, Stage};
use crate::spool::{QueuedMessage, Spool};
use crate::store::postgres::cluster::PgCluster;
use crate::store::postgres::PgError;
use crate::telemetry::metrics::Metrics;
use std::sync::Arc;

/// This node's Sealgate version, as the other nodes see it.
const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Registers this node; its number for the ids it makes. Warns when the
/// name seems in use by a running process, and names the nodes whose
/// configuration differs from this one's.
pub(super) async fn register(config: &Config, nodes: &PgCluster) -> Result<NodeNumber, ServeError> {
    let hash = config.cluster_hash();
    let me = nodes
        .register(VERSION, &hash)
        .await
        .map_err(|e| ServeError::Stores(e.into()))?;
    if let Some(last) = me.last_heartbeat {
        let ago = chrono::Utc::now() - last;
        if ago < chrono::Duration::from_std(beat(config)).unwrap_or_default() * 2 {
            tracing::warn!(node = %nodes.node(), seconds = ago.num_seconds(), "this node name had a heartbeat moments ago: if another running gateway uses it, give each node its own [cluster] node");
        }
    }
    match nodes.all().await {
        Ok(all) => {
            let others: Vec<&str> = all
                .iter()
                .filter(|n| n.node != nodes.node() && n.config_hash != hash)
                .map(|n| n.node.as_str())
                .collect();
            if !others.is_empty() {
                tracing::warn!(node = %nodes.node(), config_hash = %hash, differs_from = ?others, "this node's configuration differs from other nodes' (`sealgate cluster ls` shows each hash)");
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot list the cluster's nodes"),
    }
    // This node's leases renewed before its stages list what it holds, so
    // no other node takes them meanwhile.
    nodes
        .heartbeat(0)
        .await
        .map_err(|e| ServeError::Stores(e.into()))?;
    tracing::info!(node = %nodes.node(), number = me.number.get(), config_hash = %hash, "cluster node registered");
    Ok(me.number)
}

/// How often a node says it is alive and renews its leases: a third of
/// the lease, at most every 5 s.
pub(super) fn beat(config: &Config) -> std::time::Duration {
    (config.cluster.lease.0 / 3).min(std::time::Duration::from_secs(5))
}

/// How many lapsed messages one take-over statement claims at most, so a
/// dead node's large queue is spread over the live nodes' beats.
const TAKEOVER_BATCH: i64 = 100;

/// Where a message this node takes up enters its pipeline.
pub(super) struct Entrances {
    /// Inspect (with DLP on).
    pub inspect: Option<Handoff>,
    /// Policy.
    pub policy: Handoff,
    /// Seal.
    pub seal: Handoff,
    /// Delivery's scheduler (`None` with delivery off).
    pub deliver: Option<Commands>,
}

/// The stage a message resumes at, from what the spool records of it.
async fn resume_at(spool: &Spool, msg: &QueuedMessage, dlp: bool) -> Stage {
    if dlp && !matches!(spool.inspection(msg.id).await, Ok(Some(_))) {
        Stage::Inspect
    } else if !msg.decided {
        Stage::Policy
    } else if msg.awaits_seal() {
        Stage::Seal
    } else {
        Stage::Deliver
    }
}

impl Entrances {
    /// Hands `msg` to the stage its recorded progress says; that stage.
    async fn enter(&self, spool: &Spool, msg: &QueuedMessage) -> Stage {
        let stage = resume_at(spool, msg, self.inspect.is_some()).await;
        match (stage, &self.inspect) {
            (Stage::Inspect, Some(inspect)) => {
                inspect.send(msg.id);
            }
            (Stage::Inspect | Stage::Policy, _) => {
                self.policy.send(msg.id);
            }
            (Stage::Seal, _) => {
                self.seal.send(msg.id);
            }
            (Stage::Deliver, _) => {
                if let Some(d) = &self.deliver {
                    let _ = d.send(Command::Adopt(msg.id));
                }
            }
        }
        stage
    }
}

/// Runs for as long as the gateway: every beat says this node is alive,
/// renews its leases, retries its mail when an operator asked (on any
/// node), takes over the messages of nodes whose leases ran out, and after
/// the database was unreachable hands this node's messages to their
/// stages again (work the stages dropped meanwhile is taken up).
pub(super) async fn run(
    config: Arc<Config>,
    nodes: Arc<PgCluster>,
    spool: Spool,
    metrics: Arc<Metrics>,
    entrances: Entrances,
) {
    let mut tick = tokio::time::interval(beat(&config));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut retry_seen: Option<i64> = None;
    let mut down = false;
    // Store failures already answered by handing this node's messages on.
    let mut failures_seen = spool.failures();
    loop {
        tick.tick().await;
        let indexed = metrics.archive_indexed.get().max(0) as u64;
        // A database that hangs (not refusing, not answering) counts as
        // away once a commit would have given up on it.
        let answer = tokio::time::timeout(config.store.commit_timeout.0, nodes.heartbeat(indexed))
            .await
            .unwrap_or_else(|_| Err(PgError::TimedOut("heartbeat")));
        let beat = match answer {
            Ok(b) => b,
            Err(e) => {
                // New transactions are deferred while the database is away.
                spool.store_failed();
                if !down {
                    tracing::error!(error = %e, "cluster heartbeat failed: the database is unreachable; new mail is deferred (4xx) until it is back");
                }
                down = true;
                continue;
            }
        };
        spool.store_ok();
        metrics.cluster_leases.set(beat.leases as i64);
        // A stage that failed on a message meanwhile dropped it: every
        // message goes to its stage again (stages skip what is done).
        let failures = spool.failures();
        if down || failures != failures_seen {
            down = false;
            failures_seen = failures;
            tracing::info!("the database answers again: resuming this node's messages");
            resume_all(&spool, &entrances).await;
        }
        if retry_seen.is_some_and(|seen| seen != beat.retry_asked) {
            tracing::info!("retry of every queued message asked through a node");
            if let Some(d) = &entrances.deliver {
                let _ = d.send(Command::RetryAll);
            }
        }
        retry_seen = Some(beat.retry_asked);
        take_over(&nodes, &spool, &metrics, &entrances).await;
        match nodes.sweep_dead_chunks().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                chunks = n,
                "removed chunks of messages a stopped node never accepted"
            ),
            Err(e) => tracing::warn!(error = %e, "cannot sweep a stopped node's chunks"),
        }
    }
}

/// Takes lapsed messages in batches until none is left; each goes to the
/// stage its progress says.
async fn take_over(nodes: &PgCluster, spool: &Spool, metrics: &Metrics, entrances: &Entrances) {
    loop {
        let taken = match nodes.take_over(TAKEOVER_BATCH).await {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(error = %e, "cannot take over lapsed messages");
                return;
            }
        };
        for t in &taken {
            let Ok(Some(msg)) = spool.get(t.id).await else {
                continue;
            };
            let stage = entrances.enter(spool, &msg).await;
            // Its own lease lapsed (this node could not renew it): resumed,
            // not taken from another node.
            if t.from == nodes.node() {
                continue;
            }
            metrics
                .cluster_takeovers
                .with_label_values(&[stage.name()])
                .inc();
            tracing::info!(id = %t.id, from = %t.from, stage = stage.name(), "took over a message whose node's lease ran out");
        }
        if (taken.len() as i64) < TAKEOVER_BATCH {
            return;
        }
    }
}

/// Hands every message this node holds to the stage its progress says
/// (stages skip what they find done).
async fn resume_all(spool: &Spool, entrances: &Entrances) {
    match spool.list_owned().await {
        Ok(list) => {
            for msg in &list {
                entrances.enter(spool, msg).await;
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot list this node's messages"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::verdict::{Seal, Verdict};
    use crate::spool::pipe::{Pipe, Progress};
    use crate::spool::{Durability, InspectionRecord, Keyring};

    /// The pipes' far ends, to see where an id went.
    struct Far {
        inspect: Pipe,
        policy: Pipe,
        seal: Pipe,
        deliver: tokio::sync::mpsc::UnboundedReceiver<Command>,
    }

    fn entrances(spool: &Spool, dlp: bool) -> (Entrances, Far) {
        let (to_inspect, inspect) = Pipe::new(spool, Progress::Accepted, Stage::Inspect);
        let (policy_in, policy) = Pipe::new(spool, Progress::Inspected, Stage::Policy);
        let (seal_in, seal) = Pipe::new(spool, Progress::Decided, Stage::Seal);
        let (tx, deliver) = tokio::sync::mpsc::unbounded_channel();
        let e = Entrances {
            inspect: dlp.then_some(to_inspect),
            policy: policy_in,
            seal: seal_in,
            deliver: Some(tx),
        };
        (
            e,
            Far {
                inspect,
                policy,
                seal,
                deliver,
            },
        )
    }

    /// Whether `pipe` has `id` waiting now.
    async fn holds(pipe: &mut Pipe, id: crate::spool::QueueId) -> bool {
        tokio::time::timeout(std::time::Duration::from_millis(50), pipe.next())
            .await
            .ok()
            .flatten()
            .is_some_and(|t| t.id() == id)
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_taken_message_enters_at_the_stage_its_record_says() {
        let dir = tempfile::tempdir().unwrap();
        let keys = Keyring::load_or_create(&dir.path().join("keys")).unwrap();
        let spool = Spool::open(&dir.path().join("spool"), keys, Arc::new(Metrics::new()))
            .await
            .unwrap();
        let id = crate::spool::testing::submit_one(&spool).await;
        let (e, mut far) = entrances(&spool, true);
        let (plain, mut far_plain) = entrances(&spool, false);
        let msg = || async { spool.get(id).await.unwrap().unwrap() };

        // Not inspected: inspect, or policy where DLP is off.
        assert_eq!(e.enter(&spool, &msg().await).await, Stage::Inspect);
        assert!(holds(&mut far.inspect, id).await);
        assert_eq!(plain.enter(&spool, &msg().await).await, Stage::Policy);
        assert!(holds(&mut far_plain.policy, id).await);

        // Inspected, undecided: policy.
        let record = InspectionRecord::clean();
        spool.put_inspection(id, &record).await.unwrap();
        assert_eq!(e.enter(&spool, &msg().await).await, Stage::Policy);
        assert!(holds(&mut far.policy, id).await);

        // Decided with a PGP copy to make: seal.
        let mut m = msg().await;
        m.decided = true;
        m.recipients[0].verdict = Some(Verdict::Deliver {
            seal: Seal::Pgp,
            escalated: true,
            why: Vec::new(),
            key: Some("k".into()),
            fallback: None,
        });
        spool.update(&m, Durability::Synced).await.unwrap();
        assert_eq!(e.enter(&spool, &msg().await).await, Stage::Seal);
        assert!(holds(&mut far.seal, id).await);

        // Nothing left to seal: delivery adopts it on its schedule.
        m.recipients[0].verdict = Some(Verdict::Deliver {
            seal: Seal::Tls,
            escalated: false,
            why: Vec::new(),
            key: None,
            fallback: None,
        });
        spool.update(&m, Durability::Synced).await.unwrap();
        assert_eq!(e.enter(&spool, &msg().await).await, Stage::Deliver);
        assert!(matches!(far.deliver.try_recv(), Ok(Command::Adopt(i)) if i == id));
        assert!(
            !holds(&mut far.inspect, id).await,
            "handed to one stage only"
        );
    }
}

//! The inspect stage as a running task: takes each accepted message from
//! the spool, inspects it, and writes the findings (ids and counts only)
//! back to the spool, then hands the id on to the next stage. On start it
//! first catches up on messages a previous run accepted but never inspected.

use super::{inspect, InspectLimits, Inspection};
use crate::spool::pipe::{Handoff, Pipe, Readiness, Taken};
use crate::spool::{FindingRecord, InspectionRecord, QueueId, Spool};
use crate::telemetry::metrics::Metrics;
use sealgate_dlp::RuleSet;
use std::sync::{Arc, RwLock};
use tokio::sync::Semaphore;

/// The rule set in force; replaced whole on a successful reload.
pub type SharedRules = Arc<RwLock<Arc<RuleSet>>>;

/// Turns an inspection into the record the spool keeps.
pub fn record(found: &Inspection) -> InspectionRecord {
    let mut unscannable: Vec<(String, usize)> = Vec::new();
    for u in &found.unscannable {
        let code = u.reason.code().to_string();
        match unscannable.iter_mut().find(|(c, _)| *c == code) {
            Some((_, n)) => *n += 1,
            None => unscannable.push((code, 1)),
        }
    }
    InspectionRecord {
        inspected_at: chrono::Utc::now(),
        findings: found
            .findings
            .iter()
            .map(|f| FindingRecord {
                detector: f.detector.as_str().to_string(),
                confidence: f.confidence.as_str().to_string(),
                count: f.count,
            })
            .collect(),
        unscannable,
        action: found.action.map(|a| a.as_str().to_string()),
        policy_hits: found
            .policy_hits
            .iter()
            .map(|h| format!("{}:{}", h.policy, h.rule))
            .collect(),
        extensions: found.extensions.clone(),
    }
}

/// What each inspection task needs.
struct Stage {
    spool: Spool,
    rules: SharedRules,
    limits: InspectLimits,
    metrics: Arc<Metrics>,
    next: Handoff,
}

/// Messages inspected at once per core: a message's spool read, decryption
/// and record write wait on the disk and the blocking pool, so with one per
/// core the cores idle between scans while mail queues for inspect.
const PER_CORE: usize = 4;

/// Runs until `pipe` closes (the gateway stops). Messages are inspected
/// concurrently, [`PER_CORE`] per core.
pub async fn run(
    spool: Spool,
    rules: SharedRules,
    limits: InspectLimits,
    metrics: Arc<Metrics>,
    mut pipe: Pipe,
    next: Handoff,
) {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let permits = Arc::new(Semaphore::new(cores * PER_CORE));
    let stage = Arc::new(Stage {
        spool,
        rules,
        limits,
        metrics,
        next,
    });
    // The catch-up scan: the spool lists uninspected ids without
    // decrypting every envelope, as `Pipe::backlog` would.
    let backlog = match stage.spool.uninspected().await {
        Ok(ids) => {
            let mut ready = Vec::with_capacity(ids.len());
            for id in ids {
                if pipe.ready(id).await == Readiness::Ready {
                    ready.push(id);
                }
            }
            Ok(ready)
        }
        Err(e) => Err(e),
    };
    match backlog {
        Ok(backlog) => {
            if !backlog.is_empty() {
                tracing::info!(
                    messages = backlog.len(),
                    "inspecting messages accepted before this start"
                );
            }
            for id in backlog {
                let Ok(permit) = permits.clone().acquire_owned().await else {
                    continue;
                };
                dispatch(&stage, permit, id, None);
            }
        }
        Err(e) => tracing::error!(error = %e, "cannot list uninspected messages"),
    }
    // A core free first, then the next id: ids wait in the pipe (counted)
    // rather than taken and held.
    while let Ok(permit) = permits.clone().acquire_owned().await {
        let Some(taken) = pipe.next().await else {
            break;
        };
        dispatch(&stage, permit, taken.id(), Some(taken));
    }
}

/// Inspects `id` on a task of its own, holding `permit` (and `taken`, the
/// stage's timing of it, when it came down the pipe) until done.
fn dispatch(
    stage: &Arc<Stage>,
    permit: tokio::sync::OwnedSemaphorePermit,
    id: QueueId,
    taken: Option<Taken>,
) {
    let stage = stage.clone();
    tokio::spawn(async move {
        stage.inspect_one(id).await;
        drop(taken);
        drop(permit);
    });
}

impl Stage {
    /// Inspects one queued message and records the result in the spool.
    async fn inspect_one(&self, id: QueueId) {
        let Stage {
            spool,
            rules,
            limits,
            metrics,
            next,
        } = self;
        let read = match spool.get(id).await {
            Ok(Some(m)) => spool.read_body(&m).await.map(Some),
            Ok(None) => Ok(None),
            Err(e) => Err(e),
        };
        let body = match read {
            Ok(Some(b)) => b,
            Ok(None) => return, // deleted meanwhile
            Err(e) => {
                tracing::error!(id = %id, error = %e, "cannot read message to inspect");
                return;
            }
        };
        let set = crate::locks::read(rules).clone();
        let limits = limits.clone();
        let started = std::time::Instant::now();
        // CPU-bound: off the async workers.
        let found = match tokio::task::spawn_blocking(move || inspect(&body, &set, &limits)).await {
            Ok(f) => f,
            Err(e) => {
                // Recorded as unscannable and passed on, so the message is
                // neither stuck nor re-inspected (and crashed on) forever;
                // policy treats it as it treats any unscannable part.
                tracing::error!(id = %id, error = %e, "inspection failed; recording the message as unscannable");
                metrics
                    .dlp_unscannable
                    .with_label_values(&["inspection_failed"])
                    .inc();
                let rec = InspectionRecord {
                    inspected_at: chrono::Utc::now(),
                    findings: Vec::new(),
                    unscannable: vec![("inspection_failed".into(), 1)],
                    action: None,
                    policy_hits: Vec::new(),
                    extensions: Vec::new(),
                };
                match spool.put_inspection(id, &rec).await {
                    Ok(()) => {
                        next.send(id);
                    }
                    Err(e) => tracing::error!(id = %id, error = %e, "cannot store inspection"),
                }
                return;
            }
        };
        metrics
            .inspect_seconds
            .observe(started.elapsed().as_secs_f64());
        let rec = record(&found);
        for f in &rec.findings {
            metrics
                .dlp_findings
                .with_label_values(&[&f.detector, &f.confidence])
                .inc();
        }
        for (code, n) in &rec.unscannable {
            metrics
                .dlp_unscannable
                .with_label_values(&[code])
                .inc_by(*n as u64);
        }
        let detectors: Vec<&str> = rec.findings.iter().map(|f| f.detector.as_str()).collect();
        tracing::info!(
            id = %id,
            detectors = ?detectors,
            unscannable = rec.unscannable.iter().map(|(_, n)| n).sum::<usize>(),
            action = rec.action.as_deref().unwrap_or("none"),
            "message inspected"
        );
        match spool.put_inspection(id, &rec).await {
            // The next stage may be off (delivery disabled); then nobody listens.
            Ok(()) => {
                next.send(id);
            }
            Err(e) => tracing::error!(id = %id, error = %e, "cannot store inspection"),
        }
    }
}

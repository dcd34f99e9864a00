//! One delivery attempt on one message, as the deliver stage's scheduler
//! (`scheduler.rs`) starts it when the message falls due: verdicts that
//! need no attempt are settled (blocked, held, quarantine expired), the due
//! recipients are delivered per domain, the outcomes are written back to
//! the spool (durably), DSNs are queued for bounces and long delays, and a
//! message whose every recipient is final is journaled and retired.

use super::attempt::{Deliverer, Outcome, Transport};
use super::client::RcptTo;
use super::dsn::{self, DsnAction, DsnInput, DsnRecipient};
use super::retry;
use crate::spool::{
    DeliveryEvidence, Direction, DsnState, Durability, QueueId, QueuedMessage, QueuedRecipient,
    RecipientState, Spool,
};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::Semaphore;

/// The stage's shared state.
pub struct Stage {
    pub(super) deliverer: Arc<Deliverer>,
    pub(super) spool: Spool,
    /// Domains being delivered to now, each with its own connection limit.
    domains: std::sync::Mutex<HashMap<String, Arc<Semaphore>>>,
    connections: Arc<Semaphore>,
    /// Attempts running at once: bounds the message bodies held in memory
    /// when a large queue falls due together (a restart, `retry --all`).
    attempts: Arc<Semaphore>,
    /// The archive: each finished message is journaled before it is retired.
    journal: Option<Arc<dyn Journaler>>,
}

/// What a journal call resolves to: what was archived (for the log), or
/// nothing when the archive's rules leave the message out.
pub type Journaled = Result<Option<String>, Box<dyn std::error::Error + Send + Sync>>;

/// Where a finished message goes before it is retired. The archive, a
/// later stage, implements it, so delivery hands messages on without
/// importing it.
pub trait Journaler: Send + Sync {
    /// Journals finished `msg` (bytes `raw`, DLP findings `dlp`; taken on a
    /// journal listener when `journal_listener`); durable when it resolves.
    fn journal_finished<'a>(
        &'a self,
        msg: &'a QueuedMessage,
        raw: Vec<u8>,
        dlp: Option<crate::model::record::InspectionRecord>,
        journal_listener: bool,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Journaled> + Send + 'a>>;
}

impl Stage {
    /// A stage delivering through `deliverer`, handing finished messages
    /// to `journal` (when the archive is on).
    pub fn new(deliverer: Deliverer, journal: Option<Arc<dyn Journaler>>) -> Arc<Self> {
        let max = deliverer.config.delivery.max_connections.max(1);
        Arc::new(Stage {
            spool: deliverer.spool.clone(),
            deliverer: Arc::new(deliverer),
            domains: Default::default(),
            connections: Arc::new(Semaphore::new(max)),
            attempts: Arc::new(Semaphore::new(max)),
            journal,
        })
    }

    /// Journals finished `msg` into the archive (its bytes `read` by this
    /// attempt, if it read them); false when that failed and the message
    /// must stay in the spool to be journaled later.
    async fn journal(&self, msg: &QueuedMessage, read: Option<Vec<u8>>) -> bool {
        let Some(journal) = &self.journal else {
            return true;
        };
        let body = match read {
            Some(b) => Ok(b),
            None => self.spool.read_body(msg).await,
        };
        let raw = match body {
            Ok(b) => b,
            Err(e) => {
                // The content is gone (its recipients were bounced for it)
                // and keeping the record would only repeat this; the
                // finished record stays in the spool's `done` family.
                tracing::error!(id = %msg.id, error = %e, "finished message unreadable: not journaled");
                return true;
            }
        };
        let dlp = self.spool.inspection(msg.id).await.ok().flatten();
        let report = self
            .deliverer
            .config
            .is_journal_listener(&msg.origin.listener);
        match journal.journal_finished(msg, raw, dlp, report).await {
            Ok(Some(j)) => {
                tracing::info!(id = %msg.id, archived = %j, "journaled");
                true
            }
            Ok(None) => true,
            Err(e) => {
                tracing::error!(id = %msg.id, error = %e, "cannot journal; the message stays queued and is tried again");
                false
            }
        }
    }

    fn domain_limit(&self, domain: &str) -> Arc<Semaphore> {
        let per = self
            .deliverer
            .config
            .delivery
            .max_connections_per_domain
            .max(1);
        let mut map = crate::locks::lock(&self.domains);
        // Forget idle domains so the map does not grow without bound.
        map.retain(|_, s| Arc::strong_count(s) > 1 || s.available_permits() < per);
        map.entry(domain.to_string())
            .or_insert_with(|| Arc::new(Semaphore::new(per)))
            .clone()
    }
}

/// True when a recipient still needs delivering (a quarantined one waits
/// for an admin, not for the scheduler).
fn pending(r: &QueuedRecipient) -> bool {
    !r.state.is_final() && r.state != RecipientState::Quarantined
}

/// A recipient whose TLS session failed: switches it to its verdict's
/// fallback (and returns `None`), or says what becomes of it: an escalated
/// one bounces, never plain; anyone else is retried.
fn tls_refused(r: &mut QueuedRecipient, ev: &mut DeliveryEvidence) -> Option<Outcome> {
    let reply = ev.reply.clone();
    if let Some(v) = &mut r.verdict {
        if v.fall_back(&reply) {
            r.tls_refused = Some(reply);
            return None;
        }
    }
    let escalated = matches!(
        r.verdict,
        Some(crate::model::verdict::Verdict::Deliver {
            escalated: true,
            seal: crate::model::verdict::Seal::Tls,
            ..
        })
    );
    if escalated {
        ev.reply = format!(
            "550 5.7.10 encryption required by policy, verified TLS not possible ({reply})"
        );
        Some(Outcome::Bounced)
    } else {
        Some(Outcome::Deferred)
    }
}

/// When `msg` next needs work, if ever.
pub(super) fn next_due(msg: &QueuedMessage) -> Option<DateTime<Utc>> {
    let owed = msg
        .recipients
        .iter()
        .any(|r| r.dsn == Some(DsnState::Pending));
    if owed || msg.recipients.iter().all(|r| r.state.is_final()) {
        return Some(Utc::now());
    }
    // A quarantined recipient's next_attempt is when it expires.
    msg.recipients
        .iter()
        .filter(|r| {
            pending(r) || (r.state == RecipientState::Quarantined && r.next_attempt.is_some())
        })
        .map(|r| r.next_attempt.unwrap_or_else(Utc::now))
        .min()
}

impl Stage {
    /// One attempt on message `id` (every pending recipient when `force`,
    /// else those due); returns when it next needs work.
    pub async fn attempt(self: &Arc<Self>, id: QueueId, force: bool) -> Option<DateTime<Utc>> {
        let _slot = self.attempts.clone().acquire_owned().await;
        // In a cluster another node may have taken it (this one was cut off
        // longer than its lease): that node delivers it now, not this one.
        match self.spool.owns(id).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::info!(id = %id, "another node holds this message now; not delivering it here");
                return None;
            }
            Err(e) => {
                tracing::warn!(id = %id, error = %e, "cannot tell whether this node still holds the message; trying later");
                return Some(Utc::now() + chrono::Duration::seconds(30));
            }
        }
        let mut msg = match self.spool.get(id).await {
            Ok(Some(m)) => m,
            Ok(None) => return None, // deleted or finished meanwhile
            Err(e) => {
                tracing::error!(id = %id, error = %e, "cannot read queued message");
                return Some(Utc::now() + chrono::Duration::minutes(5));
            }
        };
        if !msg.decided || msg.awaits_seal() {
            return None; // the policy and seal stages hand it on when done
        }
        let now = Utc::now();
        self.apply_verdicts(&mut msg);
        self.expire_quarantine(&mut msg, now).await;
        let due: Vec<usize> = (0..msg.recipients.len())
            .filter(|&i| {
                let r = &msg.recipients[i];
                pending(r) && (force || r.next_attempt.is_none_or(|t| t <= now))
            })
            .collect();
        let mut raw = None;
        if !due.is_empty() {
            match self.deliver_due(&mut msg, &due).await {
                Ok(bytes) => raw = Some(bytes),
                Err(e) => {
                    tracing::error!(id = %id, error = %e, "cannot read message to deliver");
                    let lifetime = self.deliverer.config.delivery.max_lifetime;
                    if !retry::expired(msg.received_at, lifetime, now) {
                        return Some(now + chrono::Duration::minutes(5));
                    }
                    // Unreadable until it expired: the sender is told, not left waiting.
                    self.bounce_unreadable(&mut msg, &due, &e.to_string());
                }
            }
        }
        self.note_delays(&mut msg);
        if let Err(e) = self.spool.update(&msg, Durability::Synced).await {
            // Deleted meanwhile (queue delete) or the spool failed; either
            // way nothing more is done now.
            tracing::warn!(id = %id, error = %e, "cannot record delivery results");
            return match self.spool.get(id).await {
                Ok(None) => None,
                _ => Some(now + chrono::Duration::minutes(1)),
            };
        }
        self.send_dsns(&mut msg).await;
        if msg.recipients.iter().all(|r| r.state.is_final())
            && !msg
                .recipients
                .iter()
                .any(|r| r.dsn == Some(DsnState::Pending))
        {
            if !self.journal(&msg, raw).await {
                return Some(Utc::now() + chrono::Duration::minutes(1));
            }
            // Not waiting for the disk: a finished message that comes back
            // after a crash is journaled again (idempotently) and retired again.
            match self.spool.complete(&msg, Durability::Ordered).await {
                Ok(()) => {
                    let secs = (Utc::now() - msg.received_at).num_milliseconds() as f64 / 1000.0;
                    self.deliverer
                        .metrics
                        .delivered_seconds
                        .observe(secs.max(0.0));
                    tracing::info!(id = %id, "message finished");
                    None
                }
                Err(e) => {
                    tracing::error!(id = %id, error = %e, "cannot retire finished message");
                    Some(Utc::now() + chrono::Duration::minutes(1))
                }
            }
        } else if msg
            .recipients
            .iter()
            .any(|r| r.dsn == Some(DsnState::Pending))
        {
            // A DSN could not be queued: try again soon, not in a tight loop.
            Some(Utc::now() + chrono::Duration::minutes(1))
        } else {
            next_due(&msg)
        }
    }

    /// Settles recipients whose verdict needs no delivery attempt: blocked
    /// ones bounce with the reason, quarantined ones are held, and a seal
    /// this build cannot make bounces rather than go out unsealed.
    fn apply_verdicts(&self, msg: &mut QueuedMessage) {
        use crate::model::verdict::{Seal, Verdict};
        if self
            .deliverer
            .config
            .is_journal_listener(&msg.origin.listener)
        {
            // A journal report is for the archive only.
            for r in msg.recipients.iter_mut() {
                if r.state == RecipientState::Queued {
                    r.state = RecipientState::Delivered;
                    r.evidence = Some(crate::spool::DeliveryEvidence::by_policy(
                        "250 2.0.0 journal report: archived, not relayed".into(),
                        self.deliverer.config.tls.default_level,
                    ));
                }
            }
            return;
        }
        for i in 0..msg.recipients.len() {
            let r = &msg.recipients[i];
            if r.state != RecipientState::Queued {
                continue;
            }
            let reply = match &r.verdict {
                Some(Verdict::Block { reason }) => format!("550 5.7.1 {reason}"),
                Some(Verdict::Deliver {
                    seal: Seal::Portal, ..
                }) => match &r.sealed {
                    Some(held) => {
                        let reply = format!(
                            "250 2.0.0 held in the escrow portal as {}; the recipient was sent a notice",
                            held.key
                        );
                        let evidence = self.policy_evidence(reply);
                        let r = &mut msg.recipients[i];
                        r.state = RecipientState::Delivered;
                        r.next_attempt = None;
                        r.evidence = Some(evidence);
                        continue;
                    }
                    None => "550 5.7.1 the message was not held in the escrow portal".to_string(),
                },
                Some(Verdict::Deliver {
                    seal: seal @ (Seal::Pgp | Seal::Smime),
                    ..
                }) if r.sealed.is_none() => format!(
                    "550 5.7.1 no {} copy was sealed for this recipient",
                    seal.as_str()
                ),
                Some(Verdict::Quarantine { reason }) => {
                    tracing::warn!(id = %msg.id, reason = %reason, "recipient quarantined by policy");
                    let expiry = self.deliverer.config.policy.quarantine_expiry.0;
                    let until = msg.received_at
                        + chrono::Duration::from_std(expiry).unwrap_or(chrono::Duration::days(30));
                    // The sender is told it is held (a "delayed" DSN naming
                    // the rule, never the data) and until when.
                    // Never to the sender of inbound mail: that would be
                    // backscatter, and tells an outsider what DLP saw.
                    let notice = msg.origin.direction == Direction::Outbound
                        && dsn::wanted(msg, &msg.recipients[i], &DsnAction::Delayed);
                    let reply = format!(
                        "452 4.7.1 {reason}; an administrator will review it, and it is returned to you if not released by {}",
                        until.to_rfc2822()
                    );
                    let evidence = self.policy_evidence(reply);
                    let r = &mut msg.recipients[i];
                    r.state = RecipientState::Quarantined;
                    r.next_attempt = Some(until);
                    r.evidence = Some(evidence);
                    if notice {
                        r.dsn = Some(DsnState::Pending);
                    }
                    continue;
                }
                _ => continue,
            };
            self.bounce(msg, i, reply);
        }
    }

    /// Bounces quarantined recipients nobody released in time.
    async fn expire_quarantine(&self, msg: &mut QueuedMessage, now: DateTime<Utc>) {
        for i in 0..msg.recipients.len() {
            let r = &msg.recipients[i];
            if r.state != RecipientState::Quarantined || r.next_attempt.is_none_or(|t| t > now) {
                continue;
            }
            let reason = match &r.verdict {
                Some(crate::model::verdict::Verdict::Quarantine { reason }) => reason.clone(),
                _ => "held by policy".to_string(),
            };
            crate::audit::note(
                self.deliverer.audit.as_ref(),
                crate::audit::Actor::Gateway,
                "quarantine.expire",
                &msg.id.to_string(),
                &format!("recipient {i}: {reason}"),
            )
            .await;
            let reply = format!("550 5.7.1 not released from quarantine in time ({reason})");
            if msg.origin.direction == Direction::Inbound {
                // Inbound mail is not bounced to an outside sender: it is dropped, recorded.
                let evidence = self.policy_evidence(reply);
                let r = &mut msg.recipients[i];
                r.state = RecipientState::Dropped;
                r.next_attempt = None;
                r.evidence = Some(evidence);
            } else {
                self.bounce(msg, i, reply);
            }
        }
    }

    /// Evidence for a decision made without contacting any server.
    fn policy_evidence(&self, reply: String) -> crate::spool::DeliveryEvidence {
        crate::spool::DeliveryEvidence::by_policy(reply, self.deliverer.config.tls.default_level)
    }

    /// Marks recipient `i` bounced with `reply`, owing a DSN if wanted.
    fn bounce(&self, msg: &mut QueuedMessage, i: usize, reply: String) {
        let owed = dsn::wanted(msg, &msg.recipients[i], &DsnAction::Failed);
        let evidence = self.policy_evidence(reply);
        let r = &mut msg.recipients[i];
        r.state = RecipientState::Bounced;
        r.next_attempt = None;
        r.dsn = Some(if owed {
            DsnState::Pending
        } else {
            DsnState::NotRequested
        });
        r.evidence = Some(evidence);
    }

    /// Bounces recipients whose message can no longer be read.
    fn bounce_unreadable(&self, msg: &mut QueuedMessage, due: &[usize], why: &str) {
        for &i in due {
            let reply = format!("554 5.3.0 the queued copy of the message cannot be read ({why})");
            self.bounce(msg, i, reply);
        }
    }

    /// Delivers the recipients at `due`, concurrently per domain, and
    /// records each outcome in `msg`; returns the message as received, for
    /// the journal.
    async fn deliver_due(
        self: &Arc<Self>,
        msg: &mut QueuedMessage,
        due: &[usize],
    ) -> Result<Vec<u8>, crate::spool::SpoolError> {
        let raw = self.spool.read_body(msg).await?;
        let mut body = std::borrow::Cow::Borrowed(&raw[..]);
        if msg.origin.direction == Direction::Inbound {
            let (clean, removed) = super::headers::strip_forgeable(&body);
            if removed > 0 {
                tracing::warn!(id = %msg.id, headers = removed, "removed forged X-MS-Exchange-Organization / X-Sealgate-DLP headers from inbound mail");
                body = clean.into();
            }
            let tag = self.deliverer.config.policy.inbound_dlp != crate::config::InboundDlp::Off;
            let found = match tag {
                true => self.spool.inspection(msg.id).await.ok().flatten(),
                false => None,
            };
            if let Some(field) = found.and_then(|found| super::headers::dlp_field(&found)) {
                let mut tagged = field.into_bytes();
                tagged.extend_from_slice(&body);
                body = tagged.into();
            }
        }
        let plain = msg.outgoing(&body);
        drop(body);
        // Outbound mail is DKIM-signed after sealing and tag removal, each
        // distinct outgoing copy once per attempt: the plain one here, each
        // sealed one below. The body hash runs inline on this task (about
        // 15 ms for a 10 MB message on a test machine), short enough not to
        // need spawn_blocking; revisit if much larger messages are common.
        let (outbound, id) = (msg.origin.direction == Direction::Outbound, msg.id);
        let dkim = |bytes: Vec<u8>| {
            if outbound {
                self.deliverer.dkim.sign(bytes, id)
            } else {
                bytes
            }
        };
        let plain = Arc::new(dkim(plain));
        // One transaction per domain and escalation, split so no server sees
        // more recipients at once than it is likely to accept (452 beyond
        // that would cost the rest a whole retry interval). A sealed copy is
        // one recipient's own: it goes in a transaction of its own, and
        // needs no more than the destination's own TLS level.
        let per_txn = self
            .deliverer
            .config
            .delivery
            .max_recipients_per_transaction
            .max(1);
        let transport = |i: usize| -> (Transport, Option<usize>) {
            let r = &msg.recipients[i];
            let Some(v) = &r.verdict else {
                return (Transport::Destination, None);
            };
            if v.sends_sealed_copy() && r.sealed.is_some() {
                let t = if r.tls_refused.is_some() {
                    Transport::AfterTlsFailure
                } else {
                    Transport::Destination
                };
                return (t, Some(i));
            }
            let escalated = matches!(
                v,
                crate::model::verdict::Verdict::Deliver {
                    escalated: true,
                    seal: crate::model::verdict::Seal::Tls,
                    ..
                }
            );
            let t = if escalated {
                Transport::Verified
            } else {
                Transport::Destination
            };
            (t, None)
        };
        // (domain, transport, the sealed copy's recipient) → recipients.
        type Group = (String, Transport, Option<usize>);
        let mut groups: Vec<(Group, Vec<usize>)> = Vec::new();
        for &i in due {
            let (t, sealed) = transport(i);
            let key = (
                msg.recipients[i]
                    .address
                    .domain_ascii()
                    .to_ascii_lowercase(),
                t,
                sealed,
            );
            match groups
                .iter_mut()
                .find(|(g, v)| *g == key && v.len() < per_txn)
            {
                Some((_, v)) => v.push(i),
                None => groups.push((key, vec![i])),
            }
        }
        let mut tasks = tokio::task::JoinSet::new();
        for ((domain, need, sealed), idx) in groups {
            let bytes = match sealed {
                Some(i) => Arc::new(dkim(self.spool.read_sealed(msg, i as u32).await?)),
                None => plain.clone(),
            };
            let rcpts: Vec<RcptTo> = idx
                .iter()
                .map(|&i| {
                    let r = &msg.recipients[i];
                    RcptTo {
                        address: r.address.to_string(),
                        notify: r.notify,
                        orcpt: r.orcpt.clone(),
                    }
                })
                .collect();
            let stage = self.clone();
            let (from, params) = (msg.from.clone(), msg.mail_params.clone());
            tasks.spawn(async move {
                // Domain first: a burst to one domain must not hold global
                // slots while it waits for its own.
                let _dom = stage.domain_limit(&domain).acquire_owned().await;
                let _conn = stage.connections.clone().acquire_owned().await;
                let n = rcpts.len();
                let d = stage.deliverer.clone();
                let dom = domain.clone();
                let out = tokio::spawn(async move { d.deliver(&dom, &from, &params, rcpts, &bytes, need).await })
                    .await
                    .unwrap_or_else(|e| {
                        tracing::error!(domain = %domain, error = %e, "delivery task failed; deferring");
                        vec![(Outcome::Deferred, stage.deliverer.internal_error()); n]
                    });
                (idx, out)
            });
        }
        let config = &self.deliverer.config.delivery;
        while let Some(joined) = tasks.join_next().await {
            let Ok((idx, out)) = joined else { continue };
            // Waits count from the end of the attempt, as Postfix's do: a
            // slow failing attempt must not be retried at once.
            let now = Utc::now();
            for (i, (outcome, mut ev)) in idx.into_iter().zip(out) {
                let r = &mut msg.recipients[i];
                r.attempts += 1;
                r.next_attempt = None;
                let outcome = match outcome {
                    Outcome::TlsRefused => match tls_refused(r, &mut ev) {
                        Some(o) => o,
                        None => {
                            // Fell back: its sealed copy goes on the next pass.
                            tracing::info!(id = %msg.id, recipient = i, "TLS failed; falling back down the seal chain");
                            r.state = RecipientState::Queued;
                            r.evidence = Some(ev);
                            continue;
                        }
                    },
                    o => o,
                };
                r.state = match outcome {
                    Outcome::Delivered => RecipientState::Delivered,
                    Outcome::Dropped => RecipientState::Dropped,
                    Outcome::Bounced | Outcome::TlsRefused => RecipientState::Bounced,
                    Outcome::Deferred
                        if retry::expired(msg.received_at, config.max_lifetime, now) =>
                    {
                        RecipientState::Bounced
                    }
                    Outcome::Deferred => {
                        r.next_attempt =
                            Some(retry::next_attempt(&config.retry_schedule, r.attempts, now));
                        RecipientState::Deferred
                    }
                };
                if r.state == RecipientState::Dropped {
                    tracing::warn!(id = %msg.id, domain = %r.address.domain_ascii(), "recipient dropped: TLS level exclusive and no TLS");
                }
                r.evidence = Some(ev);
                if r.state != RecipientState::Deferred && r.dsn == Some(DsnState::Pending) {
                    // A delay notice still owed is moot once the recipient is final.
                    r.dsn = None;
                }
                if r.state == RecipientState::Bounced {
                    // Whether a bounce is owed is settled here, once, and stored.
                    let owed = dsn::wanted(msg, &msg.recipients[i], &DsnAction::Failed);
                    msg.recipients[i].dsn = Some(if owed {
                        DsnState::Pending
                    } else {
                        DsnState::NotRequested
                    });
                }
            }
            // Record each domain as it finishes rather than after the
            // slowest one, so a crash meanwhile re-sends as little as possible.
            if !tasks.is_empty() {
                if let Err(e) = self.spool.update(msg, Durability::Synced).await {
                    tracing::warn!(id = %msg.id, error = %e, "cannot record delivery results");
                }
            }
        }
        Ok(raw)
    }

    /// Marks deferred recipients owed a delay notice.
    fn note_delays(&self, msg: &mut QueuedMessage) {
        let Some(after) = self.deliverer.config.delivery.delay_notice_after else {
            return;
        };
        if !retry::expired(msg.received_at, after, Utc::now()) {
            return;
        }
        for i in 0..msg.recipients.len() {
            let r = &msg.recipients[i];
            if r.state == RecipientState::Deferred
                && !r.delay_notified
                && r.dsn.is_none()
                && dsn::wanted(msg, r, &DsnAction::Delayed)
            {
                msg.recipients[i].dsn = Some(DsnState::Pending);
            }
        }
    }

    /// Queues the DSNs owed (one for bounces, one for delays) and records them.
    async fn send_dsns(&self, msg: &mut QueuedMessage) {
        let owed: Vec<usize> = (0..msg.recipients.len())
            .filter(|&i| msg.recipients[i].dsn == Some(DsnState::Pending))
            .collect();
        if owed.is_empty() {
            return;
        }
        let original = match self.spool.read_body(msg).await {
            Ok(b) => b,
            Err(e) => {
                // The sender is still told; only the returned headers are missing.
                tracing::error!(id = %msg.id, error = %e, "cannot read message for its DSN; sending it without the original headers");
                Vec::new()
            }
        };
        let max_lifetime = self.deliverer.config.delivery.max_lifetime;
        for kind in [DsnAction::Failed, DsnAction::Delayed] {
            let delayed = matches!(kind, DsnAction::Delayed);
            let which: Vec<usize> = owed
                .iter()
                .copied()
                .filter(|&i| {
                    let state = msg.recipients[i].state;
                    if delayed {
                        matches!(
                            state,
                            RecipientState::Deferred | RecipientState::Quarantined
                        )
                    } else {
                        state == RecipientState::Bounced
                    }
                })
                .collect();
            if which.is_empty() {
                continue;
            }
            let until = chrono::Duration::from_std(max_lifetime.0)
                .ok()
                .map(|d| msg.received_at + d);
            let recipients: Vec<DsnRecipient> = which
                .iter()
                .map(|&i| {
                    let r = &msg.recipients[i];
                    let ev = r.evidence.as_ref();
                    let reply = ev.map(|e| e.reply.clone()).unwrap_or_default();
                    DsnRecipient {
                        recipient: r,
                        action: if delayed {
                            DsnAction::Delayed
                        } else {
                            DsnAction::Failed
                        },
                        status: dsn::status_of(&reply),
                        diagnostic: (!reply.is_empty()).then_some(reply),
                        remote_mta: ev.map(|e| e.host.clone()).filter(|h| !h.is_empty()),
                        last_attempt: ev.map(|e| e.at),
                        will_retry_until: match (delayed, r.state) {
                            (true, RecipientState::Quarantined) => r.next_attempt,
                            (true, _) => until,
                            (false, _) => None,
                        },
                    }
                })
                .collect();
            let bytes = dsn::build(&DsnInput {
                reporting_mta: &self.deliverer.settings.helo,
                message: msg,
                recipients,
                original: &original,
                now: Utc::now(),
            });
            let label = if delayed { "delayed" } else { "failed" };
            match self.queue_dsn(msg, &bytes).await {
                Ok(dsn_id) => {
                    self.deliverer
                        .metrics
                        .dsns
                        .with_label_values(&[label])
                        .inc();
                    tracing::info!(id = %msg.id, dsn = %dsn_id, kind = label, recipients = which.len(), "DSN queued");
                    for &i in &which {
                        let r = &mut msg.recipients[i];
                        if delayed {
                            r.delay_notified = true;
                            r.dsn = None;
                        } else {
                            r.dsn = Some(DsnState::Sent(dsn_id.to_string()));
                        }
                    }
                }
                Err(e) => {
                    tracing::error!(id = %msg.id, error = %e, "cannot queue DSN; will try again");
                }
            }
        }
        if let Err(e) = self.spool.update(msg, Durability::Synced).await {
            tracing::warn!(id = %msg.id, error = %e, "cannot record queued DSNs");
        }
    }

    /// Stores a DSN as a new message from the null sender to `msg`'s sender.
    async fn queue_dsn(
        &self,
        msg: &QueuedMessage,
        bytes: &[u8],
    ) -> Result<QueueId, crate::spool::SpoolError> {
        let sender = crate::model::address::Mailbox::parse(&msg.from)
            .map_err(|e| crate::spool::SpoolError::Corrupt(msg.id.to_string(), e.to_string()))?;
        let hostname = &self.deliverer.settings.helo;
        let direction = if self.deliverer.config.is_local_domain(sender.domain()) {
            Direction::Inbound
        } else {
            Direction::Outbound
        };
        self.spool
            .submit(crate::spool::Submission {
                from: "",
                to: vec![sender],
                origin: crate::spool::DSN_ORIGIN,
                direction,
                hostname,
                bytes,
            })
            .await
    }
}

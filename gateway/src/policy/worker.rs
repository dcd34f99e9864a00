//! The policy stage as a running task: for each message the earlier stages
//! are done with, decide every recipient's verdict, store the verdicts (and
//! the tag-free subject) in the spool (ordered, not waited for: see
//! `Durability::Ordered`), then hand the id on.

use super::tags;
use super::{decide, Inputs, Seal, Unfit, Verdict};
use crate::config::Config;
use crate::keys::Keys;
use crate::model::address::Mailbox;
use crate::model::key::KeyKind;
use crate::model::tls::TlsLevel;
use crate::spool::pipe::{Handoff, Pipe};
use crate::spool::Direction;
use crate::spool::{Durability, QueueId, QueuedMessage, Spool, SpoolError};
use std::collections::HashMap;
use std::sync::Arc;

/// What policy reads from a message's header block.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct HeaderFacts {
    /// The decoded subject, if any.
    pub subject: Option<String>,
    /// The header trigger is present with a true value.
    pub trigger: bool,
    /// [`PORTAL_REPLY_HEADER`] is present: a recipient's reply written in
    /// the portal (meaningful only for mail the portal itself submitted).
    pub portal_reply: bool,
}

/// The header the portal puts on a recipient's reply (its escrow id).
pub const PORTAL_REPLY_HEADER: &str = "X-Sealgate-Portal-Reply";

/// Reads the subject (RFC 2047 decoded, so an encoded tag still counts) and
/// the header trigger.
pub fn header_facts(message: &[u8], trigger_name: &str) -> HeaderFacts {
    let Some(parsed) = mail_parser::MessageParser::default().parse_headers(message) else {
        return HeaderFacts::default();
    };
    let trigger = !trigger_name.is_empty()
        && parsed
            .header_raw(trigger_name)
            .map(|v| {
                matches!(
                    v.trim().to_ascii_lowercase().as_str(),
                    "yes" | "true" | "1" | "on"
                )
            })
            .unwrap_or(false);
    HeaderFacts {
        subject: parsed.subject().map(str::to_string),
        trigger,
        portal_reply: parsed.header_raw(PORTAL_REPLY_HEADER).is_some(),
    }
}

/// The keystore id of a key of `seal`'s kind usable for `address`, or why none is.
pub fn key_for(keys: &Keys, address: &str, seal: Seal) -> Result<String, Unfit> {
    let kind = match seal {
        Seal::Pgp => KeyKind::Pgp,
        Seal::Smime => KeyKind::Smime,
        Seal::Tls | Seal::Portal => return Err(Unfit::NoKeyNeeded(seal)),
    };
    Ok(keys.usable(address, kind)?.entry.id)
}

/// What policy decides for a message: each recipient's verdict (in the
/// order given) and the subject freed of its tags, if it changes. Delivery
/// and `sealgate explain` both come through here, so they cannot disagree.
pub struct Decision {
    /// One verdict per recipient.
    pub verdicts: Vec<Verdict>,
    /// The subject to deliver with, when tags were removed.
    pub new_subject: Option<String>,
    /// The tags found in the subject.
    pub tags: Vec<String>,
}

/// Destination levels known beyond the configuration: a domain whose
/// MTA-STS policy is `enforce` gets verified TLS at delivery (RFC 8461 §5),
/// so policy may count on it.
pub type Raised = HashMap<String, TlsLevel>;

/// The configured level for `domain`, or the raised one, and where it comes from.
pub fn destination_level(
    config: &Config,
    raised: &Raised,
    domain: &str,
) -> (TlsLevel, &'static str) {
    let (level, from_route) = config.tls_level_for(domain);
    match raised.get(domain) {
        Some(r) if *r > level => (*r, "mta-sts"),
        _ => (level, if from_route { "route" } else { "config" }),
    }
}

/// What an MTA-STS lookup resolves to: whether the domain's policy is
/// `enforce`.
pub type StsAnswer = Result<bool, Box<dyn std::error::Error + Send + Sync>>;

/// Whether a domain publishes an MTA-STS `enforce` policy. Delivery's
/// MTA-STS cache (a later stage) implements it, so policy asks without
/// importing it.
pub trait StsLookup: Send + Sync {
    /// Whether `domain`'s policy is `enforce`.
    fn enforces<'a>(
        &'a self,
        domain: &'a str,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = StsAnswer> + Send + 'a>>;
}

/// For the domains of recipients that want more than the configured TLS
/// (escalated, not on verified TLS), whose mail goes by MX: `verify` where
/// the domain's MTA-STS policy is `enforce`. Errors count as no policy.
pub async fn mta_sts_raised(
    sts: &dyn StsLookup,
    config: &Config,
    msg_rcpts: &[(&Mailbox, Option<&Verdict>)],
) -> Raised {
    let mut raised = Raised::new();
    for (rcpt, verdict) in msg_rcpts {
        let wants = matches!(
            verdict,
            Some(Verdict::Block { .. })
                | Some(Verdict::Deliver {
                    escalated: true,
                    ..
                })
        );
        let domain = rcpt.domain_ascii().to_ascii_lowercase();
        let by_mx = config.route_for(&domain).is_none() && !config.is_local_domain(&domain);
        if !wants
            || !by_mx
            || raised.contains_key(&domain)
            || config.tls_level_for(&domain).0.authenticates()
        {
            continue;
        }
        match sts.enforces(&domain).await {
            Ok(true) => {
                raised.insert(domain, TlsLevel::Verify);
            }
            Ok(false) => {}
            Err(e) => tracing::debug!(error = %e, "no MTA-STS policy for policy's decision"),
        }
    }
    raised
}

/// Decides every recipient in `recipients`.
pub fn decide_all(
    config: &Config,
    keys: &Keys,
    direction: Direction,
    recipients: &[&Mailbox],
    dlp: Option<&crate::spool::InspectionRecord>,
    facts: &HeaderFacts,
    raised: &Raised,
) -> Decision {
    let cfg = &config.policy;
    let subject = facts.subject.clone().unwrap_or_default();
    let hits = tags::find(&subject, &cfg.all_tags());
    let found: Vec<String> = hits.iter().map(|h| h.tag.clone()).collect();
    let verdicts = recipients
        .iter()
        .map(|rcpt| {
            let (destination_tls, _) =
                destination_level(config, raised, &rcpt.domain_ascii().to_ascii_lowercase());
            let address = crate::keys::filed_as(rcpt);
            decide(
                cfg,
                &Inputs {
                    direction,
                    dlp,
                    tags: &found,
                    header_trigger: facts.trigger,
                    recipient: rcpt,
                    destination_tls,
                    key_for: &|seal| key_for(keys, &address, seal),
                },
            )
        })
        .collect();
    let new_subject = (cfg.strip_tags && !hits.is_empty() && direction == Direction::Outbound)
        .then(|| tags::strip(&subject, &hits));
    Decision {
        verdicts,
        new_subject,
        tags: found,
    }
}

/// Decides every recipient of `msg` and records the result in it.
pub fn apply(
    config: &Config,
    keys: &Keys,
    msg: &mut QueuedMessage,
    dlp: Option<&crate::spool::InspectionRecord>,
    facts: &HeaderFacts,
    raised: &Raised,
) {
    if msg.origin.listener == crate::spool::PORTAL_ORIGIN && !facts.portal_reply {
        // Notices, codes and receipts carry no message content: escalating
        // them could only send a notice about a notice. A recipient's reply
        // is decided like any inbound mail (its DLP findings enforced).
        for r in msg.recipients.iter_mut() {
            r.verdict = Some(Verdict::Deliver {
                seal: Seal::Tls,
                escalated: false,
                why: vec!["written by the portal".into()],
                key: None,
                fallback: None,
            });
        }
        msg.decided = true;
        return;
    }
    let rcpts: Vec<&Mailbox> = msg.recipients.iter().map(|r| &r.address).collect();
    let d = decide_all(
        config,
        keys,
        msg.origin.direction,
        &rcpts,
        dlp,
        facts,
        raised,
    );
    let inbound = msg.origin.direction == Direction::Inbound;
    let held = msg
        .scan
        .as_ref()
        .and_then(crate::policy::decide::scan_hold)
        .or_else(|| msg.auth.as_ref().and_then(crate::policy::decide::auth_hold))
        .or_else(|| {
            dlp.filter(|_| inbound)
                .and_then(|d| crate::policy::decide::attachment_hold(&config.inbound, d))
        });
    for (r, v) in msg.recipients.iter_mut().zip(d.verdicts) {
        r.verdict = Some(held.clone().unwrap_or(v));
    }
    msg.new_subject = d.new_subject;
    msg.decided = true;
}

/// Recipients of `msg` that were blocked only for want of a seal, where an
/// OpenPGP key would have done: those a WKD lookup may save.
fn blocked_without_key(config: &Config, msg: &QueuedMessage, dlp_block: bool) -> Vec<usize> {
    if dlp_block || msg.origin.direction != Direction::Outbound {
        return Vec::new();
    }
    let pgp_possible = config.policy.methods.contains(&Seal::Pgp)
        || config.policy.method_tags.values().any(|s| *s == Seal::Pgp);
    if !pgp_possible {
        return Vec::new();
    }
    msg.recipients
        .iter()
        .enumerate()
        .filter(|(_, r)| matches!(r.verdict, Some(Verdict::Block { .. })))
        .map(|(i, _)| i)
        .collect()
}

/// What the policy stage may ask the network before it decides.
#[derive(Default)]
pub struct Lookups {
    /// Web Key Directory, for recipients without a key.
    pub wkd: Option<Arc<crate::keys::wkd::Wkd>>,
    /// MTA-STS, for destinations that may enforce verified TLS.
    pub mta_sts: Option<Arc<dyn StsLookup>>,
}

/// The stage's state.
struct Stage {
    spool: Spool,
    config: Arc<Config>,
    keys: Keys,
    wkd: Option<Arc<crate::keys::wkd::Wkd>>,
    mta_sts: Option<Arc<dyn StsLookup>>,
    next: Handoff,
}

impl Stage {
    /// Asks WKD for the keys of recipients that have none; true if a key was stored.
    async fn discover(&self, msg: &QueuedMessage, which: &[usize]) -> bool {
        let Some(wkd) = &self.wkd else {
            return false;
        };
        let mut stored = false;
        for &i in which {
            let address = crate::keys::filed_as(&msg.recipients[i].address);
            if self.keys.usable(&address, KeyKind::Pgp).is_ok() {
                continue;
            }
            match wkd.lookup(&address).await {
                Ok(bytes) => match self
                    .keys
                    .store
                    .import(&bytes, crate::model::key::KeySource::Wkd)
                    .await
                {
                    Ok(reports) => {
                        for r in &reports {
                            tracing::info!(id = %msg.id, recipient = i, key = %r.entry.id, outcome = r.outcome, "key found by WKD");
                        }
                        stored |= reports.iter().any(|r| r.outcome != "pending");
                    }
                    Err(e) => {
                        tracing::warn!(id = %msg.id, recipient = i, error = %e, "WKD key not stored")
                    }
                },
                // Names the host and the status, not the address.
                Err(why) => {
                    tracing::debug!(id = %msg.id, recipient = i, reason = %why, "no key by WKD")
                }
            }
        }
        stored
    }

    async fn decide_one(&self, id: QueueId) -> Result<(), SpoolError> {
        let Some(mut msg) = self.spool.get(id).await? else {
            return Ok(());
        };
        if !msg.decided {
            // A key imported since the last message (by the CLI, or on
            // another node) counts for this one.
            if let Err(e) = self.keys.store.refresh().await {
                tracing::error!(id = %id, error = %e, "cannot reload the keystore; deciding with the keys loaded before");
            }
            let head = self.spool.read_head(&msg).await?;
            let facts = header_facts(&head, &self.config.policy.header_trigger);
            let dlp = self.spool.inspection(id).await?;
            let decide = |msg: &mut QueuedMessage, raised: &Raised| {
                apply(&self.config, &self.keys, msg, dlp.as_ref(), &facts, raised)
            };
            let mut raised = Raised::new();
            decide(&mut msg, &raised);
            if let Some(sts) = &self.mta_sts {
                let rcpts: Vec<(&Mailbox, Option<&Verdict>)> = msg
                    .recipients
                    .iter()
                    .map(|r| (&r.address, r.verdict.as_ref()))
                    .collect();
                raised = mta_sts_raised(sts.as_ref(), &self.config, &rcpts).await;
                if !raised.is_empty() {
                    // Verified TLS is possible after all where MTA-STS enforces it.
                    decide(&mut msg, &raised);
                }
            }
            let dlp_block = dlp.as_ref().and_then(|d| d.action.as_deref()) == Some("block");
            let which = blocked_without_key(&self.config, &msg, dlp_block);
            if !which.is_empty() && self.discover(&msg, &which).await {
                // A key was found: decide again, with it.
                decide(&mut msg, &raised);
            }
            // Not waiting for the disk: verdicts lost in a crash are decided
            // again, and whatever acts on them (a sealed copy, a delivery)
            // writes synced after them, which makes them durable too.
            self.spool.update(&msg, Durability::Ordered).await?;
            for r in &msg.recipients {
                if let Some(v) = &r.verdict {
                    // The verdict names rule ids and tags, never content.
                    tracing::info!(id = %id, verdict = %v, "policy verdict");
                }
            }
            if msg.origin.direction == Direction::Inbound {
                self.harvest(msg, head).await;
            }
        }
        self.next.send(id);
        Ok(())
    }

    /// Stores the keys an inbound message offers for its sender (Autocrypt
    /// header, S/MIME signature: `keys/harvest.rs`), off the async workers.
    /// The body is read only for a signed message; failures are logged and
    /// never the message's.
    async fn harvest(&self, msg: QueuedMessage, head: Vec<u8>) {
        // Mail from the internet claiming one of our own domains is spoofed
        // or looped: its keys are not taken.
        let own = crate::keys::harvest::from_address(&head)
            .and_then(|f| f.rsplit_once('@').map(|(_, d)| d.to_string()))
            .is_some_and(|d| self.config.is_local_domain(&d));
        if own {
            tracing::debug!(id = %msg.id, "no key harvest from mail claiming a local domain");
            return;
        }
        // Nor from mail whose From domain's DMARC check failed: its From is
        // not the sender's to claim.
        let forged = msg
            .auth
            .as_ref()
            .is_some_and(|a| a.dmarc == crate::model::inbound::AuthResult::Fail);
        if forged {
            tracing::debug!(id = %msg.id, "no key harvest from mail that failed DMARC");
            return;
        }
        let (spool, id) = (self.spool.clone(), msg.id);
        // The body is read, when it is, from the blocking thread.
        let rt = tokio::runtime::Handle::current();
        let job = tokio::task::spawn_blocking(move || {
            crate::keys::harvest::offered(id, &head, msg.size, || {
                rt.block_on(spool.read_body(&msg))
            })
        });
        match job.await {
            Ok(offers) => {
                crate::keys::harvest::keep(&self.keys.store, id, offers).await;
            }
            Err(e) => tracing::error!(id = %id, error = %e, "key harvesting failed"),
        }
    }
}

/// Runs until `pipe` closes; first decides messages a previous run left
/// undecided (those the pipe says the earlier stages are done with).
pub async fn run(
    spool: Spool,
    config: Arc<Config>,
    keys: Keys,
    lookups: Lookups,
    mut pipe: Pipe,
    next: Handoff,
) {
    let stage = Arc::new(Stage {
        spool,
        config,
        keys,
        wkd: lookups.wkd,
        mta_sts: lookups.mta_sts,
        next,
    });
    // A WKD lookup can take seconds: messages are decided concurrently so
    // one slow key server does not hold up the rest.
    let limit = Arc::new(tokio::sync::Semaphore::new(64));
    match pipe.backlog(|m| !m.decided).await {
        Ok(list) => {
            for m in &list {
                if let Err(e) = stage.decide_one(m.id).await {
                    tracing::error!(id = %m.id, error = %e, "policy decision failed");
                }
            }
        }
        Err(e) => tracing::error!(error = %e, "cannot list the queue for policy"),
    }
    // A permit first, then the next id: ids wait in the pipe (counted)
    // rather than taken and held.
    while let Ok(permit) = limit.clone().acquire_owned().await {
        let Some(taken) = pipe.next().await else {
            break;
        };
        let stage = stage.clone();
        tokio::spawn(async move {
            let id = taken.id();
            if let Err(e) = stage.decide_one(id).await {
                // Left undecided: delivery waits, and the next start retries.
                tracing::error!(id = %id, error = %e, "policy decision failed");
            }
            taken.done();
            drop(permit);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A message the portal submitted to `to`, with DLP asking `action`.
    fn from_portal(to: &str) -> QueuedMessage {
        QueuedMessage {
            id: QueueId(1),
            received_at: chrono::Utc::now(),
            from: "pat@x.test".into(),
            mail_params: Default::default(),
            recipients: vec![crate::spool::QueuedRecipient::new(
                Mailbox::parse(to).unwrap(),
                None,
                None,
            )],
            origin: crate::spool::Origin {
                listener: crate::spool::PORTAL_ORIGIN.into(),
                peer: "127.0.0.1:1".parse().unwrap(),
                helo: "portal".into(),
                tls: None,
                connector: None,
                direction: Direction::Inbound,
            },
            size: 10,
            body_sha256: String::new(),
            chunks: 1,
            received_header: String::new(),
            new_subject: None,
            decided: false,
            auth: None,
            scan: None,
        }
    }

    #[test]
    fn a_portal_reply_is_held_by_inbound_dlp_and_a_notice_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::default();
        config.server.data_dir = dir.path().to_path_buf();
        config.policy.inbound_dlp = crate::config::InboundDlp::Enforce;
        let keys =
            Keys::from_config(&config, crate::store::Stores::embedded(&config).keys).unwrap();
        let dlp = crate::spool::InspectionRecord {
            inspected_at: chrono::Utc::now(),
            findings: vec![],
            unscannable: vec![],
            action: Some("quarantine".into()),
            policy_hits: vec!["hipaa_pci:ssn".into()],
            extensions: Vec::new(),
        };
        let reply = header_facts(
            format!("{PORTAL_REPLY_HEADER}: abc\r\nSubject: re\r\n\r\n").as_bytes(),
            "",
        );
        assert!(reply.portal_reply);
        let mut m = from_portal("nurse@hospital.test");
        apply(&config, &keys, &mut m, Some(&dlp), &reply, &Raised::new());
        assert!(
            matches!(m.recipients[0].verdict, Some(Verdict::Quarantine { .. })),
            "{:?}",
            m.recipients[0].verdict
        );
        let notice = header_facts(b"Subject: a secure message\r\n\r\n", "");
        let mut m = from_portal("pat@x.test");
        apply(&config, &keys, &mut m, Some(&dlp), &notice, &Raised::new());
        assert!(matches!(
            m.recipients[0].verdict,
            Some(Verdict::Deliver { .. })
        ));
    }

    #[test]
    fn encoded_subjects_and_the_trigger_are_read() {
        let m = b"Subject: =?UTF-8?Q?=5Bsecure=5D_R=C3=A9sultats?=\r\nX-Sealgate-Encrypt: Yes\r\n\r\nbody";
        let f = header_facts(m, "X-Sealgate-Encrypt");
        assert_eq!(f.subject.as_deref(), Some("[secure] Résultats"));
        assert!(f.trigger);
        let f = header_facts(
            b"Subject: x\r\nX-Sealgate-Encrypt: no\r\n\r\n",
            "X-Sealgate-Encrypt",
        );
        assert!(!f.trigger);
    }
}

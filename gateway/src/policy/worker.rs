//! The policy stage as a running task: for each message the earlier stages
//! are done with, decide every recipient's verdict, store the verdicts (and
//! the tag-free subject) in the spool with fsync, then hand the id on.

use super::tags;
use super::{decide, Inputs};
use crate::config::Config;
use crate::spool::{QueueId, QueuedMessage, Spool, SpoolError};
use std::sync::Arc;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};

/// What policy reads from a message's header block.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct HeaderFacts {
    /// The decoded subject, if any.
    pub subject: Option<String>,
    /// The header trigger is present with a true value.
    pub trigger: bool,
}

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
    }
}

/// Decides every recipient of `msg` and records the result in it.
pub fn apply(
    config: &Config,
    msg: &mut QueuedMessage,
    dlp: Option<&crate::spool::InspectionRecord>,
    facts: &HeaderFacts,
) {
    let cfg = &config.policy;
    let subject = facts.subject.clone().unwrap_or_default();
    let hits = tags::find(&subject, &cfg.all_tags());
    let found: Vec<String> = hits.iter().map(|h| h.tag.clone()).collect();
    let direction = msg.origin.direction;
    for r in &mut msg.recipients {
        let (destination_tls, _) =
            config.tls_level_for(&r.address.domain_ascii().to_ascii_lowercase());
        let verdict = decide(
            cfg,
            &Inputs {
                direction,
                dlp,
                tags: &found,
                header_trigger: facts.trigger,
                recipient: &r.address,
                destination_tls,
                // The keystore comes with a later slice of the seal issue.
                has_key: &|_| false,
            },
        );
        r.verdict = Some(verdict);
    }
    if cfg.strip_tags && !hits.is_empty() && direction == crate::spool::Direction::Outbound {
        msg.new_subject = Some(tags::strip(&subject, &hits));
    }
    msg.decided = true;
}

/// The stage's state.
struct Stage {
    spool: Spool,
    config: Arc<Config>,
    next: UnboundedSender<QueueId>,
}

impl Stage {
    async fn decide_one(&self, id: QueueId) -> Result<(), SpoolError> {
        let Some(mut msg) = self.spool.get(id)? else {
            return Ok(());
        };
        if !msg.decided {
            let head = self.spool.read_head(&msg)?;
            let facts = header_facts(&head, &self.config.policy.header_trigger);
            let dlp = self.spool.inspection(id)?;
            apply(&self.config, &mut msg, dlp.as_ref(), &facts);
            self.spool.update(&msg).await?;
            for r in &msg.recipients {
                if let Some(v) = &r.verdict {
                    // The verdict names rule ids and tags, never content.
                    tracing::info!(id = %id, verdict = %v, "policy verdict");
                }
            }
        }
        let _ = self.next.send(id);
        Ok(())
    }
}

/// Runs until `ready` closes; first decides messages a previous run left
/// undecided (those `ready_now` says the earlier stages are done with).
pub async fn run(
    spool: Spool,
    config: Arc<Config>,
    mut ready: UnboundedReceiver<QueueId>,
    next: UnboundedSender<QueueId>,
    ready_now: impl Fn(QueueId) -> bool,
) {
    let stage = Stage {
        spool,
        config,
        next,
    };
    match stage.spool.list() {
        Ok(list) => {
            for m in list.iter().filter(|m| !m.decided && ready_now(m.id)) {
                if let Err(e) = stage.decide_one(m.id).await {
                    tracing::error!(id = %m.id, error = %e, "policy decision failed");
                }
            }
        }
        Err(e) => tracing::error!(error = %e, "cannot list the queue for policy"),
    }
    while let Some(id) = ready.recv().await {
        if let Err(e) = stage.decide_one(id).await {
            // Left undecided: delivery waits, and the next start retries.
            tracing::error!(id = %id, error = %e, "policy decision failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

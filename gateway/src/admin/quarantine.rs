//! `sealgate quarantine ls|show|release|delete`: messages a DLP policy
//! held for review. Release re-enters policy with the admin's choice of
//! seal (checked against the keystore now) and goes on through the seal and
//! deliver stages; delete bounces the held recipients so the sender is told.
//! Both are audited. The record changes here are pure functions, used by
//! the command line (gateway stopped) and the admin API (gateway running).

use crate::config::Config;
use crate::deliver::dsn::{wanted, DsnAction};
use crate::keys::Keys;
use crate::model::key::KeyKind;
use crate::model::verdict::{Seal, Verdict};
use crate::policy::{chain, Unfit};
use crate::spool::{DeliveryEvidence, Direction, DsnState, QueuedMessage, RecipientState};
use serde::Serialize;

/// Why a release is refused.
#[derive(Debug, thiserror::Error)]
pub enum QuarantineError {
    /// Nothing of the message is held.
    #[error("message {0} has no quarantined recipient")]
    NotHeld(String),
    /// The chosen seal (or, without one, every method) is impossible for a recipient.
    #[error("cannot release to {recipient}: {why}")]
    CannotSeal {
        /// The recipient.
        recipient: String,
        /// Why each method is impossible.
        why: String,
    },
}

/// One held message in `quarantine ls`.
#[derive(Debug, Serialize)]
pub struct Held {
    /// Queue id.
    pub id: String,
    /// When it was received.
    pub received_at: String,
    /// MAIL FROM.
    pub from: String,
    /// The held recipients.
    pub recipients: Vec<String>,
    /// The rule that held it.
    pub reason: String,
    /// When it is returned to the sender unless released.
    pub expires: Option<String>,
    /// Octets.
    pub size: u64,
}

/// The held part of `msg`, if any.
pub fn held(msg: &QueuedMessage) -> Option<Held> {
    let rcpts: Vec<_> = msg
        .recipients
        .iter()
        .filter(|r| r.state == RecipientState::Quarantined)
        .collect();
    let first = rcpts.first()?;
    Some(Held {
        id: msg.id.to_string(),
        received_at: msg.received_at.to_rfc3339(),
        from: msg.from.clone(),
        recipients: rcpts.iter().map(|r| r.address.to_string()).collect(),
        reason: match &first.verdict {
            Some(Verdict::Quarantine { reason }) => reason.clone(),
            _ => "held by policy".into(),
        },
        expires: first.next_attempt.map(|t| t.to_rfc3339()),
        size: msg.size,
    })
}

/// `quarantine ls` as text or JSON.
pub fn list(messages: &[QueuedMessage], json: bool) -> String {
    let held: Vec<Held> = messages.iter().filter_map(held).collect();
    if json {
        return format!(
            "{}\n",
            serde_json::to_string_pretty(&held).unwrap_or_default()
        );
    }
    let mut out = String::new();
    for h in &held {
        out.push_str(&format!(
            "{}  {}  from={}  to={}  expires={}  {}\n",
            h.id,
            h.received_at,
            if h.from.is_empty() { "<>" } else { &h.from },
            h.recipients.join(","),
            h.expires.as_deref().unwrap_or("-"),
            h.reason
        ));
    }
    if held.is_empty() {
        out.push_str("no quarantined messages\n");
    }
    out
}

/// Releases every held recipient of `msg`: with `seal`, that method (its
/// key must be usable now); without, the configured method chain. Nothing
/// changes unless every held recipient can be released.
pub fn release(
    msg: &mut QueuedMessage,
    config: &Config,
    keys: &Keys,
    seal: Option<Seal>,
) -> Result<usize, QuarantineError> {
    let methods: Vec<Seal> = match seal {
        Some(s) => vec![s],
        None => config.policy.methods.clone(),
    };
    let mut verdicts = Vec::new();
    for (i, r) in msg.recipients.iter().enumerate() {
        if r.state != RecipientState::Quarantined {
            continue;
        }
        if msg.origin.direction == Direction::Inbound {
            // Inbound mail goes to the tenant as it came; there is nothing to seal.
            verdicts.push((
                i,
                Verdict::Deliver {
                    seal: Seal::Tls,
                    escalated: false,
                    why: vec!["released from quarantine (inbound)".into()],
                    key: None,
                    fallback: None,
                },
            ));
            continue;
        }
        let address = crate::keys::filed_as(&r.address);
        let (level, _) = config.tls_level_for(&r.address.domain_ascii().to_ascii_lowercase());
        let key_for = |s: Seal| -> Result<String, Unfit> {
            let kind = if s == Seal::Pgp {
                KeyKind::Pgp
            } else {
                KeyKind::Smime
            };
            Ok(keys.usable(&address, kind)?.entry.id)
        };
        let steps = chain(&config.policy, level, &key_for, &methods);
        let why: Vec<String> = steps
            .iter()
            .filter_map(|(_, r)| r.as_ref().err().map(ToString::to_string))
            .collect();
        let mut possible = steps
            .into_iter()
            .filter_map(|(m, r)| r.ok().map(|k| (m, k)));
        let Some((seal, key)) = possible.next() else {
            return Err(QuarantineError::CannotSeal {
                recipient: r.address.to_string(),
                why: why.join("; "),
            });
        };
        // Released to verified TLS: the next possible method is its
        // fallback, as policy would have set it.
        let fallback = possible
            .find(|(m, _)| seal == Seal::Tls && *m != Seal::Tls)
            .map(|(seal, key)| crate::model::verdict::Fallback { seal, key });
        verdicts.push((
            i,
            Verdict::Deliver {
                seal,
                escalated: true,
                why: vec![if methods.len() == 1 {
                    format!("released from quarantine with --seal {}", seal.as_str())
                } else {
                    "released from quarantine".into()
                }],
                key,
                fallback,
            },
        ));
    }
    if verdicts.is_empty() {
        return Err(QuarantineError::NotHeld(msg.id.to_string()));
    }
    let n = verdicts.len();
    for (i, v) in verdicts {
        let r = &mut msg.recipients[i];
        r.verdict = Some(v);
        r.state = RecipientState::Queued;
        r.next_attempt = None;
        r.sealed = None;
        if r.dsn == Some(DsnState::Pending) {
            r.dsn = None;
        }
    }
    Ok(n)
}

/// Deletes the held recipients: they bounce, and the sender gets a DSN
/// (when they asked for failure notices, as by default).
pub fn delete(msg: &mut QueuedMessage, config: &Config) -> Result<usize, QuarantineError> {
    let mut n = 0;
    for i in 0..msg.recipients.len() {
        if msg.recipients[i].state != RecipientState::Quarantined {
            continue;
        }
        // Inbound mail is dropped, never bounced to an outside sender.
        let inbound = msg.origin.direction == Direction::Inbound;
        let owed = !inbound && wanted(msg, &msg.recipients[i], &DsnAction::Failed);
        let r = &mut msg.recipients[i];
        let reason = match &r.verdict {
            Some(Verdict::Quarantine { reason }) => reason.clone(),
            _ => "held by policy".into(),
        };
        r.state = if inbound {
            RecipientState::Dropped
        } else {
            RecipientState::Bounced
        };
        r.next_attempt = None;
        r.dsn = Some(if owed {
            DsnState::Pending
        } else {
            DsnState::NotRequested
        });
        let reply = format!("550 5.7.1 deleted from quarantine by an administrator ({reason})");
        let level = r
            .evidence
            .as_ref()
            .map_or(config.tls.default_level, |e| e.tls_level);
        r.evidence = Some(DeliveryEvidence::by_policy(reply, level));
        n += 1;
    }
    if n == 0 {
        return Err(QuarantineError::NotHeld(msg.id.to_string()));
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::address::Mailbox;
    use crate::model::tls::TlsLevel;
    use crate::spool::{Origin, QueueId, QueuedRecipient};

    fn held_message() -> QueuedMessage {
        let mut r = QueuedRecipient::new(Mailbox::parse("pat@bank.test").unwrap(), None, None);
        r.state = RecipientState::Quarantined;
        r.verdict = Some(Verdict::Quarantine {
            reason: "held by DLP policy (hipaa_pci:ssn-bulk)".into(),
        });
        r.dsn = Some(DsnState::Pending);
        QueuedMessage {
            id: QueueId(7),
            received_at: chrono::Utc::now(),
            from: "nurse@hospital.test".into(),
            mail_params: Default::default(),
            recipients: vec![r],
            origin: Origin::test_outbound(),
            size: 10,
            body_sha256: String::new(),
            chunks: 1,
            received_header: String::new(),
            new_subject: None,
            decided: true,
            auth: None,
            scan: None,
        }
    }

    fn setup() -> (Config, Keys, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::default();
        config.server.data_dir = dir.path().to_path_buf();
        config
            .tls
            .domains
            .insert("bank.test".into(), TlsLevel::Verify);
        let keys =
            Keys::from_config(&config, crate::store::Stores::embedded(&config).keys).unwrap();
        (config, keys, dir)
    }

    #[test]
    fn an_impossible_seal_is_refused_and_changes_nothing() {
        let (config, keys, _dir) = setup();
        let mut m = held_message();
        let before = m.clone();
        let e = release(&mut m, &config, &keys, Some(Seal::Pgp)).unwrap_err();
        assert!(e.to_string().contains("no OpenPGP key is known"), "{e}");
        assert_eq!(m, before);
        // The listing names the rule and the held recipient.
        let text = list(std::slice::from_ref(&m), false);
        assert!(
            text.contains("pat@bank.test") && text.contains("ssn-bulk"),
            "{text}"
        );
    }

    #[test]
    fn release_by_the_chain_and_delete() {
        let (config, keys, _dir) = setup();
        let mut m = held_message();
        // bank.test is `verify`: the chain's first method, verified TLS, fits.
        assert_eq!(release(&mut m, &config, &keys, None).unwrap(), 1);
        let r = &m.recipients[0];
        assert_eq!(r.state, RecipientState::Queued);
        assert!(matches!(
            &r.verdict,
            Some(Verdict::Deliver { seal: Seal::Tls, escalated: true, why, .. }) if why[0] == "released from quarantine"
        ));
        assert_eq!(r.dsn, None, "the held notice is moot once released");
        assert!(matches!(
            release(&mut m, &config, &keys, None),
            Err(QuarantineError::NotHeld(_))
        ));

        let mut m = held_message();
        m.recipients[0].evidence = None;
        assert_eq!(delete(&mut m, &config).unwrap(), 1);
        let r = &m.recipients[0];
        assert_eq!(r.state, RecipientState::Bounced);
        assert_eq!(r.dsn, Some(DsnState::Pending));
        let reply = &r.evidence.as_ref().unwrap().reply;
        assert!(
            reply.starts_with("550 5.7.1 deleted from quarantine") && reply.contains("ssn-bulk"),
            "{reply}"
        );
        assert!(matches!(
            delete(&mut m, &config),
            Err(QuarantineError::NotHeld(_))
        ));
    }
}

//! `sealgate quarantine ls|show|release|delete`: messages a DLP policy
//! held for review. Release re-enters policy with the admin's choice of
//! seal (checked against the keystore now) and goes on through the seal and
//! deliver stages; delete bounces the held recipients so the sender is told.
//! Both are audited. The record changes here are pure functions, used by
//! the command line (gateway stopped) and the admin API (gateway running).

use crate::config::Config;
use crate::deliver::dsn::{wanted, DsnAction};
use crate::keys::{KeyKind, Keys};
use crate::policy::{chain, Seal, Verdict};
use crate::spool::{DsnState, QueuedMessage, RecipientState};
use chrono::Utc;
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
        let address = crate::keys::filed_as(&r.address);
        let (level, _) = config.tls_level_for(&r.address.domain_ascii().to_ascii_lowercase());
        let key_for = |s: Seal| {
            let kind = if s == Seal::Pgp {
                KeyKind::Pgp
            } else {
                KeyKind::Smime
            };
            keys.usable(&address, kind).map(|f| f.entry.id)
        };
        let steps = chain(&config.policy, level, &key_for, &methods);
        let why: Vec<String> = steps
            .iter()
            .filter_map(|(_, r)| r.as_ref().err().cloned())
            .collect();
        let Some((seal, key)) = steps.into_iter().find_map(|(m, r)| r.ok().map(|k| (m, k))) else {
            return Err(QuarantineError::CannotSeal {
                recipient: r.address.to_string(),
                why: why.join("; "),
            });
        };
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
pub fn delete(msg: &mut QueuedMessage) -> Result<usize, QuarantineError> {
    let mut n = 0;
    for i in 0..msg.recipients.len() {
        if msg.recipients[i].state != RecipientState::Quarantined {
            continue;
        }
        let owed = wanted(msg, &msg.recipients[i], &DsnAction::Failed);
        let r = &mut msg.recipients[i];
        let reason = match &r.verdict {
            Some(Verdict::Quarantine { reason }) => reason.clone(),
            _ => "held by policy".into(),
        };
        r.state = RecipientState::Bounced;
        r.next_attempt = None;
        r.dsn = Some(if owed {
            DsnState::Pending
        } else {
            DsnState::NotRequested
        });
        if let Some(e) = r.evidence.as_mut() {
            e.at = Utc::now();
            e.reply = format!("550 5.7.1 deleted from quarantine by an administrator ({reason})");
        }
        n += 1;
    }
    if n == 0 {
        return Err(QuarantineError::NotHeld(msg.id.to_string()));
    }
    Ok(n)
}

//! `sealgate explain`: runs inspect and policy on a message without
//! sending it, and says per recipient what would happen and why. It calls
//! the same functions the running stages call (`inspect::inspect`,
//! `policy::worker::decide_all`, the keystore lookup), so it cannot
//! disagree with what delivery then does.

use crate::config::Config;
use crate::deliver::mta_sts::MtaSts;
use crate::inspect::{self, InspectLimits};
use crate::keys::Keys;
use crate::model::address::Mailbox;
use crate::model::key::KeyKind;
use crate::model::tls::TlsLevel;
use crate::model::verdict::{Seal, Verdict};
use crate::policy::worker::{decide_all, destination_level, header_facts, mta_sts_raised, Raised};
use crate::policy::{chain, Unfit};
use crate::spool::{Direction, InspectionRecord};
use serde::Serialize;
use std::fmt::Write;

/// What would happen to one message.
#[derive(Debug, Serialize)]
pub struct Explanation {
    /// Which way it was taken to travel.
    pub direction: Direction,
    /// What DLP found (detector ids and counts) and which policy rules fired;
    /// `None` when DLP is off.
    pub dlp: Option<InspectionRecord>,
    /// Subject tags found.
    pub tags: Vec<String>,
    /// Whether the tags would be removed from the subject.
    pub tags_stripped: bool,
    /// Whether the header trigger is present.
    pub header_trigger: bool,
    /// Per recipient.
    pub recipients: Vec<RecipientExplanation>,
}

/// What would happen for one recipient.
#[derive(Debug, Serialize)]
pub struct RecipientExplanation {
    /// The address.
    pub address: String,
    /// The verdict policy would store.
    pub verdict: Verdict,
    /// The key that would seal it: fingerprint, or certificate serial and issuer, and its source.
    pub key: Option<String>,
    /// The destination's configured TLS level.
    pub tls_level: TlsLevel,
    /// Where the level comes from: `route` (a route or the smart host),
    /// `config`, or `mta-sts` (the domain's policy is `enforce`).
    pub tls_from: &'static str,
    /// Every configured method, in order, with the key it would use or why not.
    pub chain: Vec<ChainStep>,
    /// What happens if the chosen method fails.
    pub if_it_fails: String,
}

/// One method of the chain.
#[derive(Debug, Serialize)]
pub struct ChainStep {
    /// The method.
    pub method: Seal,
    /// Whether it can protect this recipient.
    pub possible: bool,
    /// The key it would use, or why it cannot.
    pub detail: String,
}

/// What DLP finds in `message`, as the inspect stage records it; `None`
/// when DLP is off (`rules` is `None`), as in the running gateway.
pub fn inspect_message(
    config: &Config,
    rules: Option<&sealgate_dlp::RuleSet>,
    message: &[u8],
) -> Option<InspectionRecord> {
    rules.map(|r| {
        let limits: &InspectLimits = &config.dlp.limits;
        crate::inspect::worker::record(&inspect::inspect(message, r, limits))
    })
}

/// The MTA-STS raises the policy stage would find for these recipients.
pub async fn raised_for(
    config: &Config,
    keys: &Keys,
    sts: Option<&MtaSts>,
    direction: Direction,
    message: &[u8],
    recipients: &[Mailbox],
    dlp: Option<&InspectionRecord>,
) -> Raised {
    let Some(sts) = sts else {
        return Raised::new();
    };
    let facts = header_facts(message, &config.policy.header_trigger);
    let refs: Vec<&Mailbox> = recipients.iter().collect();
    let first = decide_all(config, keys, direction, &refs, dlp, &facts, &Raised::new());
    let pairs: Vec<(&Mailbox, Option<&Verdict>)> = recipients
        .iter()
        .zip(first.verdicts.iter().map(Some))
        .collect();
    mta_sts_raised(sts as &dyn crate::policy::worker::StsLookup, config, &pairs).await
}

/// Explains `message` sent to `recipients`, given what DLP found
/// ([`inspect_message`]) and the MTA-STS raises ([`raised_for`]).
pub fn explain(
    config: &Config,
    keys: &Keys,
    dlp: Option<InspectionRecord>,
    direction: Direction,
    message: &[u8],
    recipients: &[Mailbox],
    raised: &Raised,
) -> Explanation {
    let facts = header_facts(message, &config.policy.header_trigger);
    let refs: Vec<&Mailbox> = recipients.iter().collect();
    let decision = decide_all(config, keys, direction, &refs, dlp.as_ref(), &facts, raised);
    let label = |address: &str, seal: Seal| -> Result<String, Unfit> {
        let kind = match seal {
            Seal::Pgp => KeyKind::Pgp,
            _ => KeyKind::Smime,
        };
        let f = keys.usable(address, kind)?;
        Ok(format!("{} ({})", f.entry.label(), f.entry.source.as_str()))
    };
    let out = recipients
        .iter()
        .zip(decision.verdicts)
        .map(|(rcpt, verdict)| {
            let address = crate::keys::filed_as(rcpt);
            let domain = rcpt.domain_ascii().to_ascii_lowercase();
            let (tls_level, tls_from) = destination_level(config, raised, &domain);
            let steps = chain(
                &config.policy,
                tls_level,
                &|s| label(&address, s),
                &config.policy.methods,
            );
            let key = match &verdict {
                Verdict::Deliver {
                    seal: s @ (Seal::Pgp | Seal::Smime),
                    ..
                } => label(&address, *s).ok(),
                _ => None,
            };
            RecipientExplanation {
                address: rcpt.to_string(),
                if_it_fails: if_it_fails(&verdict, config, tls_level),
                key,
                tls_level,
                tls_from,
                chain: steps
                    .into_iter()
                    .map(|(method, r)| ChainStep {
                        method,
                        possible: r.is_ok(),
                        detail: match r {
                            Ok(Some(k)) => k,
                            Ok(None) if method == Seal::Tls => {
                                format!("verified TLS (level {tls_level})")
                            }
                            Ok(None) => "available".into(),
                            Err(why) => why.to_string(),
                        },
                    })
                    .collect(),
                verdict,
            }
        })
        .collect();
    Explanation {
        direction,
        dlp,
        tags_stripped: decision.new_subject.is_some(),
        tags: decision.tags,
        header_trigger: facts.trigger,
        recipients: out,
    }
}

/// What delivery does when the chosen method cannot be carried out.
fn if_it_fails(v: &Verdict, config: &Config, tls_level: TlsLevel) -> String {
    let tls_required = tls_level.requires_tls() && tls_level != TlsLevel::Exclusive;
    let lifetime = humantime_days(config.delivery.max_lifetime.0);
    match v {
        Verdict::Deliver {
            seal: Seal::Tls,
            fallback: Some(f),
            ..
        } => format!(
            "if the TLS session fails (no STARTTLS, a failed handshake, a certificate that does not verify), the copy sealed ahead with {}{} is sent instead, at once",
            f.seal.as_str(),
            f.key.as_deref().map(|k| format!(" (key {k})")).unwrap_or_default()
        ),
        Verdict::Deliver {
            seal: Seal::Tls,
            escalated: true,
            ..
        } => format!(
            "without verified TLS the recipient is deferred and retried, then bounced with a DSN after {lifetime}; never sent in plain"
        ),
        Verdict::Deliver {
            seal: Seal::Tls, ..
        } if tls_required => format!(
            "TLS is required (level {tls_level}) and no other method of the chain can protect this recipient: a failed TLS session is retried for {lifetime}, then bounced with a DSN"
        ),
        Verdict::Deliver {
            seal: Seal::Tls, ..
        } => format!(
            "delivery follows the destination's TLS level; temporary failures are retried for {lifetime}, then bounced with a DSN"
        ),
        Verdict::Deliver {
            seal: Seal::Pgp | Seal::Smime,
            ..
        } => "if the key is no longer usable when the copy is sealed, the recipient is bounced with a DSN naming why".into(),
        Verdict::Deliver {
            seal: Seal::Portal, ..
        } => "held in the escrow portal; the recipient gets a notice with a link".into(),
        Verdict::Quarantine { .. } => "held for an admin; nothing is sent".into(),
        Verdict::Block { .. } => "not sent: the sender gets a DSN with the reason".into(),
    }
}

fn humantime_days(d: std::time::Duration) -> String {
    let h = d.as_secs() / 3600;
    if h >= 48 && h.is_multiple_of(24) {
        format!("{} days", h / 24)
    } else {
        format!("{h} hours")
    }
}

/// The explanation as text for the terminal.
pub fn to_text(e: &Explanation) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "direction: {}", e.direction.as_str());
    match &e.dlp {
        Some(d) => {
            let found: Vec<String> = d
                .findings
                .iter()
                .map(|f| format!("{} x{} ({})", f.detector, f.count, f.confidence))
                .collect();
            let _ = writeln!(
                out,
                "dlp:       {}; rules fired: {}; action: {}",
                if found.is_empty() {
                    "nothing found".to_string()
                } else {
                    found.join(", ")
                },
                if d.policy_hits.is_empty() {
                    "none".to_string()
                } else {
                    d.policy_hits.join(", ")
                },
                d.action.as_deref().unwrap_or("none")
            );
            for (code, n) in &d.unscannable {
                let _ = writeln!(out, "           unscannable: {code} x{n}");
            }
        }
        None => {
            let _ = writeln!(out, "dlp:       off");
        }
    }
    let _ = writeln!(
        out,
        "tags:      {}{}",
        if e.tags.is_empty() {
            "none".to_string()
        } else {
            e.tags.join(" ")
        },
        if e.tags_stripped {
            " (removed from the subject)"
        } else {
            ""
        }
    );
    if e.header_trigger {
        let _ = writeln!(out, "header:    encryption requested by header");
    }
    for r in &e.recipients {
        let _ = writeln!(out, "\n{}", r.address);
        let _ = writeln!(out, "  verdict:   {}", r.verdict);
        if let Some(k) = &r.key {
            let _ = writeln!(out, "  key:       {k}");
        }
        let _ = writeln!(
            out,
            "  tls:       level {} (from {})",
            r.tls_level, r.tls_from
        );
        for s in &r.chain {
            let _ = writeln!(
                out,
                "  {:<10} {} {}",
                format!("{}:", s.method.as_str()),
                if s.possible { "yes" } else { "no " },
                s.detail
            );
        }
        let _ = writeln!(out, "  if it fails: {}", r.if_it_fails);
    }
    out
}

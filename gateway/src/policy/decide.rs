//! The decision itself: pure, so `explain` and delivery can never disagree.

use super::verdict::{Fallback, Seal, Verdict};
use crate::config::{InboundDlp, Mode, PolicyConfig};
use crate::keys::Unusable;
use crate::model::address::Mailbox;
use crate::model::inbound::{AuthVerdict, InboundAction, ScanVerdict};
use crate::model::tls::TlsLevel;
use crate::spool::{Direction, InspectionRecord};

/// Why a method cannot protect a recipient; blocked verdicts and
/// `sealgate explain` give this text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unfit {
    /// TLS protects only where the destination's certificate is verified.
    #[error("the destination's TLS is not verified (level {0})")]
    Unverified(TlsLevel),
    /// The portal method is listed but the portal is off.
    #[error("the escrow portal is off ([portal] enabled = false)")]
    PortalOff,
    /// A key was asked for a method that takes none.
    #[error("{} needs no key", .0.as_str())]
    NoKeyNeeded(Seal),
    /// No stored key can seal for the recipient.
    #[error(transparent)]
    Key(#[from] Unusable),
}

/// `why` joined with "; ", as a blocked verdict lists them.
fn joined(why: &[Unfit]) -> String {
    why.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Everything the decision for one recipient depends on.
pub struct Inputs<'a> {
    /// Which way the message travels.
    pub direction: Direction,
    /// What DLP found, if it ran.
    pub dlp: Option<&'a InspectionRecord>,
    /// Tags found in the subject (as configured).
    pub tags: &'a [String],
    /// The header trigger (`X-Sealgate-Encrypt: yes`) was present.
    pub header_trigger: bool,
    /// The recipient.
    pub recipient: &'a Mailbox,
    /// The TLS level configured for the recipient's destination.
    pub destination_tls: TlsLevel,
    /// The keystore id of a usable key of this kind for the recipient, or
    /// why there is none.
    pub key_for: &'a dyn Fn(Seal) -> Result<String, Unfit>,
}

/// The most specific `[policy.recipients]` mode for `rcpt`: address, then
/// domain (and parent domains), then `*`.
fn mode_for(cfg: &PolicyConfig, rcpt: &Mailbox) -> Option<(Mode, String)> {
    let domain = rcpt.domain_ascii().to_ascii_lowercase();
    let address = format!("{}@{domain}", rcpt.local().to_ascii_lowercase());
    let mut keys = vec![address];
    let mut d = domain.as_str();
    loop {
        keys.push(d.to_string());
        match d.split_once('.') {
            Some((_, parent)) if parent.contains('.') => d = parent,
            _ => break,
        }
    }
    keys.push("*".into());
    keys.into_iter()
        .find_map(|k| cfg.recipients.get(&k).map(|m| (*m, k)))
}

/// What the sender can do when no seal is possible (it ends the DSN's reason).
const NO_SEAL_HINT: &str = "nothing was sent; ask the recipient for an OpenPGP key or S/MIME certificate for your administrator to import, or send it without protected data";

/// The verdict for every recipient of an inbound message that sender
/// authentication held: DMARC failed under a policy `[inbound]` maps to the
/// quarantine.
pub fn auth_hold(auth: &AuthVerdict) -> Option<Verdict> {
    (auth.action == InboundAction::Quarantine).then(|| Verdict::Quarantine {
        reason: format!(
            "inbound mail held: it fails DMARC and {} publishes p={}",
            auth.dmarc_domain
                .as_deref()
                .unwrap_or("the sender's domain"),
            auth.dmarc_policy.as_deref().unwrap_or("quarantine")
        ),
    })
}

/// The verdict for every recipient of an inbound message the content
/// scanners held: malware (by signature name) or spam (by score).
pub fn scan_hold(scan: &ScanVerdict) -> Option<Verdict> {
    if scan.action != InboundAction::Quarantine {
        return None;
    }
    let reason = match (&scan.malware, scan.spam_score) {
        (Some(name), _) => format!("inbound mail held: malware found ({name})"),
        (None, Some(score)) => format!("inbound mail held as spam (score {score:.1})"),
        (None, None) => "inbound mail held by the content scan".to_string(),
    };
    Some(Verdict::Quarantine { reason })
}

/// The verdict for every recipient of an inbound message whose attachments
/// (also inside archives) include a blocked type, or a password-protected
/// archive or document when `hold_encrypted` is on. The reason names the
/// extensions, never the file names.
pub fn attachment_hold(
    cfg: &crate::config::InboundConfig,
    dlp: &InspectionRecord,
) -> Option<Verdict> {
    let blocked: Vec<&str> = dlp
        .extensions
        .iter()
        .filter(|e| cfg.blocked_extensions.contains(e))
        .map(String::as_str)
        .collect();
    let encrypted =
        cfg.hold_encrypted && dlp.unscannable.iter().any(|(code, _)| code == "encrypted");
    let reason = match (blocked.is_empty(), encrypted) {
        (true, false) => return None,
        (false, false) => format!(
            "inbound mail held: blocked attachment type (.{})",
            blocked.join(", .")
        ),
        (true, true) => {
            "inbound mail held: password-protected attachment (cannot be scanned)".to_string()
        }
        (false, true) => format!(
            "inbound mail held: blocked attachment type (.{}) and a password-protected attachment",
            blocked.join(", .")
        ),
    };
    Some(Verdict::Quarantine { reason })
}

/// Decides one recipient's verdict.
pub fn decide(cfg: &PolicyConfig, i: &Inputs) -> Verdict {
    if i.direction == Direction::Inbound {
        let held = matches!(
            i.dlp.and_then(|d| d.action.as_deref()),
            Some("quarantine" | "block")
        );
        if held && cfg.inbound_dlp == InboundDlp::Enforce {
            let rules = i.dlp.map(|d| d.policy_hits.join(", ")).unwrap_or_default();
            return Verdict::Quarantine {
                reason: format!("inbound mail held by DLP policy ({rules})"),
            };
        }
        return Verdict::Deliver {
            seal: Seal::Tls,
            escalated: false,
            why: vec!["inbound".into()],
            key: None,
            fallback: None,
        };
    }
    let rules = || -> String { i.dlp.map(|d| d.policy_hits.join(", ")).unwrap_or_default() };
    match i.dlp.and_then(|d| d.action.as_deref()) {
        Some("block") => {
            return Verdict::Block {
                reason: format!(
                    "blocked by DLP policy ({}): this data may not leave by e-mail; remove it, or ask your administrator",
                    rules()
                ),
            }
        }
        Some("quarantine") => {
            return Verdict::Quarantine {
                reason: format!("held by DLP policy ({})", rules()),
            }
        }
        _ => {}
    }
    let mut why: Vec<String> = Vec::new();
    // A method-forcing tag names the one method the sender wants.
    if let Some((tag, seal)) = i
        .tags
        .iter()
        .find_map(|t| cfg.method_tags.get(t).map(|s| (t, *s)))
    {
        why.push(format!("tag {tag}"));
        return match chosen(cfg, i, &[seal]) {
            Ok((seal, key)) => Verdict::Deliver {
                seal,
                escalated: true,
                why,
                key,
                fallback: None,
            },
            Err(missing) => Verdict::Block {
                reason: format!(
                    "{tag} asks for {}, but {}; {NO_SEAL_HINT}",
                    seal.as_str(),
                    joined(&missing)
                ),
            },
        };
    }
    for t in i.tags.iter().filter(|t| cfg.escalate_tags.contains(t)) {
        why.push(format!("tag {t}"));
    }
    if i.header_trigger {
        why.push(format!("header {}", cfg.header_trigger));
    }
    if i.dlp.and_then(|d| d.action.as_deref()) == Some("encrypt") {
        why.push(format!("DLP {}", rules()));
    }
    match mode_for(cfg, i.recipient) {
        Some((Mode::Escalate, k)) => why.push(format!("rule {k}")),
        Some((Mode::Opportunistic, _)) | None => {}
    }
    if why.is_empty() {
        // `exclusive` means TLS or drop: it has no fallback by definition.
        let required = i.destination_tls.requires_tls() && i.destination_tls != TlsLevel::Exclusive;
        return Verdict::Deliver {
            seal: Seal::Tls,
            escalated: false,
            why,
            key: None,
            fallback: if required { fallback(cfg, i) } else { None },
        };
    }
    match chosen(cfg, i, &cfg.methods) {
        Ok((seal, key)) => Verdict::Deliver {
            seal,
            escalated: true,
            why,
            key,
            fallback: if seal == Seal::Tls {
                fallback(cfg, i)
            } else {
                None
            },
        },
        Err(missing) => Verdict::Block {
            reason: format!(
                "encryption required ({}) but no secure method for {}: {}; {NO_SEAL_HINT}",
                why.join(", "),
                i.recipient,
                joined(&missing)
            ),
        },
    }
}

/// What a recipient whose TLS is required falls back to when the TLS
/// session fails at delivery: the first method of the chain other than TLS
/// that can protect it.
fn fallback(cfg: &PolicyConfig, i: &Inputs) -> Option<Fallback> {
    let rest: Vec<Seal> = cfg
        .methods
        .iter()
        .copied()
        // The portal is not a fallback: its copy would be deposited, and
        // its notice sent, before anyone knew TLS would fail.
        .filter(|m| !matches!(m, Seal::Tls | Seal::Portal))
        .collect();
    chosen(cfg, i, &rest)
        .ok()
        .map(|(seal, key)| Fallback { seal, key })
}

/// One step of the method chain: the key it would use (for PGP and
/// S/MIME), or why it cannot protect the recipient.
pub type Step = (Seal, Result<Option<String>, Unfit>);

/// Every one of `methods`, in order, judged for one recipient.
pub fn chain(
    cfg: &PolicyConfig,
    destination_tls: TlsLevel,
    key_for: &dyn Fn(Seal) -> Result<String, Unfit>,
    methods: &[Seal],
) -> Vec<Step> {
    methods
        .iter()
        .map(|&m| {
            let r = match m {
                Seal::Tls if destination_tls.authenticates() => Ok(None),
                Seal::Tls => Err(Unfit::Unverified(destination_tls)),
                Seal::Pgp | Seal::Smime => key_for(m).map(Some),
                Seal::Portal if cfg.portal_available => Ok(None),
                Seal::Portal => Err(Unfit::PortalOff),
            };
            (m, r)
        })
        .collect()
}

/// The first of `methods` that can protect this recipient (with the key it
/// would use), or why none can. Keys are looked up only as far as needed.
fn chosen(
    cfg: &PolicyConfig,
    i: &Inputs,
    methods: &[Seal],
) -> Result<(Seal, Option<String>), Vec<Unfit>> {
    let mut missing = Vec::new();
    for &m in methods {
        match chain(cfg, i.destination_tls, i.key_for, &[m]).pop() {
            Some((m, Ok(key))) => return Ok((m, key)),
            Some((_, Err(why))) => missing.push(why),
            None => {}
        }
    }
    Err(missing)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs<'a>(
        rcpt: &'a Mailbox,
        tags: &'a [String],
        dlp: Option<&'a InspectionRecord>,
        tls: TlsLevel,
    ) -> Inputs<'a> {
        Inputs {
            direction: Direction::Outbound,
            dlp,
            tags,
            header_trigger: false,
            recipient: rcpt,
            destination_tls: tls,
            key_for: &|s| Err(no_key(s)),
        }
    }

    /// What a keystore without keys answers for `seal`.
    fn no_key(seal: Seal) -> Unfit {
        let kind = match seal {
            Seal::Pgp => crate::model::key::KeyKind::Pgp,
            _ => crate::model::key::KeyKind::Smime,
        };
        Unfit::Key(Unusable::NoneKnown {
            kind,
            address: "a@b.test".into(),
        })
    }

    fn dlp(action: &str) -> InspectionRecord {
        InspectionRecord {
            inspected_at: chrono::Utc::now(),
            findings: vec![],
            unscannable: vec![],
            action: Some(action.into()),
            policy_hits: vec!["hipaa_pci:ssn".into()],
            extensions: Vec::new(),
        }
    }

    #[test]
    fn plain_mail_goes_by_the_destination_level() {
        let cfg = PolicyConfig::default();
        let r = Mailbox::parse("a@b.test").unwrap();
        let v = decide(&cfg, &inputs(&r, &[], None, TlsLevel::May));
        assert_eq!(
            v,
            Verdict::Deliver {
                seal: Seal::Tls,
                escalated: false,
                why: vec![],
                key: None,
                fallback: None,
            }
        );
    }

    #[test]
    fn escalation_takes_verified_tls_or_blocks_never_plain() {
        let cfg = PolicyConfig::default();
        let r = Mailbox::parse("a@b.test").unwrap();
        let tags = vec!["[secure]".to_string()];
        match decide(&cfg, &inputs(&r, &tags, None, TlsLevel::Verify)) {
            Verdict::Deliver {
                seal: Seal::Tls,
                escalated: true,
                why,
                key: None,
                fallback: None,
            } => assert_eq!(why, ["tag [secure]"]),
            v => panic!("{v:?}"),
        }
        match decide(&cfg, &inputs(&r, &tags, None, TlsLevel::May)) {
            Verdict::Block { reason } => {
                assert!(
                    reason.contains("a@b.test") && reason.contains("level may"),
                    "{reason}"
                )
            }
            v => panic!("{v:?}"),
        }
        // DLP "encrypt" escalates like a tag; a known key is used when TLS is not verified.
        let d = dlp("encrypt");
        let mut i = inputs(&r, &[], Some(&d), TlsLevel::Encrypt);
        let pgp = |s: Seal| match s {
            Seal::Pgp => Ok("FPR".to_string()),
            s => Err(no_key(s)),
        };
        i.key_for = &pgp;
        assert!(matches!(
            decide(&cfg, &i),
            Verdict::Deliver {
                seal: Seal::Pgp,
                escalated: true,
                key: Some(ref k),
                ..
            } if k == "FPR"
        ));
    }

    #[test]
    fn required_tls_names_the_next_method_as_its_fallback() {
        let cfg = PolicyConfig::default();
        let r = Mailbox::parse("a@b.test").unwrap();
        let smime = |s: Seal| match s {
            Seal::Smime => Ok("CERT".to_string()),
            s => Err(no_key(s)),
        };
        let fallback_of = |tags: &[String], level: TlsLevel| {
            let mut i = inputs(&r, tags, None, level);
            i.key_for = &smime;
            match decide(&cfg, &i) {
                Verdict::Deliver {
                    seal: Seal::Tls,
                    fallback,
                    ..
                } => fallback,
                v => panic!("{v:?}"),
            }
        };
        let want = Some(Fallback {
            seal: Seal::Smime,
            key: Some("CERT".into()),
        });
        // Plain mail to a domain that requires TLS: S/MIME if TLS fails.
        assert_eq!(fallback_of(&[], TlsLevel::Encrypt), want);
        assert_eq!(fallback_of(&[], TlsLevel::Verify), want);
        // Escalated to a verified domain: TLS first, S/MIME next.
        assert_eq!(fallback_of(&["[secure]".into()], TlsLevel::Verify), want);
        // Opportunistic TLS needs none; `exclusive` means TLS or drop.
        assert_eq!(fallback_of(&[], TlsLevel::May), None);
        assert_eq!(fallback_of(&[], TlsLevel::Exclusive), None);
        // Without a key there is nothing to fall back to (the portal is never a fallback).
        assert_eq!(
            decide(&cfg, &inputs(&r, &[], None, TlsLevel::Encrypt)),
            Verdict::Deliver {
                seal: Seal::Tls,
                escalated: false,
                why: vec![],
                key: None,
                fallback: None,
            }
        );
    }

    #[test]
    fn a_fallback_switches_the_verdict_once() {
        let mut v = Verdict::Deliver {
            seal: Seal::Tls,
            escalated: true,
            why: vec!["tag [secure]".into()],
            key: None,
            fallback: Some(Fallback {
                seal: Seal::Pgp,
                key: Some("FPR".into()),
            }),
        };
        assert_eq!(v.copy_wanted(), Some((Seal::Pgp, Some("FPR"))));
        assert!(!v.sends_sealed_copy());
        assert!(v.fall_back("451 4.7.4 mx does not offer STARTTLS"));
        assert!(v.sends_sealed_copy());
        assert_eq!(v.copy_wanted(), Some((Seal::Pgp, Some("FPR"))));
        assert!(
            v.to_string().contains("pgp after TLS failed: 451 4.7.4"),
            "{v}"
        );
        assert!(!v.fall_back("again"), "a verdict falls back at most once");
    }

    #[test]
    fn dlp_block_and_quarantine_and_method_tags() {
        let cfg = PolicyConfig::default();
        let r = Mailbox::parse("a@b.test").unwrap();
        let q = dlp("quarantine");
        assert!(matches!(
            decide(&cfg, &inputs(&r, &[], Some(&q), TlsLevel::Verify)),
            Verdict::Quarantine { .. }
        ));
        let b = dlp("block");
        assert!(matches!(
            decide(&cfg, &inputs(&r, &[], Some(&b), TlsLevel::Verify)),
            Verdict::Block { .. }
        ));
        // [pgp] forces PGP even where verified TLS would do; without a key it blocks.
        let tags = vec!["[pgp]".to_string()];
        match decide(&cfg, &inputs(&r, &tags, None, TlsLevel::Verify)) {
            Verdict::Block { reason } => {
                assert!(reason.contains("no OpenPGP key is known"), "{reason}")
            }
            v => panic!("{v:?}"),
        }
    }

    #[test]
    fn most_specific_recipient_rule_wins_and_inbound_is_untouched() {
        let mut cfg = PolicyConfig::default();
        cfg.recipients.insert("bank.test".into(), Mode::Escalate);
        cfg.recipients
            .insert("ops@bank.test".into(), Mode::Opportunistic);
        let teller = Mailbox::parse("teller@branch.bank.test").unwrap();
        let ops = Mailbox::parse("ops@bank.test").unwrap();
        assert!(matches!(
            decide(&cfg, &inputs(&teller, &[], None, TlsLevel::Verify)),
            Verdict::Deliver {
                escalated: true,
                ..
            }
        ));
        assert!(matches!(
            decide(&cfg, &inputs(&ops, &[], None, TlsLevel::May)),
            Verdict::Deliver {
                escalated: false,
                ..
            }
        ));
        let mut i = inputs(&teller, &[], None, TlsLevel::May);
        i.direction = Direction::Inbound;
        assert!(matches!(
            decide(&cfg, &i),
            Verdict::Deliver {
                escalated: false,
                ..
            }
        ));
    }

    #[test]
    fn a_dmarc_failure_configured_to_quarantine_holds_the_message() {
        let mut auth = AuthVerdict::quarantined_dmarc_failure();
        match auth_hold(&auth) {
            Some(Verdict::Quarantine { reason }) => {
                assert!(
                    reason.contains("bank.example") && reason.contains("p=quarantine"),
                    "{reason}"
                )
            }
            other => panic!("{other:?}"),
        }
        auth.action = InboundAction::Deliver;
        assert_eq!(auth_hold(&auth), None);
    }

    #[test]
    fn dangerous_attachments_hold_inbound_mail_by_extension_never_name() {
        let cfg = crate::config::InboundConfig::default();
        let mut rec = dlp("none");
        rec.action = None;
        rec.extensions = vec!["pdf".into(), "txt".into()];
        assert_eq!(attachment_hold(&cfg, &rec), None);
        rec.extensions = vec!["exe".into(), "pdf".into(), "xlsm".into()];
        match attachment_hold(&cfg, &rec) {
            Some(Verdict::Quarantine { reason }) => {
                assert!(reason.contains(".exe, .xlsm"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
        rec.extensions = vec!["zip".into()];
        rec.unscannable = vec![("encrypted".into(), 1)];
        assert!(attachment_hold(&cfg, &rec).is_some());
        let lax = crate::config::InboundConfig {
            hold_encrypted: false,
            ..Default::default()
        };
        assert_eq!(attachment_hold(&lax, &rec), None);
    }
}

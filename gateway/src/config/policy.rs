//! `[policy]`: subject tags, the header trigger, the method order and
//! per-recipient rules.

use super::Span;
use crate::model::verdict::Seal;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What a `[policy.recipients]` rule asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// The destination's TLS level, unless a tag, header or DLP escalates.
    Opportunistic,
    /// Always "more than opportunistic TLS".
    Escalate,
}

/// What DLP findings do to inbound mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InboundDlp {
    /// Nothing: findings are only recorded (spool, archive, metrics).
    Off,
    /// The copy for the tenant carries `X-Sealgate-DLP` (rule and detector
    /// ids, never values), for its transport rules to act on.
    Tag,
    /// As `tag`, and a `quarantine` or `block` policy action holds the
    /// message for an admin (inbound mail is never bounced: that would be
    /// backscatter to a forged sender).
    Enforce,
}

/// `[policy]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct PolicyConfig {
    /// Subject tags that escalate to "more than opportunistic TLS"
    /// (matched case-insensitively anywhere in the subject).
    pub escalate_tags: Vec<String>,
    /// Subject tags that force one method.
    pub method_tags: BTreeMap<String, Seal>,
    /// Remove matched tags from the subject before delivery.
    pub strip_tags: bool,
    /// A header that escalates when its value is yes, true, 1 or on.
    pub header_trigger: String,
    /// Methods tried in order for an escalated recipient.
    pub methods: Vec<Seal>,
    /// Per recipient address, domain (covers subdomains) or `*`: most specific wins.
    pub recipients: BTreeMap<String, Mode>,
    /// The escrow portal can take messages: `[portal] enabled`, copied here on load.
    #[serde(skip)]
    pub portal_available: bool,
    /// What DLP findings do to inbound mail: `off`, `tag` or `enforce`.
    pub inbound_dlp: InboundDlp,
    /// How long a quarantined message waits for an admin before it is
    /// bounced to its sender.
    pub quarantine_expiry: Span,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig {
            escalate_tags: vec!["[secure]".into(), "[encrypt]".into()],
            method_tags: [
                ("[pgp]".to_string(), Seal::Pgp),
                ("[smime]".to_string(), Seal::Smime),
                ("[portal]".to_string(), Seal::Portal),
            ]
            .into_iter()
            .collect(),
            strip_tags: true,
            header_trigger: "X-Sealgate-Encrypt".into(),
            methods: vec![Seal::Tls, Seal::Pgp, Seal::Smime, Seal::Portal],
            recipients: BTreeMap::new(),
            portal_available: false,
            inbound_dlp: InboundDlp::Tag,
            quarantine_expiry: Span::secs(30 * 86400),
        }
    }
}

impl PolicyConfig {
    /// Every configured tag, escalating and method-forcing.
    pub fn all_tags(&self) -> Vec<String> {
        let mut t = self.escalate_tags.clone();
        t.extend(self.method_tags.keys().cloned());
        t
    }
}

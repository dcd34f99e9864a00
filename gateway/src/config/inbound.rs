//! `[inbound]`: what Sealgate checks on mail from the internet before it
//! answers "250" — sender authentication (SPF, DKIM, ARC, DMARC) and what a
//! DMARC failure leads to.

use super::Span;
use serde::{Deserialize, Serialize};

/// What happens to a message that fails DMARC for a domain whose policy asks
/// for rejection or quarantine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DmarcAction {
    /// Refused in the SMTP dialogue with 550 5.7.1: nothing is accepted, so
    /// nothing needs a bounce.
    Reject,
    /// Accepted and held in the quarantine, with the reason.
    Quarantine,
    /// Accepted and delivered; only the Authentication-Results field says so.
    Tag,
}

impl DmarcAction {
    /// Lower-case name, for metrics labels and the trace.
    pub fn as_str(self) -> &'static str {
        match self {
            DmarcAction::Reject => "reject",
            DmarcAction::Quarantine => "quarantine",
            DmarcAction::Tag => "tag",
        }
    }
}

/// `[inbound]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct InboundConfig {
    /// Check SPF, DKIM, ARC and DMARC on inbound mail and add an
    /// Authentication-Results field.
    pub authenticate: bool,
    /// For a DMARC failure where the sender's domain publishes `p=reject`.
    pub on_dmarc_reject: DmarcAction,
    /// For a DMARC failure where the sender's domain publishes `p=quarantine`.
    pub on_dmarc_quarantine: DmarcAction,
    /// How long the DNS lookups of one message's checks may take in all;
    /// past it the checks that have not finished count as temporary errors.
    pub auth_timeout: Span,
    /// The authserv-id of the Authentication-Results fields Sealgate adds,
    /// and of those it removes from arriving mail as forged. Default: the
    /// server's hostname.
    pub authserv_id: Option<String>,
}

impl Default for InboundConfig {
    fn default() -> Self {
        InboundConfig {
            authenticate: true,
            on_dmarc_reject: DmarcAction::Reject,
            on_dmarc_quarantine: DmarcAction::Quarantine,
            auth_timeout: Span::secs(10),
            authserv_id: None,
        }
    }
}

impl InboundConfig {
    /// What is wrong with the settings, as `(field, reason)` pairs.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if self.auth_timeout.0.is_zero() {
            out.push((
                "inbound.auth_timeout".into(),
                "must be more than zero".into(),
            ));
        }
        if let Some(id) = &self.authserv_id {
            let ok = !id.is_empty()
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
            if !ok {
                out.push((
                    "inbound.authserv_id".into(),
                    "must be a host name (letters, digits, dots and hyphens)".into(),
                ));
            }
        }
        out
    }
}

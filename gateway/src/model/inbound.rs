//! What sender authentication concluded about an inbound message: kept in
//! its envelope, so the policy stage can act on a DMARC failure and the
//! trace can show each check.

use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// Who an inbound message says it comes from, as the SMTP session saw it:
/// what sender authentication and the scanners judge it by.
pub struct Identities<'a> {
    /// The client's address.
    pub ip: IpAddr,
    /// The HELO/EHLO name.
    pub helo: &'a str,
    /// The MAIL FROM address, empty for the null sender.
    pub mail_from: &'a str,
}

/// One check's result, as RFC 8601 names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthResult {
    /// The check passed.
    Pass,
    /// The check failed.
    Fail,
    /// SPF: the domain says probably not.
    SoftFail,
    /// SPF: the domain makes no assertion.
    Neutral,
    /// Nothing to check (no record, no signature).
    None,
    /// A temporary error (DNS timeout); a retry may succeed.
    TempError,
    /// A permanent error (a broken record or signature).
    PermError,
}

impl AuthResult {
    /// Lower-case name, as in Authentication-Results and metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthResult::Pass => "pass",
            AuthResult::Fail => "fail",
            AuthResult::SoftFail => "softfail",
            AuthResult::Neutral => "neutral",
            AuthResult::None => "none",
            AuthResult::TempError => "temperror",
            AuthResult::PermError => "permerror",
        }
    }
}

/// What the gateway does with the message because of its authentication.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InboundAction {
    /// Deliver (the Authentication-Results field tells the tenant the rest).
    Deliver,
    /// Hold in the quarantine: DMARC failed under a policy configured so.
    Quarantine,
}

#[cfg(test)]
impl AuthVerdict {
    /// A DMARC failure of bank.example under p=quarantine, held (tests).
    pub(crate) fn quarantined_dmarc_failure() -> AuthVerdict {
        AuthVerdict {
            spf: AuthResult::Pass,
            dkim: AuthResult::Fail,
            arc: AuthResult::None,
            dmarc: AuthResult::Fail,
            dmarc_domain: Some("bank.example".into()),
            dmarc_policy: Some("quarantine".into()),
            action: InboundAction::Quarantine,
            authserv_id: "mx.hospital.example".into(),
        }
    }
}

impl InboundAction {
    /// Lower-case name, for the trace.
    pub fn as_str(self) -> &'static str {
        match self {
            InboundAction::Deliver => "deliver",
            InboundAction::Quarantine => "quarantine",
        }
    }
}

/// The checks' results for one inbound message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthVerdict {
    /// SPF of the MAIL FROM identity (of the HELO name for a null sender).
    pub spf: AuthResult,
    /// DKIM: pass if any signature verified, else the first signature's result.
    pub dkim: AuthResult,
    /// The ARC chain's validation.
    pub arc: AuthResult,
    /// DMARC for the From domain.
    pub dmarc: AuthResult,
    /// The From domain DMARC was evaluated for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dmarc_domain: Option<String>,
    /// The domain's policy when DMARC failed: "reject", "quarantine" or "none".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dmarc_policy: Option<String>,
    /// What follows from it.
    pub action: InboundAction,
    /// The authserv-id of the Authentication-Results field added; fields
    /// with the same id that came with the message are removed as forged.
    pub authserv_id: String,
}

/// What the content scanners said about an inbound message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScanVerdict {
    /// rspamd's score, when it scored the message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spam_score: Option<f64>,
    /// rspamd's action ("no action", "add header", "reject"...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spam_action: Option<String>,
    /// The rspamd symbols that fired (rule names, never content).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub symbols: Vec<String>,
    /// The malware signature clamd found, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub malware: Option<String>,
    /// Scanners that could not be asked, when `[inbound]` accepts anyway.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unscanned: Vec<String>,
    /// What follows from it.
    pub action: InboundAction,
}

// The score is never NaN (JSON has none), so equality is total.
impl Eq for ScanVerdict {}

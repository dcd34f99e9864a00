//! Sender authentication of inbound mail before "250": SPF (RFC 7208) of the
//! MAIL FROM identity (of the HELO name for a null sender), DKIM (RFC 6376),
//! the ARC chain (RFC 8617) and DMARC (RFC 7489) for the From domain, all
//! checked with mail-auth over the gateway's own resolver.
//!
//! The results become an Authentication-Results field (RFC 8601) written
//! here from the typed results — every value in it is a result keyword or a
//! domain reduced to domain characters, so nothing from the message can
//! break out of the field. A DMARC failure under a `p=reject` or
//! `p=quarantine` policy becomes the action `[inbound]` names for it.

use std::time::Duration;

use mail_auth::dkim::DkimError;
use mail_auth::dmarc::verify::DmarcParameters;
use mail_auth::dmarc::Policy;
use mail_auth::spf::verify::SpfParameters;
use mail_auth::{AuthenticatedMessage, DkimResult, DmarcResult, MessageAuthenticator, SpfResult};
use tokio::time::{timeout_at, Instant};

use crate::config::{Config, FilterAction};
use crate::model::inbound::{AuthResult, AuthVerdict, Identities, InboundAction};
use crate::net::dns::{Dns, DnsError};

/// Checks inbound messages' senders.
pub struct SenderAuth {
    checker: MessageAuthenticator,
    authserv_id: String,
    host_domain: String,
    on_reject: FilterAction,
    on_quarantine: FilterAction,
    budget: Duration,
}

/// What the checks found and what follows.
#[derive(Debug)]
pub enum Outcome {
    /// Accept the message with these trace fields in front and this verdict kept.
    Accept {
        /// The Authentication-Results field, CRLF-ended.
        field: String,
        /// The results, for the envelope.
        verdict: AuthVerdict,
    },
    /// Refuse it in the dialogue (550 5.7.1): DMARC failed under `p=reject`
    /// and `[inbound] on_dmarc_reject = "reject"`.
    Reject {
        /// The From domain whose policy refused it.
        domain: String,
    },
}

impl SenderAuth {
    /// A checker with the settings of `[inbound]`, asking the servers of `dns`.
    pub fn new(config: &Config, dns: &Dns) -> Result<SenderAuth, DnsError> {
        let resolver = dns.with_options(|o| {
            o.timeout = Duration::from_secs(5);
            o.attempts = 2;
        })?;
        let hostname = config.server.hostname.clone();
        Ok(SenderAuth {
            checker: MessageAuthenticator(resolver),
            authserv_id: config
                .inbound
                .authserv_id
                .clone()
                .unwrap_or_else(|| hostname.clone()),
            host_domain: hostname,
            on_reject: config.inbound.on_dmarc_reject,
            on_quarantine: config.inbound.on_dmarc_quarantine,
            budget: config.inbound.auth_timeout.0,
        })
    }

    /// Checks `message` (as received, without our trace fields). Checks
    /// still waiting for DNS when the time budget runs out count as
    /// temporary errors; a temporary error never refuses mail.
    pub async fn check(&self, message: &[u8], who: &Identities<'_>) -> Outcome {
        let deadline = Instant::now() + self.budget;
        let helo = who.helo.trim_end_matches('.');
        let mail_from_domain = match who.mail_from.rsplit_once('@') {
            Some((_, d)) => d,
            None => helo,
        };
        let spf_params = if who.mail_from.is_empty() {
            SpfParameters::verify_ehlo(who.ip, helo, &self.host_domain)
        } else {
            SpfParameters::verify_mail_from(who.ip, helo, &self.host_domain, who.mail_from)
        };
        let spf_output = timeout_at(deadline, self.checker.verify_spf(spf_params)).await;
        let spf = match &spf_output {
            Ok(o) => spf_result(o.result()),
            Err(_) => AuthResult::TempError,
        };
        let Some(parsed) = AuthenticatedMessage::parse(message) else {
            // Not even a header to check: SPF stands alone.
            let verdict = self.verdict(spf, AuthResult::None, AuthResult::None, None);
            return self.accept(verdict, mail_from_domain, None);
        };
        let dkim_outputs = timeout_at(deadline, self.checker.verify_dkim(&parsed))
            .await
            .unwrap_or_default();
        let dkim = dkim_summary(dkim_outputs.iter().map(|o| o.result()));
        let signer = dkim_outputs
            .iter()
            .find(|o| o.result() == &DkimResult::Pass)
            .or(dkim_outputs.first())
            .and_then(|o| o.signature())
            .map(|s| s.d.clone());
        let arc = match timeout_at(deadline, self.checker.verify_arc(&parsed)).await {
            Ok(o) => dkim_result(o.result()),
            Err(_) => AuthResult::TempError,
        };
        let from_domain = parsed
            .from()
            .rsplit_once('@')
            .map(|(_, d)| d.to_ascii_lowercase());
        let (dmarc, policy) = match &spf_output {
            Ok(spf_output) => {
                let params =
                    DmarcParameters::new(&parsed, &dkim_outputs, mail_from_domain, spf_output);
                match timeout_at(deadline, self.checker.verify_dmarc(params)).await {
                    Ok(o) => (dmarc_result(&o.result()), Some(o.policy())),
                    Err(_) => (AuthResult::TempError, None),
                }
            }
            Err(_) => (AuthResult::TempError, None),
        };
        let mut verdict = self.verdict(spf, dkim, arc, from_domain.clone());
        verdict.dmarc = dmarc;
        if dmarc == AuthResult::Fail {
            let (name, action) = match policy {
                Some(Policy::Reject) => ("reject", self.on_reject),
                Some(Policy::Quarantine) => ("quarantine", self.on_quarantine),
                _ => ("none", FilterAction::Tag),
            };
            verdict.dmarc_policy = Some(name.into());
            match action {
                FilterAction::Reject => {
                    return Outcome::Reject {
                        domain: from_domain.unwrap_or_default(),
                    }
                }
                FilterAction::Quarantine => verdict.action = InboundAction::Quarantine,
                FilterAction::Tag => {}
            }
        }
        self.accept(verdict, mail_from_domain, signer)
    }

    fn verdict(
        &self,
        spf: AuthResult,
        dkim: AuthResult,
        arc: AuthResult,
        dmarc_domain: Option<String>,
    ) -> AuthVerdict {
        AuthVerdict {
            spf,
            dkim,
            arc,
            dmarc: AuthResult::None,
            dmarc_domain,
            dmarc_policy: None,
            action: InboundAction::Deliver,
            authserv_id: self.authserv_id.clone(),
        }
    }

    fn accept(
        &self,
        verdict: AuthVerdict,
        mail_from_domain: &str,
        signer: Option<String>,
    ) -> Outcome {
        Outcome::Accept {
            field: field(&verdict, mail_from_domain, signer.as_deref()),
            verdict,
        }
    }
}

/// `s` reduced to what a domain may hold, lower case; None if nothing is left.
fn domain_token(s: &str) -> Option<String> {
    let t: String = s
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '.' || *c == '-' || *c == '_')
        .collect::<String>()
        .to_ascii_lowercase();
    (!t.is_empty()).then_some(t)
}

/// The Authentication-Results field for `v`, folded one method per line.
fn field(v: &AuthVerdict, mail_from_domain: &str, signer: Option<&str>) -> String {
    let mut out = format!("Authentication-Results: {}", v.authserv_id);
    let mut method = |text: String| {
        out.push_str(";\r\n\t");
        out.push_str(&text);
    };
    let mut spf = format!("spf={}", v.spf.as_str());
    if let Some(d) = domain_token(mail_from_domain) {
        spf.push_str(&format!(" smtp.mailfrom={d}"));
    }
    method(spf);
    let mut dkim = format!("dkim={}", v.dkim.as_str());
    if let Some(d) = signer.and_then(domain_token) {
        dkim.push_str(&format!(" header.d={d}"));
    }
    method(dkim);
    method(format!("arc={}", v.arc.as_str()));
    let mut dmarc = format!("dmarc={}", v.dmarc.as_str());
    if let Some(p) = &v.dmarc_policy {
        dmarc.push_str(&format!(" (p={p})"));
    }
    if let Some(d) = v.dmarc_domain.as_deref().and_then(domain_token) {
        dmarc.push_str(&format!(" header.from={d}"));
    }
    method(dmarc);
    out.push_str("\r\n");
    out
}

fn spf_result(r: SpfResult) -> AuthResult {
    match r {
        SpfResult::Pass => AuthResult::Pass,
        SpfResult::Fail => AuthResult::Fail,
        SpfResult::SoftFail => AuthResult::SoftFail,
        SpfResult::Neutral => AuthResult::Neutral,
        SpfResult::TempError => AuthResult::TempError,
        SpfResult::PermError => AuthResult::PermError,
        SpfResult::None => AuthResult::None,
    }
}

fn dkim_result(r: &DkimResult) -> AuthResult {
    match r {
        DkimResult::Pass => AuthResult::Pass,
        // mail-auth calls a body hash mismatch neutral; RFC 6376 §6.1.3
        // makes it a PERMFAIL, which RFC 8601 reports as "fail".
        DkimResult::Neutral(mail_auth::Error::Dkim(DkimError::FailedBodyHashMatch)) => {
            AuthResult::Fail
        }
        DkimResult::Neutral(_) => AuthResult::Neutral,
        DkimResult::Fail(_) => AuthResult::Fail,
        DkimResult::PermError(_) => AuthResult::PermError,
        DkimResult::TempError(_) => AuthResult::TempError,
        DkimResult::None => AuthResult::None,
    }
}

fn dmarc_result(r: &DmarcResult) -> AuthResult {
    match r {
        DmarcResult::Pass => AuthResult::Pass,
        DmarcResult::Fail(_) => AuthResult::Fail,
        DmarcResult::TempError(_) => AuthResult::TempError,
        DmarcResult::PermError(_) => AuthResult::PermError,
        DmarcResult::None => AuthResult::None,
    }
}

/// One result for all signatures: pass if any passed, else the first's.
fn dkim_summary<'a>(mut results: impl Iterator<Item = &'a DkimResult>) -> AuthResult {
    let Some(first) = results.next() else {
        return AuthResult::None;
    };
    if first == &DkimResult::Pass || results.any(|r| r == &DkimResult::Pass) {
        AuthResult::Pass
    } else {
        dkim_result(first)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_field_names_each_method_and_nothing_else() {
        let f = field(
            &AuthVerdict::quarantined_dmarc_failure(),
            "bulk.example",
            Some("bank.example"),
        );
        assert_eq!(
            f,
            "Authentication-Results: mx.hospital.example;\r\n\tspf=pass smtp.mailfrom=bulk.example;\r\n\tdkim=fail header.d=bank.example;\r\n\tarc=none;\r\n\tdmarc=fail (p=quarantine) header.from=bank.example\r\n"
        );
    }

    #[test]
    fn values_from_the_message_cannot_break_out_of_the_field() {
        let mut v = AuthVerdict::quarantined_dmarc_failure();
        v.dmarc_domain = Some("evil.example\r\nBcc: x@y; dkim=pass".into());
        let f = field(&v, "a;b c\r\nX: y", Some("d=\r\n"));
        assert_eq!(f.matches("\r\n").count(), 5, "{f}");
        assert!(!f.contains("Bcc:") && !f.contains("X: y"), "{f}");
        assert!(f.contains("header.from=evil.examplebccxydkimpass"), "{f}");
    }

    #[test]
    fn any_passing_signature_makes_dkim_pass() {
        let fail = DkimResult::Neutral(mail_auth::Error::Dkim(DkimError::FailedBodyHashMatch));
        assert_eq!(
            dkim_summary([&fail, &DkimResult::Pass].into_iter()),
            AuthResult::Pass
        );
        assert_eq!(dkim_summary([&fail].into_iter()), AuthResult::Fail);
        assert_eq!(dkim_summary([].into_iter()), AuthResult::None);
    }
}

//! `[portal]`: the escrow portal, the last step of the seal chain.

use super::Span;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;

/// How a recipient signs in after the first visit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PortalLogin {
    /// A one-time code by mail on the first visit, then a password the
    /// recipient sets (a code is still offered if it is forgotten).
    Password,
    /// A one-time code by mail on every visit; no passwords are kept.
    Code,
}

/// `[portal]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct PortalConfig {
    /// Hold messages for recipients no other method can protect, and serve
    /// the pickup web app. Off: the portal step of `[policy] methods` is
    /// skipped and such recipients bounce with a DSN.
    pub enabled: bool,
    /// Where the web app listens.
    pub address: SocketAddr,
    /// The address recipients reach it at, as written in notices
    /// (`https://secure.example.org`); required when enabled.
    pub public_url: String,
    /// Serve HTTPS (the `[tls]` certificate unless `cert_file` is set).
    /// `false` only behind a reverse proxy that terminates TLS.
    pub tls: bool,
    /// PEM certificate chain for the portal; unset: the `[tls]` one.
    pub cert_file: Option<PathBuf>,
    /// PEM private key for `cert_file`.
    pub key_file: Option<PathBuf>,
    /// The organisation's name, as recipients know it (notices and pages).
    pub organisation: String,
    /// From address of notices and one-time codes; unset: the original
    /// sender's address (the notice comes from the person who wrote).
    pub notice_from: Option<String>,
    /// How long a message stays in the portal before it is erased.
    pub expiry: Span,
    /// Shorter (or longer) stays for messages a DLP policy rule fired on,
    /// by rule (`"hipaa_pci:ssn-bulk" = "7d"`); the shortest that applies wins.
    pub expiry_by_rule: std::collections::BTreeMap<String, Span>,
    /// Show the original subject in the notice (off: it may itself be protected data).
    pub reveal_subject: bool,
    /// `password` (code on the first visit, then a password) or `code` (a code every visit).
    pub login: PortalLogin,
    /// How long a one-time code is valid.
    pub code_ttl: Span,
    /// Wrong codes or passwords in a row that lock the address.
    pub max_failures: u32,
    /// How long a locked address stays locked.
    pub lockout: Span,
    /// How long a signed-in session lasts without use.
    pub session_idle: Span,
    /// Largest reply, attachments included, in bytes.
    pub max_reply_size: usize,
    /// Replies one recipient address may send in 24 hours.
    pub max_replies_per_day: u32,
    /// Replies one recipient may send to one message, ever.
    pub max_replies_per_message: u32,
    /// Tell the sender when the recipient first opens the message.
    pub read_receipts: bool,
    /// Send the sender a confirmation with a link that withdraws the message.
    pub sender_confirmation: bool,
    /// Requests per minute one client address may make before it is slowed with 429.
    pub requests_per_minute: u32,
    /// Reverse proxies (CIDRs) whose `X-Forwarded-For` names the client, for
    /// the rate limit and the audit log; others' is ignored.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Directory with `notice.txt` and/or `notice.html` templates that
    /// replace the built-in notice bodies ({sender}, {organisation},
    /// {link}, {expires}, {subject} are filled in; HTML-escaped in the HTML one).
    pub templates_dir: Option<PathBuf>,
    /// Accent colour of notices and pages (a CSS hex colour).
    pub brand_color: String,
    /// Connection caps and timeouts of the listener.
    pub http: super::HttpListenerConfig,
}

impl Default for PortalConfig {
    fn default() -> Self {
        PortalConfig {
            enabled: false,
            address: "0.0.0.0:8443".parse().expect("a socket address"),
            public_url: String::new(),
            tls: true,
            cert_file: None,
            key_file: None,
            organisation: "Sealgate".into(),
            notice_from: None,
            expiry: Span::secs(30 * 86400),
            expiry_by_rule: Default::default(),
            reveal_subject: false,
            login: PortalLogin::Password,
            code_ttl: Span::secs(600),
            max_failures: 10,
            lockout: Span::secs(3600),
            session_idle: Span::secs(1800),
            max_reply_size: 10 * 1024 * 1024,
            max_replies_per_day: 50,
            max_replies_per_message: 10,
            read_receipts: true,
            sender_confirmation: true,
            requests_per_minute: 120,
            trusted_proxies: Vec::new(),
            templates_dir: None,
            brand_color: "#0b5394".into(),
            http: Default::default(),
        }
    }
}

impl PortalConfig {
    /// How long a message whose DLP policy hits are `hits` stays: the
    /// shortest stay of a rule among them, else `expiry`.
    pub fn expiry_for(&self, hits: &[String]) -> Span {
        hits.iter()
            .filter_map(|h| self.expiry_by_rule.get(h))
            .min()
            .copied()
            .unwrap_or(self.expiry)
    }

    /// Problems `sealgate check` reports: `(field, reason)`.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut bad = |f: &str, r: &str| out.push((format!("portal.{f}"), r.to_string()));
        if self.enabled {
            let url = self.public_url.trim_end_matches('/');
            if !url.starts_with("https://") || url.len() < 10 {
                bad(
                    "public_url",
                    "must be the portal's https:// address as recipients reach it, e.g. \"https://secure.example.org\" (its cookies are Secure; behind a proxy, the proxy's address)",
                );
            }
        }
        for (rule, span) in &self.expiry_by_rule {
            if span.0.is_zero() || !rule.contains(':') {
                bad(
                    &format!("expiry_by_rule.{rule}"),
                    "must name a policy rule as \"policy:rule\" with a stay longer than zero",
                );
            }
        }
        if self.max_failures == 0 {
            bad("max_failures", "must be at least 1");
        }
        let c = self.brand_color.trim_start_matches('#');
        if !(self.brand_color.starts_with('#')
            && matches!(c.len(), 3 | 6)
            && c.chars().all(|x| x.is_ascii_hexdigit()))
        {
            bad(
                "brand_color",
                "must be a CSS hex colour such as \"#0b5394\"",
            );
        }
        if self.cert_file.is_some() != self.key_file.is_some() {
            bad("cert_file", "cert_file and key_file go together");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shortest_stay_of_the_rules_that_fired_wins() {
        let mut p = PortalConfig::default();
        p.expiry_by_rule
            .insert("hipaa_pci:ssn-bulk".into(), Span::secs(7 * 86400));
        p.expiry_by_rule
            .insert("hipaa_pci:ssn".into(), Span::secs(14 * 86400));
        assert_eq!(p.expiry_for(&[]), Span::secs(30 * 86400));
        assert_eq!(p.expiry_for(&["other:x".into()]), Span::secs(30 * 86400));
        assert_eq!(
            p.expiry_for(&["hipaa_pci:ssn".into(), "hipaa_pci:ssn-bulk".into()]),
            Span::secs(7 * 86400)
        );
    }
}

//! `[inbound]`: what Sealgate checks on mail from the internet before it
//! answers "250" — sender authentication (SPF, DKIM, ARC, DMARC), spam
//! scoring by rspamd and malware scanning by clamd — and what each finding
//! leads to.

use super::Span;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

/// What happens when a scanner cannot be reached or does not answer in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ScannerFailure {
    /// 451 4.7.0 at the end of DATA: the sender tries again later (fail closed).
    Tempfail,
    /// Accept unscanned, saying so in a header field (fail open).
    Accept,
}

/// What happens to a message a check condemns (a DMARC failure under a
/// reject or quarantine policy, spam, malware).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FilterAction {
    /// Refused in the SMTP dialogue with 550 5.7.1: nothing is accepted, so
    /// nothing needs a bounce.
    Reject,
    /// Accepted and held in the quarantine, with the reason.
    Quarantine,
    /// Accepted and delivered; only the Authentication-Results field says so.
    Tag,
}

impl FilterAction {
    /// Lower-case name, for metrics labels and the trace.
    pub fn as_str(self) -> &'static str {
        match self {
            FilterAction::Reject => "reject",
            FilterAction::Quarantine => "quarantine",
            FilterAction::Tag => "tag",
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
    pub on_dmarc_reject: FilterAction,
    /// For a DMARC failure where the sender's domain publishes `p=quarantine`.
    pub on_dmarc_quarantine: FilterAction,
    /// How long the DNS lookups of one message's checks may take in all;
    /// past it the checks that have not finished count as temporary errors.
    pub auth_timeout: Span,
    /// The authserv-id of the Authentication-Results fields Sealgate adds,
    /// and of those it removes from arriving mail as forged. Default: the
    /// server's hostname.
    pub authserv_id: Option<String>,
    /// rspamd's normal worker (`http://127.0.0.1:11333`); unset: no spam scoring.
    pub rspamd_url: Option<String>,
    /// clamd's TCP socket (INSTREAM); unset: no malware scanning.
    pub clamd_address: Option<SocketAddr>,
    /// How long the scanners may take for one message, together.
    pub scan_timeout: Span,
    /// What rspamd's "reject" action leads to ("add header" and "rewrite
    /// subject" always tag; "soft reject" always answers 451).
    pub on_spam: FilterAction,
    /// What malware found by clamd leads to (reject or quarantine).
    pub on_malware: FilterAction,
    /// A scanner down or too slow: tempfail (fail closed) or accept.
    pub on_scanner_failure: ScannerFailure,
    /// File name extensions (lower case, no dot) whose attachments, also
    /// inside archives, hold inbound mail in the quarantine.
    pub blocked_extensions: Vec<String>,
    /// Hold inbound mail carrying an archive or document that is
    /// password-protected (its content cannot be scanned).
    pub hold_encrypted: bool,
    /// MiB of inbound messages all sessions together may hold in memory
    /// while they are checked; a message past it gets 451 4.3.2.
    pub check_memory_mib: usize,
}

/// Attachment types that hold inbound mail by default: executables and
/// installers, scripts, shortcuts, disk images and macro-enabled Office
/// files — the common attachment filters of Microsoft 365 and Google
/// Workspace, plus the Office macro formats.
pub const DANGEROUS_EXTENSIONS: &[&str] = &[
    "ace", "ani", "apk", "app", "appx", "arj", "bat", "cab", "chm", "cmd", "com", "cpl", "dll",
    "dmg", "docm", "dotm", "exe", "hta", "img", "inf", "ins", "iso", "isp", "jar", "jnlp", "js",
    "jse", "lib", "lnk", "mde", "msc", "msi", "msix", "msp", "mst", "nsh", "pif", "potm", "ppam",
    "ppsm", "pptm", "ps1", "psc1", "reg", "scf", "scr", "sct", "shb", "shs", "sldm", "sys", "vb",
    "vbe", "vbs", "vhd", "vhdx", "vxd", "wsc", "wsf", "wsh", "xlam", "xll", "xlsb", "xlsm", "xltm",
];

impl Default for InboundConfig {
    fn default() -> Self {
        InboundConfig {
            authenticate: true,
            on_dmarc_reject: FilterAction::Reject,
            on_dmarc_quarantine: FilterAction::Quarantine,
            auth_timeout: Span::secs(10),
            authserv_id: None,
            rspamd_url: None,
            clamd_address: None,
            scan_timeout: Span::secs(20),
            on_spam: FilterAction::Reject,
            on_malware: FilterAction::Reject,
            on_scanner_failure: ScannerFailure::Tempfail,
            blocked_extensions: DANGEROUS_EXTENSIONS.iter().map(|e| e.to_string()).collect(),
            hold_encrypted: true,
            check_memory_mib: 1024,
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
        if self.check_memory_mib == 0 {
            out.push((
                "inbound.check_memory_mib".into(),
                "must be at least 1".into(),
            ));
        }
        if self.scan_timeout.0.is_zero() {
            out.push((
                "inbound.scan_timeout".into(),
                "must be more than zero".into(),
            ));
        }
        if self.on_malware == FilterAction::Tag {
            out.push((
                "inbound.on_malware".into(),
                "must be \"reject\" or \"quarantine\": malware is never delivered".into(),
            ));
        }
        for e in &self.blocked_extensions {
            let ok = !e.is_empty()
                && e.len() <= 10
                && e.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
            if !ok {
                out.push((
                    "inbound.blocked_extensions".into(),
                    format!("{e:?}: an extension is 1 to 10 lower-case letters or digits, without the dot"),
                ));
            }
        }
        if let Some(url) = &self.rspamd_url {
            let rest = url.strip_prefix("http://").unwrap_or("");
            if rest.is_empty() || rest.contains(['/', '?', '#', ' ']) {
                out.push((
                    "inbound.rspamd_url".into(),
                    "must be http://HOST:PORT (rspamd's normal worker; no path)".into(),
                ));
            }
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

//! Content scanning of inbound mail before "250": rspamd's spam score and
//! clamd's malware verdict, asked at once within `[inbound] scan_timeout`.
//! What each finding leads to (reject in the dialogue, quarantine, or tag)
//! is `[inbound]`'s; a scanner that cannot answer is a tempfail or an
//! accept-unscanned, as configured — never a silent pass.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use super::reply::Reply;
use crate::config::{Config, FilterAction, ScannerFailure};
use crate::model::inbound::{InboundAction, ScanVerdict};
use crate::net::clamd::{self, ClamdReply};
use crate::net::rspamd::{Envelope, Rspamd, RspamdReply};

/// The scanners `[inbound]` names.
pub struct ContentFilter {
    rspamd: Option<Rspamd>,
    clamd: Option<SocketAddr>,
    budget: Duration,
    on_spam: FilterAction,
    on_malware: FilterAction,
    on_failure: ScannerFailure,
}

/// What the scan leads to.
#[derive(Debug)]
pub enum Scanned {
    /// Accept with these fields added in front and this verdict kept.
    Accept {
        /// `X-Sealgate-Spam-*` fields, CRLF-ended.
        fields: String,
        /// The verdict, for the envelope.
        verdict: ScanVerdict,
    },
    /// Answer this instead of "250" (550 for spam or malware, 451 when a
    /// scanner failed or rspamd asked for a soft reject).
    Refuse {
        /// The reply.
        reply: Reply,
        /// The metric's reason label.
        reason: &'static str,
    },
}

impl ContentFilter {
    /// The scanners of `[inbound]`, or None when it names neither.
    pub fn new(config: &Config) -> Option<ContentFilter> {
        let c = &config.inbound;
        if c.rspamd_url.is_none() && c.clamd_address.is_none() {
            return None;
        }
        Some(ContentFilter {
            rspamd: c
                .rspamd_url
                .as_deref()
                .map(|u| Rspamd::new(u, c.scan_timeout.0)),
            clamd: c.clamd_address,
            budget: c.scan_timeout.0,
            on_spam: c.on_spam,
            on_malware: c.on_malware,
            on_failure: c.on_scanner_failure,
        })
    }

    /// Scans `message` (as received).
    pub async fn scan(&self, message: Arc<Vec<u8>>, env: Envelope<'_>) -> Scanned {
        let spam = async {
            match &self.rspamd {
                Some(r) => Some(
                    tokio::time::timeout(self.budget, r.check(message.clone(), env))
                        .await
                        .map_err(|_| "timed out".to_string())
                        .and_then(|r| r.map_err(|e| e.to_string())),
                ),
                None => None,
            }
        };
        let malware = async {
            match self.clamd {
                Some(a) => Some(
                    tokio::time::timeout(self.budget, clamd::scan(a, &message))
                        .await
                        .map_err(|_| "timed out".to_string())
                        .and_then(|r| r.map_err(|e| e.to_string())),
                ),
                None => None,
            }
        };
        let (spam, malware) = tokio::join!(spam, malware);
        self.judge(spam, malware)
    }

    /// The outcome of the scanners' answers (None: not asked).
    fn judge(
        &self,
        spam: Option<Result<RspamdReply, String>>,
        malware: Option<Result<ClamdReply, String>>,
    ) -> Scanned {
        let mut verdict = ScanVerdict {
            spam_score: None,
            spam_action: None,
            symbols: Vec::new(),
            malware: None,
            unscanned: Vec::new(),
            action: InboundAction::Deliver,
        };
        for (name, failed) in [
            ("rspamd", spam.as_ref().and_then(|r| r.as_ref().err())),
            ("clamd", malware.as_ref().and_then(|r| r.as_ref().err())),
        ] {
            if let Some(why) = failed {
                tracing::warn!(scanner = name, error = %why, "inbound scanner failed");
                if self.on_failure == ScannerFailure::Tempfail {
                    return Scanned::Refuse {
                        reply: Reply::new(
                            451,
                            "4.7.0",
                            "Temporary failure scanning the message, try again later",
                        ),
                        reason: "scanner_failure",
                    };
                }
                verdict.unscanned.push(name.to_string());
            }
        }
        if let Some(Ok(ClamdReply::Found(name))) = &malware {
            verdict.malware = Some(name.clone());
            if self.on_malware == FilterAction::Quarantine {
                verdict.action = InboundAction::Quarantine;
            } else {
                return Scanned::Refuse {
                    reply: Reply::new(
                        550,
                        "5.7.1",
                        format!("Message refused: malware found ({name})"),
                    ),
                    reason: "malware",
                };
            }
        }
        let mut flagged = false;
        if let Some(Ok(r)) = &spam {
            verdict.spam_score = Some(r.score);
            verdict.spam_action = Some(r.action.clone());
            verdict.symbols = r.symbols.clone();
            match r.action.as_str() {
                "reject" => match self.on_spam {
                    FilterAction::Reject if verdict.action == InboundAction::Deliver => {
                        return Scanned::Refuse {
                            reply: Reply::new(550, "5.7.1", "Message refused as spam"),
                            reason: "spam",
                        }
                    }
                    FilterAction::Reject | FilterAction::Quarantine => {
                        verdict.action = InboundAction::Quarantine
                    }
                    FilterAction::Tag => flagged = true,
                },
                "soft reject" => {
                    return Scanned::Refuse {
                        reply: Reply::new(451, "4.7.1", "Try again later"),
                        reason: "spam_soft_reject",
                    }
                }
                "add header" | "rewrite subject" => flagged = true,
                _ => {}
            }
        }
        Scanned::Accept {
            fields: fields(&verdict, flagged),
            verdict,
        }
    }
}

/// The `X-Sealgate-Spam-*` fields the tenant's rules can act on: a flag,
/// the score and rspamd's symbols (rule names), or which scanners were down.
fn fields(v: &ScanVerdict, flagged: bool) -> String {
    let mut out = String::new();
    if let Some(score) = v.spam_score {
        out.push_str(&format!(
            "X-Sealgate-Spam-Flag: {}\r\nX-Sealgate-Spam-Score: {score:.2}\r\n",
            if flagged { "YES" } else { "NO" }
        ));
        if !v.symbols.is_empty() {
            // Symbol names are [A-Z0-9_]; anything else is dropped.
            let names: Vec<String> = v
                .symbols
                .iter()
                .map(|s| {
                    s.chars()
                        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect::<String>()
                })
                .filter(|s| !s.is_empty())
                .collect();
            out.push_str("X-Sealgate-Spam-Symbols: ");
            out.push_str(&names.join(",\r\n\t"));
            out.push_str("\r\n");
        }
    }
    if !v.unscanned.is_empty() {
        out.push_str(&format!(
            "X-Sealgate-Spam-Unscanned: {}\r\n",
            v.unscanned.join(", ")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(
        on_spam: FilterAction,
        on_malware: FilterAction,
        on_failure: ScannerFailure,
    ) -> ContentFilter {
        ContentFilter {
            rspamd: None,
            clamd: None,
            budget: Duration::from_secs(1),
            on_spam,
            on_malware,
            on_failure,
        }
    }

    fn rspamd(action: &str) -> Option<Result<RspamdReply, String>> {
        Some(Ok(RspamdReply {
            action: action.into(),
            score: 16.5,
            required_score: 15.0,
            symbols: vec!["GTUBE".into(), "BAD\r\nX: y".into()],
        }))
    }

    #[test]
    fn each_finding_leads_where_configured() {
        use FilterAction::*;
        let f = filter(Reject, Reject, ScannerFailure::Tempfail);
        assert!(matches!(
            f.judge(rspamd("reject"), None),
            Scanned::Refuse { reason: "spam", .. }
        ));
        assert!(matches!(
            f.judge(None, Some(Ok(ClamdReply::Found("Eicar".into())))),
            Scanned::Refuse {
                reason: "malware",
                ..
            }
        ));
        assert!(matches!(
            f.judge(rspamd("soft reject"), None),
            Scanned::Refuse {
                reason: "spam_soft_reject",
                ..
            }
        ));
        assert!(matches!(
            f.judge(Some(Err("down".into())), None),
            Scanned::Refuse {
                reason: "scanner_failure",
                ..
            }
        ));
        let q = filter(Quarantine, Quarantine, ScannerFailure::Accept);
        match q.judge(
            Some(Err("down".into())),
            Some(Ok(ClamdReply::Found("Eicar".into()))),
        ) {
            Scanned::Accept { verdict, fields } => {
                assert_eq!(verdict.action, InboundAction::Quarantine);
                assert_eq!(verdict.malware.as_deref(), Some("Eicar"));
                assert_eq!(fields, "X-Sealgate-Spam-Unscanned: rspamd\r\n");
            }
            other => panic!("{other:?}"),
        }
        match filter(Tag, Reject, ScannerFailure::Tempfail)
            .judge(rspamd("reject"), Some(Ok(ClamdReply::Clean)))
        {
            Scanned::Accept { verdict, fields } => {
                assert_eq!(verdict.action, InboundAction::Deliver);
                assert_eq!(
                    fields,
                    "X-Sealgate-Spam-Flag: YES\r\nX-Sealgate-Spam-Score: 16.50\r\nX-Sealgate-Spam-Symbols: GTUBE,\r\n\tBADXy\r\n"
                );
            }
            other => panic!("{other:?}"),
        }
    }
}
